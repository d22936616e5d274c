import type { BodyStructure, TableRef } from '@nftops/artifact';
import { BACKEND_COUNTER_LIMIT } from '@nftops/compiler';
import { compareRefs, compareText, isPodChainDefaultDeny, lineComment, parseObjectComment, splitPortDetail, tableOwner, type ObjectRef } from './object-ref.js';
import {
  describeRule,
  findStatement,
  formatValue,
  isObject,
  referencedSets,
  tableKey,
  verdictTargets,
  type Counter,
  type LiveChain,
  type LiveElement,
  type LiveRule,
  type LiveSet,
  type LiveTable,
} from './ruleset.js';

/**
 * The pure part of `nftops explain`: live counters (read with readRuleset) mapped back, through the comments
 * of rules and elements, to the YAML objects that produced them.
 *
 * What a counter counts depends on the hook its chain runs in. Chains of `type nat` see only the first packet
 * of each connection (conntrack flow, for UDP too), so their counters, and the element counters of the maps
 * they look up, count connections; every other counter counts packets.
 */
export type Unit = 'connections' | 'packets';

export type RowKind =
  | 'service'
  | 'backend'
  | 'no-backends'
  | 'evaluated'
  | 'accepted'
  | 'default-deny'
  | 'to-pod'
  | 'rule'
  | 'element';

/** One line of the report: a counter (or a value derived from one) and the object it belongs to. */
export interface ExplainRow {
  readonly object: string;
  readonly what: RowKind;
  /** `inet nftops_nat` */
  readonly table: string;
  /** `chain pod-198.51.100.13`, `map backends4` */
  readonly where: string;
  readonly detail: string;
  /** null: not available (see detail). */
  readonly count: number | null;
  readonly unit: Unit;
  /** null for derived or unavailable values. */
  readonly bytes: number | null;
  /** false when the count is derived from another counter instead of read from its own. */
  readonly counted: boolean;
}

export interface BackendReport {
  readonly address: string;
  readonly port: number;
  /** Scheduler slots this backend owns (its weight). */
  readonly slots: readonly number[];
  readonly connections: number;
  readonly bytes: number | null;
  readonly counted: boolean;
}

export interface ServicePortReport {
  /** `TCP/80` */
  readonly port: string;
  readonly name: string;
  readonly address: string;
  /** New connections to this port; null when it has no own counter. */
  readonly connections: number | null;
  readonly bytes: number | null;
  /**
   * counted: per-backend element counters (maps layout) or a single backend; derived: computed from the
   * port's counter and round robin's `numgen inc` (per-service layout); unavailable: random or source-hash in
   * the per-service layout, or a backend map without element counters (Settings backendCounters); none: the
   * port has no backends.
   */
  readonly perBackend: 'counted' | 'derived' | 'unavailable' | 'none';
  readonly backends: readonly BackendReport[];
  /** Packets rejected or dropped because the service has no backends. */
  readonly rejected: Counter | null;
}

export interface ServiceReport {
  readonly object: string;
  readonly ports: readonly ServicePortReport[];
}

export interface PolicyRuleReport {
  readonly table: string;
  readonly chain: string;
  readonly index: number;
  readonly rule: string;
  readonly packets: number;
  readonly bytes: number;
}

export interface PolicyReport {
  readonly object: string;
  readonly accepted: Counter;
  readonly rules: readonly PolicyRuleReport[];
  /** Packets each selected pod's chain handed to this policy (accepted or not). */
  readonly evaluated: readonly { readonly pod: string; readonly packets: number; readonly bytes: number }[];
}

export interface PodReport {
  readonly pod: string;
  readonly table: string;
  /** Where the default deny is counted: `chain pod-ADDR` (per-service layout) or `set isolated4` (maps layout). */
  readonly where: string;
  readonly policies: readonly string[];
  /** Packets no policy of the pod accepted: its default deny. */
  readonly dropped: Counter;
  /** Per-service layout: load-balanced packets sent to the pod's chain. */
  readonly received: Counter | null;
  readonly comment: string;
}

export interface ChainRuleReport {
  readonly index: number;
  readonly detail: string;
  readonly rule: string;
  readonly count: number;
  readonly unit: Unit;
  readonly bytes: number;
}

export interface RuleGroupReport {
  readonly object: string;
  readonly chains: readonly { readonly table: string; readonly chain: string; readonly rules: readonly ChainRuleReport[] }[];
}

export interface ExplainReport {
  /** Tables read, `family name`, sorted. */
  readonly tables: readonly string[];
  readonly services: readonly ServiceReport[];
  readonly policies: readonly PolicyReport[];
  readonly pods: readonly PodReport[];
  readonly mesh: readonly RuleGroupReport[];
  readonly settings: readonly RuleGroupReport[];
  readonly rows: readonly ExplainRow[];
  /** Objects whose counters are all zero. */
  readonly idle: readonly string[];
  /** With artifacts: objects the artifacts hold that the live ruleset does not (their table is not loaded, or is stale). */
  readonly notLoaded: readonly string[];
  /** With artifacts: tables they own that are not in the live ruleset. */
  readonly tablesNotLoaded: readonly string[];
  /** Rules with a counter but no `Kind/name` comment, in the tables read. */
  readonly unattributed: number;
  readonly notes: readonly string[];
}

export interface ExplainArtifact {
  readonly tables: readonly TableRef[];
  /** The parsed body, when it parses: gives rule text as written and the objects it holds. */
  readonly body: BodyStructure | undefined;
}

export interface ExplainOptions {
  /** Restrict to the tables these artifacts own, and name their objects. */
  readonly artifacts?: readonly ExplainArtifact[];
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * How many times one packet of protocol PROTO looks an element of SET up. An element counter counts lookups,
 * and a packet can look a set up in several rules: the maps layout's no-backends chain checks
 * `… @no-backends4 meta l4proto tcp reject with tcp reset` before `… @no-backends4 reject`, so a UDP packet is
 * looked up (and counted) in both. Rules are walked in order until one matches for PROTO; its verdict ends
 * the chain (the rules that refer to sets end in a verdict).
 */
export function lookupsPerPacket(table: LiveTable, set: string, proto: string): number {
  let lookups = 0;
  for (const chain of table.chains.values()) {
    for (const rule of chain.rules) {
      if (!referencedSets(rule.expr).has(set)) continue;
      let looked = false;
      let fails = false;
      for (const statement of rule.expr) {
        if (!isObject(statement)) continue;
        if (!looked && referencedSets(statement).has(set)) looked = true;
        const match = isObject(statement.match) ? statement.match : undefined;
        const left = match && isObject(match.left) && isObject(match.left.meta) ? match.left.meta : undefined;
        if (match && left?.key === 'l4proto' && match.op === '==' && typeof match.right === 'string' && match.right !== proto) {
          fails = true;
          break;
        }
      }
      if (looked) lookups++;
      if (looked && !fails) return lookups;
    }
  }
  return Math.max(1, lookups);
}

/** For each chain, whether its counters count connections (only nat hooks reach it) or packets. */
function chainUnits(table: LiveTable): { chain: (name: string) => Unit; set: (name: string) => Unit } {
  const edges = new Map<string, Set<string>>();
  const setUsers = new Map<string, Set<string>>();
  for (const chain of table.chains.values()) {
    const out = new Set<string>();
    for (const rule of chain.rules) {
      verdictTargets(rule.expr, out);
      for (const name of referencedSets(rule.expr)) {
        let users = setUsers.get(name);
        if (!users) setUsers.set(name, (users = new Set()));
        users.add(chain.name);
        const set = table.sets.get(name);
        if (set?.kind === 'map') for (const element of set.elements) verdictTargets(element.value, out);
      }
    }
    edges.set(chain.name, out);
  }
  const reach = new Map<string, Set<string>>();
  for (const chain of table.chains.values()) {
    if (!chain.base) continue;
    const stack = [chain.name];
    const seen = new Set<string>();
    while (stack.length > 0) {
      const name = stack.pop()!;
      if (seen.has(name)) continue;
      seen.add(name);
      let types = reach.get(name);
      if (!types) reach.set(name, (types = new Set()));
      types.add(chain.base.type);
      for (const next of edges.get(name) ?? []) stack.push(next);
    }
  }
  const chainUnit = (name: string): Unit => {
    const types = reach.get(name);
    return types && types.size > 0 && [...types].every((t) => t === 'nat') ? 'connections' : 'packets';
  };
  const setUnit = (name: string): Unit => {
    const users = [...(setUsers.get(name) ?? [])];
    return users.length > 0 && users.every((chain) => chainUnit(chain) === 'connections') ? 'connections' : 'packets';
  };
  return { chain: chainUnit, set: setUnit };
}

/** Per-service layout: the detail of the forward rule that enters a pod's chain. */
const TO_POD = /^pod (\S+)$/;
const asList = (value: unknown): unknown[] => (isObject(value) && Array.isArray(value.concat) ? value.concat : [value]);
const protoLabel = (proto: unknown, port: unknown) => `${String(proto).toUpperCase()}/${String(port)}`;

/** `198.51.100.11:8080`, `[2001:db8:b::11]:8080` */
export function endpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The daddr a rule matches, e.g. `192.0.2.20` from `ip daddr 192.0.2.20`. */
function matchedDaddr(expr: readonly unknown[]): string | undefined {
  for (const statement of expr) {
    if (!isObject(statement) || !isObject(statement.match)) continue;
    const { left, right, op } = statement.match;
    if (op === '==' && isObject(left) && isObject(left.payload) && left.payload.field === 'daddr' && typeof right === 'string') return right;
  }
  return undefined;
}

interface Slot {
  readonly slot: number;
  readonly address: string;
  readonly port: number;
}

/** The backends of a per-service DNAT rule: `dnat to A:P`, or `dnat to <numgen|jhash> map { k : A . P, … }`. */
function perServiceBackends(expr: readonly unknown[]): { mode: 'single' | 'inc' | 'random' | 'hash' | 'unknown'; modulus: number; slots: Slot[] } {
  const dnat = findStatement(expr, 'dnat')?.dnat;
  if (!isObject(dnat)) return { mode: 'unknown', modulus: 0, slots: [] };
  if (typeof dnat.addr === 'string') {
    return { mode: 'single', modulus: 1, slots: [{ slot: 0, address: dnat.addr, port: Number(dnat.port ?? 0) }] };
  }
  const map = isObject(dnat.addr) && isObject(dnat.addr.map) ? dnat.addr.map : undefined;
  if (!map || !isObject(map.key) || !isObject(map.data) || !Array.isArray(map.data.set)) return { mode: 'unknown', modulus: 0, slots: [] };
  const numgen = isObject(map.key.numgen) ? map.key.numgen : undefined;
  const mode = numgen ? (numgen.mode === 'inc' ? 'inc' : 'random') : isObject(map.key.jhash) ? 'hash' : 'unknown';
  const modulus = Number((numgen ?? (isObject(map.key.jhash) ? map.key.jhash : {})).mod ?? 0);
  const slots: Slot[] = [];
  for (const entry of map.data.set) {
    if (!Array.isArray(entry)) continue;
    const [key, value] = entry;
    const [address, port] = asList(value);
    const [from, to] = isObject(key) && Array.isArray(key.range) ? [Number(key.range[0]), Number(key.range[1])] : [Number(key), Number(key)];
    for (let slot = from; slot <= to; slot++) slots.push({ slot, address: String(address), port: Number(port) });
  }
  return { mode, modulus, slots: slots.sort((a, b) => a.slot - b.slot) };
}

/** Round robin with `numgen inc mod M` sends connection k (from 0, since the rule was loaded) to slot k mod M. */
function roundRobinShare(total: number, modulus: number, slot: number): number {
  return Math.floor(total / modulus) + (slot < total % modulus ? 1 : 0);
}

/** Groups slots by backend `address . port`, keeping the order of their first slot. */
function groupSlots(slots: readonly Slot[]): { address: string; port: number; slots: number[] }[] {
  const groups = new Map<string, { address: string; port: number; slots: number[] }>();
  for (const s of slots) {
    const key = `${s.address} . ${s.port}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { address: s.address, port: s.port, slots: [] }));
    group.slots.push(s.slot);
  }
  return [...groups.values()];
}

const slotText = (slots: readonly number[]) => {
  if (slots.length === 1) return `slot ${slots[0]}`;
  const contiguous = slots.every((s, i) => i === 0 || s === slots[i - 1]! + 1);
  return contiguous ? `slots ${slots[0]}-${slots[slots.length - 1]}` : `slots ${slots.join(',')}`;
};

/** A rule's text from the artifact when it lines up with the live chain; else described from the JSON. */
type RuleText = (table: LiveTable, chain: LiveChain, rule: LiveRule) => string;

function artifactRuleText(artifacts: readonly ExplainArtifact[]): RuleText {
  const chains = new Map<string, readonly string[]>();
  for (const artifact of artifacts) {
    for (const table of artifact.body?.tables ?? []) {
      for (const object of table.objects) {
        if (object.kind === 'chain') chains.set(`${tableKey(table.family, table.name)} ${object.name}`, object.rules);
      }
    }
  }
  return (table, chain, rule) => {
    const written = chains.get(`${tableKey(table.family, table.name)} ${chain.name}`);
    const line = written && written.length === chain.rules.length ? written[rule.index] : undefined;
    if (line !== undefined && lineComment(line) === rule.comment) {
      return line.replace(/ comment "[^"]*"$/, '').replace(/(^| )counter( |$)/, '$1').trim();
    }
    return describeRule(rule.expr);
  };
}

function objectsOfArtifact(artifact: ExplainArtifact): string[] {
  const refs = new Set<string>();
  const add = (comment: string | undefined) => {
    const ref = parseObjectComment(comment);
    if (ref) refs.add(ref.ref);
  };
  for (const table of artifact.body?.tables ?? []) {
    const owner = tableOwner(table.declaration);
    if (owner) refs.add(owner);
    for (const object of table.objects) {
      for (const line of object.kind === 'chain' ? object.rules : object.elements) add(lineComment(line));
    }
  }
  return [...refs];
}

// ---------------------------------------------------------------------------------------------------------------

interface PortBuilder {
  port: string;
  name: string;
  address: string;
  connections: number | null;
  bytes: number | null;
  perBackend: ServicePortReport['perBackend'];
  backends: BackendReport[];
  rejected: Counter | null;
  sortKey: string;
  table: string;
  where: string;
  unavailableReason?: string;
  /** Where the per-backend counters are (maps layout: the backends map). */
  backendWhere?: string;
}

function addCounter(a: Counter | null, b: Counter | undefined): Counter | null {
  if (!b) return a;
  return { packets: (a?.packets ?? 0) + b.packets, bytes: (a?.bytes ?? 0) + b.bytes };
}

/** A sort key for `address proto port`: IPv4 before IPv6, numeric within. */
function serviceSortKey(address: string, port: string): string {
  const v6 = address.includes(':');
  const addressKey = v6
    ? `6${address}`
    : `4${address
        .split('.')
        .map((p) => p.padStart(3, '0'))
        .join('.')}`;
  const [proto, number] = port.split('/');
  const protoRank = { TCP: 0, UDP: 1, SCTP: 2 }[proto ?? ''] ?? 3;
  return `${addressKey} ${protoRank} ${(number ?? '').padStart(5, '0')}`;
}

export function explainRuleset(liveTables: readonly LiveTable[], options: ExplainOptions = {}): ExplainReport {
  const artifacts = options.artifacts;
  const wanted = artifacts ? new Set(artifacts.flatMap((a) => a.tables.map((t) => tableKey(t.family, t.name)))) : undefined;
  const tables = liveTables
    .filter((t) => !wanted || wanted.has(tableKey(t.family, t.name)))
    .sort((a, b) => compareText(tableKey(a.family, a.name), tableKey(b.family, b.name)));
  const ruleText = artifactRuleText(artifacts ?? []);
  const notes: string[] = [];

  const ports = new Map<string, Map<string, PortBuilder>>(); // LoadBalancer ref -> port key -> builder
  const portOf = (ref: string, address: string, port: string, table: string, where: string): PortBuilder => {
    let byPort = ports.get(ref);
    if (!byPort) ports.set(ref, (byPort = new Map()));
    const key = `${address} ${port}`;
    let builder = byPort.get(key);
    if (!builder) {
      byPort.set(
        key,
        (builder = { port, name: '', address, connections: null, bytes: null, perBackend: 'none', backends: [], rejected: null, sortKey: serviceSortKey(address, port), table, where }),
      );
    }
    return builder;
  };
  const backendSlots = new Map<string, { ref: string; address: string; port: string; element: LiveElement; slot: number; target: [string, number]; table: string; where: string }[]>();
  const addBackendSlot = (ref: string, key: unknown[], element: LiveElement, table: string, where: string) => {
    const [address, port] = asList(element.value);
    const slotKey = `${ref} ${String(key[0])} ${protoLabel(key[1], key[2])}`;
    const list = backendSlots.get(slotKey) ?? [];
    list.push({ ref, address: String(key[0]), port: protoLabel(key[1], key[2]), element, slot: Number(key[3]), target: [String(address), Number(port)], table, where });
    backendSlots.set(slotKey, list);
  };
  const generic: ExplainRow[] = [];
  const policies = new Map<string, { accepted: Counter; rules: PolicyRuleReport[]; evaluated: { pod: string; packets: number; bytes: number }[] }>();
  const policyOf = (ref: string) => {
    let policy = policies.get(ref);
    if (!policy) policies.set(ref, (policy = { accepted: { packets: 0, bytes: 0 }, rules: [], evaluated: [] }));
    return policy;
  };
  const pods: PodReport[] = [];
  const received = new Map<string, Counter>(); // `table chain pod-…` -> forward goto counter
  const ruleGroups = new Map<string, Map<string, { table: string; chain: string; rules: ChainRuleReport[] }>>();
  let unattributed = 0;

  for (const table of tables) {
    const tname = tableKey(table.family, table.name);
    const units = chainUnits(table);

    // The policies selecting each pod, in the order its packets meet them: per-service layout, the jump rules of
    // the pod's chain (entered by a forward rule `pod ADDR`, ending in a `default deny` drop); maps layout, the
    // `evaluated` counters of the pods map's elements (keyed by the pod) and of the chains of pods several
    // policies select (the pod is the key of the uncommented element that jumps to the chain).
    const selecting = new Map<string, string[]>();
    const selects = (pod: string, ref: string) => {
      const list = selecting.get(pod) ?? [];
      if (!list.includes(ref)) list.push(ref);
      selecting.set(pod, list);
    };
    const podOfChain = new Map<string, string>();
    // The services of the dispatch elements (a LoadBalancer comment, a verdict), by address, protocol and port:
    // a backend element of the maps layout has no comment and belongs to the one with the same three.
    const forwards = new Map<string, ObjectRef>();
    for (const set of table.sets.values()) {
      if (set.kind !== 'map') continue;
      for (const raw of set.elements) {
        const ref = parseObjectComment(raw.comment);
        const targets = verdictTargets(raw.value);
        const key = asList(raw.key);
        if (ref?.kind === 'LoadBalancer' && key.length === 3 && targets.size > 0) forwards.set(key.map(String).join(' '), ref);
        else if (ref?.kind === 'NetworkPolicy' && ref.detail === 'evaluated') selects(formatValue(raw.key), ref.ref);
        else if (!ref && targets.size === 1) podOfChain.set([...targets][0]!, formatValue(raw.key));
      }
    }
    for (const chain of table.chains.values()) {
      for (const rule of chain.rules) {
        const ref = parseObjectComment(rule.comment);
        const pod = ref?.kind === 'NetworkPolicy' ? TO_POD.exec(ref.detail)?.[1] : undefined;
        if (pod) for (const target of verdictTargets(rule.expr)) podOfChain.set(target, pod);
      }
    }
    const evaluatedIn = (chain: string, ref: ObjectRef | undefined) =>
      ref?.kind === 'NetworkPolicy' && ref.detail === 'evaluated' ? podOfChain.get(chain) : undefined;
    for (const chain of table.chains.values()) {
      for (const rule of chain.rules) {
        const ref = parseObjectComment(rule.comment);
        const pod = evaluatedIn(chain.name, ref);
        if (ref && pod) selects(pod, ref.ref);
      }
    }
    const evaluatedRow = (policy: string, pod: string, counter: Counter, where: string, unit: Unit, detail: string) => {
      policyOf(policy).evaluated.push({ pod, packets: counter.packets, bytes: counter.bytes });
      generic.push({ object: policy, what: 'evaluated', table: tname, where, detail, count: counter.packets, unit, bytes: counter.bytes, counted: true });
    };
    const defaultDenyRow = (policy: string, pod: string, counter: Counter, where: string, unit: Unit, comment: string) => {
      const policies = selecting.get(pod) ?? [policy];
      pods.push({ pod, table: tname, where, policies, dropped: counter, received: null, comment });
      generic.push({
        object: policy,
        what: 'default-deny',
        table: tname,
        where,
        detail: `pod ${pod} dropped: no rule of ${policies.map((r) => r.split('/')[1]).join(', ')} accepted`,
        count: counter.packets,
        unit,
        bytes: counter.bytes,
        counted: true,
      });
    };

    const backendRef = (key: unknown[]): ObjectRef | undefined => {
      const forward = key.length === 4 ? forwards.get(key.slice(0, 3).map(String).join(' ')) : undefined;
      return forward && { ...forward, detail: '' };
    };

    // Sets and maps: elements with counters and a Kind/name comment (or a service, for backend elements).
    for (const set of table.sets.values()) {
      const where = `${set.kind} ${set.name}`;
      const unit = units.set(set.name);
      const lookupCache = new Map<string, number>();
      for (const raw of set.elements) {
        const key = asList(raw.key);
        const ref = parseObjectComment(raw.comment) ?? (set.kind === 'map' ? backendRef(key) : undefined);
        if (ref && !raw.counter && ref.kind === 'LoadBalancer' && set.kind === 'map' && ref.detail === '' && key.length === 4) {
          // A backend map without element counters (Settings backendCounters): the backends, but no counts.
          addBackendSlot(ref.ref, key, raw, tname, where);
          continue;
        }
        if (!raw.counter || !ref) continue;
        const proto = typeof key[1] === 'string' ? key[1] : '';
        let lookups = lookupCache.get(proto);
        if (lookups === undefined) lookupCache.set(proto, (lookups = lookupsPerPacket(table, set.name, proto)));
        const element: LiveElement & { counter: Counter } =
          lookups === 1
            ? { ...raw, counter: raw.counter }
            : { ...raw, counter: { packets: Math.round(raw.counter.packets / lookups), bytes: Math.round(raw.counter.bytes / lookups) } };
        const port = splitPortDetail(ref.detail);
        if (ref.kind === 'LoadBalancer' && set.kind === 'map' && port && verdictTargets(element.value).size > 0 && key.length >= 3) {
          const builder = portOf(ref.ref, String(key[0]), port.port, tname, where);
          builder.name = port.name;
          builder.connections = (builder.connections ?? 0) + element.counter.packets;
          builder.bytes = (builder.bytes ?? 0) + element.counter.bytes;
          if (builder.perBackend === 'none') builder.perBackend = 'counted';
        } else if (ref.kind === 'LoadBalancer' && set.kind === 'map' && ref.detail === '' && key.length === 4) {
          addBackendSlot(ref.ref, key, element, tname, where);
        } else if (ref.kind === 'LoadBalancer' && set.kind === 'set' && port && key.length >= 3) {
          const builder = portOf(ref.ref, String(key[0]), port.port, tname, where);
          builder.name = port.name;
          builder.rejected = addCounter(builder.rejected, element.counter);
        } else if (ref.kind === 'NetworkPolicy' && set.kind === 'map' && ref.detail === 'evaluated') {
          const pod = formatValue(element.key);
          const jump = [...verdictTargets(element.value)].map((t) => `jump ${t}`).join(', ');
          evaluatedRow(ref.ref, pod, element.counter, where, unit, `pod ${pod}: ${jump}`);
        } else if (ref.kind === 'NetworkPolicy' && set.kind === 'set' && ref.detail === 'default deny') {
          const pod = formatValue(element.key);
          defaultDenyRow(ref.ref, pod, element.counter, where, unit, raw.comment!);
        } else {
          generic.push({
            object: ref.ref,
            what: 'element',
            table: tname,
            where,
            detail: `${formatValue(element.key)}${ref.detail ? ` ${ref.detail}` : ''}`,
            count: element.counter.packets,
            unit,
            bytes: element.counter.bytes,
            counted: true,
          });
        }
      }
    }

    // Per-service layout (and the maps layout's pod chains before they went): pod chains end in a default deny.
    const podChains = new Map<string, { pod: string; policies: string[] }>();
    for (const chain of table.chains.values()) {
      const last = chain.rules[chain.rules.length - 1];
      const ref = parseObjectComment(last?.comment);
      const pod = podOfChain.get(chain.name);
      if (!last || !ref || !isPodChainDefaultDeny(ref.detail) || !pod || !findStatement(last.expr, 'drop')) continue;
      const policies = chain.rules
        .slice(0, -1)
        .map((r) => parseObjectComment(r.comment))
        .filter((r): r is NonNullable<typeof r> => r?.kind === 'NetworkPolicy')
        .map((r) => r.ref);
      for (const policy of policies) selects(pod, policy);
      podChains.set(chain.name, { pod, policies: [...new Set(policies)] });
    }

    for (const chain of table.chains.values()) {
      const unit = units.chain(chain.name);
      const pod = podChains.get(chain.name);
      for (const rule of chain.rules) {
        const ref = parseObjectComment(rule.comment);
        if (!rule.counter) continue;
        if (!ref) {
          unattributed++;
          continue;
        }
        const counter = rule.counter;
        const where = `chain ${chain.name}`;
        const text = () => ruleText(table, chain, rule);
        const port = splitPortDetail(ref.detail);
        const targets = verdictTargets(rule.expr);
        // The pod a jump hands over: the pod chain's own (per-service), or an `evaluated` rule's (maps layout).
        const evaluatedPod = pod?.pod ?? evaluatedIn(chain.name, ref);
        if (ref.kind === 'LoadBalancer' && port && port.rest === 'no backends') {
          const address = matchedDaddr(rule.expr) ?? '?';
          const builder = portOf(ref.ref, address, port.port, tname, where);
          builder.name = port.name;
          builder.rejected = addCounter(builder.rejected, counter);
        } else if (ref.kind === 'LoadBalancer' && port && findStatement(rule.expr, 'dnat')) {
          const address = matchedDaddr(rule.expr) ?? '?';
          const builder = portOf(ref.ref, address, port.port, tname, where);
          builder.name = port.name;
          builder.connections = (builder.connections ?? 0) + counter.packets;
          builder.bytes = (builder.bytes ?? 0) + counter.bytes;
          const backends = perServiceBackends(rule.expr);
          const groups = groupSlots(backends.slots);
          if (backends.mode === 'single') {
            builder.perBackend = 'counted';
            builder.backends = groups.map((g) => ({ ...g, connections: counter.packets, bytes: counter.bytes, counted: true }));
          } else if (backends.mode === 'inc' && backends.modulus > 0) {
            builder.perBackend = 'derived';
            builder.backends = groups.map((g) => ({
              ...g,
              connections: g.slots.reduce((sum, slot) => sum + roundRobinShare(counter.packets, backends.modulus, slot), 0),
              bytes: null,
              counted: false,
            }));
          } else {
            builder.perBackend = 'unavailable';
            builder.backends = groups.map((g) => ({ ...g, connections: 0, bytes: null, counted: false }));
            const scheduler = backends.mode === 'hash' ? 'source-hash' : backends.mode === 'random' ? 'random' : 'this scheduler';
            builder.unavailableReason = `${scheduler} in the per-service layout has one counter per service port; per-backend counts need layout: maps`;
          }
        } else if (ref.kind === 'NetworkPolicy' && pod && rule.index === chain.rules.length - 1) {
          defaultDenyRow(ref.ref, pod.pod, counter, where, unit, rule.comment!);
        } else if (ref.kind === 'NetworkPolicy' && evaluatedPod && targets.size > 0) {
          evaluatedRow(ref.ref, evaluatedPod, counter, where, unit, `pod ${evaluatedPod}: ${text()}`);
        } else if (ref.kind === 'NetworkPolicy' && TO_POD.test(ref.detail) && targets.size > 0) {
          for (const target of targets) received.set(`${tname} chain ${target}`, counter);
          generic.push({ object: ref.ref, what: 'to-pod', table: tname, where, detail: `${ref.detail}: ${text()}`, count: counter.packets, unit, bytes: counter.bytes, counted: true });
        } else if (ref.kind === 'NetworkPolicy' && findStatement(rule.expr, 'accept')) {
          const policy = policyOf(ref.ref);
          policy.accepted = { packets: policy.accepted.packets + counter.packets, bytes: policy.accepted.bytes + counter.bytes };
          const ruleReport = { table: tname, chain: chain.name, index: rule.index, rule: text(), packets: counter.packets, bytes: counter.bytes };
          policy.rules.push(ruleReport);
          generic.push({ object: ref.ref, what: 'accepted', table: tname, where, detail: `#${rule.index + 1}: ${ruleReport.rule}`, count: counter.packets, unit, bytes: counter.bytes, counted: true });
        } else {
          const detail = `#${rule.index + 1}${ref.detail ? ` ${ref.detail}` : ''}: ${text()}`;
          generic.push({ object: ref.ref, what: 'rule', table: tname, where, detail, count: counter.packets, unit, bytes: counter.bytes, counted: true });
          let groups = ruleGroups.get(ref.ref);
          if (!groups) ruleGroups.set(ref.ref, (groups = new Map()));
          let group = groups.get(`${tname} ${chain.name}`);
          if (!group) groups.set(`${tname} ${chain.name}`, (group = { table: tname, chain: chain.name, rules: [] }));
          group.rules.push({ index: rule.index, detail: ref.detail, rule: text(), count: counter.packets, unit, bytes: counter.bytes });
        }
      }
    }
  }

  // Maps layout: backend slots attach to their port.
  for (const list of backendSlots.values()) {
    const first = list[0]!;
    const builder = portOf(first.ref, first.address, first.port, first.table, first.where);
    builder.backendWhere = first.where;
    const counted = list.every((s) => s.element.counter !== undefined);
    if (builder.perBackend === 'none' || !counted) builder.perBackend = counted ? 'counted' : 'unavailable';
    if (!counted) {
      builder.unavailableReason = `${first.where} has no element counters (Settings spec.backendCounters; auto turns them off beyond ${BACKEND_COUNTER_LIMIT} backend elements)`;
    }
    const sorted = [...list].sort((a, b) => a.slot - b.slot);
    const groups = new Map<string, BackendReport & { slots: number[] }>();
    for (const s of sorted) {
      const key = `${s.target[0]} . ${s.target[1]}`;
      const group = groups.get(key) ?? { address: s.target[0], port: s.target[1], slots: [], connections: 0, bytes: counted ? 0 : null, counted };
      group.slots.push(s.slot);
      groups.set(key, { ...group, connections: group.connections + (s.element.counter?.packets ?? 0), bytes: counted ? (group.bytes ?? 0) + (s.element.counter?.bytes ?? 0) : null });
    }
    builder.backends = [...groups.values()];
  }

  for (const pod of pods.splice(0)) pods.push({ ...pod, received: received.get(`${pod.table} ${pod.where}`) ?? null });
  pods.sort((a, b) => compareText(serviceSortKey(a.pod, ''), serviceSortKey(b.pod, '')) || compareText(a.table, b.table));

  // Rows: services first (structured), then everything else in ruleset order, grouped per object.
  const services: ServiceReport[] = [];
  const serviceRows: ExplainRow[] = [];
  for (const [ref, byPort] of [...ports].sort(([a], [b]) => compareRefs(a, b))) {
    const list = [...byPort.values()].sort((a, b) => compareText(a.sortKey, b.sortKey));
    services.push({
      object: ref,
      ports: list.map((p) => ({
        port: p.port,
        name: p.name,
        address: p.address,
        connections: p.connections,
        bytes: p.bytes,
        perBackend: p.perBackend,
        backends: p.backends,
        rejected: p.rejected,
      })),
    });
    for (const p of list) {
      const label = `${p.port}${p.name ? ` ${p.name}` : ''}`;
      if (p.connections !== null) {
        serviceRows.push({ object: ref, what: 'service', table: p.table, where: p.where, detail: `${p.address} ${label}`, count: p.connections, unit: 'connections', bytes: p.bytes, counted: true });
      }
      for (const b of p.backends) {
        serviceRows.push({
          object: ref,
          what: 'backend',
          table: p.table,
          where: p.backendWhere ?? p.where,
          detail: `${label} -> ${endpoint(b.address, b.port)} (${slotText(b.slots)})${p.perBackend === 'unavailable' ? ' [not available: see notes]' : ''}`,
          count: p.perBackend === 'unavailable' ? null : b.connections,
          unit: 'connections',
          bytes: b.bytes,
          counted: b.counted,
        });
      }
      if (p.unavailableReason) notes.push(`${ref} ${label}: ${p.unavailableReason}`);
      if (p.rejected) {
        serviceRows.push({ object: ref, what: 'no-backends', table: p.table, where: p.where, detail: `${p.address} ${label} rejected: no backends`, count: p.rejected.packets, unit: 'packets', bytes: p.rejected.bytes, counted: true });
      }
    }
  }
  const rows = [...serviceRows, ...generic].map((row, order) => ({ row, order }));
  rows.sort((a, b) => compareRefs(a.row.object, b.row.object) || a.order - b.order);

  const totals = new Map<string, number>();
  for (const { row } of rows) totals.set(row.object, (totals.get(row.object) ?? 0) + (row.count ?? 0));
  const idle = [...totals].filter(([, total]) => total === 0).map(([ref]) => ref).sort(compareRefs);

  const live = new Set(tables.map((t) => tableKey(t.family, t.name)));
  const tablesNotLoaded = [...(wanted ?? [])].filter((t) => !live.has(t)).sort(compareText);
  const expected = new Set((artifacts ?? []).flatMap(objectsOfArtifact));
  const seen = new Set([...totals.keys(), ...pods.flatMap((p) => p.policies)]);
  const notLoaded = [...expected].filter((ref) => !seen.has(ref)).sort(compareRefs);
  if (unattributed > 0) notes.push(`${unattributed} rule${unattributed === 1 ? '' : 's'} with a counter but no Kind/name comment (not from nftops) left out`);

  const group = (kinds: (kind: string) => boolean): RuleGroupReport[] =>
    [...ruleGroups]
      .filter(([ref]) => kinds(ref.split('/')[0]!))
      .sort(([a], [b]) => compareRefs(a, b))
      .map(([object, chains]) => ({ object, chains: [...chains.values()] }));

  return {
    tables: [...live].sort(compareText),
    services,
    policies: [...policies].sort(([a], [b]) => compareRefs(a, b)).map(([object, p]) => ({ object, ...p })),
    pods,
    mesh: group((kind) => kind === 'MeshRedirection' || kind === 'AmbientNode'),
    settings: group((kind) => kind === 'Settings'),
    rows: rows.map(({ row }) => row),
    idle,
    notLoaded,
    tablesNotLoaded,
    unattributed,
    notes,
  };
}

export type { Counter, LiveSet };
