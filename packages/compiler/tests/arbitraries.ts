/**
 * fast-check generators of valid nftops models, the transformations the properties apply to them, and the
 * properties themselves. Shared by tests/property.test.ts (bounded runs in CI) and tools/fuzz/property-long.mjs
 * (the long run, which bundles this file), so both run exactly the same checks.
 *
 * Every generated model is valid by construction: documentation addresses (192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24, 2001:db8::/32), unique names per kind, unique service addresses, backends of the service's
 * family, except blocks inside their cidr, endPort >= port, disjoint marks, chain and table names that are
 * neither nft keywords nor taken by generated chains.
 */
import fc from 'fast-check';
import { Document, isMap, isPair, isSeq } from 'yaml';
import { compile, DIAGNOSTIC_CODES, type CompileResult, type SourceFile } from '@nftops/compiler';
import { createNftDriver } from '@nftops/nft-driver';
import { withNetns } from '@nftops/testkit';
import { NFT_KEYWORDS } from '../src/model.js';
import corpusData from './fixtures/hostile/strings.json';

/** fast-check itself and the kernel check, for the long-run script, which runs this file bundled. */
export const fastCheck = fc;
export { kernelAvailable } from '@nftops/testkit';

// ---------------------------------------------------------------------------------------------------------------
// The hostile corpus (tests/fixtures/hostile/strings.json)

export interface HostileString {
  readonly name: string;
  readonly value: string;
}

/** The corpus, with `repeat` entries expanded (over-long values are stored as a character and a count). */
export const HOSTILE_STRINGS: readonly HostileString[] = (corpusData as { name: string; value: string; repeat?: number }[]).map((e) => ({
  name: e.name,
  value: e.repeat !== undefined ? e.value.repeat(e.repeat) : e.value,
}));

/** Characters that can end or open an nft token: a value holding one must never reach an artifact. */
export const UNSAFE_CHAR = /[^A-Za-z0-9_.:/-]/;

// ---------------------------------------------------------------------------------------------------------------
// Documents

export type Doc = Record<string, unknown>;

export interface ModelFile {
  readonly path: string;
  readonly docs: readonly Doc[];
}

export interface Model {
  readonly files: readonly ModelFile[];
}

const API = 'nftops.dev/v1alpha1';

function doc(kind: string, name: string, spec: Doc, labels?: Record<string, string>): Doc {
  return { apiVersion: API, kind, metadata: { name, ...(labels ? { labels } : {}) }, spec };
}

/** Drops undefined properties, so optional fields are absent rather than null. */
function compact<T extends Doc>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

// ---------------------------------------------------------------------------------------------------------------
// Addresses

const DOC4 = [
  [192, 0, 2],
  [198, 51, 100],
  [203, 0, 113],
] as const;

/** An IPv4 address of the documentation ranges as a 32-bit number. */
const ipv4Number = fc
  .tuple(fc.constantFrom(...DOC4), fc.integer({ min: 0, max: 255 }))
  .map(([[a, b, c], d]) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0);

function v4Text(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** An IPv6 address in 2001:db8::/32 as a bigint. */
const ipv6Number = fc
  .tuple(fc.bigInt({ min: 0n, max: (1n << 96n) - 1n }), fc.boolean())
  // Mostly small host parts, so addresses collide (and exercise duplicates handling) now and then.
  .map(([low, small]) => (0x20010db8n << 96n) | (small ? low & 0xffffn : low));

/** IPv6 text in a random spelling: compressed or full, lower or upper case, with or without leading zeros. */
function v6Text(n: bigint, spelling: number): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
  let parts = groups.map((g) => (spelling & 1 ? g.toString(16).padStart(4, '0') : g.toString(16)));
  if (spelling & 2) parts = parts.map((p) => p.toUpperCase());
  if (!(spelling & 4)) return parts.join(':');
  // Compress the longest run of zero groups.
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j;
  }
  if (best < 0) return parts.join(':');
  return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLength).join(':')}`;
}

export type Family = 4 | 6;

interface Address {
  readonly family: Family;
  readonly key: string;
  readonly text: string;
}

const address4: fc.Arbitrary<Address> = ipv4Number.map((n) => ({ family: 4, key: `4/${n}`, text: v4Text(n) }));
const address6: fc.Arbitrary<Address> = fc
  .tuple(ipv6Number, fc.integer({ min: 0, max: 7 }))
  .map(([n, spelling]) => ({ family: 6, key: `6/${n}`, text: v6Text(n, spelling) }));
const addressOf = (family: Family) => (family === 4 ? address4 : address6);

function mask4(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function mask6(prefix: number): bigint {
  return prefix === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - prefix)) - 1n);
}

interface Block {
  readonly family: Family;
  readonly network: number | bigint;
  readonly prefix: number;
  readonly text: string;
}

function block4(n: number, prefix: number, bare: boolean): Block {
  const network = (n & mask4(prefix)) >>> 0;
  return { family: 4, network, prefix, text: prefix === 32 && bare ? v4Text(network) : `${v4Text(network)}/${prefix}` };
}

function block6(n: bigint, prefix: number, spelling: number, bare: boolean): Block {
  const network = n & mask6(prefix);
  return { family: 6, network, prefix, text: prefix === 128 && bare ? v6Text(network, spelling) : `${v6Text(network, spelling)}/${prefix}` };
}

/** A CIDR block with no host bits set. */
const cidrOf = (family: Family): fc.Arbitrary<Block> =>
  family === 4
    ? fc.tuple(ipv4Number, fc.integer({ min: 8, max: 32 }), fc.boolean()).map(([n, p, bare]) => block4(n, p, bare))
    : fc.tuple(ipv6Number, fc.integer({ min: 32, max: 128 }), fc.integer({ min: 0, max: 7 }), fc.boolean()).map(([n, p, s, bare]) => block6(n, p, s, bare));

/** A block inside OUTER (possibly OUTER itself). */
function innerBlock(outer: Block): fc.Arbitrary<Block> {
  if (outer.family === 4) {
    return fc
      .tuple(fc.integer({ min: outer.prefix, max: 32 }), fc.integer({ min: 0, max: 0xffffffff }), fc.boolean())
      .map(([p, r, bare]) => block4(((outer.network as number) | (r & ~mask4(outer.prefix))) >>> 0, p, bare));
  }
  return fc
    .tuple(fc.integer({ min: outer.prefix, max: 128 }), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min: 0, max: 7 }), fc.boolean())
    .map(([p, r, s, bare]) => block6((outer.network as bigint) | (r & ~mask6(outer.prefix) & ((1n << 128n) - 1n)), p, s, bare));
}

// ---------------------------------------------------------------------------------------------------------------
// Names

/** metadata.name: ^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$, mostly short. */
export const objectName = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,8}[a-z0-9]$/) },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/) },
);

const protocol = fc.constantFrom('TCP', 'UDP', 'SCTP');
const port = fc.integer({ min: 1, max: 65535 });

const labelKey = fc.constantFrom('tier', 'app', 'zone', 'example.com/team');
const labelValue = fc.constantFrom('edge', 'internal', 'a', 'b-1', '');
const labels = fc.option(fc.dictionary(labelKey, labelValue, { maxKeys: 2 }), { nil: undefined });
const annotations = fc.option(fc.dictionary(fc.constantFrom('note', 'owner'), fc.string({ maxLength: 20 }), { maxKeys: 2 }), { nil: undefined });

function withAnnotations(d: Doc, notes: Record<string, string> | undefined): Doc {
  if (!notes) return d;
  return { ...d, metadata: { ...(d.metadata as Doc), annotations: notes } };
}

// ---------------------------------------------------------------------------------------------------------------
// LoadBalancer

function loadBalancer(name: string, address: Address): fc.Arbitrary<Doc> {
  const ports = fc.uniqueArray(
    fc.record({
      name: fc.option(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/), { nil: undefined }),
      protocol: fc.option(protocol, { nil: undefined }),
      port,
      targetPort: fc.option(port, { nil: undefined }),
    }),
    { minLength: 1, maxLength: 4, selector: (p) => `${p.protocol ?? 'TCP'}/${p.port}` },
  );
  return ports.chain((portList) => {
    const backend = fc.record({
      address: addressOf(address.family),
      weight: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
      port: portList.length === 1 ? fc.option(port, { nil: undefined }) : fc.constant(undefined),
    });
    return fc
      .record({
        backends: fc.uniqueArray(backend, { minLength: 0, maxLength: 5, selector: (b) => `${b.address.key}/${b.port ?? ''}` }),
        scheduler: fc.option(fc.constantFrom('round-robin', 'random', 'source-hash'), { nil: undefined }),
        snat: fc.option(fc.boolean(), { nil: undefined }),
        labels,
        annotations,
      })
      .map((r) =>
        withAnnotations(
          doc(
            'LoadBalancer',
            name,
            compact({
              address: address.text,
              scheduler: r.scheduler,
              snat: r.snat,
              ports: portList.map((p) => compact({ ...p })),
              backends: r.backends.map((b) => compact({ address: b.address.text, weight: b.weight, port: b.port })),
            }),
            r.labels,
          ),
          r.annotations,
        ),
      );
  });
}

// ---------------------------------------------------------------------------------------------------------------
// NetworkPolicy

const peer: fc.Arbitrary<Doc> = fc
  .constantFrom<Family>(4, 6)
  .chain((family) => cidrOf(family))
  .chain((cidr) =>
    fc.uniqueArray(innerBlock(cidr), { maxLength: 3, selector: (b) => `${b.network}/${b.prefix}` }).map((except) => ({
      ipBlock: compact({ cidr: cidr.text, except: except.length > 0 ? except.map((e) => e.text) : undefined }),
    })),
  );

const policyPort: fc.Arbitrary<Doc> = fc.oneof(
  fc.record({ protocol: fc.option(protocol, { nil: undefined }) }).map(compact),
  fc.record({ protocol: fc.option(protocol, { nil: undefined }), port }).map(compact),
  fc
    .record({ protocol: fc.option(protocol, { nil: undefined }), port, width: fc.integer({ min: 0, max: 2000 }) })
    .map(({ protocol: p, port: start, width }) => compact({ protocol: p, port: start, endPort: Math.min(65535, start + width) })),
);

const ingressRule: fc.Arbitrary<Doc> = fc
  .record({
    from: fc.option(fc.array(peer, { maxLength: 3 }), { nil: undefined }),
    ports: fc.option(fc.array(policyPort, { maxLength: 3 }), { nil: undefined }),
  })
  .map(compact);

function networkPolicy(name: string): fc.Arbitrary<Doc> {
  return fc
    .record({
      pods: fc.uniqueArray(fc.oneof({ weight: 3, arbitrary: address4 }, { weight: 1, arbitrary: address6 }), {
        minLength: 1,
        maxLength: 4,
        selector: (a) => a.key,
      }),
      ingress: fc.option(fc.array(ingressRule, { maxLength: 3 }), { nil: undefined }),
      labels,
    })
    .map((r) => doc('NetworkPolicy', name, compact({ podAddresses: r.pods.map((p) => p.text), ingress: r.ingress }), r.labels));
}

// ---------------------------------------------------------------------------------------------------------------
// Settings

const MESH_TABLES = new Set(['istio-proxy-nat', 'istio-proxy-mangle', 'istio-proxy-raw', 'istio-ambient-nat', 'istio-ambient-mangle', 'istio-ambient-raw']);

/** A table or chain name nft parses: the schema's grammar, minus nft keywords and the mesh tables. */
export const nftName = fc
  .oneof(
    { weight: 3, arbitrary: fc.stringMatching(/^[a-z][a-z0-9_-]{0,11}$/) },
    { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/) },
  )
  .filter((n) => !NFT_KEYWORDS.has(n.toLowerCase()) && !MESH_TABLES.has(n));

function takenByGenerated(name: string, prefix: string): boolean {
  return name === `${prefix}no-backends` || ['lb4-', 'lb6-', 'pod-', 'policy-'].some((form) => name.startsWith(`${prefix}${form}`));
}

const mark = fc
  .tuple(fc.integer({ min: 1, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }))
  .map(([m1, v1, m2, v2]) => {
    const mask = m1 >>> 0;
    const value = (v1 & mask) >>> 0 || (mask & -mask) >>> 0;
    const snatMask = (m2 & ~mask) >>> 0;
    const snatValue = (v2 & snatMask) >>> 0 || (snatMask & -snatMask) >>> 0;
    return { mark: { value, mask }, snatMark: snatMask === 0 ? undefined : { value: snatValue, mask: snatMask } };
  })
  .filter((m) => m.snatMark !== undefined);

function settings(name: string): fc.Arbitrary<Doc> {
  return fc
    .record({
      namePrefix: fc.option(fc.stringMatching(/^([A-Za-z][A-Za-z0-9_-]{0,15})?$/), { nil: undefined }),
      tables: fc.option(fc.tuple(nftName, nftName).filter(([a, b]) => a !== b), { nil: undefined }),
      chains: fc.option(fc.tuple(nftName, nftName, nftName).filter(([a, b]) => a !== b), { nil: undefined }),
      priorities: fc.option(
        fc.record({
          // nat chains: the kernel refuses priorities at or below conntrack's (-200).
          prerouting: fc.option(fc.integer({ min: -199, max: 1000 }), { nil: undefined }),
          postrouting: fc.option(fc.integer({ min: -199, max: 1000 }), { nil: undefined }),
          forward: fc.option(fc.integer({ min: -1000, max: 1000 }), { nil: undefined }),
        }),
        { nil: undefined },
      ),
      filter: fc.option(fc.boolean(), { nil: undefined }),
      snat: fc.option(fc.boolean(), { nil: undefined }),
      marks: fc.option(mark, { nil: undefined }),
      emptyBackends: fc.option(fc.constantFrom('reject', 'drop'), { nil: undefined }),
      layout: fc.option(fc.constantFrom('maps', 'per-service'), { nil: undefined }),
    })
    .filter((r) => !r.chains || !r.chains.some((c) => takenByGenerated(c, r.namePrefix ?? '')))
    .map((r) =>
      doc(
        'Settings',
        name,
        compact({
          tables: r.tables && { nat: r.tables[0], filter: r.tables[1] },
          chains: r.chains && { prerouting: r.chains[0], postrouting: r.chains[1], forward: r.chains[2] },
          priorities: r.priorities && compact(r.priorities),
          filter: r.filter,
          snat: r.snat,
          mark: r.marks?.mark,
          snatMark: r.marks?.snatMark,
          namePrefix: r.namePrefix,
          emptyBackends: r.emptyBackends,
          layout: r.layout,
        }),
      ),
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Mesh kinds

const interfaceName = fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,14}$/).filter((n) => n !== '.' && n !== '..');
const uid = fc.integer({ min: 0, max: 65535 });

function sidecar(name: string): fc.Arbitrary<Doc> {
  return fc.boolean().chain((ipv6) => {
    const cidr = fc.oneof({ weight: 3, arbitrary: cidrOf(4) }, { weight: ipv6 ? 1 : 0, arbitrary: cidrOf(6) }).map((b) => b.text);
    return fc
      .record({
        defaults: fc.option(fc.constantFrom('istio-init', 'istio-cni'), { nil: undefined }),
        proxyUIDs: fc.option(fc.uniqueArray(uid, { minLength: 1, maxLength: 2 }), { nil: undefined }),
        interceptionMode: fc.option(fc.constantFrom('REDIRECT', 'TPROXY'), { nil: undefined }),
        inboundPorts: fc.option(
          fc.oneof(
            fc.record({ include: fc.constant('*'), exclude: fc.option(fc.array(port, { maxLength: 3 }), { nil: undefined }) }).map(compact),
            fc.record({ include: fc.array(port, { maxLength: 3 }) }),
          ),
          { nil: undefined },
        ),
        outboundIPRanges: fc.option(
          fc
            .record({
              include: fc.option(fc.oneof(fc.constant('*'), fc.array(cidr, { maxLength: 3 })), { nil: undefined }),
              exclude: fc.option(fc.array(cidr, { maxLength: 3 }), { nil: undefined }),
            })
            .map(compact),
          { nil: undefined },
        ),
        outboundPorts: fc.option(fc.record({ include: fc.array(port, { maxLength: 2 }), exclude: fc.array(port, { maxLength: 2 }) }), { nil: undefined }),
        excludeInterfaces: fc.option(fc.array(interfaceName, { maxLength: 2 }), { nil: undefined }),
        virtualInterfaces: fc.option(fc.array(interfaceName, { maxLength: 2 }), { nil: undefined }),
        dns: fc.option(
          fc
            .record({
              capture: fc.boolean(),
              captureAll: fc.option(fc.boolean(), { nil: undefined }),
              servers: fc.option(fc.array(fc.oneof(address4, address6).filter((a) => ipv6 || a.family === 4).map((a) => a.text), { maxLength: 2 }), { nil: undefined }),
            })
            .map(compact),
          { nil: undefined },
        ),
        dropInvalid: fc.option(fc.boolean(), { nil: undefined }),
        // Group names reach the rules quoted and nft resolves them when it loads the file: use one that exists.
        ownerGroups: fc.option(
          fc.oneof(
            fc.record({ exclude: fc.array(fc.oneof(fc.integer({ min: 0, max: 4294967294 }), fc.constant('root')), { maxLength: 2 }) }),
            fc.record({ include: fc.array(fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constant('root')), { maxLength: 3 }) }),
          ),
          { nil: undefined },
        ),
        tproxyRouteTable: fc.option(fc.integer({ min: 1, max: 252 }), { nil: undefined }),
        tproxyMark: fc.option(fc.integer({ min: 1, max: 0xffffffff }), { nil: undefined }),
      })
      .map((r) => {
        const knobs = compact({ ...r, ipv6 });
        if (r.interceptionMode !== 'TPROXY') delete knobs.tproxyMark;
        return doc('MeshRedirection', name, { mode: 'sidecar', sidecar: knobs });
      });
  });
}

function ambientPod(name: string): fc.Arbitrary<Doc> {
  return fc
    .record({
      dnsCapture: fc.option(fc.boolean(), { nil: undefined }),
      ipv6: fc.option(fc.boolean(), { nil: undefined }),
      hostProbeSNATAddress: fc.option(address4.map((a) => a.text), { nil: undefined }),
      hostProbeV6SNATAddress: fc.option(address6.map((a) => a.text), { nil: undefined }),
      pod: fc.option(
        fc
          .record({
            bypassInboundCapture: fc.option(fc.boolean(), { nil: undefined }),
            dnsCapture: fc.option(fc.boolean(), { nil: undefined }),
            virtualInterfaces: fc.option(fc.array(interfaceName, { maxLength: 2 }), { nil: undefined }),
          })
          .map(compact),
        { nil: undefined },
      ),
    })
    .map((r) => doc('MeshRedirection', name, { mode: 'ambient', ambient: compact(r) }));
}

function ambientNode(name: string): fc.Arbitrary<Doc> {
  return fc.boolean().chain((ipv6) =>
    fc
      .record({
        hostProbeSNATAddress: fc.option(address4.map((a) => a.text), { nil: undefined }),
        kubelet: fc.option(fc.oneof(fc.record({ uid }), fc.constant({ user: 'root' })), { nil: undefined }),
        pods: fc.uniqueArray(
          fc.record({
            uid: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/),
            addresses: fc.uniqueArray(ipv6 ? fc.oneof(address4, address6) : address4, { minLength: 1, maxLength: 2, selector: (a) => a.key }),
          }),
          { maxLength: 3, selector: (p) => p.uid },
        ),
      })
      .filter((r) => new Set(r.pods.flatMap((p) => p.addresses.map((a) => a.key))).size === r.pods.reduce((n, p) => n + p.addresses.length, 0))
      .map((r) =>
        doc(
          'AmbientNode',
          name,
          compact({
            ipv6,
            hostProbeSNATAddress: r.hostProbeSNATAddress,
            kubelet: r.kubelet,
            pods: r.pods.map((p) => ({ uid: p.uid, addresses: p.addresses.map((a) => a.text) })),
          }),
        ),
      ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Models

export interface ModelOptions {
  /** Also generate MeshRedirection and AmbientNode objects. */
  readonly mesh?: boolean;
}

const PATHS = ['a.yaml', 'b.yaml', 'sub/c.yaml'];

/** A valid model: objects of every kind spread over up to three files. */
export function model(options: ModelOptions = {}): fc.Arbitrary<Model> {
  const names = (max: number) => fc.uniqueArray(objectName, { maxLength: max });
  const serviceAddresses = fc.uniqueArray(fc.oneof({ weight: 3, arbitrary: address4 }, { weight: 1, arbitrary: address6 }), {
    maxLength: 4,
    selector: (a) => a.key,
  });
  const lbs = fc
    .tuple(names(4), serviceAddresses)
    .chain(([n, addresses]) => fc.tuple(...n.slice(0, addresses.length).map((name, i) => loadBalancer(name, addresses[i]!))));
  const policies = names(3).chain((n) => fc.tuple(...n.map(networkPolicy)));
  const settingsDocs = fc.option(objectName.chain(settings), { nil: undefined });
  const mesh = options.mesh
    ? fc.tuple(
        fc.option(objectName.chain(sidecar), { nil: undefined, freq: 2 }),
        fc.option(fc.oneof(objectName.chain(ambientPod), objectName.chain(ambientNode)), { nil: undefined, freq: 2 }),
      )
    : fc.constant([undefined, undefined] as const);
  const artifact = fc.option(fc.constant(doc('Artifact', 'out', { output: 'out.nft' })), { nil: undefined, freq: 3 });
  return fc
    .tuple(lbs, policies, settingsDocs, mesh, artifact)
    .chain(([l, p, s, [m1, m2], a]) => {
      // Mesh objects of two MeshRedirections share a name space: keep their names apart.
      const meshDocs = [m1, m2].filter((d): d is Doc => d !== undefined);
      if (meshDocs.length === 2 && meshDocs[1]!.kind === 'MeshRedirection') {
        meshDocs[1] = { ...meshDocs[1]!, metadata: { name: `${(meshDocs[0]!.metadata as { name: string }).name}-2` } };
      }
      // The Artifact lives at the root, so its default sources ('.') cover every file.
      const rooted = a ? [a] : [];
      const movable = [...l, ...p, ...(s ? [s] : []), ...meshDocs];
      return fc.tuple(fc.constant(rooted), fc.array(fc.integer({ min: 0, max: PATHS.length - 1 }), { minLength: movable.length, maxLength: movable.length }), fc.constant(movable));
    })
    .map(([rooted, placement, movable]) => {
      const files = PATHS.map((path) => ({ path, docs: [] as Doc[] }));
      files[0]!.docs.push(...rooted);
      movable.forEach((d, i) => files[placement[i]!]!.docs.push(d));
      return { files: files.filter((f) => f.docs.length > 0) };
    });
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering and permutations

export interface Style {
  /** Nesting level from which collections are written in flow style ({ }, [ ]); 0 = all block. */
  readonly flowFrom: number;
  /** Append a comment holding `*x`, which sends the file down the loader's precise YAML path. */
  readonly precisePath: boolean;
}

function setFlow(node: unknown, flowFrom: number, depth: number): void {
  if (!isMap(node) && !isSeq(node)) return;
  if (flowFrom > 0 && depth >= flowFrom) node.flow = true;
  for (const item of node.items) setFlow(isPair(item) ? item.value : item, flowFrom, depth + 1);
}

/** One document as YAML, in block style or with collections from a nesting level on in flow style. */
export function renderDoc(d: Doc, style: Style = { flowFrom: 0, precisePath: false }): string {
  const document = new Document(d);
  setFlow(document.contents, style.flowFrom, 0);
  return document.toString({ lineWidth: 0 });
}

export function renderModel(m: Model, styles: readonly Style[] = []): SourceFile[] {
  return m.files.map((file, i) => {
    const style = styles[i % Math.max(1, styles.length)] ?? { flowFrom: 0, precisePath: false };
    const text = file.docs.map((d) => renderDoc(d, style)).join('---\n');
    return { path: file.path, text: style.precisePath ? `${text}# *anchor-free comment\n` : text };
  });
}

/** Lists whose order carries no meaning, by the key that holds them (mesh lists keep Istio's order). */
export const UNORDERED = new Set(['ports', 'backends', 'podAddresses', 'ingress', 'from', 'except', 'pods', 'addresses']);

function shuffled<T>(items: readonly T[], order: readonly number[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = order[i % order.length]! % (i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

/** IPv6 text respelled (the same address): addresses and CIDRs, which are the only strings holding ":". */
function respell(text: string, spelling: number): string {
  const m = /^([0-9A-Fa-f:]+)(\/\d+)?$/.exec(text);
  if (!m || !text.includes(':')) return text;
  const expanded = expand6(m[1]!);
  return expanded === undefined ? text : `${v6Text(expanded, spelling)}${m[2] ?? ''}`;
}

function expand6(text: string): bigint | undefined {
  const [head, tail, ...rest] = text.split('::');
  if (rest.length > 0) return undefined;
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  if (groups.length !== 8) return undefined;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** The same objects, with files, documents, keys and meaning-free lists reordered and IPv6 respelled. */
export function permute(m: Model, order: readonly number[], spelling: number): Model {
  const o = order.length > 0 ? order : [0];
  let k = 0;
  const next = () => o[k++ % o.length]!;
  const scramble = (value: unknown, key?: string): unknown => {
    if (Array.isArray(value)) {
      const items = value.map((v) => scramble(v));
      return key !== undefined && UNORDERED.has(key) ? shuffled(items, [next(), next(), next()]) : items;
    }
    if (value && typeof value === 'object') {
      const entries = Object.entries(value).map(([k2, v]) => [k2, scramble(v, k2)] as const);
      return Object.fromEntries(shuffled(entries, [next(), next()]));
    }
    return typeof value === 'string' ? respell(value, spelling) : value;
  };
  return {
    files: shuffled(
      m.files.map((f) => ({ path: f.path, docs: shuffled(f.docs.map((d) => scramble(d) as Doc), [next(), next()]) })),
      [next()],
    ),
  };
}

export const style: fc.Arbitrary<Style> = fc.record({ flowFrom: fc.integer({ min: 0, max: 4 }), precisePath: fc.boolean() });

// ---------------------------------------------------------------------------------------------------------------
// Mutations

export type Mutation =
  | { readonly kind: 'delete-char' | 'duplicate-char' | 'swap-chars'; readonly at: number }
  | { readonly kind: 'insert-char'; readonly at: number; readonly char: string }
  | { readonly kind: 'delete-line' | 'duplicate-line' | 'indent-line' | 'dedent-line'; readonly at: number }
  | { readonly kind: 'swap-lines'; readonly at: number; readonly other: number }
  | { readonly kind: 'delete-key' | 'duplicate-key' | 'swap-keys'; readonly at: number; readonly other: number }
  | { readonly kind: 'change-type'; readonly at: number; readonly to: number }
  | { readonly kind: 'change-digit'; readonly at: number; readonly digit: number }
  | { readonly kind: 'inject'; readonly at: number; readonly value: number };

const SPECIAL_CHARS = [':', '-', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', "'", '"', '%', '@', '`', ',', '?', '\t', '\n', '\r', ' ', '\0', '\\', '\u202e', '\ufeff', 'é', '0', 'a', '.'];

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constantFrom('delete-char' as const, 'duplicate-char' as const, 'swap-chars' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert-char' as const), at: fc.nat(), char: fc.constantFrom(...SPECIAL_CHARS) }),
  fc.record({ kind: fc.constantFrom('delete-line' as const, 'duplicate-line' as const, 'indent-line' as const, 'dedent-line' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swap-lines' as const), at: fc.nat(), other: fc.nat() }),
  fc.record({ kind: fc.constantFrom('delete-key' as const, 'duplicate-key' as const, 'swap-keys' as const), at: fc.nat(), other: fc.nat() }),
  fc.record({ kind: fc.constant('change-type' as const), at: fc.nat(), to: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant('inject' as const), at: fc.nat(), value: fc.nat() }),
  // A typo in a number (a port, an address octet, a priority, a mark, a weight) often still parses.
  fc.record({ kind: fc.constant('change-digit' as const), at: fc.nat(), digit: fc.integer({ min: 0, max: 9 }) }),
);

/** Every (object, key) pair inside D, depth first. */
function slots(value: unknown, out: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = []) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push({ parent: value, key: i });
      slots(v, out);
    });
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push({ parent: value as Record<string, unknown>, key: k });
      slots(v, out);
    }
  }
  return out;
}

const TYPE_CHANGES: ((v: unknown) => unknown)[] = [
  () => null,
  (v) => (typeof v === 'number' ? String(v) : 42),
  (v) => (typeof v === 'string' ? Number.parseInt(v, 10) || 7 : 'text'),
  (v) => [v],
  (v) => ({ value: v }),
  () => true,
  () => -1,
  () => 1e300,
];

/** Structural mutations on a deep copy of the documents; text mutations on the rendered YAML. */
export function mutate(m: Model, mutations: readonly Mutation[]): { sources: SourceFile[]; injected: string[] } {
  const copy: Model = JSON.parse(JSON.stringify(m)) as Model;
  const injected: string[] = [];
  const all = () => copy.files.flatMap((f) => f.docs.flatMap((d) => slots(d)));
  for (const mu of mutations) {
    if (mu.kind === 'delete-key' || mu.kind === 'swap-keys' || mu.kind === 'change-type' || mu.kind === 'inject' || mu.kind === 'duplicate-key') {
      const list = all();
      if (list.length === 0) continue;
      const s = list[mu.at % list.length]!;
      const parent = s.parent as Record<string | number, unknown>;
      if (mu.kind === 'delete-key') {
        if (Array.isArray(parent)) parent.splice(s.key as number, 1);
        else delete parent[s.key];
      } else if (mu.kind === 'swap-keys') {
        // Swapping a value with one inside it would make a cycle: values are copied.
        const o = list[mu.other % list.length]!;
        const a = JSON.parse(JSON.stringify(parent[s.key] ?? null)) as unknown;
        parent[s.key] = JSON.parse(JSON.stringify((o.parent as Record<string | number, unknown>)[o.key] ?? null)) as unknown;
        (o.parent as Record<string | number, unknown>)[o.key] = a;
      } else if (mu.kind === 'change-type') {
        parent[s.key] = TYPE_CHANGES[mu.to % TYPE_CHANGES.length]!(parent[s.key]);
      } else if (mu.kind === 'duplicate-key') {
        // A key copied into another mapping (the text mutation duplicate-line repeats keys in one mapping).
        const o = list[mu.other % list.length]!;
        if (!Array.isArray(o.parent) && typeof s.key === 'string') {
          (o.parent as Record<string, unknown>)[s.key] = JSON.parse(JSON.stringify(parent[s.key] ?? null)) as unknown;
        }
      } else {
        const value = HOSTILE_STRINGS[mu.value % HOSTILE_STRINGS.length]!.value;
        injected.push(value);
        if (Array.isArray(parent) || typeof parent[s.key] !== 'object' || parent[s.key] === null) parent[s.key] = value;
        else (parent[s.key] as Record<string, unknown>)[value] = 'x';
      }
    }
  }
  const sources = renderModel(copy);
  for (const mu of mutations) {
    if (sources.length === 0) break;
    const file = sources[mu.at % sources.length]!;
    let text = file.text;
    const at = text.length === 0 ? 0 : mu.at % text.length;
    const lines = text.split('\n');
    const line = mu.at % lines.length;
    switch (mu.kind) {
      case 'delete-char':
        text = text.slice(0, at) + text.slice(at + 1);
        break;
      case 'duplicate-char':
        text = text.slice(0, at + 1) + text.slice(at);
        break;
      case 'swap-chars':
        if (at + 1 < text.length) text = text.slice(0, at) + text[at + 1] + text[at] + text.slice(at + 2);
        break;
      case 'insert-char':
        text = text.slice(0, at) + mu.char + text.slice(at);
        break;
      case 'change-digit': {
        const digits = [...text.matchAll(/[0-9]/g)];
        if (digits.length === 0) break;
        const index = digits[mu.at % digits.length]!.index;
        text = text.slice(0, index) + String(mu.digit) + text.slice(index + 1);
        break;
      }
      case 'delete-line':
        lines.splice(line, 1);
        text = lines.join('\n');
        break;
      case 'duplicate-line':
        lines.splice(line, 0, lines[line]!);
        text = lines.join('\n');
        break;
      case 'indent-line':
        lines[line] = `  ${lines[line]}`;
        text = lines.join('\n');
        break;
      case 'dedent-line':
        lines[line] = lines[line]!.replace(/^ {1,2}/, '');
        text = lines.join('\n');
        break;
      case 'swap-lines': {
        const other = mu.other % lines.length;
        [lines[line], lines[other]] = [lines[other]!, lines[line]!];
        text = lines.join('\n');
        break;
      }
      default:
        continue;
    }
    (sources as { path: string; text: string }[])[sources.indexOf(file)] = { path: file.path, text };
  }
  return { sources, injected };
}

// ---------------------------------------------------------------------------------------------------------------
// Checks shared by the properties

/** C0/C1 controls and bidi or zero-width characters: none may reach a printed diagnostic. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/;

/** Problems with the diagnostics of RESULT (empty when every one has a code, a file of SOURCES and a position). */
export function diagnosticProblems(result: CompileResult, sources: readonly SourceFile[]): string[] {
  const problems: string[] = [];
  const lines = new Map(sources.map((s) => [s.path, s.text.split('\n').length]));
  for (const d of result.diagnostics) {
    const where = `${d.file}:${d.line}:${d.column} ${d.code} ${JSON.stringify(d.message)}`;
    if (!(d.code in DIAGNOSTIC_CODES)) problems.push(`unknown code: ${where}`);
    if (!lines.has(d.file)) problems.push(`file is not an input: ${where}`);
    if (!Number.isInteger(d.line) || d.line < 1 || d.line > (lines.get(d.file) ?? 0) + 1) problems.push(`line out of range: ${where}`);
    if (!Number.isInteger(d.column) || d.column < 1) problems.push(`column out of range: ${where}`);
    if (d.message === '') problems.push(`empty message: ${where}`);
    if (UNPRINTABLE.test(d.message) || UNPRINTABLE.test(d.hint ?? '')) problems.push(`unprintable character in message: ${where}`);
  }
  if (result.ok !== !result.diagnostics.some((d) => d.severity === 'error')) problems.push('ok disagrees with the diagnostics');
  if (!result.ok && result.artifacts.length > 0) problems.push('artifacts despite errors');
  return problems;
}

/** `nft -j list` of TABLES without handles and counter values: what two loads of one artifact must share. */
export async function liveState(netns: string, tables: readonly { family: string; name: string }[]): Promise<string> {
  const nft = createNftDriver();
  const listed = await Promise.all(tables.map((t) => nft.listTable(t.family, t.name, { netns })));
  return JSON.stringify(listed, (key, value: unknown) => {
    if (key === 'handle') return undefined;
    if (key === 'counter' && value && typeof value === 'object') return {};
    if ((key === 'packets' || key === 'bytes') && typeof value === 'number') return 0;
    return value;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The properties

export interface PropertySpec {
  readonly name: string;
  readonly description: string;
  /** Needs root, nft and network namespaces. */
  readonly kernel: boolean;
  /** Runs in CI (property.test.ts). */
  readonly ciRuns: number;
  readonly property: () => fc.IAsyncPropertyWithHooks<never> | fc.IAsyncProperty<never> | fc.IProperty<never>;
}

function failIf(problems: readonly string[], context: () => string): void {
  if (problems.length > 0) throw new Error(`${problems.join('\n')}\n${context()}`);
}

function explain(sources: readonly SourceFile[], result?: CompileResult): string {
  const files = sources.map((s) => `--- ${s.path}\n${s.text}`).join('\n');
  const diags = result ? result.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.severity} ${d.code}: ${d.message}`).join('\n') : '';
  return `${files}\n${diags}`;
}

export const PROPERTIES: readonly PropertySpec[] = [
  {
    name: 'valid',
    description: 'a generated model compiles without errors',
    kernel: false,
    ciRuns: 200,
    property: () =>
      fc.property(model({ mesh: true }), style, (m, s) => {
        const sources = renderModel(m, [s]);
        const result = compile(sources);
        failIf(diagnosticProblems(result, sources), () => explain(sources, result));
        failIf(result.ok ? [] : ['a valid model did not compile'], () => explain(sources, result));
      }) as fc.IProperty<never>,
  },
  {
    name: 'permutation',
    description: 'byte-identical artifacts across permutations of files, documents, keys, meaning-free lists, IPv6 spellings, YAML styles and loader paths',
    kernel: false,
    ciRuns: 150,
    property: () =>
      fc.property(
        model({ mesh: true }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 16 }),
        fc.integer({ min: 0, max: 7 }),
        fc.array(style, { minLength: 1, maxLength: 3 }),
        (m, order, spelling, styles) => {
          const sources = renderModel(m);
          const reference = compile(sources);
          failIf(reference.ok ? [] : ['a valid model did not compile'], () => explain(sources, reference));
          const permuted = renderModel(permute(m, order, spelling), styles);
          const other = compile(permuted);
          failIf(other.ok ? [] : ['the permuted model did not compile'], () => explain(permuted, other));
          const a = reference.artifacts.map((x) => `${x.name} ${x.output}\n${x.text}`);
          const b = other.artifacts.map((x) => `${x.name} ${x.output}\n${x.text}`);
          failIf(JSON.stringify(a) === JSON.stringify(b) ? [] : ['the artifacts differ'], () => `${explain(sources)}\n=== permuted\n${explain(permuted)}`);
        },
      ) as fc.IProperty<never>,
  },
  {
    name: 'mutation',
    description: 'mutated YAML yields artifacts or positioned, coded errors, never an exception; injected hostile strings never reach an artifact',
    kernel: false,
    ciRuns: 400,
    property: () =>
      fc.property(model({ mesh: true }), fc.array(mutation, { minLength: 1, maxLength: 5 }), (m, mutations) => {
        const { sources, injected } = mutate(m, mutations);
        let result: CompileResult;
        try {
          result = compile(sources);
        } catch (error) {
          throw new Error(`compile threw ${(error as Error).stack}\n${explain(sources)}`);
        }
        failIf(diagnosticProblems(result, sources), () => explain(sources, result));
        const leaked = injected.filter((v) => v.length >= 3 && UNSAFE_CHAR.test(v) && result.artifacts.some((a) => a.text.includes(v)));
        failIf(leaked.map((v) => `hostile string reached an artifact: ${JSON.stringify(v)}`), () => explain(sources, result));
      }) as fc.IProperty<never>,
  },
  {
    name: 'loader-paths',
    description: "the loader's fast path (js-yaml) and precise path (yaml) give the same artifacts and diagnostics for any mutated text",
    kernel: false,
    ciRuns: 300,
    property: () =>
      fc.property(model({ mesh: true }), fc.array(mutation, { minLength: 0, maxLength: 4 }), (m, mutations) => {
        const { sources } = mutate(m, mutations);
        // A first line holding only a comment with `*x` means nothing to YAML but sends the file down the precise
        // path; its diagnostics are one line further down (those at the very start stay on line 1).
        const precise = sources.map((s) => ({
          path: s.path,
          text: s.text.startsWith('\ufeff') ? `\ufeff# *x\n${s.text.slice(1)}` : `# *x\n${s.text}`,
        }));
        const a = compile(sources);
        const b = compile(precise);
        const summary = (r: CompileResult, shift: number) =>
          JSON.stringify({
            ok: r.ok,
            artifacts: r.artifacts.map((x) => x.text),
            diagnostics: r.diagnostics.map((d) => `${d.file}:${Math.max(1, d.line - shift)}:${d.column} ${d.severity} ${d.code}`).sort(),
          });
        failIf(summary(a, 0) === summary(b, 1) ? [] : ['the two YAML paths disagree'], () => `${explain(sources, a)}\n=== precise path\n${explain(precise, b)}`);
      }) as fc.IProperty<never>,
  },
  {
    name: 'kernel-apply',
    description: 'every artifact of a generated model loads into a fresh network namespace, and loading it again leaves the same state',
    kernel: true,
    ciRuns: 25,
    property: () =>
      fc.asyncProperty(model({ mesh: true }), async (m) => {
        const sources = renderModel(m);
        const result = compile(sources);
        failIf(result.ok ? [] : ['a valid model did not compile'], () => explain(sources, result));
        const nft = createNftDriver();
        for (const artifact of result.artifacts) {
          await withNetns(async (netns) => {
            const first = await nft.apply(artifact.text, { netns });
            failIf(first.ok ? [] : [`nft refused the artifact: ${first.ok ? '' : first.stderr}`], () => `${explain(sources)}\n${artifact.text}`);
            const state = await liveState(netns, artifact.tables);
            const second = await nft.apply(artifact.text, { netns });
            failIf(second.ok ? [] : [`nft refused the second load: ${second.ok ? '' : second.stderr}`], () => artifact.text);
            const again = await liveState(netns, artifact.tables);
            failIf(state === again ? [] : ['the second load changed the state'], () => `${artifact.text}\n${state}\n${again}`);
          });
        }
      }) as fc.IAsyncProperty<never>,
  },
  {
    name: 'kernel-mutation',
    description: 'a mutated model that still compiles gives artifacts nft accepts (a typo never yields a file the node cannot load)',
    kernel: true,
    ciRuns: 30,
    property: () =>
      fc.asyncProperty(model({ mesh: true }), fc.array(mutation, { minLength: 1, maxLength: 3 }), async (m, mutations) => {
        const { sources } = mutate(m, mutations);
        const result = compile(sources);
        if (!result.ok) return;
        const nft = createNftDriver();
        for (const artifact of result.artifacts) {
          const checked = await nft.check(artifact.text, { isolated: true });
          failIf(checked.ok ? [] : [`nft refused a compiled artifact: ${checked.ok ? '' : checked.stderr}`], () => `${explain(sources, result)}\n${artifact.text}`);
        }
      }) as fc.IAsyncProperty<never>,
  },
];
