import type { TableRef } from '@nftops/artifact';
import type { NftTableJson } from '@nftops/nft-driver';
import { splitStatements, type Statement } from './body-guard.js';

/**
 * "Keep base chains": a hitless form of the artifact's replace idiom.
 *
 * An artifact replaces each of its tables with `table T` / `delete table T` / `table T { ... }`. That is one
 * atomic transaction, but it deletes and re-creates the table's base chains, so for a moment the old and the
 * new chains are both registered on the hook, the new one first. The kernel reads the ruleset generation once
 * per chain, so a packet that runs the new chain just before the commit flips the generation and the old chain
 * just after it sees no rule in either. For a NAT chain that means a new connection escapes DNAT (measured on
 * this project's kernel: about one connection in 40 000 while the table was replaced 200 times). Later runs
 * lost connections at the same rate with this rewrite too when the rule looks up a map the transaction
 * removes, and none with either form when it does not (packages/watcher/README.md, "What no whole apply avoids").
 *
 * When the live table is plain enough, the watcher sends an equivalent transaction instead that keeps the base
 * chains registered: `flush table T`, delete every set, map, named counter/quota/limit and regular chain by
 * handle, delete the base chains the new version does not declare identically, then the artifact's own
 * `table T { ... }` without its `delete table T`. Inside one chain the switch is atomic for every packet.
 *
 * Anything unusual (table flags or comments, flowtables, ct objects, base chains without an explicit policy,
 * devices, other top-level commands on the table) makes this return undefined, and the artifact is applied as
 * written. If nft refuses the rewritten transaction, the artifact is applied as written too.
 */

const STANDARD_PRIORITIES: Record<string, number> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };
const BRIDGE_PRIORITIES: Record<string, number> = { dstnat: -300, filter: -200, out: 100, srcnat: 300 };

export function priorityValue(family: string, expression: string): number | undefined {
  const text = expression.trim();
  if (/^-?\d+$/.test(text)) return Number(text);
  const match = /^([a-z]+)\s*(?:([+-])\s*(\d+))?$/.exec(text);
  if (!match) return undefined;
  const base = (family === 'bridge' ? BRIDGE_PRIORITIES : STANDARD_PRIORITIES)[match[1]!];
  if (base === undefined) return undefined;
  const offset = match[3] ? Number(match[3]) * (match[2] === '-' ? -1 : 1) : 0;
  return base + offset;
}

interface LiveObject {
  readonly kind: 'set' | 'counter' | 'quota' | 'limit' | 'chain';
  readonly name: string;
  readonly handle: number;
}

interface LiveBaseChain {
  readonly name: string;
  readonly handle: number;
  readonly type: string;
  readonly hook: string;
  readonly prio: number;
  /** Only base chains with nothing but type, hook, priority and policy are kept. */
  readonly plain: boolean;
}

export interface LiveTable {
  readonly base: readonly LiveBaseChain[];
  readonly objects: readonly LiveObject[];
}

/** Reads what the rewrite needs from `nft -j list table`; undefined when the table holds something it does not handle. */
export function parseLiveTable(json: NftTableJson): LiveTable | undefined {
  const base: LiveBaseChain[] = [];
  const objects: LiveObject[] = [];
  for (const item of json) {
    const [kind] = Object.keys(item);
    const value = item[kind!] as Record<string, unknown>;
    switch (kind) {
      case 'metainfo':
      case 'rule':
        break;
      case 'table':
        if (value.flags !== undefined || value.comment !== undefined) return undefined;
        break;
      case 'chain': {
        const handle = Number(value.handle);
        if (!Number.isInteger(handle)) return undefined;
        if (value.hook === undefined) {
          objects.push({ kind: 'chain', name: String(value.name), handle });
          break;
        }
        const plain = ['dev', 'devices', 'flags', 'comment'].every((key) => value[key] === undefined);
        base.push({ name: String(value.name), handle, type: String(value.type), hook: String(value.hook), prio: Number(value.prio), plain });
        break;
      }
      case 'set':
      case 'map':
      case 'counter':
      case 'quota':
      case 'limit': {
        const handle = Number(value.handle);
        if (!Number.isInteger(handle)) return undefined;
        objects.push({ kind: kind === 'map' ? 'set' : kind, name: String(value.name), handle });
        break;
      }
      default:
        return undefined; // flowtables, ct helpers/timeouts/expectations, secmarks, synproxies, anything newer
    }
  }
  return { base, objects };
}

interface DeclaredBaseChain {
  readonly type: string;
  readonly hook: string;
  readonly prio: number;
}

export interface DeclaredTable {
  /** Chains declared in the table block; `base` is set for a base chain the rewrite can keep. */
  readonly chains: ReadonlyMap<string, { base?: DeclaredBaseChain }>;
  /** "kind name" of the sets, maps, counters, quotas and limits declared in the block. */
  readonly objects: ReadonlySet<string>;
  /** The `delete table F N` statement to drop from the body. */
  readonly deleteStatement: Statement;
}

const NAMED_OBJECTS = new Set(['set', 'map', 'counter', 'quota', 'limit']);
const FAMILIES = new Set(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);

function analyseChain(family: string, text: string): { base?: DeclaredBaseChain } | undefined {
  let type: DeclaredBaseChain | undefined;
  let policy = false;
  let other = false;
  for (const statement of splitStatements(text)) {
    const head = statement.head;
    const hook = /^type\s+(\w+)\s+hook\s+(\w+)\s+priority\s+(.+)$/.exec(head);
    if (hook) {
      const prio = priorityValue(family, hook[3]!);
      if (prio === undefined) return {};
      type = { type: hook[1]!, hook: hook[2]!, prio };
      continue;
    }
    if (/^type\s/.test(head) || /^(device|devices|flags|comment)\b/.test(head)) other = true;
    else if (/^policy\s+(accept|drop)$/.test(head)) policy = true;
  }
  if (!type) return {};
  return type && policy && !other ? { base: type } : {};
}

/** Analyses how BODY replaces TABLE; undefined when it is not the plain idiom the rewrite understands. */
export function analyseDeclaration(body: string, table: TableRef): DeclaredTable | undefined {
  const key = `${table.family} ${table.name}`;
  const sameTable = (words: string[]) => (words.length === 2 ? `${words[0]} ${words[1]}` === key : words.length === 1 && table.family === 'ip' && words[0] === table.name);
  let deleteStatement: Statement | undefined;
  let blockText: string | undefined;
  for (const statement of splitStatements(body)) {
    const words = statement.head.split(/\s+/);
    if (words[0] === 'define' || words[0] === 'redefine' || words[0] === 'undefine') continue;
    const verb = ['add', 'create', 'delete', 'destroy', 'flush'].includes(words[0]!) ? words.shift()! : undefined;
    const object = words.shift();
    const names = words;
    const mentions =
      object === 'table'
        ? sameTable(names)
        : (names[0] === table.family && names[1] === table.name) || (table.family === 'ip' && !FAMILIES.has(names[0] ?? '') && names[0] === table.name);
    if (!mentions) continue;
    if (object !== 'table') return undefined;
    if (verb === 'delete' && !statement.block) {
      if (deleteStatement) return undefined;
      deleteStatement = statement;
    } else if ((verb === undefined || verb === 'add') && statement.block) {
      if (blockText !== undefined) return undefined;
      blockText = body.slice(statement.block.start, statement.block.end);
    } else if (!((verb === undefined || verb === 'add') && !statement.block)) {
      return undefined;
    }
  }
  if (!deleteStatement || blockText === undefined) return undefined;
  const chains = new Map<string, { base?: DeclaredBaseChain }>();
  const objects = new Set<string>();
  for (const statement of splitStatements(blockText)) {
    const words = statement.head.split(/\s+/);
    if (words.length !== 2 || !statement.block) return undefined;
    const [kind, name] = words as [string, string];
    if (kind === 'chain') {
      if (chains.has(name)) return undefined;
      const chain = analyseChain(table.family, blockText.slice(statement.block.start, statement.block.end));
      if (!chain) return undefined;
      chains.set(name, chain);
    } else if (NAMED_OBJECTS.has(kind)) {
      objects.add(`${kind === 'map' ? 'set' : kind} ${name}`);
    } else {
      return undefined;
    }
  }
  return { chains, objects, deleteStatement };
}

/**
 * The hitless transaction text for one artifact body, given what is known of each of its live tables.
 * Undefined when the rewrite does not apply.
 *
 * The live state may come from the read-back after the previous apply rather than a fresh listing. That is
 * safe: an object someone deleted since makes `delete ... handle N` fail (the artifact is then applied as
 * written), a base chain re-created with another hook or priority makes the re-declaration fail, and objects
 * someone added survive only until the caller's `leftovers` check after the apply.
 */
/** What is known of a live table: its parsed form, undefined when it does not exist, false when unsupported. */
export type LiveState = LiveTable | undefined | false;

export function liveState(json: NftTableJson | undefined): LiveState {
  return json === undefined ? undefined : (parseLiveTable(json) ?? false);
}

export function keepBaseChains(body: string, tables: readonly TableRef[], live: ReadonlyMap<string, LiveState>): string | undefined {
  let prefix = '';
  const cuts: Statement[] = [];
  for (const table of tables) {
    const current = live.get(`${table.family} ${table.name}`);
    if (current === undefined) continue; // a new table: nothing to keep
    const declared = analyseDeclaration(body, table);
    if (!current || !declared) return undefined;
    const scope = `${table.family} ${table.name}`;
    let lines = `flush table ${scope}\n`;
    for (const object of current.objects) if (object.kind !== 'chain') lines += `delete ${object.kind} ${scope} handle ${object.handle}\n`;
    for (const object of current.objects) if (object.kind === 'chain') lines += `delete chain ${scope} handle ${object.handle}\n`;
    let kept = 0;
    for (const chain of current.base) {
      const wanted = declared.chains.get(chain.name)?.base;
      const keep = chain.plain && wanted !== undefined && wanted.type === chain.type && wanted.hook === chain.hook && wanted.prio === chain.prio;
      if (keep) kept++;
      else lines += `delete chain ${scope} handle ${chain.handle}\n`;
    }
    if (kept === 0) return undefined; // nothing to gain
    prefix += lines;
    cuts.push(declared.deleteStatement);
  }
  if (cuts.length === 0) return undefined;
  let text = body;
  for (const cut of [...cuts].sort((a, b) => b.start - a.start)) text = text.slice(0, cut.start) + text.slice(cut.end);
  return prefix + text;
}

/**
 * After a hitless apply: objects in the live table the body does not declare (someone added them between the
 * listing and the apply). The plain idiom would have removed them, so the caller re-applies as written.
 */
export function leftovers(json: NftTableJson | undefined, body: string, table: TableRef): string[] {
  if (json === undefined) return [];
  const declared = analyseDeclaration(body, table);
  if (!declared) return [];
  const extra: string[] = [];
  for (const item of json) {
    const [kind] = Object.keys(item);
    const value = item[kind!] as Record<string, unknown>;
    if (kind === 'table' && (value.flags !== undefined || value.comment !== undefined)) extra.push('table flags or comment');
    if (kind === 'chain' && !declared.chains.has(String(value.name))) extra.push(`chain ${String(value.name)}`);
    if ((kind === 'set' || kind === 'map' || kind === 'counter' || kind === 'quota' || kind === 'limit') && !declared.objects.has(`${kind === 'map' ? 'set' : kind} ${String(value.name)}`)) {
      extra.push(`${kind} ${String(value.name)}`);
    }
  }
  return extra;
}
