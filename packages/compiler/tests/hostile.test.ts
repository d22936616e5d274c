/**
 * Hostile input. (1) Every string field of every kind, found by walking the JSON Schemas, gets every value of the
 * hostile corpus (tests/fixtures/hostile/strings.json): a value that reaches nft text is either refused with a
 * coded error at its own line and column, or is made of safe characters only and loads in a real nft; a value
 * that never reaches nft text never shows up in an artifact. (2) YAML bombs, huge and deep files, duplicate keys,
 * tabs, binary garbage and non-UTF-8 bytes give a clear error in bounded time and memory, at the compiler layer
 * and at the CLI's byte layer (readSources).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Document, isMap, isScalar, LineCounter, parseAllDocuments, type Node } from 'yaml';
import { compile, DIAGNOSTIC_CODES, LOAD_LIMITS, type CompileResult, type SourceFile } from '@nftops/compiler';
import { createNftDriver } from '@nftops/nft-driver';
import { kernelAvailable } from '@nftops/testkit';
import { readSources } from '../../cli/src/io.js';
import { diagnosticProblems, HOSTILE_STRINGS, UNSAFE_CHAR, type Doc } from './arbitraries.js';
import { FIXTURES, REPO } from './helpers.js';

const HOSTILE = join(FIXTURES, 'hostile');
const FILE = 'hostile.yaml';

// ---------------------------------------------------------------------------------------------------------------
// The string fields of every kind

type Reach =
  /** The value can shape the artifact: refused, or safe characters only and loadable by nft. */
  | 'text'
  /** A file name (Artifact spec.output): refused, or a plain relative path. */
  | 'path'
  /** Never rendered (annotations, selectors, source directories): may be accepted, but never shows up. */
  | 'none';

interface StringField {
  readonly kind: string;
  /** `a.b[].c`: [] is the first item of a list, {} the value of a map entry, {key} the key of one. */
  readonly path: string;
  readonly reach: Reach;
  /** A valid value, and the text it must produce in the artifact: proves the injection point is live. */
  readonly sample?: readonly [value: string, shows: string];
  /** nft resolves the name when it loads the file (user and group names): no kernel check of accepted values. */
  readonly resolvedByNft?: boolean;
  /** Values the field accepts on purpose although they hold characters outside the safe set ("*" wildcards). */
  readonly special?: readonly string[];
}

const METADATA = (kind: string, shows: (name: string) => string | undefined): StringField[] => [
  { kind, path: 'apiVersion', reach: 'text' },
  { kind, path: 'kind', reach: 'text' },
  { kind, path: 'metadata.name', reach: 'text', ...(shows('zz9-sample') ? { sample: ['zz9-sample', shows('zz9-sample')!] as const } : {}) },
  { kind, path: 'metadata.labels{}', reach: 'none' },
  { kind, path: 'metadata.labels{key}', reach: 'none' },
  { kind, path: 'metadata.annotations{}', reach: 'none' },
  { kind, path: 'metadata.annotations{key}', reach: 'none' },
];

/** Every string-typed property of every schema, by hand; a test checks it against a walk of the schemas. */
const STRING_FIELDS: readonly StringField[] = [
  ...METADATA('LoadBalancer', (n) => `LoadBalancer/${n}`),
  { kind: 'LoadBalancer', path: 'spec.address', reach: 'text', sample: ['192.0.2.99', '192.0.2.99 . tcp . 80'] },
  { kind: 'LoadBalancer', path: 'spec.ports[].name', reach: 'text', sample: ['zz9p', 'TCP/80 zz9p'] },
  { kind: 'LoadBalancer', path: 'spec.ports[].protocol', reach: 'text', sample: ['UDP', '. udp . 80'] },
  { kind: 'LoadBalancer', path: 'spec.backends[].address', reach: 'text', sample: ['198.51.100.99', ': 198.51.100.99 . 80'] },
  { kind: 'LoadBalancer', path: 'spec.scheduler', reach: 'text', sample: ['random', 'numgen random'] },

  ...METADATA('NetworkPolicy', (n) => `NetworkPolicy/${n}`),
  { kind: 'NetworkPolicy', path: 'spec.podAddresses[]', reach: 'text', sample: ['198.51.100.99', '198.51.100.99 comment'] },
  { kind: 'NetworkPolicy', path: 'spec.ingress[].from[].ipBlock.cidr', reach: 'text', sample: ['203.0.0.0/16', 'ip saddr 203.0.0.0/16'] },
  { kind: 'NetworkPolicy', path: 'spec.ingress[].from[].ipBlock.except[]', reach: 'text', sample: ['203.0.113.128/26', 'ip saddr != 203.0.113.128/26'] },
  { kind: 'NetworkPolicy', path: 'spec.ingress[].ports[].protocol', reach: 'text', sample: ['SCTP', 'meta l4proto sctp'] },

  ...METADATA('Settings', (n) => `Settings/${n}`),
  { kind: 'Settings', path: 'spec.tables.nat', reach: 'text', sample: ['zz9nat', 'table inet zz9nat {'] },
  { kind: 'Settings', path: 'spec.tables.filter', reach: 'text', sample: ['zz9filter', 'table inet zz9filter {'] },
  { kind: 'Settings', path: 'spec.chains.prerouting', reach: 'text', sample: ['zz9pre', 'chain zz9pre {'] },
  { kind: 'Settings', path: 'spec.chains.postrouting', reach: 'text', sample: ['zz9post', 'chain zz9post {'] },
  { kind: 'Settings', path: 'spec.chains.forward', reach: 'text', sample: ['zz9fwd', 'chain zz9fwd {'] },
  { kind: 'Settings', path: 'spec.namePrefix', reach: 'text', special: [''], sample: ['zz9-', 'chain zz9-no-backends {'] },
  { kind: 'Settings', path: 'spec.emptyBackends', reach: 'text', sample: ['drop', 'counter drop comment "Settings/s IPv4 no backends"'] },
  { kind: 'Settings', path: 'spec.layout', reach: 'text', sample: ['per-service', 'dnat ip to 198.51.100.10:80'] },
  // Off: the backend map's type line runs straight into its elements, without the `counter` line between them.
  { kind: 'Settings', path: 'spec.backendCounters', reach: 'text', sample: ['off', ': ip daddr . th dport\n\t\telements = {'] },

  ...METADATA('Artifact', () => undefined),
  { kind: 'Artifact', path: 'spec.output', reach: 'path' },
  { kind: 'Artifact', path: 'spec.sources[]', reach: 'none' },
  { kind: 'Artifact', path: 'spec.selector.matchLabels{}', reach: 'none' },
  { kind: 'Artifact', path: 'spec.selector.matchLabels{key}', reach: 'none' },
  { kind: 'Artifact', path: 'spec.settings', reach: 'text' },

  ...METADATA('MeshRedirection', (n) => `MeshRedirection/${n}`),
  { kind: 'MeshRedirection', path: 'spec.mode', reach: 'text' },
  { kind: 'MeshRedirection', path: 'spec.sidecar.defaults', reach: 'text', sample: ['istio-cni', 'tcp dport 15020 counter return'] },
  { kind: 'MeshRedirection', path: 'spec.sidecar.interceptionMode', reach: 'text', sample: ['TPROXY', 'tproxy ip to :15006'] },
  { kind: 'MeshRedirection', path: 'spec.sidecar.inboundPorts.include', reach: 'text', special: ['*'] },
  { kind: 'MeshRedirection', path: 'spec.sidecar.outboundIPRanges.include', reach: 'text', special: ['*'] },
  { kind: 'MeshRedirection', path: 'spec.sidecar.outboundIPRanges.include[]', reach: 'text', special: ['*'], sample: ['10.99.0.0/16', 'ip daddr 10.99.0.0/16'] },
  { kind: 'MeshRedirection', path: 'spec.sidecar.outboundIPRanges.exclude', reach: 'text' },
  { kind: 'MeshRedirection', path: 'spec.sidecar.outboundIPRanges.exclude[]', reach: 'text', sample: ['10.98.0.0/16', 'ip daddr 10.98.0.0/16'] },
  { kind: 'MeshRedirection', path: 'spec.sidecar.excludeInterfaces[]', reach: 'text', sample: ['zz9if', 'iifname "zz9if"'] },
  { kind: 'MeshRedirection', path: 'spec.sidecar.virtualInterfaces[]', reach: 'text', sample: ['zz9vif', 'iifname "zz9vif"'] },
  { kind: 'MeshRedirection', path: 'spec.sidecar.dns.servers[]', reach: 'text', sample: ['192.0.2.99', 'ip daddr 192.0.2.99/32'] },
  { kind: 'MeshRedirection', path: 'spec.sidecar.hostIPv4LoopbackCidr', reach: 'text', sample: ['127.0.0.9/32', 'ip daddr 127.0.0.9/32'] },
  { kind: 'MeshRedirection', path: 'spec.sidecar.ownerGroups.include', reach: 'text', special: ['*'] },
  { kind: 'MeshRedirection', path: 'spec.sidecar.ownerGroups.include[]', reach: 'text', resolvedByNft: true, sample: ['zz9grp', 'skgid != "zz9grp"'] },
  { kind: 'MeshRedirection', path: 'spec.sidecar.ownerGroups.exclude[]', reach: 'text', resolvedByNft: true, sample: ['zz9grp', 'skgid "zz9grp"'] },
  { kind: 'MeshRedirection', path: 'spec.ambient.hostProbeSNATAddress', reach: 'text', sample: ['169.254.7.99', 'ip saddr 169.254.7.99'] },
  { kind: 'MeshRedirection', path: 'spec.ambient.hostProbeV6SNATAddress', reach: 'text', sample: ['fd16::99', 'ip6 saddr fd16::99'] },
  { kind: 'MeshRedirection', path: 'spec.ambient.pod.virtualInterfaces[]', reach: 'text', sample: ['zz9vif', 'iifname "zz9vif"'] },

  ...METADATA('AmbientNode', (n) => `AmbientNode/${n}`),
  { kind: 'AmbientNode', path: 'spec.hostProbeSNATAddress', reach: 'text', sample: ['169.254.7.99', 'snat to 169.254.7.99'] },
  { kind: 'AmbientNode', path: 'spec.hostProbeV6SNATAddress', reach: 'text', sample: ['fd16::99', 'snat to fd16::99'] },
  { kind: 'AmbientNode', path: 'spec.kubelet.user', reach: 'text', resolvedByNft: true, sample: ['zz9user', 'skuid "zz9user"'] },
  { kind: 'AmbientNode', path: 'spec.pods[].uid', reach: 'text', sample: ['zz9-pod', 'comment "zz9-pod"'] },
  { kind: 'AmbientNode', path: 'spec.pods[].addresses[]', reach: 'text', sample: ['10.0.0.99', '10.0.0.99 comment "pod-1"'] },
];

type Schema = Record<string, unknown>;

/** The string fields of a schema: string types, string consts and enums, map values and keys. */
function schemaStringFields(schema: Schema, root: Schema, path: string, out: Set<string>): Set<string> {
  const ref = schema.$ref as string | undefined;
  if (ref) return schemaStringFields((root.$defs as Record<string, Schema>)[ref.replace('#/$defs/', '')]!, root, path, out);
  for (const alternative of (schema.anyOf as Schema[] | undefined) ?? []) schemaStringFields(alternative, root, path, out);
  const enumeration = schema.enum as unknown[] | undefined;
  if (schema.type === 'string' || typeof schema.const === 'string' || enumeration?.every((e) => typeof e === 'string')) out.add(path);
  for (const [key, child] of Object.entries((schema.properties as Record<string, Schema> | undefined) ?? {})) {
    schemaStringFields(child, root, path ? `${path}.${key}` : key, out);
  }
  if (schema.items) schemaStringFields(schema.items as Schema, root, `${path}[]`, out);
  const additional = schema.additionalProperties;
  if (additional && typeof additional === 'object') schemaStringFields(additional as Schema, root, `${path}{}`, out);
  if (schema.type === 'object' && additional !== false && !schema.properties) out.add(`${path}{key}`);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Base documents: valid, and holding every field the list names

const meta = (name: string) => ({ name, labels: { tier: 'edge' }, annotations: { note: 'ok' } });
const API = 'nftops.dev/v1alpha1';

const LB: Doc = {
  apiVersion: API,
  kind: 'LoadBalancer',
  metadata: meta('web'),
  spec: {
    address: '192.0.2.10',
    scheduler: 'round-robin',
    ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
    backends: [{ address: '198.51.100.10' }],
  },
};

const SETTINGS: Doc = {
  apiVersion: API,
  kind: 'Settings',
  metadata: meta('s'),
  spec: {
    tables: { nat: 'lb_nat', filter: 'lb_filter' },
    chains: { prerouting: 'pre', postrouting: 'post', forward: 'lb_fwd' },
    namePrefix: 'p-',
    emptyBackends: 'reject',
    layout: 'maps',
  },
};

const EMPTY_LB: Doc = {
  apiVersion: API,
  kind: 'LoadBalancer',
  metadata: { name: 'empty' },
  spec: { address: '192.0.2.11', ports: [{ port: 80 }], backends: [] },
};

/** For each kind: the documents of the file, and the index of the document that gets the injection. */
const BASES: Record<string, { docs: Doc[]; target: number }> = {
  LoadBalancer: { docs: [LB], target: 0 },
  NetworkPolicy: {
    docs: [
      {
        apiVersion: API,
        kind: 'NetworkPolicy',
        metadata: meta('allow'),
        spec: {
          podAddresses: ['198.51.100.10'],
          ingress: [{ from: [{ ipBlock: { cidr: '203.0.113.0/24', except: ['203.0.113.0/26'] } }], ports: [{ protocol: 'TCP', port: 80 }] }],
        },
      },
    ],
    target: 0,
  },
  Settings: { docs: [SETTINGS, LB, EMPTY_LB], target: 0 },
  Artifact: {
    docs: [
      {
        apiVersion: API,
        kind: 'Artifact',
        metadata: meta('out'),
        spec: { output: 'out.nft', sources: ['.'], selector: { matchLabels: { tier: 'edge' } }, settings: 's' },
      },
      SETTINGS,
      LB,
    ],
    target: 0,
  },
  MeshRedirection: {
    docs: [
      {
        apiVersion: API,
        kind: 'MeshRedirection',
        metadata: meta('pod'),
        spec: {
          mode: 'sidecar',
          sidecar: {
            defaults: 'istio-init',
            interceptionMode: 'REDIRECT',
            inboundPorts: { include: '*' },
            outboundIPRanges: { include: ['10.0.0.0/8'], exclude: ['10.1.0.0/16'] },
            excludeInterfaces: ['eth9'],
            virtualInterfaces: ['veth9'],
            dns: { capture: true, servers: ['192.0.2.53'] },
            hostIPv4LoopbackCidr: '127.0.0.1/32',
            ownerGroups: { exclude: ['root'] },
          },
        },
      },
    ],
    target: 0,
  },
  'MeshRedirection/ambient': {
    docs: [
      {
        apiVersion: API,
        kind: 'MeshRedirection',
        metadata: meta('pod'),
        spec: {
          mode: 'ambient',
          ambient: { hostProbeSNATAddress: '169.254.7.127', hostProbeV6SNATAddress: 'fd16::1', pod: { virtualInterfaces: ['veth9'] } },
        },
      },
    ],
    target: 0,
  },
  AmbientNode: {
    docs: [
      {
        apiVersion: API,
        kind: 'AmbientNode',
        metadata: meta('node'),
        spec: {
          hostProbeSNATAddress: '169.254.7.127',
          hostProbeV6SNATAddress: 'fd16::1',
          kubelet: { user: 'root' },
          pods: [{ uid: 'pod-1', addresses: ['10.0.0.5'] }],
        },
      },
    ],
    target: 0,
  },
};

function baseFor(field: StringField) {
  return field.kind === 'MeshRedirection' && field.path.startsWith('spec.ambient') ? BASES['MeshRedirection/ambient']! : BASES[field.kind]!;
}

type Segment = { key: string } | { item: true } | { value: true } | { mapKey: true };

function segments(path: string): Segment[] {
  const out: Segment[] = [];
  for (const part of path.split('.')) {
    const m = /^([^[{]+)((?:\[\]|\{\}|\{key\})*)$/.exec(part)!;
    out.push({ key: m[1]! });
    for (const suffix of m[2]!.match(/\[\]|\{\}|\{key\}/g) ?? []) out.push(suffix === '[]' ? { item: true } : suffix === '{}' ? { value: true } : { mapKey: true });
  }
  return out;
}

/** A deep copy of DOC with VALUE at PATH (lists and maps created or reduced to their first entry on the way). */
function inject(doc: Doc, path: string, value: string): Doc {
  const copy = JSON.parse(JSON.stringify(doc)) as Doc;
  const segs = segments(path);
  let parent: Record<string, unknown> | unknown[] = copy;
  let key: string | number = '';
  const container = (next: Segment | undefined): unknown => (next && 'item' in next ? [] : {});
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    if (i > 0) {
      const current = (parent as Record<string | number, unknown>)[key];
      const wanted = container(seg);
      if (current === undefined || typeof current !== 'object' || current === null || Array.isArray(current) !== Array.isArray(wanted)) {
        (parent as Record<string | number, unknown>)[key] = wanted;
      }
      parent = (parent as Record<string | number, unknown>)[key] as Record<string, unknown> | unknown[];
    }
    if ('key' in seg) key = seg.key;
    else if ('item' in seg) {
      const list = parent as unknown[];
      if (list.length === 0) list.push(container(segs[i + 1]));
      key = 0;
    } else if ('value' in seg) {
      const map = parent as Record<string, unknown>;
      key = Object.keys(map)[0] ?? 'k';
    } else {
      // The key itself: a map whose only key is VALUE, holding what the first key held.
      const map = parent as Record<string, unknown>;
      const first = Object.values(map)[0] ?? 'v';
      for (const k of Object.keys(map)) delete map[k];
      map[value] = first;
      return copy;
    }
  }
  (parent as Record<string | number, unknown>)[key] = value;
  return copy;
}

function render(docs: readonly Doc[]): string {
  return docs.map((d) => new Document(d).toString({ lineWidth: 0 })).join('---\n');
}

/** Line and column of the value at PATH (or of the key, for {key} paths) in document INDEX of TEXT. */
function positionOf(text: string, index: number, path: string, value: string): { line: number; column: number } {
  const lineCounter = new LineCounter();
  const doc = parseAllDocuments(text, { lineCounter })[index] as unknown as Document.Parsed;
  let node: unknown = doc.contents;
  for (const seg of segments(path)) {
    if ('key' in seg) node = isMap(node) ? node.get(seg.key, true) : undefined;
    else if ('item' in seg) node = (node as { items?: unknown[] })?.items?.[0];
    else if ('value' in seg) node = isMap(node) ? (node.items[0]?.value as unknown) : undefined;
    else node = isMap(node) ? node.items.find((p) => isScalar(p.key) && p.key.value === value)?.key : undefined;
  }
  const offset = (node as Node | undefined)?.range?.[0];
  if (offset === undefined) throw new Error(`no node at ${path}`);
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

interface Case {
  readonly field: StringField;
  readonly name: string;
  readonly value: string;
  readonly sources: SourceFile[];
  readonly at: { line: number; column: number };
  readonly result: CompileResult;
}

function runCase(field: StringField, name: string, value: string): Case {
  const base = baseFor(field);
  const docs = base.docs.map((d, i) => (i === base.target ? inject(d, field.path, value) : d));
  const text = render(docs);
  const sources = [{ path: FILE, text }];
  let result: CompileResult;
  try {
    result = compile(sources);
  } catch (error) {
    throw new Error(`compile threw for ${field.kind} ${field.path} = ${JSON.stringify(value).slice(0, 80)}: ${(error as Error).stack}`);
  }
  return { field, name, value, sources, at: positionOf(text, base.target, field.path, value), result };
}

const SAFE = /^[A-Za-z0-9_.:/-]+$/;

/** What is wrong with CASE (empty when nothing is). */
function caseProblems(c: Case): string[] {
  const { field, value, result } = c;
  const problems = diagnosticProblems(result, c.sources);
  if (result.ok) {
    const texts = result.artifacts.map((a) => a.text);
    if (field.reach === 'text' && !SAFE.test(value) && !(field.special ?? []).includes(value)) {
      problems.push('accepted a value with characters outside [A-Za-z0-9_.:/-]');
    }
    if (field.reach === 'path') {
      const output = result.artifacts[0]?.output ?? '';
      if (value.startsWith('/') || value.split('/').some((s) => s === '..' || s === '.' || s === '') || output.split('/').includes('..')) {
        problems.push(`accepted an output path that leaves its directory: ${output}`);
      }
    }
    if (value.length >= 3 && UNSAFE_CHAR.test(value) && texts.some((t) => t.includes(value))) problems.push('the value shows up in the artifact');
  } else {
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    if (!errors.some((d) => d.file === FILE && d.line === c.at.line && d.column === c.at.column)) {
      problems.push(`no error at the value (${c.at.line}:${c.at.column})`);
    }
  }
  return problems.map((p) => `${field.kind} ${field.path} = ${c.name} ${JSON.stringify(value).slice(0, 60)}: ${p}\n  ${result.diagnostics.map((d) => `${d.line}:${d.column} ${d.code} ${d.message}`).join('\n  ')}`);
}

// ---------------------------------------------------------------------------------------------------------------

/** Accepted artifacts (outside names nft resolves) that must load into nft: checked together at the end. */
const accepted = new Map<string, string>();

describe('hostile strings in every string field', () => {
  it('the field list covers every string property of every schema, and only those', () => {
    const dir = join(REPO, 'schemas', 'v1alpha1');
    const fromSchemas = readdirSync(dir)
      .sort()
      .flatMap((file) => {
        const schema = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Schema;
        const kind = (schema.properties as { kind: { const: string } }).kind.const;
        return [...schemaStringFields(schema, schema, '', new Set())].map((path) => `${kind} ${path}`);
      })
      .sort();
    expect(STRING_FIELDS.map((f) => `${f.kind} ${f.path}`).sort()).toEqual(fromSchemas);
  });

  it('the corpus holds every kind of hostile value the issue lists', () => {
    const values = HOSTILE_STRINGS.map((h) => h.value);
    for (const needle of ['"', "'", ';', '{', '}', '\n', '\r', '#', '\\', '$', '@', '\0', '\u202e', '\u0435']) {
      expect(values.some((v) => v.includes(needle)), JSON.stringify(needle)).toBe(true);
    }
    for (const exact of ['', '-x', '..', '/etc/passwd', 'accept', 'table']) expect(values).toContain(exact);
    expect(values.some((v) => v.length > 4096)).toBe(true);
    expect(new Set(HOSTILE_STRINGS.map((h) => h.name)).size).toBe(HOSTILE_STRINGS.length);
  });

  it('every base document compiles, and every sample value reaches the artifact where the field says', () => {
    for (const [name, base] of Object.entries(BASES)) {
      const result = compile([{ path: FILE, text: render(base.docs) }]);
      expect(result.ok, `${name}: ${result.diagnostics.map((d) => d.message).join('; ')}`).toBe(true);
    }
    for (const field of STRING_FIELDS.filter((f) => f.sample)) {
      const [value, shows] = field.sample!;
      const c = runCase(field, 'sample', value);
      expect(c.result.ok, `${field.kind} ${field.path}: ${c.result.diagnostics.map((d) => d.message).join('; ')}`).toBe(true);
      expect(c.result.artifacts.map((a) => a.text).join('\n'), `${field.kind} ${field.path}`).toContain(shows);
      if (!field.resolvedByNft) accepted.set(c.result.artifacts.map((a) => a.text).join('\n'), `sample for ${field.kind} ${field.path}`);
    }
  });

  it.each(STRING_FIELDS.map((f) => [`${f.kind} ${f.path}`, f] as const))('%s', (_label, field) => {
    const problems: string[] = [];
    for (const { name, value } of HOSTILE_STRINGS) {
      const c = runCase(field, name, value);
      problems.push(...caseProblems(c));
      if (c.result.ok && !field.resolvedByNft) {
        for (const artifact of c.result.artifacts) accepted.set(artifact.text, `${field.kind} ${field.path} = ${name}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('a hostile key anywhere is an unknown field, reported at the key, and printed on one line', () => {
    for (const { name, value } of HOSTILE_STRINGS) {
      if (value === '' || value.length > 4096) continue;
      const docs = [{ ...LB, spec: { ...(LB.spec as Doc), [value]: 1 } }];
      const text = render(docs);
      const result = compile([{ path: FILE, text }]);
      const at = positionOf(text, 0, 'spec{key}', value);
      const unknown = result.diagnostics.find((d) => d.code === 'SCHEMA_UNKNOWN_FIELD');
      expect(unknown, name).toBeDefined();
      expect([unknown!.line, unknown!.column], name).toEqual([at.line, at.column]);
      expect(unknown!.message, name).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e]/);
    }
  });

  it.runIf(kernelAvailable())('every accepted value gives an artifact the real nft loads', async () => {
    const nft = createNftDriver();
    const texts = [...accepted.keys()];
    expect(texts.length).toBeGreaterThan(10);
    // One transaction holding them all (each replaces its tables whole); one by one only to name a culprit.
    const all = await nft.check(texts.join('\n'), { isolated: true });
    if (all.ok) return;
    const refused: string[] = [];
    for (const text of texts) {
      const one = await nft.check(text, { isolated: true });
      if (!one.ok) refused.push(`${accepted.get(text)}: ${one.stderr}`);
    }
    expect(refused).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// YAML bombs, big, deep and broken files

interface Bomb {
  readonly name: string;
  readonly text: () => string;
  /** Codes of which at least one must be reported. */
  readonly codes: readonly string[];
}

function deepBlock(levels: number): string {
  const lines: string[] = [];
  for (let i = 0; i < levels; i++) lines.push(`${' '.repeat(i)}a:`);
  return `${lines.join('\n')} 1\n`;
}

function manyKeys(count: number, tail: string): string {
  const parts = ['apiVersion: nftops.dev/v1alpha1\nkind: LoadBalancer\nmetadata: { name: web }\nspec:\n  address: 192.0.2.10\n  ports: [{ port: 80 }]\n  backends: [{ address: 198.51.100.10 }]\n  x:\n'];
  for (let i = 0; i < count; i++) parts.push(`    k${i}: 1\n`);
  parts.push(tail);
  return parts.join('');
}

const rejected = (file: string) => () => readFileSync(join(HOSTILE, 'rejected', file), 'utf8');

const BOMBS: readonly Bomb[] = [
  { name: 'billion laughs (9 levels of 9 aliases)', text: rejected('billion-laughs.yaml.txt'), codes: ['YAML_ALIAS_LIMIT'] },
  { name: 'aliases expanding inside a LoadBalancer', text: rejected('alias-in-spec.yaml.txt'), codes: ['YAML_ALIAS_LIMIT'] },
  { name: '100000 aliases of one scalar', text: () => `a: &x 1\nb:\n${Array.from({ length: 100_000 }, (_, i) => `  k${i}: *x\n`).join('')}`, codes: ['YAML_ALIAS_LIMIT'] },
  { name: 'duplicate keys', text: rejected('duplicate-keys.yaml.txt'), codes: ['YAML_DUPLICATE_KEY'] },
  { name: '100000 keys, the last one repeated', text: () => manyKeys(100_000, '    k0: 2\n'), codes: ['YAML_DUPLICATE_KEY'] },
  { name: '100000 keys in an unknown field', text: () => manyKeys(100_000, ''), codes: ['SCHEMA_UNKNOWN_FIELD'] },
  { name: 'tabs as indentation', text: rejected('tabs.yaml.txt'), codes: ['YAML_SYNTAX'] },
  { name: 'YAML 1.1 merge keys', text: rejected('merge-key.yaml.txt'), codes: ['SCHEMA_UNKNOWN_FIELD'] },
  { name: '__proto__ and constructor keys', text: rejected('proto-pollution.yaml.txt'), codes: ['SCHEMA_UNKNOWN_FIELD'] },
  { name: 'tags', text: rejected('tags.yaml.txt'), codes: ['SCHEMA_TYPE', 'SCHEMA_PATTERN'] },
  { name: 'flow nesting 100000 deep', text: () => `${'['.repeat(100_000)}${']'.repeat(100_000)}`, codes: ['YAML_TOO_DEEP'] },
  { name: 'unclosed flow nesting 100000 deep', text: () => '['.repeat(100_000), codes: ['YAML_TOO_DEEP'] },
  { name: 'flow maps 100000 deep', text: () => '{a: '.repeat(100_000), codes: ['YAML_TOO_DEEP'] },
  { name: 'block nesting 2500 deep', text: () => deepBlock(2500), codes: ['YAML_TOO_DEEP'] },
  { name: 'compact sequences 50000 deep', text: () => `${'- '.repeat(50_000)}x\n`, codes: ['YAML_TOO_DEEP'] },
  { name: 'block nesting 65 deep (just over the limit)', text: () => deepBlock(LOAD_LIMITS.maxDepth + 1), codes: ['YAML_TOO_DEEP'] },
  { name: 'a file over 4 MiB', text: () => `apiVersion: nftops.dev/v1alpha1\n# ${'x'.repeat(LOAD_LIMITS.maxFileBytes)}\n`, codes: ['YAML_TOO_LARGE'] },
  { name: 'a file over 4 MiB in multi-byte characters', text: () => `a: "${'é'.repeat(LOAD_LIMITS.maxFileBytes / 2 + 1)}"\n`, codes: ['YAML_TOO_LARGE'] },
  { name: 'binary garbage', text: () => garbage(65_536, 7).toString('latin1'), codes: ['YAML_SYNTAX', 'DOCUMENT_NOT_OBJECT'] },
  { name: 'NUL bytes', text: () => 'apiVersion: nftops.dev/v1alpha1\0\0\0\nkind: \0\n', codes: ['YAML_SYNTAX', 'UNKNOWN_API_VERSION', 'DOCUMENT_NOT_OBJECT'] },
  { name: 'a lone carriage return', text: () => 'apiVersion: nftops.dev/v1alpha1\rkind: LoadBalancer\n', codes: ['YAML_SYNTAX'] },
  { name: 'weights 1000:999 on 4096 backends and 1024 ports', text: () => weightBomb(1024), codes: ['SCHEMA_RANGE'] },
  { name: 'a GID of 23 digits', text: () => 'apiVersion: nftops.dev/v1alpha1\nkind: MeshRedirection\nmetadata: { name: m }\nspec:\n  mode: sidecar\n  sidecar:\n    ownerGroups: { exclude: ["99999999999999999999999"] }\n', codes: ['MESH_GROUP_NAME'] },
];

/** Deterministic bytes. */
function garbage(length: number, seed: number): Buffer {
  let state = seed;
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

function weightBomb(ports: number): string {
  const lines = ['apiVersion: nftops.dev/v1alpha1', 'kind: LoadBalancer', 'metadata: { name: web }', 'spec:', '  address: 192.0.2.1', '  ports:'];
  for (let p = 1; p <= ports; p++) lines.push(`  - { port: ${p} }`);
  lines.push('  backends:');
  for (let b = 0; b < 4096; b++) lines.push(`  - { address: 10.${b >> 8}.${b & 255}.1, weight: ${b % 2 ? 999 : 1000} }`);
  return `${lines.join('\n')}\n`;
}

describe('YAML bombs and broken files', () => {
  it.each(BOMBS.map((b) => [b.name, b] as const))('%s: a clear error within 10 s', (_name, bomb) => {
    const text = bomb.text();
    const started = performance.now();
    const result = compile([{ path: FILE, text }]);
    const ms = performance.now() - started;
    expect(result.ok).toBe(false);
    expect(result.diagnostics.map((d) => d.code).filter((c) => bomb.codes.includes(c)), JSON.stringify(result.diagnostics.slice(0, 3))).not.toEqual([]);
    expect(diagnosticProblems(result, [{ path: FILE, text }])).toEqual([]);
    expect(result.diagnostics.length).toBeLessThan(1000);
    expect(ms).toBeLessThan(10_000);
  });

  it('a mapping used as a key gives an error, and no process warning on stderr', async () => {
    const warnings: string[] = [];
    const listener = (warning: Error) => warnings.push(warning.message);
    process.on('warning', listener);
    try {
      // `# *x` sends the file down the precise path, whose converter warned about such keys.
      const result = compile([{ path: FILE, text: '? { "x\\u001b[31m\\nforged": 1 }\n: v\napiVersion: nftops.dev/v1alpha1\n# *x\n' }]);
      expect(result.ok).toBe(false);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listener);
    }
    expect(warnings).toEqual([]);
  });

  it('every diagnostic code the bombs expect exists', () => {
    for (const bomb of BOMBS) for (const code of bomb.codes) expect(DIAGNOSTIC_CODES).toHaveProperty(code);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Bounded memory: the bombs in a child process with a 256 MB heap, each compiled twice

describe('bounded memory', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nftops-hostile-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('every bomb, compiled twice in one process limited to a 256 MB heap, ends with an error, the process alive', async () => {
    // The compiler from its sources, bundled (rolldown comes with vite): the child runs plain node.
    const { rolldown } = (await import('rolldown')) as typeof import('rolldown');
    const build = await rolldown({
      input: join(REPO, 'packages/compiler/src/index.ts'),
      platform: 'node',
      resolve: { alias: { '@nftops/artifact': join(REPO, 'packages/artifact/src/index.ts') } },
      logLevel: 'silent',
    });
    await build.write({ file: join(dir, 'compiler.mjs'), format: 'esm' });
    await build.close();
    const inputs = join(dir, 'inputs');
    mkdirSync(inputs);
    BOMBS.forEach((bomb, i) => writeFileSync(join(inputs, `${String(i).padStart(2, '0')}.yaml`), bomb.text()));
    writeFileSync(
      join(dir, 'child.mjs'),
      `import { readdirSync, readFileSync } from 'node:fs';
import { compile } from './compiler.mjs';
const dir = ${JSON.stringify(inputs)};
const out = [];
for (const file of readdirSync(dir).sort()) {
  const text = readFileSync(dir + '/' + file, 'utf8');
  for (let round = 0; round < 2; round++) {
    const t = performance.now();
    const r = compile([{ path: file, text }]);
    out.push({ file, round, ok: r.ok, codes: [...new Set(r.diagnostics.map((d) => d.code))], ms: Math.round(performance.now() - t), heapMB: Math.round(process.memoryUsage().heapUsed / 1e6) });
  }
}
process.stdout.write(JSON.stringify(out));
`,
    );
    const child = spawnSync(process.execPath, ['--max-old-space-size=256', join(dir, 'child.mjs')], { encoding: 'utf8', timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    expect(child.signal, child.stderr.slice(0, 2000)).toBeNull();
    expect(child.status, child.stderr.slice(0, 2000)).toBe(0);
    const runs = JSON.parse(child.stdout) as { file: string; round: number; ok: boolean; codes: string[]; ms: number; heapMB: number }[];
    expect(runs).toHaveLength(BOMBS.length * 2);
    for (const run of runs) {
      const bomb = BOMBS[Number(run.file.slice(0, 2))]!;
      expect(run.ok, bomb.name).toBe(false);
      expect(run.codes.some((c) => bomb.codes.includes(c)), `${bomb.name}: ${run.codes.join(', ')}`).toBe(true);
      expect(run.heapMB, bomb.name).toBeLessThan(256);
      expect(run.ms, bomb.name).toBeLessThan(10_000);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The byte layer: the CLI reads bytes, checks UTF-8, then hands text to the compiler

describe('bytes on disk (readSources, then compile)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nftops-bytes-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const valid = Buffer.from('apiVersion: nftops.dev/v1alpha1\nkind: LoadBalancer\nmetadata: { name: web }\nspec:\n  address: 192.0.2.10\n  ports: [{ port: 80 }]\n  backends: [{ address: 198.51.100.10 }]\n');
  const cases: [string, Buffer, { code: string; line?: number; column?: number } | 'ok'][] = [
    ['a lone continuation byte', Buffer.concat([valid.subarray(0, 40), Buffer.from([0x80]), valid.subarray(40)]), { code: 'YAML_NOT_UTF8', line: 2, column: 9 }],
    ['an overlong encoding of "/"', Buffer.concat([Buffer.from('a: '), Buffer.from([0xc0, 0xaf]), Buffer.from('\n')]), { code: 'YAML_NOT_UTF8', line: 1, column: 4 }],
    ['an encoded surrogate', Buffer.concat([Buffer.from('a: b\nc: '), Buffer.from([0xed, 0xa0, 0x80])]), { code: 'YAML_NOT_UTF8', line: 2, column: 4 }],
    ['Latin-1 text', Buffer.from('a: caf\xe9\n', 'latin1'), { code: 'YAML_NOT_UTF8', line: 1, column: 7 }],
    ['UTF-16 with a byte order mark', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('a: b\n', 'utf16le')]), { code: 'YAML_NOT_UTF8', line: 1, column: 1 }],
    ['binary garbage', garbage(4096, 11), { code: 'YAML_NOT_UTF8' }],
    ['a file over 4 MiB', Buffer.concat([valid, Buffer.from(`# ${'x'.repeat(LOAD_LIMITS.maxFileBytes)}\n`)]), { code: 'YAML_TOO_LARGE', line: 1, column: 1 }],
    ['NUL bytes (valid UTF-8, escaped in the message)', Buffer.concat([valid.subarray(0, 30), Buffer.from([0, 0]), valid.subarray(30)]), { code: 'UNKNOWN_API_VERSION', line: 1, column: 13 }],
    ['a UTF-8 byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), valid]), 'ok'],
  ];

  it.each(cases)('%s', (name, bytes, expected) => {
    const file = `${name.replace(/[^a-z0-9]+/gi, '-')}.yaml`;
    writeFileSync(join(dir, file), bytes);
    const started = performance.now();
    const read = readSources(dir, [file]);
    const result = compile(read.sources);
    const diagnostics = [...read.diagnostics, ...result.diagnostics];
    expect(performance.now() - started).toBeLessThan(10_000);
    if (expected === 'ok') {
      expect(diagnostics).toEqual([]);
      expect(result.ok).toBe(true);
      return;
    }
    const found = diagnostics.find((d) => d.code === expected.code);
    expect(found, JSON.stringify(diagnostics.slice(0, 3))).toBeDefined();
    expect(found!.file).toBe(file);
    expect(found!.line).toBeGreaterThanOrEqual(1);
    expect(found!.column).toBeGreaterThanOrEqual(1);
    if (expected.line !== undefined) expect([found!.line, found!.column]).toEqual([expected.line, expected.column]);
  });
});
