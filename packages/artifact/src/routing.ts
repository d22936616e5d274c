import { isIP } from 'node:net';

/**
 * The routing an artifact needs besides its nft tables (policy routing for TPROXY and ambient, the `::6`
 * address of sidecar IPv6 pods). It travels in the artifact header as one line:
 *
 *   # routing: rule4 fwmark 0x539/0xffffffff table 133 priority 32765; route4 local 0.0.0.0/0 dev lo table 133
 *
 * Items are separated by `; ` and come in three forms:
 *
 *   rule4|rule6  fwmark <hex>/<hex> table <n> priority <n>    an `ip rule` (fwmark/mask lookup table)
 *   route4|route6 local <prefix> dev <if> table <n>           a local route in a routing table
 *   addr4|addr6  <address>/<prefix> dev <if>                  an address on an interface
 *
 * The watcher applies them idempotently in the artifact's network namespace (nft-driver's ip-routing.ts) and
 * removes them again when the artifact goes away.
 */
export type RoutingFamily = 4 | 6;

export interface RoutingRule {
  readonly kind: 'rule';
  readonly family: RoutingFamily;
  readonly fwmark: number;
  readonly mask: number;
  readonly table: number;
  readonly priority: number;
}

export interface RoutingRoute {
  readonly kind: 'route';
  readonly family: RoutingFamily;
  readonly type: 'local';
  /** `0.0.0.0/0`, `::/0`, or another canonical prefix. */
  readonly prefix: string;
  readonly dev: string;
  readonly table: number;
}

export interface RoutingAddress {
  readonly kind: 'address';
  readonly family: RoutingFamily;
  /** `address/prefix`, for example `::6/128`. */
  readonly address: string;
  readonly dev: string;
}

export type RoutingItem = RoutingRule | RoutingRoute | RoutingAddress;

export interface Routing {
  readonly items: readonly RoutingItem[];
}

/** The header field that carries the routing. */
export const ROUTING_HEADER_FIELD = 'routing';

const INTERFACE = /^[A-Za-z0-9_.-]{1,15}$/;
/** Tables the kernel owns (unspec, default, main, local): an artifact must never add routes to them. */
const RESERVED_TABLES: ReadonlySet<number> = new Set([0, 253, 254, 255]);
const U32 = 0xffffffff;

function hex(value: number): string {
  return `0x${(value >>> 0).toString(16)}`;
}

function isInterface(name: string): boolean {
  return INTERFACE.test(name) && name !== '.' && name !== '..';
}

function checkPrefix(text: string, family: RoutingFamily): string | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return `${JSON.stringify(text)} needs a prefix length`;
  const address = text.slice(0, slash);
  const length = text.slice(slash + 1);
  if (isIP(address) !== family) return `${JSON.stringify(address)} is not an IPv${family} address`;
  if (!/^(0|[1-9]\d{0,2})$/.test(length) || Number(length) > (family === 4 ? 32 : 128)) {
    return `${JSON.stringify(text)} has an invalid prefix length`;
  }
  return undefined;
}

/** Returns why ITEM is not acceptable, or undefined. */
export function validateRoutingItem(item: RoutingItem): string | undefined {
  if (item.family !== 4 && item.family !== 6) return 'family must be 4 or 6';
  const tableOk = (table: number) => Number.isInteger(table) && table >= 1 && table <= U32 && !RESERVED_TABLES.has(table);
  switch (item.kind) {
    case 'rule':
      if (!Number.isInteger(item.fwmark) || item.fwmark < 1 || item.fwmark > U32) return 'fwmark must be from 1 to 0xffffffff';
      if (!Number.isInteger(item.mask) || item.mask < 1 || item.mask > U32) return 'mask must be from 1 to 0xffffffff';
      if ((item.fwmark & ~item.mask) !== 0) return `fwmark ${hex(item.fwmark)} has bits outside mask ${hex(item.mask)}`;
      if (!tableOk(item.table)) return `table ${item.table} is reserved or out of range`;
      if (!Number.isInteger(item.priority) || item.priority < 1 || item.priority > 32765) {
        return `priority ${item.priority} must be from 1 to 32765 (0, 32766 and 32767 belong to the kernel's rules)`;
      }
      return undefined;
    case 'route':
      if (item.type !== 'local') return 'only local routes are supported';
      if (!isInterface(item.dev)) return `${JSON.stringify(item.dev)} is not an interface name`;
      if (!tableOk(item.table)) return `table ${item.table} is reserved or out of range`;
      return checkPrefix(item.prefix, item.family);
    case 'address':
      if (!isInterface(item.dev)) return `${JSON.stringify(item.dev)} is not an interface name`;
      return checkPrefix(item.address, item.family);
    default:
      return 'unknown item kind';
  }
}

export function formatRoutingItem(item: RoutingItem): string {
  switch (item.kind) {
    case 'rule':
      return `rule${item.family} fwmark ${hex(item.fwmark)}/${hex(item.mask)} table ${item.table} priority ${item.priority}`;
    case 'route':
      return `route${item.family} ${item.type} ${item.prefix} dev ${item.dev} table ${item.table}`;
    case 'address':
      return `addr${item.family} ${item.address} dev ${item.dev}`;
  }
}

/** The header value for ROUTING; throws when an item is invalid (a compiler bug, never user input). */
export function formatRouting(routing: Routing): string {
  for (const item of routing.items) {
    const problem = validateRoutingItem(item);
    if (problem !== undefined) throw new Error(`invalid routing item: ${problem}`);
  }
  return routing.items.map(formatRoutingItem).join('; ');
}

export type ParseRoutingResult =
  | { readonly ok: true; readonly routing: Routing }
  | { readonly ok: false; readonly message: string };

const NUMBER = /^(0|[1-9]\d{0,9})$/;
const HEX = /^0x[0-9a-f]{1,8}$/;

function parseItem(text: string): RoutingItem | string {
  const words = text.split(' ');
  const head = /^(rule|route|addr)([46])$/.exec(words[0] ?? '');
  if (!head) return `unknown item ${JSON.stringify(text)}`;
  const family = Number(head[2]) as RoutingFamily;
  let item: RoutingItem;
  if (head[1] === 'rule') {
    const [, fw, markMask, t, table, p, priority] = words;
    const [mark, mask] = (markMask ?? '').split('/');
    if (words.length !== 7 || fw !== 'fwmark' || t !== 'table' || p !== 'priority') return `malformed rule ${JSON.stringify(text)}`;
    if (!HEX.test(mark ?? '') || !HEX.test(mask ?? '') || !NUMBER.test(table!) || !NUMBER.test(priority!)) {
      return `malformed rule ${JSON.stringify(text)}`;
    }
    item = { kind: 'rule', family, fwmark: Number(mark), mask: Number(mask), table: Number(table), priority: Number(priority) };
  } else if (head[1] === 'route') {
    const [, type, prefix, d, dev, t, table] = words;
    if (words.length !== 7 || type !== 'local' || d !== 'dev' || t !== 'table' || !NUMBER.test(table!)) return `malformed route ${JSON.stringify(text)}`;
    item = { kind: 'route', family, type, prefix: prefix!, dev: dev!, table: Number(table) };
  } else {
    const [, address, d, dev] = words;
    if (words.length !== 4 || d !== 'dev') return `malformed address ${JSON.stringify(text)}`;
    item = { kind: 'address', family, address: address!, dev: dev! };
  }
  const problem = validateRoutingItem(item);
  return problem === undefined ? item : `${JSON.stringify(text)}: ${problem}`;
}

/** Parses a `routing` header value. Never throws. An empty value is no routing. */
export function parseRouting(value: string): ParseRoutingResult {
  if (!/^[\x20-\x7e]*$/.test(value)) return { ok: false, message: 'the routing field holds non-printable characters' };
  if (value.trim() === '') return { ok: true, routing: { items: [] } };
  const items: RoutingItem[] = [];
  const seen = new Set<string>();
  for (const part of value.split('; ')) {
    const item = parseItem(part);
    if (typeof item === 'string') return { ok: false, message: item };
    const key = formatRoutingItem(item);
    if (seen.has(key)) return { ok: false, message: `${JSON.stringify(part)} appears twice` };
    seen.add(key);
    items.push(item);
  }
  return { ok: true, routing: { items } };
}

/** The routing an artifact header carries, or an empty routing when it has none. */
export function routingOfHeader(extra: Readonly<Record<string, string>>): ParseRoutingResult {
  const value = extra[ROUTING_HEADER_FIELD];
  return value === undefined ? { ok: true, routing: { items: [] } } : parseRouting(value);
}

/** Items of PREVIOUS that NEXT no longer has: what to remove when an artifact changes from one to the other. */
export function routingRemoved(previous: Routing, next: Routing): Routing {
  const keep = new Set(next.items.map(formatRoutingItem));
  return { items: previous.items.filter((item) => !keep.has(formatRoutingItem(item))) };
}
