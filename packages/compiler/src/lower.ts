import { compareAddresses, type IpAddress } from './address.js';
import type { ExtensionObject } from './extension.js';
import { EXTENSIONS } from './extensions.js';
import type { IrChain, IrMap, IrRule, IrSet, IrTable } from './ir.js';
import type { Backend, LoadBalancer, NetworkPolicy, PolicyPort, PolicyRule, Protocol, ServicePort, Settings } from './model.js';
import { protocolOrder } from './model.js';
import { compareStrings } from './diagnostics.js';
import { addressName, addressPort, addressType, comment, familyKeyword, hex32, identifier, setOf } from './nft-text.js';

/** The objects one artifact holds, already checked. */
export interface ArtifactContent {
  readonly name: string;
  readonly settings: Settings;
  readonly loadBalancers: readonly LoadBalancer[];
  readonly policies: readonly NetworkPolicy[];
  readonly extensionObjects: readonly ExtensionObject[];
}

export function settingsRef(settings: Settings): string {
  return `Settings/${settings.name ?? 'default'}`;
}

/** One forward of a service: its address, one port, and the service it belongs to. */
interface Forward {
  readonly service: LoadBalancer;
  readonly port: ServicePort;
}

const forwardsCache = new WeakMap<readonly LoadBalancer[], readonly Forward[]>();

/** The forwards of LOADBALANCERS in rule order (address, protocol, port); sorted once per list. */
export function forwardsOf(loadBalancers: readonly LoadBalancer[]): readonly Forward[] {
  const cached = forwardsCache.get(loadBalancers);
  if (cached) return cached;
  const forwards = loadBalancers
    .flatMap((service) => service.ports.map((port) => ({ service, port })))
    .sort(
      (a, b) =>
        compareAddresses(a.service.address, b.service.address) ||
        protocolOrder(a.port.protocol) - protocolOrder(b.port.protocol) ||
        a.port.port - b.port.port,
    );
  forwardsCache.set(loadBalancers, forwards);
  return forwards;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** How many slots each backend takes, in order: its weight once all weights are divided by their gcd. */
function slotWidths(service: LoadBalancer): number[] {
  const divisor = service.backends.reduce((g, b) => gcd(g, b.weight), 0);
  return service.backends.map((b) => b.weight / divisor);
}

/** Backend slots of a service in the maps layout: a backend of weight w takes w slots once weights are divided by their gcd. */
export function backendSlots(service: LoadBalancer): number {
  return slotWidths(service).reduce((sum, width) => sum + width, 0);
}

function matchForward(forward: Forward): string[] {
  const family = familyKeyword(forward.service.address);
  return [`${family} daddr ${forward.service.address.text}`, `meta l4proto ${forward.port.protocol}`, `th dport ${forward.port.port}`];
}

function detail(port: ServicePort): string {
  return `${port.protocol.toUpperCase()}/${port.port}${port.name ? ` ${port.name}` : ''}`;
}

/**
 * `dnat` to the backends: one backend is a plain `dnat to`; several go through an anonymous map keyed by
 * the scheduler's number, with each backend owning a run of keys as long as its weight (after dividing
 * all weights by their gcd, so 2:2:2 is plain round robin over three keys).
 */
export function dnatStatement(service: LoadBalancer, port: ServicePort): string {
  const family = familyKeyword(service.address);
  const target = (backend: Backend) => backend.port ?? port.targetPort;
  const backends = service.backends;
  if (backends.length === 1) return `dnat ${family} to ${addressPort(backends[0]!.address, target(backends[0]!))}`;
  const widths = slotWidths(service);
  let next = 0;
  const entries = backends.map((backend, index) => {
    const width = widths[index]!;
    const key = width === 1 ? `${next}` : `${next}-${next + width - 1}`;
    next += width;
    return `${key} : ${backend.address.text} . ${target(backend)}`;
  });
  return `dnat ${family} to ${slotSelector(service, next)} map { ${entries.join(', ')} }`;
}

/** The expression that picks one of SLOTS backend slots for a new flow, per the service's scheduler. */
function slotSelector(service: LoadBalancer, slots: number): string {
  switch (service.scheduler) {
    case 'round-robin':
      return `numgen inc mod ${slots}`;
    case 'random':
      return `numgen random mod ${slots}`;
    case 'source-hash':
      return `jhash ${familyKeyword(service.address)} saddr mod ${slots} seed 0x0`;
  }
}

/** The statements that mark a load-balanced flow (and, with SNAT, the packet for masquerade). */
function markStatements(settings: Settings, service: LoadBalancer): string[] {
  const snat = service.snat ?? settings.snat;
  const lbMask = settings.mark.mask | settings.snatMark.mask;
  const markValue = settings.mark.value | (snat ? settings.snatMark.value : 0);
  return [
    `meta mark set meta mark & ${hex32(~lbMask)} | ${hex32(markValue)}`,
    `ct mark set ct mark & ${hex32(~settings.mark.mask)} | ${hex32(settings.mark.value)}`,
  ];
}

function emptyVerdict(settings: Settings, protocol: Protocol): string {
  return settings.emptyBackends === 'drop' ? 'drop' : protocol === 'tcp' ? 'reject with tcp reset' : 'reject';
}

function usesSnat(content: ArtifactContent): boolean {
  return content.loadBalancers.some((s) => s.backends.length > 0 && (s.snat ?? content.settings.snat));
}

function lowerNatTable(content: ArtifactContent): IrTable {
  return content.settings.layout === 'maps' ? lowerNatTableMaps(content) : lowerNatTablePerService(content);
}

function natBaseChains(content: ArtifactContent, prerouting: IrRule[]): IrChain[] {
  const { settings } = content;
  return [
    {
      name: identifier(settings.chains.prerouting),
      base: { type: 'nat', hook: 'prerouting', priority: settings.priorities.prerouting, policy: 'accept' },
      rules: prerouting,
    },
    {
      name: identifier(settings.chains.postrouting),
      base: { type: 'nat', hook: 'postrouting', priority: settings.priorities.postrouting, policy: 'accept' },
      rules: usesSnat(content)
        ? [
            {
              match: [`meta mark & ${hex32(settings.snatMark.mask)} == ${hex32(settings.snatMark.value)}`],
              actions: ['masquerade'],
              source: settingsRef(settings),
              detail: 'snat',
            },
          ]
        : [],
    },
  ];
}

function natTable(settings: Settings, chains: IrChain[], sets: IrSet[] = [], maps: IrMap[] = []): IrTable {
  return {
    family: 'inet',
    name: identifier(settings.tables.nat),
    comment: `nftops: load balancing (${settingsRef(settings)})`,
    sets,
    maps,
    chains,
  };
}

function noBackendsChain(settings: Settings, rules: IrRule[]): IrChain {
  // reject is not a NAT verdict, so services without backends are answered from a filter chain that runs
  // just before DNAT would.
  return {
    name: identifier(`${settings.namePrefix}no-backends`),
    base: { type: 'filter', hook: 'prerouting', priority: settings.priorities.prerouting - 10, policy: 'accept' },
    rules,
  };
}

/** One rule per service port: short files are easy to read, but every new flow walks the whole list. */
function lowerNatTablePerService(content: ArtifactContent): IrTable {
  const { settings } = content;
  const dnat: IrRule[] = [];
  const empty: IrRule[] = [];
  for (const forward of forwardsOf(content.loadBalancers)) {
    const { service, port } = forward;
    const source = service.origin.ref;
    if (service.backends.length === 0) {
      empty.push({ match: matchForward(forward), actions: [emptyVerdict(settings, port.protocol)], source, detail: `${detail(port)} no backends` });
      continue;
    }
    dnat.push({
      match: matchForward(forward),
      actions: [...markStatements(settings, service), dnatStatement(service, port)],
      source,
      detail: detail(port),
    });
  }
  const chains = natBaseChains(content, dnat);
  if (empty.length > 0) chains.push(noBackendsChain(settings, empty));
  return natTable(settings, chains);
}

/**
 * Backend elements one map holds before a family's backends are spread over several (a power of two of them,
 * at most MAX_BACKEND_SHARDS). Small maps load faster (the kernel resizes large hash tables as they grow) and,
 * above all, keep the watcher's read-back after a one-service change short: it lists the one map the change
 * wrote (at 50 000 services 80-95 ms with 2048, 220-250 ms with 8192, BENCHMARKS.md). The price is a chain per
 * group and map (below): with 40 groups, 2048 would mean 5 000 chains at 50 000 services, 45 MiB and 0.3-0.9 s
 * more for nft to load, so 4096 is the middle (read-back ~120 ms).
 */
export const BACKEND_SHARD_SIZE = 4096;
const MAX_BACKEND_SHARDS = 256;

/**
 * Backend elements (both families) up to which `backendCounters: auto` keeps a counter on each: 16 384 services
 * of 4 backends. Beyond it the counters cost more than they tell (lowerNatTableMaps).
 */
export const BACKEND_COUNTER_LIMIT = 65_536;

function shardCount(elements: number): number {
  let shards = 1;
  while (elements > shards * BACKEND_SHARD_SIZE && shards < MAX_BACKEND_SHARDS) shards *= 2;
  return shards;
}

/** The backend map of a service: FNV-1a of its address bytes, so it stays put while others come and go. */
function shardOf(address: IpAddress, shards: number): number {
  if (shards === 1) return 0;
  let hash = 0x811c9dc5;
  const { key } = address;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % shards;
}

/** An iterable that runs MAKE on each use. */
function madeOnUse<T>(make: () => Iterator<T>): Iterable<T> {
  return { [Symbol.iterator]: make };
}

function forwardComment(forward: Forward): string {
  return comment(`${forward.service.origin.ref} ${detail(forward.port)}`);
}

/** Backend map elements of FORWARDS: `address . protocol . port . slot : backend . port`, weights as runs of slots. */
function* backendElements(forwards: readonly Forward[]): Generator<readonly [string, string]> {
  for (const forward of forwards) {
    const { service, port } = forward;
    const key = forwardKey(forward);
    const widths = slotWidths(service);
    let slot = 0;
    for (const [index, backend] of service.backends.entries()) {
      const target = `${backend.address.text} . ${backend.port ?? port.targetPort}`;
      for (let k = 0; k < widths[index]!; k++) yield [`${key} . ${slot++}`, target];
    }
  }
}

/** The key of a forward in the dispatch and backend maps: `address . protocol . port`. */
function forwardKey(forward: Forward): string {
  return `${forward.service.address.text} . ${forward.port.protocol} . ${forward.port.port}`;
}

/**
 * Constant per-packet cost, whatever the number of services: one verdict-map lookup on `daddr . l4proto .
 * dport` goes to the chain of the service's group (same family, scheduler, number of backend slots and SNAT
 * choice), whose single rule looks the backend up in a named map keyed by `daddr . l4proto . dport . slot`.
 * Services live only in map elements, so nft adds them without per-service rules or anonymous maps (both
 * make `nft -f` quadratic). Weights expand into several slots of one backend. Element counters keep
 * per-service and per-backend counts; the dispatch element's comment names the service, and a backend element
 * belongs to the dispatch element with the same address, protocol and port (a comment on each of them made
 * `nft -f` of 50 000 services a fifth slower). Backend element counters follow Settings `backendCounters`: by
 * default they stop beyond BACKEND_COUNTER_LIMIT elements, where each one's per-CPU counter costs ~2.5 µs of
 * kernel time at load (0.5 s of the 200 000 at 50 000 services) and 16 bytes per CPU for good.
 *
 * The price: `numgen inc` is one counter per group, so round robin is exact per group; a service's share of
 * each backend stays exact in the long run only when its arrivals do not correlate with the group's other
 * services. The per-service layout keeps a counter per service.
 *
 * Beyond BACKEND_SHARD_SIZE backend elements a family's backends are spread over several maps (`backends6-s0`
 * ...), by a hash of the service address, each with its own group chains: the per-packet path is the same
 * (one vmap lookup, one rule, one map lookup), and nft loads and lists several small maps faster than one large
 * one (50 000 services: a quarter less time to load than one map; the kernel's dump of one large hash map walks
 * it again for every message).
 */
function lowerNatTableMaps(content: ArtifactContent): IrTable {
  const { settings } = content;
  const prefix = settings.namePrefix;
  const forwards = forwardsOf(content.loadBalancers);
  const elementCount: Record<4 | 6, number> = { 4: 0, 6: 0 };
  for (const { service } of forwards) elementCount[service.address.family] += backendSlots(service);
  const shards: Record<4 | 6, number> = { 4: shardCount(elementCount[4]), 6: shardCount(elementCount[6]) };
  const backendCounters =
    settings.backendCounters === 'on' || (settings.backendCounters === 'auto' && elementCount[4] + elementCount[6] <= BACKEND_COUNTER_LIMIT);
  const mapSuffix = (family: 4 | 6, shard: number) => (shards[family] > 1 ? `-s${shard}` : '');
  // Elements are made while rendering, from these lists: as strings held until then they were a third of
  // the compiler's memory at 50 000 services.
  const dispatch: Record<4 | 6, { forward: Forward; group: string }[]> = { 4: [], 6: [] };
  const backends: Record<4 | 6, Forward[][]> = {
    4: Array.from({ length: shards[4] }, () => []),
    6: Array.from({ length: shards[6] }, () => []),
  };
  const empty: Record<4 | 6, string[]> = { 4: [], 6: [] };
  // A group (family, scheduler, slots, SNAT) has a chain in every shard of its family, whether or not that
  // shard holds one of its services yet: a service that gains or loses a backend moves to another group, and
  // when that group's chain exists the change is element operations (nft 1.0.6 cannot add a rule looking up a
  // `typeof` map to a live table, so a new chain would mean a whole apply).
  const groupKind = (family: 4 | 6, service: LoadBalancer, slots: number) =>
    `${prefix}lb${family}-${service.scheduler}-${slots}${(service.snat ?? settings.snat) ? '-snat' : ''}`;
  const groupName = (kind: string, family: 4 | 6, shard: number) => identifier(`${kind}${mapSuffix(family, shard)}`);
  const groupKinds = new Map<string, { family: 4 | 6; service: LoadBalancer; slots: number }>();
  for (const forward of forwards) {
    const { service } = forward;
    const family = service.address.family;
    if (service.backends.length === 0) {
      empty[family].push(`${forwardKey(forward)} ${forwardComment(forward)}`);
      continue;
    }
    const shard = shardOf(service.address, shards[family]);
    backends[family][shard]!.push(forward);
    const slots = backendSlots(service);
    const kind = groupKind(family, service, slots);
    if (!groupKinds.has(kind)) groupKinds.set(kind, { family, service, slots });
    dispatch[family].push({ forward, group: groupName(kind, family, shard) });
  }
  const groups = [...groupKinds].flatMap(([kind, { family, service, slots }]) =>
    Array.from({ length: shards[family] }, (_, shard) => ({ family, service, slots, name: groupName(kind, family, shard), map: `backends${family}${mapSuffix(family, shard)}` })),
  );
  const source = settingsRef(settings);
  const groupChains: IrChain[] = groups
    .sort((a, b) => compareStrings(a.name, b.name))
    .map(({ family, service, slots, name, map }) => {
      const fam = familyKeyword({ family });
      const selector = slotSelector(service, slots);
      return {
        name,
        rules: [
          {
            match: [],
            actions: [...markStatements(settings, service), `dnat ${fam} to ${fam} daddr . meta l4proto . th dport . ${selector} map @${map}`],
            source,
            detail: `IPv${family} ${service.scheduler} ${slots} slots`,
          },
        ],
      };
    });
  // The counter must come before the vmap's key expression, so the family test is the match.
  const dispatchRules: IrRule[] = ([4, 6] as const).map((family) => ({
    match: [`meta nfproto ipv${family}`],
    actions: [`${familyKeyword({ family })} daddr . meta l4proto . th dport vmap @dispatch${family}`],
    source,
    detail: `IPv${family} services`,
  }));
  const emptyRules: IrRule[] = ([4, 6] as const).flatMap((family) => {
    const match = `${familyKeyword({ family })} daddr . meta l4proto . th dport @no-backends${family}`;
    const rules: IrRule[] = [];
    if (settings.emptyBackends === 'reject') {
      rules.push({ match: [match, 'meta l4proto tcp'], actions: ['reject with tcp reset'], source, detail: `IPv${family} no backends` });
    }
    rules.push({ match: [match], actions: [emptyVerdict(settings, 'udp')], source, detail: `IPv${family} no backends` });
    return rules;
  });
  const serviceKey = (family: 4 | 6) => `${addressType({ family })} . inet_proto . inet_service`;
  const chains = [...natBaseChains(content, dispatchRules), noBackendsChain(settings, emptyRules), ...groupChains];
  const maps: IrMap[] = ([4, 6] as const).flatMap((family) => [
    {
      name: `dispatch${family}`,
      type: `type ${serviceKey(family)} : verdict`,
      flags: [],
      statements: ['counter'],
      elements: madeOnUse(function* () {
        for (const { forward, group } of dispatch[family]) yield [`${forwardKey(forward)} ${forwardComment(forward)}`, `goto ${group}`] as const;
      }),
    },
    ...backends[family].map((list, shard) => ({
      name: `backends${family}${mapSuffix(family, shard)}`,
      type: `typeof ${familyKeyword({ family })} daddr . meta l4proto . th dport . numgen inc mod 1 : ${familyKeyword({ family })} daddr . th dport`,
      flags: [],
      statements: backendCounters ? ['counter'] : [],
      elements: madeOnUse(() => backendElements(list)),
    })),
  ]);
  const sets: IrSet[] = ([4, 6] as const).map((family) => ({
    name: `no-backends${family}`,
    type: `type ${serviceKey(family)}`,
    flags: [],
    statements: ['counter'],
    elements: empty[family],
  }));
  return natTable(settings, chains, sets, maps);
}

function portMatches(ports: readonly PolicyPort[]): string[][] {
  if (ports.length === 0) return [[]];
  const byProtocol = new Map<Protocol, PolicyPort[]>();
  for (const port of ports) byProtocol.set(port.protocol, [...(byProtocol.get(port.protocol) ?? []), port]);
  return [...byProtocol.entries()]
    .sort(([a], [b]) => protocolOrder(a) - protocolOrder(b))
    .map(([protocol, list]) => {
      if (list.some((p) => p.port === undefined)) return [`meta l4proto ${protocol}`];
      const elements = list.map((p) => (p.endPort === undefined ? `${p.port}` : `${p.port}-${p.endPort}`));
      return [`meta l4proto ${protocol}`, `th dport ${setOf(elements)}`];
    });
}

function policyRules(policy: NetworkPolicy, rule: PolicyRule): IrRule[] {
  const sources: string[][] =
    rule.from.length === 0
      ? [[]]
      : rule.from.map((peer) => {
          const family = familyKeyword(peer.cidr);
          const match = [`${family} saddr ${peer.cidr.text}`];
          if (peer.except.length > 0) match.push(`${family} saddr != ${setOf(peer.except.map((e) => e.text))}`);
          return match;
        });
  return sources.flatMap((source) =>
    portMatches(rule.ports).map((ports) => ({
      match: [...source, ...ports],
      actions: ['accept'],
      source: policy.origin.ref,
    })),
  );
}

/**
 * Network policies apply to load-balanced flows (the ct mark) towards a pod some policy selects. The
 * per-service layout gives each pod one forward rule into its own chain, which jumps to each of the pod's
 * policies and ends in the pod's default deny. The maps layout keeps the per-packet path constant: one
 * verdict-map lookup on the destination jumps straight to the policy chain of a pod one policy selects (most
 * pods) or to the pod's own chain when several do; a flow no policy accepted returns to the forward chain,
 * whose next rule drops it when the destination is in the set of selected pods. That set's element counters
 * count each pod's default deny, the verdict map's count what each pod handed to its policies: the same
 * counts as the per-service layout's rules, without a chain and two rules per pod (10 000 pods: a quarter
 * less time for `nft -f` to load the filter table).
 *
 * The comments of the counters that count per pod (`NetworkPolicy/NAME evaluated`, `… default deny`) leave
 * the pod out, since the longest name and IPv6 address would not fit nft's 128 bytes: it is the element's key,
 * or, for a pod chain's rules, the key of the element or the `pod ADDR` of the forward rule that enters it.
 */
function lowerFilterTable(content: ArtifactContent): IrTable {
  const { settings } = content;
  const prefix = settings.namePrefix;
  const policyChain = (policy: NetworkPolicy) => identifier(`${prefix}policy-${policy.name}`);
  const podChain = (pod: IpAddress) => identifier(`${prefix}pod-${addressName(pod)}`);
  const podPolicies = new Map<string, { pod: IpAddress; policies: NetworkPolicy[] }>();
  for (const policy of content.policies) {
    for (const pod of policy.pods) {
      const entry = podPolicies.get(pod.text) ?? { pod, policies: [] };
      entry.policies.push(policy);
      podPolicies.set(pod.text, entry);
    }
  }
  const pods = [...podPolicies.values()].sort((a, b) => compareAddresses(a.pod, b.pod));
  const lbFlow = `ct mark & ${hex32(settings.mark.mask)} == ${hex32(settings.mark.value)}`;
  const podSource = (policies: readonly NetworkPolicy[]) => policies[0]!.origin.ref;
  const policyChains: IrChain[] = content.policies.map((policy) => ({
    name: policyChain(policy),
    rules: policy.rules.flatMap((rule) => policyRules(policy, rule)),
  }));
  const table = (chains: IrChain[], sets: IrSet[], maps: IrMap[]): IrTable => ({
    family: 'inet',
    name: identifier(settings.tables.filter),
    comment: `nftops: network policies (${settingsRef(settings)})`,
    sets,
    maps,
    chains,
  });
  const forwardChain = (rules: IrRule[]): IrChain => ({
    name: identifier(settings.chains.forward),
    base: { type: 'filter', hook: 'forward', priority: settings.priorities.forward, policy: 'accept' },
    rules,
  });

  if (settings.layout === 'per-service') {
    const forwardRules = pods.map(({ pod, policies }) => ({
      match: [lbFlow, `${familyKeyword(pod)} daddr ${pod.text}`],
      actions: [`goto ${podChain(pod)}`],
      source: podSource(policies),
      detail: `pod ${pod.text}`,
    }));
    const podChains = pods.map(({ pod, policies }) => ({
      name: podChain(pod),
      rules: [
        ...policies.map((policy) => ({ match: [], actions: [`jump ${policyChain(policy)}`], source: policy.origin.ref })),
        { match: [], actions: ['drop'], source: podSource(policies), detail: 'default deny' },
      ],
    }));
    return table([forwardChain(forwardRules), ...podChains, ...policyChains], [], []);
  }

  const source = settingsRef(settings);
  const forwardRules: IrRule[] = [
    ...([4, 6] as const).map((family) => ({
      // The counter must come before the vmap's key expression, so the family test is the match.
      match: [lbFlow, `meta nfproto ipv${family}`],
      actions: [`${familyKeyword({ family })} daddr vmap @pods${family}`],
      source,
      detail: `IPv${family} pods`,
    })),
    ...([4, 6] as const).map((family) => ({
      match: [lbFlow, `${familyKeyword({ family })} daddr @isolated${family}`],
      actions: ['drop'],
      source,
      detail: `IPv${family} pods default deny`,
    })),
  ];
  const podChains: IrChain[] = pods
    .filter(({ policies }) => policies.length > 1)
    .map(({ pod, policies }) => ({
      name: podChain(pod),
      rules: policies.map((policy) => ({ match: [], actions: [`jump ${policyChain(policy)}`], source: policy.origin.ref, detail: 'evaluated' })),
    }));
  const ofFamily = (family: 4 | 6) => pods.filter(({ pod }) => pod.family === family);
  const maps: IrMap[] = ([4, 6] as const).map((family) => ({
    name: `pods${family}`,
    type: `type ${addressType({ family })} : verdict`,
    flags: [],
    statements: ['counter'],
    elements: ofFamily(family).map(({ pod, policies }) =>
      policies.length === 1
        ? ([`${pod.text} ${comment(`${podSource(policies)} evaluated`)}`, `jump ${policyChain(policies[0]!)}`] as const)
        : ([pod.text, `jump ${podChain(pod)}`] as const),
    ),
  }));
  const sets: IrSet[] = ([4, 6] as const).map((family) => ({
    name: `isolated${family}`,
    type: `type ${addressType({ family })}`,
    flags: [],
    statements: ['counter'],
    elements: ofFamily(family).map(({ pod, policies }) => `${pod.text} ${comment(`${podSource(policies)} default deny`)}`),
  }));
  return table([forwardChain(forwardRules), ...podChains, ...policyChains], sets, maps);
}

export interface LoweredArtifact {
  readonly tables: readonly IrTable[];
  readonly header: Readonly<Record<string, string>>;
}

/**
 * The load-balancer tables are rendered when the artifact holds services or policies, or nothing else
 * (so an artifact whose last service is gone still owns, and empties, its tables); each extension renders
 * the tables of its own objects.
 */
export function lowerArtifact(content: ArtifactContent): LoweredArtifact {
  const tables: IrTable[] = [];
  const header: Record<string, string> = {};
  const hasLb = content.loadBalancers.length > 0 || content.policies.length > 0;
  if (hasLb || content.extensionObjects.length === 0) {
    tables.push(lowerNatTable(content));
    if (content.settings.filter) tables.push(lowerFilterTable(content));
  }
  for (const extension of EXTENSIONS) {
    const objects = content.extensionObjects.filter((o) => extension.kinds.includes(o.kind));
    if (objects.length === 0) continue;
    const output = extension.lower(objects);
    tables.push(...output.tables);
    Object.assign(header, output.header ?? {});
  }
  return { tables, header };
}
