import { posix } from 'node:path';
import {
  cidrContains,
  compareAddresses,
  compareCidrs,
  parseAddress,
  parseCidr,
  type Cidr,
  type Family,
  type IpAddress,
} from './address.js';
import { compareStrings, type DiagnosticBag, type Position } from './diagnostics.js';
import type { CompilerExtension, ExtensionObject } from './extension.js';
import type { Locator, PathSegment } from './load.js';
import type { ValidatedObject } from './validate.js';

export type Protocol = 'tcp' | 'udp' | 'sctp';
export type Scheduler = 'round-robin' | 'random' | 'source-hash';

/** Where an object came from: `Kind/name`, and the means to point at any of its fields. */
export interface Origin {
  readonly ref: string;
  /** The source file, as the caller named it. */
  readonly file: string;
  at(path: readonly PathSegment[]): Position;
}

export interface ServicePort {
  readonly name: string | undefined;
  readonly protocol: Protocol;
  readonly port: number;
  readonly targetPort: number;
}

export interface Backend {
  readonly address: IpAddress;
  readonly weight: number;
  readonly port: number | undefined;
}

export interface LoadBalancer {
  readonly kind: 'LoadBalancer';
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly origin: Origin;
  readonly address: IpAddress;
  /** Sorted by protocol, then port. */
  readonly ports: readonly ServicePort[];
  /** Sorted by address, then port: the order that numbers them in numgen maps. */
  readonly backends: readonly Backend[];
  readonly scheduler: Scheduler;
  readonly snat: boolean | undefined;
}

export interface PolicyPeer {
  readonly cidr: Cidr;
  /** Sorted, without duplicates. */
  readonly except: readonly Cidr[];
}

export interface PolicyPort {
  readonly protocol: Protocol;
  /** undefined: every port of the protocol. */
  readonly port: number | undefined;
  readonly endPort: number | undefined;
}

export interface PolicyRule {
  /** Empty: any source. Sorted. */
  readonly from: readonly PolicyPeer[];
  /** Empty: any protocol and port. Sorted. */
  readonly ports: readonly PolicyPort[];
}

export interface NetworkPolicy {
  readonly kind: 'NetworkPolicy';
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly origin: Origin;
  /** Sorted, without duplicates. */
  readonly pods: readonly IpAddress[];
  /** Canonically sorted; their order carries no meaning (any rule may accept). */
  readonly rules: readonly PolicyRule[];
}

export interface Mark {
  readonly value: number;
  readonly mask: number;
}

export interface Settings {
  readonly name: string | undefined;
  readonly origin: Origin | undefined;
  readonly tables: { readonly nat: string; readonly filter: string };
  readonly chains: { readonly prerouting: string; readonly postrouting: string; readonly forward: string };
  readonly priorities: { readonly prerouting: number; readonly postrouting: number; readonly forward: number };
  readonly filter: boolean;
  readonly snat: boolean;
  readonly mark: Mark;
  readonly snatMark: Mark;
  readonly namePrefix: string;
  readonly emptyBackends: 'reject' | 'drop';
  /**
   * `maps`: per-packet cost independent of the number of services and pods (dispatch through verdict maps,
   * backends in named maps). `per-service`: one rule per service port, easiest to read.
   */
  readonly layout: 'maps' | 'per-service';
  /** Maps layout: counters on backend map elements; `auto` keeps them up to BACKEND_COUNTER_LIMIT elements. */
  readonly backendCounters: 'auto' | 'on' | 'off';
}

export interface ArtifactSpec {
  readonly name: string;
  readonly origin: Origin;
  readonly output: string;
  /** Directories (normalized, relative like the source paths) whose objects this artifact may hold. */
  readonly sources: readonly string[];
  readonly matchLabels: Readonly<Record<string, string>> | undefined;
  readonly settings: string | undefined;
}

export interface Model {
  /** Objects of extension kinds (mesh redirection, ...), sorted by kind and name. */
  readonly extensionObjects: readonly ExtensionObject[];
  readonly loadBalancers: readonly LoadBalancer[];
  readonly policies: readonly NetworkPolicy[];
  readonly settings: readonly Settings[];
  readonly artifacts: readonly ArtifactSpec[];
}

export const DEFAULT_SETTINGS: Settings = {
  name: undefined,
  origin: undefined,
  tables: { nat: 'nftops_nat', filter: 'nftops_filter' },
  chains: { prerouting: 'prerouting', postrouting: 'postrouting', forward: 'forward' },
  priorities: { prerouting: -100, postrouting: 100, forward: 0 },
  filter: true,
  snat: true,
  mark: { value: 0x1, mask: 0x1 },
  snatMark: { value: 0x2, mask: 0x2 },
  namePrefix: '',
  emptyBackends: 'reject',
  layout: 'maps',
  backendCounters: 'auto',
};

const PROTOCOLS: Record<string, Protocol> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };
const PROTOCOL_ORDER: Record<Protocol, number> = { tcp: 0, udp: 1, sctp: 2 };

/**
 * Words nft 1.0.6 refuses as a table or chain name (measured: tests/keywords.test.ts loads each one into a
 * real kernel and checks that nft still refuses it; the candidates were every word of one to four letters,
 * every word of nft(8) and every identifier-like string in libnftables). Such a name makes the whole file fail
 * to load, so it is refused up front. Generated chain names always carry a prefix such as `pod-` and never collide.
 */
export const NFT_KEYWORDS: ReadonlySet<string> = new Set(
  (
    'accept add ah all and arp bridge cgroup chain comment comp constant continue counter cpu create ct ' +
    'day dccp define delete describe device devices dnat drop dst dup dynamic ecn element elements eq ' +
    'esp ether exists expires export exthdr fib flags flow flowtable flush frag fwd gc-interval ge get ' +
    'goto gt handle hbh hook hour ibriport ibrname icmp icmpv6 igmp iif iifgroup iifname iiftype import ' +
    'include index inet insert interval ip ip6 ipsec jhash jump le limit list log lshift lt map mark ' +
    'masquerade meta meter mh missing monitor ne netdev nftrace not notrack numgen obriport obrname ' +
    'offload oif oifgroup oifname oiftype or osf pkttype policy position priority queue quota random ' +
    'redefine redirect reject rename replace reset return rshift rt rt0 rt2 rtclassid rule ruleset sctp ' +
    'secmark set size skgid skuid snat socket srh symhash synproxy table tcp th time timeout tproxy type ' +
    'typeof udp udplite undefine update vlan vmap xor xt'
  ).split(' '),
);

export function protocolOrder(p: Protocol): number {
  return PROTOCOL_ORDER[p];
}

type Spec = Record<string, unknown>;

/** One small object per model object, `at` on the prototype and the document's locator as its only reference. */
class ObjectOrigin implements Origin {
  constructor(
    readonly ref: string,
    readonly file: string,
    private readonly locator: Locator,
  ) {}

  at(path: readonly PathSegment[]): Position {
    return this.locator.locate(path.length === 1 && path[0] === '$name' ? ['metadata', 'name'] : ['spec', ...path]);
  }
}

export function makeOrigin(object: ValidatedObject): Origin {
  // Only the locator is kept: holding the object would keep its whole YAML tree alive with the model.
  return new ObjectOrigin(`${object.kind}/${object.name}`, object.document.file, object.document.locator);
}

function addressAt(bag: DiagnosticBag, origin: Origin, path: PathSegment[], text: string): IpAddress | undefined {
  const parsed = parseAddress(text);
  if (!parsed.ok) {
    bag.add('INVALID_ADDRESS', origin.at(path), `${JSON.stringify(text)} is not an IP address: ${parsed.reason}`, {
      object: origin.ref,
    });
    return undefined;
  }
  return parsed.value;
}

function cidrAt(bag: DiagnosticBag, origin: Origin, path: PathSegment[], text: string): Cidr | undefined {
  const parsed = parseCidr(text);
  if (parsed.ok) return parsed.value;
  if (parsed.hostBitsMeant !== undefined) {
    bag.add('CIDR_HOST_BITS', origin.at(path), `${text} has host bits set`, {
      hint: `write ${parsed.hostBitsMeant} if the whole block is meant, or the bare address for one host`,
      object: origin.ref,
    });
  } else {
    bag.add('INVALID_CIDR', origin.at(path), `${JSON.stringify(text)} is not a CIDR block: ${parsed.reason}`, {
      object: origin.ref,
    });
  }
  return undefined;
}

function buildLoadBalancer(object: ValidatedObject, bag: DiagnosticBag): LoadBalancer | undefined {
  const spec = object.spec as Spec;
  const origin = makeOrigin(object);
  const address = addressAt(bag, origin, ['address'], spec.address as string);
  const rawPorts = spec.ports as { name?: string; protocol?: string; port: number; targetPort?: number }[];
  const ports: ServicePort[] = rawPorts.map((p) => ({
    name: p.name,
    protocol: PROTOCOLS[p.protocol ?? 'TCP']!,
    port: p.port,
    targetPort: p.targetPort ?? p.port,
  }));
  const seenPorts = new Map<string, number>();
  ports.forEach((p, index) => {
    const key = `${p.protocol}/${p.port}`;
    if (seenPorts.has(key)) {
      bag.add('DUPLICATE_SERVICE_PORT', origin.at(['ports', index]), `${p.protocol.toUpperCase()} port ${p.port} is listed twice`, {
        object: origin.ref,
      });
    }
    seenPorts.set(key, index);
  });
  const rawBackends = spec.backends as { address: string; weight?: number; port?: number }[];
  const backends: Backend[] = [];
  const seenBackends = new Set<string>();
  rawBackends.forEach((b, index) => {
    const backendAddress = addressAt(bag, origin, ['backends', index, 'address'], b.address);
    if (!backendAddress) return;
    if (address && backendAddress.family !== address.family) {
      bag.add(
        'BACKEND_FAMILY_MISMATCH',
        origin.at(['backends', index, 'address']),
        `backend ${backendAddress.text} is IPv${backendAddress.family} but the service address ${address.text} is IPv${address.family}`,
        { hint: 'define a second LoadBalancer for the other address family', object: origin.ref },
      );
    }
    if (b.port !== undefined && ports.length > 1) {
      bag.add('BACKEND_PORT_AMBIGUOUS', origin.at(['backends', index, 'port']), `backend ${backendAddress.text} sets its own port, but the service has ${ports.length} ports`, {
        hint: 'use targetPort per service port, or split the service',
        object: origin.ref,
      });
    }
    const key = `${backendAddress.text}/${b.port ?? ''}`;
    if (seenBackends.has(key)) {
      bag.add('DUPLICATE_BACKEND', origin.at(['backends', index]), `backend ${backendAddress.text} is listed twice`, {
        hint: 'use weight to give a backend a larger share',
        object: origin.ref,
      });
    }
    seenBackends.add(key);
    backends.push({ address: backendAddress, weight: b.weight ?? 1, port: b.port });
  });
  if (rawBackends.length === 0) {
    bag.add('EMPTY_BACKENDS', origin.at(['backends']), `${origin.ref} has no backends; its traffic is rejected or dropped (Settings spec.emptyBackends)`, {
      severity: 'warning',
      object: origin.ref,
    });
  }
  if (!address) return undefined;
  ports.sort((a, b) => protocolOrder(a.protocol) - protocolOrder(b.protocol) || a.port - b.port);
  backends.sort((a, b) => compareAddresses(a.address, b.address) || (a.port ?? 0) - (b.port ?? 0));
  return {
    kind: 'LoadBalancer',
    name: object.name,
    labels: object.labels,
    origin,
    address,
    ports,
    backends,
    scheduler: (spec.scheduler as Scheduler | undefined) ?? 'round-robin',
    snat: spec.snat as boolean | undefined,
  };
}

function comparePolicyPorts(a: PolicyPort, b: PolicyPort): number {
  return (
    protocolOrder(a.protocol) - protocolOrder(b.protocol) ||
    (a.port ?? -1) - (b.port ?? -1) ||
    (a.endPort ?? a.port ?? -1) - (b.endPort ?? b.port ?? -1)
  );
}

function peerKey(p: PolicyPeer): string {
  return `${p.cidr.text}!${p.except.map((e) => e.text).join(',')}`;
}

function ruleKey(rule: PolicyRule): string {
  return JSON.stringify([
    rule.from.map(peerKey),
    rule.ports.map((p) => [protocolOrder(p.protocol), p.port ?? -1, p.endPort ?? -1]),
  ]);
}

function buildPolicy(object: ValidatedObject, bag: DiagnosticBag): NetworkPolicy {
  const spec = object.spec as Spec;
  const origin = makeOrigin(object);
  const rawPods = spec.podAddresses as string[];
  const pods = new Map<string, IpAddress>();
  rawPods.forEach((text, index) => {
    const pod = addressAt(bag, origin, ['podAddresses', index], text);
    if (pod) pods.set(pod.text, pod);
  });
  if (rawPods.length === 0) {
    bag.add('POLICY_NO_PODS', origin.at(['podAddresses']), `${origin.ref} selects no pods, so it has no effect`, {
      hint: 'list the pod addresses in spec.podAddresses, or delete the policy',
      object: origin.ref,
    });
  }
  type RawRule = {
    from?: { ipBlock: { cidr: string; except?: string[] } }[];
    ports?: { protocol?: string; port?: number; endPort?: number }[];
  };
  const rawRules = (spec.ingress as RawRule[] | undefined) ?? [];
  const rules: PolicyRule[] = rawRules.map((rule, ruleIndex) => {
    const from: PolicyPeer[] = [];
    (rule.from ?? []).forEach((peer, peerIndex) => {
      const base: PathSegment[] = ['ingress', ruleIndex, 'from', peerIndex, 'ipBlock'];
      const cidr = cidrAt(bag, origin, [...base, 'cidr'], peer.ipBlock.cidr);
      const except = new Map<string, Cidr>();
      (peer.ipBlock.except ?? []).forEach((text, exceptIndex) => {
        const path = [...base, 'except', exceptIndex];
        const block = cidrAt(bag, origin, path, text);
        if (!block || !cidr) return;
        if (block.family !== cidr.family) {
          bag.add('EXCEPT_FAMILY_MISMATCH', origin.at(path), `except ${block.text} is IPv${block.family} but cidr ${cidr.text} is IPv${cidr.family}`, {
            object: origin.ref,
          });
        } else if (!cidrContains(cidr, block)) {
          bag.add('EXCEPT_OUTSIDE_CIDR', origin.at(path), `except ${block.text} is not inside cidr ${cidr.text}`, {
            hint: 'an except block only removes addresses from its own cidr',
            object: origin.ref,
          });
        } else {
          except.set(block.text, block);
        }
      });
      if (cidr) from.push({ cidr, except: [...except.values()].sort(compareCidrs) });
    });
    const ports: PolicyPort[] = [];
    (rule.ports ?? []).forEach((p, portIndex) => {
      const path: PathSegment[] = ['ingress', ruleIndex, 'ports', portIndex];
      if (p.endPort !== undefined && p.port === undefined) {
        bag.add('PORT_RANGE_ORDER', origin.at([...path, 'endPort']), 'endPort needs port: a range starts at port', { object: origin.ref });
        return;
      }
      if (p.endPort !== undefined && p.port !== undefined && p.endPort < p.port) {
        bag.add('PORT_RANGE_ORDER', origin.at([...path, 'endPort']), `the range ${p.port}-${p.endPort} ends before it starts`, {
          hint: `write port: ${p.endPort}, endPort: ${p.port}`,
          object: origin.ref,
        });
        return;
      }
      ports.push({
        protocol: PROTOCOLS[p.protocol ?? 'TCP']!,
        port: p.port,
        endPort: p.endPort !== undefined && p.endPort !== p.port ? p.endPort : undefined,
      });
    });
    const uniqueFrom = new Map(from.map((peer) => [peerKey(peer), peer]));
    const uniquePorts = new Map(ports.map((port) => [`${port.protocol}/${port.port}/${port.endPort}`, port]));
    return {
      from: [...uniqueFrom.values()].sort((a, b) => compareCidrs(a.cidr, b.cidr) || compareStrings(peerKey(a), peerKey(b))),
      ports: [...uniquePorts.values()].sort(comparePolicyPorts),
    };
  });
  const uniqueRules = new Map(rules.map((rule) => [ruleKey(rule), rule]));
  return {
    kind: 'NetworkPolicy',
    name: object.name,
    labels: object.labels,
    origin,
    pods: [...pods.values()].sort(compareAddresses),
    rules: [...uniqueRules.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([, rule]) => rule),
  };
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function checkName(bag: DiagnosticBag, origin: Origin, path: PathSegment[], name: string, what: string): void {
  if (NFT_KEYWORDS.has(name.toLowerCase())) {
    bag.add('UNSAFE_NAME', origin.at(path), `${what} "${name}" is an nft keyword and would not parse`, {
      hint: 'pick another name, for example with an "nftops_" prefix',
      object: origin.ref,
    });
  }
}

function buildSettings(object: ValidatedObject, bag: DiagnosticBag): Settings {
  const spec = object.spec as Spec & Partial<Settings>;
  const origin = makeOrigin(object);
  const d = DEFAULT_SETTINGS;
  const settings: Settings = {
    name: object.name,
    origin,
    tables: { nat: spec.tables?.nat ?? d.tables.nat, filter: spec.tables?.filter ?? d.tables.filter },
    chains: {
      prerouting: spec.chains?.prerouting ?? d.chains.prerouting,
      postrouting: spec.chains?.postrouting ?? d.chains.postrouting,
      forward: spec.chains?.forward ?? d.chains.forward,
    },
    priorities: {
      prerouting: spec.priorities?.prerouting ?? d.priorities.prerouting,
      postrouting: spec.priorities?.postrouting ?? d.priorities.postrouting,
      forward: spec.priorities?.forward ?? d.priorities.forward,
    },
    filter: spec.filter ?? d.filter,
    snat: spec.snat ?? d.snat,
    // Rebuilt field by field: the source digest relies on model objects having a fixed key order.
    mark: spec.mark ? { value: spec.mark.value, mask: spec.mark.mask } : d.mark,
    snatMark: spec.snatMark ? { value: spec.snatMark.value, mask: spec.snatMark.mask } : d.snatMark,
    namePrefix: spec.namePrefix ?? d.namePrefix,
    emptyBackends: spec.emptyBackends ?? d.emptyBackends,
    layout: spec.layout ?? d.layout,
    backendCounters: spec.backendCounters ?? d.backendCounters,
  };
  for (const [key, name] of Object.entries(settings.tables)) checkName(bag, origin, ['tables', key], name, 'table name');
  for (const [key, name] of Object.entries(settings.chains)) checkName(bag, origin, ['chains', key], name, 'chain name');
  // A second `chain X { ... }` block of another type makes nft refuse the whole file.
  const generated = ['no-backends', 'lb4-*', 'lb6-*', 'pod-*', 'policy-*'].map((form) => `${settings.namePrefix}${form}`);
  for (const [key, name] of Object.entries(settings.chains)) {
    const clash = generated.find((form) => (form.endsWith('*') ? name.startsWith(form.slice(0, -1)) : name === form));
    if (clash) {
      bag.add('UNSAFE_NAME', origin.at(['chains', key]), `chain name "${name}" is taken by generated chains (${clash})`, {
        hint: `generated chains are named ${generated.join(', ')}; pick another name or another namePrefix`,
        object: origin.ref,
      });
    }
  }
  if (settings.chains.prerouting === settings.chains.postrouting) {
    bag.add('UNSAFE_NAME', origin.at(['chains', 'postrouting']), `the prerouting and postrouting chains are both named "${settings.chains.prerouting}"`, {
      hint: 'they hook in different places, so they need distinct names',
      object: origin.ref,
    });
  }
  if (settings.filter && settings.tables.nat === settings.tables.filter) {
    bag.add('TABLE_NAME_CLASH', origin.at(['tables', 'filter']), `the nat and filter tables are both named "${settings.tables.nat}"`, {
      hint: 'each owned table is replaced whole, so they need distinct names',
      object: origin.ref,
    });
  }
  for (const key of ['mark', 'snatMark'] as const) {
    const mark = settings[key];
    if ((mark.value & ~mark.mask) !== 0) {
      bag.add('MARK_OUTSIDE_MASK', origin.at([key, 'value']), `${key}.value ${hex(mark.value)} has bits outside ${key}.mask ${hex(mark.mask)}`, {
        hint: `the value must be a subset of the mask, for example ${hex(mark.value & mark.mask)}`,
        object: origin.ref,
      });
    }
  }
  // The kernel refuses a nat chain at or before conntrack (priority -200), and with it the whole file.
  for (const key of ['prerouting', 'postrouting'] as const) {
    if (settings.priorities[key] <= -200) {
      bag.add('SCHEMA_RANGE', origin.at(['priorities', key]), `priorities.${key} ${settings.priorities[key]} is not above -200: the kernel refuses nat chains that run before conntrack`, {
        hint: 'use a priority from -199 to 1000 (nat prerouting is usually -100, postrouting 100)',
        object: origin.ref,
      });
    }
  }
  if ((settings.mark.mask & settings.snatMark.mask) !== 0) {
    bag.add('MARK_OVERLAP', origin.at(['snatMark', 'mask']), `snatMark.mask ${hex(settings.snatMark.mask)} shares bits with mark.mask ${hex(settings.mark.mask)}`, {
      object: origin.ref,
    });
  }
  return settings;
}

function buildArtifact(object: ValidatedObject, bag: DiagnosticBag): ArtifactSpec | undefined {
  const spec = object.spec as {
    output: string;
    sources?: string[];
    selector?: { matchLabels?: Record<string, string> };
    settings?: string;
  };
  const origin = makeOrigin(object);
  if (spec.output.split('/').some((segment) => segment === '..' || segment === '.' || segment === '')) {
    bag.add('SCHEMA_PATTERN', origin.at(['output']), `output ${JSON.stringify(spec.output)} must be a plain relative path without "." or ".." segments`, {
      object: origin.ref,
    });
    return undefined;
  }
  const dir = posix.dirname(object.document.file.split('\\').join('/'));
  return {
    name: object.name,
    origin,
    output: posix.normalize(posix.join(dir, spec.output)),
    sources: (spec.sources ?? ['.']).map((source) => posix.normalize(posix.join(dir, source))),
    matchLabels: spec.selector?.matchLabels,
    settings: spec.settings,
  };
}

/**
 * Builds the model object by object, in source order, so a caller can drop each file's YAML tree as soon as
 * its objects are built (at 50 000 services, keeping every tree alive until the end doubled the time spent in
 * garbage collection). The first object of a kind and name wins; later ones are reported and not built.
 */
export class ModelBuilder {
  /** Kind/name → where to find the first object of that name, when a second one turns up. */
  private readonly seen = new Map<string, Locator>();
  private readonly loadBalancers: LoadBalancer[] = [];
  private readonly policies: NetworkPolicy[] = [];
  private readonly settings: Settings[] = [];
  private readonly artifacts: ArtifactSpec[] = [];
  private readonly extensionObjects: ExtensionObject[] = [];

  constructor(
    private readonly bag: DiagnosticBag,
    private readonly extensions: readonly CompilerExtension[],
  ) {}

  add(object: ValidatedObject): void {
    const { bag } = this;
    const key = `${object.kind}/${object.name}`;
    const firstLocator = this.seen.get(key);
    if (firstLocator) {
      const first = firstLocator.locate(['metadata', 'name']);
      bag.add('DUPLICATE_NAME', object.document.locator.locate(['metadata', 'name']), `${key} is already defined at ${first.file}:${first.line}:${first.column}`, {
        hint: 'names are unique per kind; rename one of them',
        object: key,
      });
      return;
    }
    this.seen.set(key, object.document.locator);
    switch (object.kind) {
      case 'LoadBalancer': {
        const built = buildLoadBalancer(object, bag);
        if (built) this.loadBalancers.push(built);
        return;
      }
      case 'NetworkPolicy':
        this.policies.push(buildPolicy(object, bag));
        return;
      case 'Settings':
        this.settings.push(buildSettings(object, bag));
        return;
      case 'Artifact': {
        const built = buildArtifact(object, bag);
        if (built) this.artifacts.push(built);
        return;
      }
      default: {
        const built = this.extensions.find((e) => e.kinds.includes(object.kind))?.build(object, bag);
        if (built) this.extensionObjects.push(built);
      }
    }
  }

  finish(): Model {
    const byName = <T extends { name?: string | undefined }>(items: T[]) => items.sort((a, b) => compareStrings(a.name ?? '', b.name ?? ''));
    return {
      extensionObjects: this.extensionObjects.sort((a, b) => compareStrings(a.kind, b.kind) || compareStrings(a.name, b.name)),
      loadBalancers: byName(this.loadBalancers),
      policies: byName(this.policies),
      settings: byName(this.settings),
      artifacts: byName(this.artifacts),
    };
  }
}

export type { Family };
