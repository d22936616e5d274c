/**
 * The live ruleset as `nft -j list ruleset` returns it (nft 1.0.6, JSON schema 1), read into tables, chains
 * with their rules, and sets and maps with their elements. Only what `explain` needs is kept; anything the
 * reader does not understand is skipped, never an error.
 */
export interface Counter {
  readonly packets: number;
  readonly bytes: number;
}

export interface LiveRule {
  readonly chain: string;
  /** Position in the chain, from 0. */
  readonly index: number;
  readonly handle: number | undefined;
  readonly comment: string | undefined;
  readonly expr: readonly unknown[];
  /** The rule's anonymous counter; undefined when it has none. */
  readonly counter: Counter | undefined;
}

export interface LiveElement {
  readonly key: unknown;
  /** The mapped value (maps only). */
  readonly value: unknown;
  readonly comment: string | undefined;
  readonly counter: Counter | undefined;
}

export interface LiveSet {
  readonly kind: 'set' | 'map';
  readonly name: string;
  readonly elements: readonly LiveElement[];
}

export interface LiveChain {
  readonly name: string;
  readonly base: { readonly type: string; readonly hook: string; readonly prio: number } | undefined;
  readonly rules: LiveRule[];
}

export interface LiveTable {
  readonly family: string;
  readonly name: string;
  readonly chains: Map<string, LiveChain>;
  readonly sets: Map<string, LiveSet>;
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

function readCounter(value: unknown): Counter | undefined {
  if (!isObject(value)) return undefined;
  const packets = value.packets;
  const bytes = value.bytes;
  return typeof packets === 'number' && typeof bytes === 'number' ? { packets, bytes } : undefined;
}

function readElement(entry: unknown, isMap: boolean): LiveElement {
  const [keyEntry, value] = isMap && Array.isArray(entry) ? [entry[0], entry[1]] : [entry, undefined];
  if (isObject(keyEntry) && isObject(keyEntry.elem)) {
    const elem = keyEntry.elem;
    return {
      key: elem.val,
      value,
      comment: typeof elem.comment === 'string' ? elem.comment : undefined,
      counter: readCounter(elem.counter),
    };
  }
  return { key: keyEntry, value, comment: undefined, counter: undefined };
}

export const tableKey = (family: string, name: string) => `${family} ${name}`;

/** Reads the items of `nft -j list ruleset` (the `nftables` array). Unknown items are ignored. */
export function readRuleset(items: readonly Record<string, unknown>[]): LiveTable[] {
  const tables = new Map<string, LiveTable>();
  const table = (family: unknown, name: unknown): LiveTable | undefined => {
    if (typeof family !== 'string' || typeof name !== 'string') return undefined;
    const key = tableKey(family, name);
    let found = tables.get(key);
    if (!found) tables.set(key, (found = { family, name, chains: new Map(), sets: new Map() }));
    return found;
  };
  const chainOf = (owner: LiveTable, name: string): LiveChain => {
    let chain = owner.chains.get(name);
    if (!chain) owner.chains.set(name, (chain = { name, base: undefined, rules: [] }));
    return chain;
  };
  for (const item of items) {
    if (isObject(item.table)) table(item.table.family, item.table.name);
    else if (isObject(item.chain)) {
      const c = item.chain;
      const owner = table(c.family, c.table);
      if (!owner || typeof c.name !== 'string') continue;
      const base =
        typeof c.type === 'string' && typeof c.hook === 'string'
          ? { type: c.type, hook: c.hook, prio: typeof c.prio === 'number' ? c.prio : 0 }
          : undefined;
      const existing = owner.chains.get(c.name);
      owner.chains.set(c.name, { name: c.name, base, rules: existing?.rules ?? [] });
    } else if (isObject(item.rule)) {
      const r = item.rule;
      const owner = table(r.family, r.table);
      if (!owner || typeof r.chain !== 'string') continue;
      const chain = chainOf(owner, r.chain);
      const expr = Array.isArray(r.expr) ? (r.expr as unknown[]) : [];
      const counterStatement = expr.find((e) => isObject(e) && 'counter' in e) as Json | undefined;
      chain.rules.push({
        chain: r.chain,
        index: chain.rules.length,
        handle: typeof r.handle === 'number' ? r.handle : undefined,
        comment: typeof r.comment === 'string' ? r.comment : undefined,
        expr,
        counter: counterStatement ? readCounter(counterStatement.counter) : undefined,
      });
    } else if (isObject(item.set) || isObject(item.map)) {
      const kind = isObject(item.set) ? 'set' : 'map';
      const s = (item.set ?? item.map) as Json;
      const owner = table(s.family, s.table);
      if (!owner || typeof s.name !== 'string') continue;
      const elements = Array.isArray(s.elem) ? s.elem.map((entry) => readElement(entry, kind === 'map')) : [];
      owner.sets.set(s.name, { kind, name: s.name, elements });
    }
  }
  return [...tables.values()];
}

// ---------------------------------------------------------------------------------------------------------------
// Text: values and rules back in (roughly) nft's own words, for people reading the report.

const UNQUALIFIED_META = new Set(['iif', 'iifname', 'oif', 'oifname', 'iiftype', 'oiftype', 'skuid', 'skgid', 'mark']);

function hex(value: unknown): string {
  return typeof value === 'number' ? `0x${(value >>> 0).toString(16).padStart(8, '0')}` : formatValue(value);
}

/** An nft JSON value or expression as nft would print it (best effort; unknown shapes are abbreviated). */
export function formatValue(value: unknown): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(formatValue).join(' ');
  if (!isObject(value)) return '…';
  const [key, inner] = Object.entries(value)[0] ?? ['', undefined];
  const o = isObject(inner) ? inner : {};
  switch (key) {
    case 'concat':
      return Array.isArray(inner) ? inner.map(formatValue).join(' . ') : '…';
    case 'range':
      return Array.isArray(inner) ? `${formatValue(inner[0])}-${formatValue(inner[1])}` : '…';
    case 'prefix':
      return `${formatValue(o.addr)}/${formatValue(o.len)}`;
    case 'set':
      return Array.isArray(inner)
        ? `{ ${inner.map((e) => (Array.isArray(e) ? `${formatValue(e[0])} : ${formatValue(e[1])}` : formatValue(e))).join(', ')} }`
        : formatValue(inner);
    case 'elem':
      return formatValue(o.val);
    case 'payload':
      return `${formatValue(o.protocol)} ${formatValue(o.field)}`;
    case 'meta':
      return UNQUALIFIED_META.has(String(o.key)) && o.key !== 'mark' ? String(o.key) : `meta ${formatValue(o.key)}`;
    case 'ct':
      return `ct ${o.dir ? `${formatValue(o.dir)} ` : ''}${formatValue(o.key)}`;
    case 'socket':
      return `socket ${formatValue(o.key)}`;
    case 'fib':
      return `fib ${Array.isArray(o.flags) ? o.flags.join(' . ') : formatValue(o.flags)} ${formatValue(o.result)}`;
    case '&':
    case '|':
    case '^':
      return Array.isArray(inner) ? `${formatValue(inner[0])} ${key} ${hex(inner[1])}` : '…';
    case 'numgen':
      return `numgen ${formatValue(o.mode)} mod ${formatValue(o.mod)}`;
    case 'jhash':
      return `jhash ${formatValue(o.expr)} mod ${formatValue(o.mod)}`;
    case 'map':
      return `${formatValue(o.key)} map ${formatValue(o.data)}`;
    case 'accept':
    case 'drop':
    case 'return':
    case 'continue':
      return key;
    case 'jump':
    case 'goto':
      return `${key} ${formatValue(o.target)}`;
    default:
      return key;
  }
}

function describeStatement(statement: unknown): string | undefined {
  if (!isObject(statement)) return undefined;
  const [key, inner] = Object.entries(statement)[0] ?? ['', undefined];
  const o = isObject(inner) ? inner : {};
  switch (key) {
    case 'counter':
      return undefined;
    case 'match': {
      const binop = isObject(o.left) && ('&' in o.left || '|' in o.left || '^' in o.left);
      const op = (o.op === '==' || o.op === 'in') && !binop ? '' : `${formatValue(o.op)} `;
      const mark = isObject(o.left) && 'meta' in o.left && isObject(o.left.meta) && o.left.meta.key === 'mark';
      const right = binop || mark ? hex(o.right) : formatValue(o.right);
      return `${formatValue(o.left)} ${op}${right}`;
    }
    case 'mangle':
      return `${formatValue(o.key)} set ${formatValue(o.value)}`;
    case 'vmap':
      return `${formatValue(o.key)} vmap ${formatValue(o.data)}`;
    case 'dnat':
    case 'snat': {
      const addr = o.addr === undefined ? '' : formatValue(o.addr);
      const port = o.port === undefined ? '' : `:${formatValue(o.port)}`;
      return `${key} ${o.family ? `${formatValue(o.family)} ` : ''}to ${addr}${port}`;
    }
    case 'redirect':
    case 'tproxy':
      return `${key}${o.addr !== undefined || o.port !== undefined ? ` to ${o.addr === undefined ? '' : formatValue(o.addr)}${o.port === undefined ? '' : `:${formatValue(o.port)}`}` : ''}`;
    case 'masquerade':
      return 'masquerade';
    case 'reject':
      return o.type === 'tcp reset' ? 'reject with tcp reset' : 'reject';
    case 'log':
      return 'log';
    case 'notrack':
      return 'notrack';
    default: {
      const text = formatValue(statement);
      return text === '' ? key : text;
    }
  }
}

/** A rule's statements without its counter, e.g. `ip saddr 203.0.113.0/24 tcp dport 8080 accept`. */
export function describeRule(expr: readonly unknown[]): string {
  return expr
    .map(describeStatement)
    .filter((s): s is string => s !== undefined && s !== '')
    .join(' ');
}

/** Every `@name` a rule refers to (named sets and maps). */
export function referencedSets(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (typeof value === 'string') {
    if (value.startsWith('@')) out.add(value.slice(1));
  } else if (Array.isArray(value)) for (const v of value) referencedSets(v, out);
  else if (isObject(value)) for (const v of Object.values(value)) referencedSets(v, out);
  return out;
}

/** Every chain a value can continue in: `jump X`, `goto X`, as statements or as verdicts of maps. */
export function verdictTargets(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) for (const v of value) verdictTargets(v, out);
  else if (isObject(value)) {
    for (const [key, inner] of Object.entries(value)) {
      if ((key === 'jump' || key === 'goto') && isObject(inner) && typeof inner.target === 'string') out.add(inner.target);
      else verdictTargets(inner, out);
    }
  }
  return out;
}

export function findStatement(expr: readonly unknown[], key: string): Json | undefined {
  for (const statement of expr) {
    if (isObject(statement) && key in statement) return statement;
  }
  return undefined;
}

export { isObject };
