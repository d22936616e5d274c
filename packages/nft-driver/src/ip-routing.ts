import { formatRoutingItem, type RoutingFamily, type RoutingItem } from '@nftops/artifact';
import { execa } from 'execa';

/**
 * Applies the routing an artifact carries (policy rules, local routes, addresses: @nftops/artifact routing.ts)
 * with `ip`, idempotently, inside a network namespace. Items are keyed by their header text (formatRoutingItem).
 *
 * apply(): reads what exists (`ip -j rule show`, `ip -j route show table N`, `ip -j addr show dev D`) and
 * adds only what is missing. remove(): deletes the items that exist. Both report what they changed, so a
 * caller can record which items it added itself.
 */
export interface IpRoutingSpec {
  readonly items: readonly RoutingItem[];
}

export interface IpRoutingTarget {
  /** A name under /var/run/netns, or a path to a netns file; absent: the current namespace. */
  readonly netns?: string;
}

export interface IpRoutingChange {
  /** Items that were missing and were added (apply) or that existed and were deleted (remove). */
  readonly changed: readonly RoutingItem[];
  /** Items that were already as wanted. */
  readonly unchanged: readonly RoutingItem[];
}

export interface IpRoutingDriver {
  apply(routing: IpRoutingSpec, target?: IpRoutingTarget): Promise<IpRoutingChange>;
  remove(routing: IpRoutingSpec, target?: IpRoutingTarget): Promise<IpRoutingChange>;
  /** Which items exist right now. */
  present(routing: IpRoutingSpec, target?: IpRoutingTarget): Promise<readonly RoutingItem[]>;
}

export class IpRoutingError extends Error {
  readonly code = 'IP_ROUTING_FAILED';
  constructor(command: string, stderr: string) {
    super(`ip ${command} failed: ${stderr.trim()}`);
    this.name = 'IpRoutingError';
  }
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/** The `ip` arguments that add ITEM (without `-n`/family). */
function addArgs(item: RoutingItem): string[] {
  switch (item.kind) {
    case 'rule':
      return ['rule', 'add', 'fwmark', `${hex(item.fwmark)}/${hex(item.mask)}`, 'lookup', `${item.table}`, 'priority', `${item.priority}`];
    case 'route':
      return ['route', 'add', item.type, item.prefix, 'dev', item.dev, 'table', `${item.table}`];
    case 'address':
      return ['addr', 'add', item.address, 'dev', item.dev];
  }
}

function deleteArgs(item: RoutingItem): string[] {
  const args = addArgs(item);
  args[1] = 'del';
  return args;
}

interface JsonRule {
  priority?: number;
  src?: string;
  dst?: string;
  fwmark?: string;
  fwmask?: string;
  table?: string;
  iif?: string;
  oif?: string;
  not?: boolean;
}

function tableNumber(name: string | undefined): number | undefined {
  if (name === undefined) return undefined;
  const named: Record<string, number> = { local: 255, main: 254, default: 253, unspec: 0 };
  return name in named ? named[name] : Number(name);
}

function ruleMatches(rule: JsonRule, item: Extract<RoutingItem, { kind: 'rule' }>): boolean {
  if (rule.not || rule.iif || rule.oif || (rule.src !== undefined && rule.src !== 'all') || (rule.dst !== undefined && rule.dst !== 'all')) return false;
  const mark = rule.fwmark === undefined ? undefined : Number(rule.fwmark);
  const mask = rule.fwmask === undefined ? 0xffffffff : Number(rule.fwmask);
  return rule.priority === item.priority && mark === item.fwmark && mask === item.mask && tableNumber(rule.table) === item.table;
}

function routeMatches(route: { type?: string; dst?: string; dev?: string }, item: Extract<RoutingItem, { kind: 'route' }>): boolean {
  const dst = route.dst === 'default' ? (item.family === 4 ? '0.0.0.0/0' : '::/0') : route.dst ?? '';
  const normalized = dst.includes('/') ? dst : `${dst}/${item.family === 4 ? 32 : 128}`;
  return (route.type ?? 'unicast') === item.type && route.dev === item.dev && normalized === item.prefix;
}

interface AddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
}

export interface IpRoutingOptions {
  /** Path to ip; default "ip" on PATH. */
  readonly ipPath?: string;
  readonly timeoutMs?: number;
}

export function createIpRouting(options: IpRoutingOptions = {}): IpRoutingDriver {
  const ip = options.ipPath ?? 'ip';
  const timeout = options.timeoutMs ?? 15_000;

  async function run(family: RoutingFamily, args: readonly string[], target: IpRoutingTarget | undefined, json = false) {
    const netns = target?.netns;
    const prefix = netns === undefined ? [] : netns.includes('/') ? [] : ['-n', netns];
    const argv = [...prefix, `-${family}`, ...(json ? ['-j'] : []), ...args];
    const [file, fullArgs] = netns !== undefined && netns.includes('/') ? ['nsenter', [`--net=${netns}`, '--', ip, ...argv]] : [ip, argv];
    return execa(file, fullArgs, { reject: false, timeout, env: { LC_ALL: 'C' }, extendEnv: true, stdin: 'ignore' });
  }

  async function runChecked(family: RoutingFamily, args: readonly string[], target: IpRoutingTarget | undefined) {
    const result = await run(family, args, target);
    if (result.exitCode !== 0) throw new IpRoutingError(args.join(' '), String(result.stderr ?? ''));
  }

  async function exists(item: RoutingItem, target: IpRoutingTarget | undefined): Promise<boolean> {
    switch (item.kind) {
      case 'rule': {
        const result = await run(item.family, ['rule', 'show'], target, true);
        if (result.exitCode !== 0) throw new IpRoutingError('rule show', String(result.stderr ?? ''));
        return (JSON.parse(String(result.stdout) || '[]') as JsonRule[]).some((rule) => ruleMatches(rule, item));
      }
      case 'route': {
        const result = await run(item.family, ['route', 'show', 'table', `${item.table}`], target, true);
        if (result.exitCode !== 0) {
          // A table that does not exist yet has no routes.
          if (/does not exist/i.test(String(result.stderr ?? ''))) return false;
          throw new IpRoutingError(`route show table ${item.table}`, String(result.stderr ?? ''));
        }
        return (JSON.parse(String(result.stdout) || '[]') as { type?: string; dst?: string; dev?: string }[]).some((route) => routeMatches(route, item));
      }
      case 'address': {
        const result = await run(item.family, ['addr', 'show', 'dev', item.dev], target, true);
        if (result.exitCode !== 0) throw new IpRoutingError(`addr show dev ${item.dev}`, String(result.stderr ?? ''));
        const [address, length] = item.address.split('/');
        const links = JSON.parse(String(result.stdout) || '[]') as { addr_info?: AddrInfo[] }[];
        return links.some((link) => (link.addr_info ?? []).some((a) => a.local === address && a.prefixlen === Number(length)));
      }
    }
  }

  return {
    async apply(routing, target) {
      const changed: RoutingItem[] = [];
      const unchanged: RoutingItem[] = [];
      for (const item of routing.items) {
        if (await exists(item, target)) {
          unchanged.push(item);
          continue;
        }
        await runChecked(item.family, addArgs(item), target);
        changed.push(item);
      }
      return { changed, unchanged };
    },
    async remove(routing, target) {
      const changed: RoutingItem[] = [];
      const unchanged: RoutingItem[] = [];
      for (const item of [...routing.items].reverse()) {
        if (!(await exists(item, target))) {
          unchanged.push(item);
          continue;
        }
        await runChecked(item.family, deleteArgs(item), target);
        changed.push(item);
      }
      return { changed, unchanged };
    },
    async present(routing, target) {
      const found: RoutingItem[] = [];
      for (const item of routing.items) if (await exists(item, target)) found.push(item);
      return found;
    },
  };
}

/** An in-memory stand-in for tests: keeps the items per namespace; faults are injected with failNext. */
export class FakeIpRouting implements IpRoutingDriver {
  readonly calls: { op: 'apply' | 'remove' | 'present'; netns: string | undefined; items: string[] }[] = [];
  private readonly state = new Map<string, Map<string, RoutingItem>>();
  private failures: string[] = [];

  /** The next apply or remove fails with MESSAGE, changing nothing. */
  failNext(message: string): void {
    this.failures.push(message);
  }

  /** Items present in a namespace, as `formatRoutingItem` lines, sorted. */
  items(target?: IpRoutingTarget): string[] {
    return [...this.ns(target).keys()].sort();
  }

  private ns(target: IpRoutingTarget | undefined): Map<string, RoutingItem> {
    const key = target?.netns ?? '';
    let map = this.state.get(key);
    if (!map) this.state.set(key, (map = new Map()));
    return map;
  }

  private fail(): void {
    const message = this.failures.shift();
    if (message !== undefined) throw new IpRoutingError('(fake)', message);
  }

  async apply(routing: IpRoutingSpec, target?: IpRoutingTarget): Promise<IpRoutingChange> {
    this.calls.push({ op: 'apply', netns: target?.netns, items: routing.items.map(formatRoutingItem) });
    this.fail();
    const map = this.ns(target);
    const changed: RoutingItem[] = [];
    const unchanged: RoutingItem[] = [];
    for (const item of routing.items) {
      const key = formatRoutingItem(item);
      if (map.has(key)) unchanged.push(item);
      else {
        map.set(key, item);
        changed.push(item);
      }
    }
    return { changed, unchanged };
  }

  async remove(routing: IpRoutingSpec, target?: IpRoutingTarget): Promise<IpRoutingChange> {
    this.calls.push({ op: 'remove', netns: target?.netns, items: routing.items.map(formatRoutingItem) });
    this.fail();
    const map = this.ns(target);
    const changed: RoutingItem[] = [];
    const unchanged: RoutingItem[] = [];
    for (const item of [...routing.items].reverse()) {
      if (map.delete(formatRoutingItem(item))) changed.push(item);
      else unchanged.push(item);
    }
    return { changed, unchanged };
  }

  async present(routing: IpRoutingSpec, target?: IpRoutingTarget): Promise<readonly RoutingItem[]> {
    this.calls.push({ op: 'present', netns: target?.netns, items: routing.items.map(formatRoutingItem) });
    const map = this.ns(target);
    return routing.items.filter((item) => map.has(formatRoutingItem(item)));
  }
}
