import { elementKey, type BodyStructure, type ChainStructure, type TableStructure } from '@nftops/artifact';
import { isPodChainDefaultDeny, lineComment, parseObjectComment, splitPortDetail, tableOwner, type ObjectRef } from '../explain/object-ref.js';

/**
 * What a rendered body says about each YAML object, independent of the layout: the ports and backends of
 * every LoadBalancer, the pods and rules of every NetworkPolicy. Read from the artifact text alone (both
 * layouts), so a diff can speak of services and backends instead of lines.
 */
export interface PortFacts {
  readonly address: string;
  /** The port's name, '' when unnamed. */
  readonly name: string;
  /** round-robin | random | source-hash; undefined when the text does not say (a single backend). */
  readonly scheduler: string | undefined;
  readonly snat: boolean | undefined;
  /** Backend `address . port` per scheduler slot (a backend of weight 2 owns two slots). */
  readonly slots: readonly string[];
  readonly noBackends: boolean;
}

export interface PolicyFacts {
  readonly pods: ReadonlySet<string>;
  /** The policy's rules without counter and comment, in order. */
  readonly rules: readonly string[];
}

export interface BodyFacts {
  /** LoadBalancer ref → `TCP/80` → facts */
  readonly services: ReadonlyMap<string, ReadonlyMap<string, PortFacts>>;
  readonly policies: ReadonlyMap<string, PolicyFacts>;
}

interface MutablePort {
  address: string;
  name: string;
  scheduler: string | undefined;
  snat: boolean | undefined;
  slots: string[];
  noBackends: boolean;
}

const GROUP_CHAIN = /(?:^|-)lb[46]-(round-robin|random|source-hash)-(\d+)(-snat)?(?:-s\d+)?$/;

function schedulerOfText(text: string): string | undefined {
  if (/\bnumgen inc\b/.test(text)) return 'round-robin';
  if (/\bnumgen random\b/.test(text)) return 'random';
  if (/\bjhash\b/.test(text)) return 'source-hash';
  return undefined;
}

/** A rule line without its counter and comment: what it matches and does. */
export function ruleBody(line: string): string {
  return line
    .replace(/ ?comment "[^"]*"$/, '')
    .replace(/(^| )counter( |$)/, '$1')
    .trim();
}

/** `192.0.2.10 . tcp . 80` → address, `TCP/80` */
function splitServiceKey(key: string): { address: string; port: string; rest: string[] } | undefined {
  const parts = key.split(' . ');
  if (parts.length < 3) return undefined;
  return { address: parts[0]!, port: `${parts[1]!.toUpperCase()}/${parts[2]}`, rest: parts.slice(3) };
}

const forwardOwnersCache = new WeakMap<TableStructure, ReadonlyMap<string, ObjectRef>>();

/** The services of TABLE's dispatch elements (a LoadBalancer comment, a jump or goto), by `address PROTO/port`. */
function forwardOwners(table: TableStructure): ReadonlyMap<string, ObjectRef> {
  let owners = forwardOwnersCache.get(table);
  if (owners) return owners;
  const found = new Map<string, ObjectRef>();
  for (const object of table.objects) {
    if (object.kind !== 'map') continue;
    for (const element of object.elements) {
      const ref = parseObjectComment(lineComment(element));
      const key = ref?.kind === 'LoadBalancer' && / : (?:goto|jump) \S+$/.test(element) ? splitServiceKey(elementKey(element)) : undefined;
      if (ref && key && key.rest.length === 0) found.set(`${key.address} ${key.port}`, ref);
    }
  }
  forwardOwnersCache.set(table, (owners = found));
  return owners;
}

/**
 * The object an element belongs to: its comment's, or, for a backend element of the maps layout (which has no
 * comment of its own: `address . protocol . port . slot : backend`), the service whose dispatch element has the
 * same address, protocol and port, with detail ''.
 */
function elementRef(element: string, table: TableStructure): ObjectRef | undefined {
  const own = parseObjectComment(lineComment(element));
  if (own) return own;
  const key = splitServiceKey(elementKey(element));
  if (!key || key.rest.length !== 1) return undefined;
  const forward = forwardOwners(table).get(`${key.address} ${key.port}`);
  return forward && { ...forward, detail: '' };
}

/** Per-service layout: `dnat ip to 198.51.100.1:8080`, or `… map { 0-1 : a . p, 2 : b . p }`. */
function dnatSlots(line: string): string[] {
  const map = / map \{ ([^}]*) \}/.exec(line);
  if (map) {
    const slots: string[] = [];
    for (const entry of map[1]!.split(', ')) {
      const [key, value] = entry.split(' : ') as [string, string | undefined];
      if (value === undefined) continue;
      const [from, to] = key.includes('-') ? key.split('-').map(Number) as [number, number] : [Number(key), Number(key)];
      for (let slot = from; slot <= to; slot++) slots[slot] = value;
    }
    return slots;
  }
  const single = /\bdnat ip6? to (?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d+)/.exec(line);
  return single ? [`${single[1] ?? single[2]} . ${single[3]}`] : [];
}

/** The SNAT mark test of the table's masquerade rule: `meta mark & 0xM == 0xV`. */
function snatMarkOf(table: TableStructure): { mask: number; value: number } | undefined {
  for (const object of table.objects) {
    if (object.kind !== 'chain') continue;
    for (const rule of object.rules) {
      const match = /meta mark & (0x[0-9a-f]+) == (0x[0-9a-f]+) counter masquerade/.exec(rule);
      if (match) return { mask: Number(match[1]), value: Number(match[2]) };
    }
  }
  return undefined;
}

function snatOfRule(rule: string, mark: { mask: number; value: number } | undefined): boolean | undefined {
  const set = /meta mark set meta mark & 0x[0-9a-f]+ \| (0x[0-9a-f]+)/.exec(rule);
  if (!set) return undefined;
  if (!mark) return false;
  return (Number(set[1]) & mark.mask) === mark.value;
}

export function bodyFacts(body: BodyStructure): BodyFacts {
  const services = new Map<string, Map<string, MutablePort>>();
  const port = (ref: string, key: string, address: string): MutablePort => {
    let ports = services.get(ref);
    if (!ports) services.set(ref, (ports = new Map()));
    let facts = ports.get(key);
    if (!facts) ports.set(key, (facts = { address, name: '', scheduler: undefined, snat: undefined, slots: [], noBackends: false }));
    return facts;
  };
  const policyChains = new Map<string, { table: string; chain: string }>();
  const pods = new Map<string, Set<string>>();
  // A pod's hand-over to one of its policies: a jump rule in the pod's chain, or (maps layout, a pod one
  // policy selects) a pods map element `ADDR comment "NetworkPolicy/P evaluated" : jump CHAIN`. A pod chain
  // names no pod: it is the `pod ADDR` of the forward rule that enters it (per-service layout, where the chain
  // ends in a `default deny` drop) or the key of the uncommented pods map element that jumps to it (maps).
  const selects = (table: TableStructure, ref: string, pod: string, jumpText: string) => {
    const target = /\b(?:jump|goto) (\S+)/.exec(jumpText)?.[1];
    if (target) policyChains.set(ref, { table: `${table.family} ${table.name}`, chain: target });
    let set = pods.get(ref);
    if (!set) pods.set(ref, (set = new Set()));
    set.add(pod);
  };

  for (const table of body.tables) {
    const chains = new Map(table.objects.filter((o): o is ChainStructure => o.kind === 'chain').map((c) => [c.name, c]));
    const mark = snatMarkOf(table);
    const podOfChain = new Map<string, string>();
    for (const object of table.objects) {
      if (object.kind !== 'map') continue;
      for (const element of object.elements) {
        const jump = / : (?:jump|goto) (\S+)$/.exec(element);
        if (jump && !parseObjectComment(lineComment(element))) podOfChain.set(jump[1]!, elementKey(element));
      }
    }
    for (const object of table.objects) {
      if (object.kind !== 'chain') continue;
      for (const rule of object.rules) {
        const ref = parseObjectComment(lineComment(rule));
        const pod = ref?.kind === 'NetworkPolicy' ? /^pod (\S+)$/.exec(ref.detail)?.[1] : undefined;
        const target = /\b(?:jump|goto) (\S+)/.exec(rule)?.[1];
        if (pod && target) podOfChain.set(target, pod);
      }
    }
    for (const object of table.objects) {
      if (object.kind === 'chain') {
        const last = object.rules[object.rules.length - 1];
        const deny = parseObjectComment(last === undefined ? undefined : lineComment(last));
        const deniedPod = deny && isPodChainDefaultDeny(deny.detail) ? podOfChain.get(object.name) : undefined;
        for (const rule of object.rules) {
          const ref = parseObjectComment(lineComment(rule));
          if (!ref) continue;
          const detail = splitPortDetail(ref.detail);
          const daddr = /\bip6? daddr (\S+)/.exec(rule)?.[1] ?? '?';
          if (ref.kind === 'LoadBalancer' && detail?.rest === 'no backends') {
            const facts = port(ref.ref, detail.port, daddr);
            facts.name = detail.name;
            facts.noBackends = true;
          } else if (ref.kind === 'LoadBalancer' && detail && / dnat ip6? to /.test(rule)) {
            const facts = port(ref.ref, detail.port, daddr);
            facts.name = detail.name;
            facts.scheduler = schedulerOfText(rule);
            facts.snat = snatOfRule(rule, mark);
            facts.slots = dnatSlots(rule);
          } else if (ref.kind === 'NetworkPolicy' && deniedPod && rule !== last) {
            selects(table, ref.ref, deniedPod, rule);
          } else if (ref.kind === 'NetworkPolicy' && ref.detail === 'evaluated' && podOfChain.has(object.name)) {
            selects(table, ref.ref, podOfChain.get(object.name)!, rule);
          }
        }
        continue;
      }
      for (const element of object.elements) {
        const ref = elementRef(element, table);
        if (ref?.kind === 'NetworkPolicy' && ref.detail === 'evaluated') selects(table, ref.ref, elementKey(element), element.slice(element.lastIndexOf(' : ') + 3));
        if (ref?.kind !== 'LoadBalancer') continue;
        const key = splitServiceKey(elementKey(element));
        if (!key) continue;
        const valueAt = element.lastIndexOf(' : ');
        const value = valueAt < 0 ? undefined : element.slice(valueAt + 3);
        const detail = splitPortDetail(ref.detail);
        if (object.kind === 'set' && detail) {
          const facts = port(ref.ref, key.port, key.address);
          facts.name = detail.name;
          facts.noBackends = true;
        } else if (detail && value && /^(?:goto|jump) /.test(value)) {
          const facts = port(ref.ref, key.port, key.address);
          facts.name = detail.name;
          const chainName = value.split(' ')[1]!;
          const group = GROUP_CHAIN.exec(chainName);
          const groupRule = chains.get(chainName)?.rules[0] ?? '';
          facts.scheduler = group?.[1] ?? schedulerOfText(groupRule);
          facts.snat = group ? group[3] !== undefined : snatOfRule(groupRule, mark);
        } else if (ref.detail === '' && value && key.rest.length === 1) {
          const facts = port(ref.ref, key.port, key.address);
          facts.slots[Number(key.rest[0])] = value;
        }
      }
    }
  }

  const policies = new Map<string, PolicyFacts>();
  for (const [ref, podSet] of pods) {
    const where = policyChains.get(ref);
    const table = body.tables.find((t) => `${t.family} ${t.name}` === where?.table);
    const chain = table?.objects.find((o): o is ChainStructure => o.kind === 'chain' && o.name === where?.chain);
    policies.set(ref, { pods: podSet, rules: (chain?.rules ?? []).map(ruleBody) });
  }
  return { services, policies };
}

/**
 * The object a body line belongs to: its comment's `Kind/name` (a backend element's is its service's), else the
 * owner of its table.
 */
export function lineOwner(line: string, table: TableStructure): string {
  const ref = parseObjectComment(lineComment(line)) ?? (ELEMENT_START.test(line) ? elementRef(line, table) : undefined);
  return ref?.ref ?? tableOwner(table.declaration) ?? `table ${table.family} ${table.name}`;
}

/** Elements start with an address; rules never do. */
const ELEMENT_START = /^[0-9A-Fa-f:.]+ \. /;
