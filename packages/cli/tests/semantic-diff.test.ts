import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SourceFile } from '@nftops/compiler';
import { main } from '@nftops/cli';
import { formatSemanticDiff, semanticDiffArtifacts, type SemanticDiff } from '../src/semantic-diff/index.js';
import { compileOne, exampleSources } from './fixtures/explain/scenarios.js';
import { captureIo } from './helpers.js';

/**
 * `nftops diff --semantic`: pairs of artifacts compiled from the examples before and after one edit. The human
 * output of each pair is a golden file in fixtures/semantic-diff (NFTOPS_UPDATE_GOLDEN=1 rewrites them).
 */

const GOLDEN = new URL('./fixtures/semantic-diff/', import.meta.url);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** The example's sources with FROM replaced by TO in FILE (which must contain it). */
function edit(example: string, file: string, from: string, to: string, sources = exampleSources(example)): SourceFile[] {
  return sources.map((s) => {
    if (!s.path.endsWith(`/${file}`)) return s;
    if (!s.text.includes(from)) throw new Error(`${file} does not contain ${JSON.stringify(from)}`);
    return { ...s, text: s.text.replace(from, to) };
  });
}

const add = (sources: SourceFile[], path: string, text: string) => [...sources, { path, text }];

const API = `apiVersion: nftops.dev/v1alpha1
kind: LoadBalancer
metadata: { name: api }
spec:
  address: 192.0.2.12
  ports: [{ name: grpc, protocol: TCP, port: 443, targetPort: 8443 }]
  backends: [{ address: 198.51.100.14 }, { address: 198.51.100.15, weight: 2 }]
`;
const PER_SERVICE = `apiVersion: nftops.dev/v1alpha1
kind: Settings
metadata: { name: default }
spec:
  layout: per-service
`;

const lbaas = () => exampleSources('lbaas-request');
const dual = () => exampleSources('dual-stack');

const CASES: Record<string, [SourceFile[] | undefined, SourceFile[]]> = {
  'service-added': [lbaas(), add(lbaas(), 'examples/lbaas-request/api.yaml', API)],
  'service-added-per-service': [dual(), add(dual(), 'examples/dual-stack/api.yaml', API)],
  'backend-changed': [lbaas(), edit('lbaas-request', 'services.yaml', '- address: 198.51.100.12', '- address: 198.51.100.14')],
  'backend-added-per-service': [dual(), edit('dual-stack', 'web.yaml', '    - { address: 2001:db8:b::22 }\n', '    - { address: 2001:db8:b::22 }\n    - { address: 2001:db8:b::23 }\n')],
  'weight-changed': [lbaas(), edit('lbaas-request', 'services.yaml', '- address: 198.51.100.11', '- address: 198.51.100.11\n      weight: 2')],
  'weight-changed-per-service': [dual(), edit('dual-stack', 'web.yaml', 'weight: 2 }', 'weight: 3 }')],
  'port-changed': [lbaas(), edit('lbaas-request', 'services.yaml', 'port: 8443\n', 'port: 9443\n')],
  'scheduler-and-snat-changed': [dual(), edit('dual-stack', 'web.yaml', 'scheduler: source-hash\n  snat: false', 'scheduler: round-robin\n  snat: true')],
  'no-backends-restored': [dual(), edit('dual-stack', 'web.yaml', 'backends: []', 'backends: [{ address: 2001:db8:b::31 }]')],
  'policy-rule-changed': [lbaas(), edit('lbaas-request', 'policies.yaml', 'except: [203.0.113.128/25]', 'except: [203.0.113.192/26]')],
  'policy-pods-changed': [lbaas(), edit('lbaas-request', 'policies.yaml', 'podAddresses: [198.51.100.11, 198.51.100.12, 198.51.100.13]', 'podAddresses: [198.51.100.11, 198.51.100.12]')],
  'mesh-knob-changed': [exampleSources('mesh-sidecar-default'), edit('mesh-sidecar-default', 'productpage.yaml', 'mode: sidecar', 'mode: sidecar\n  sidecar:\n    proxyPort: 15002')],
  'mesh-exclude-added': [exampleSources('mesh-sidecar-tproxy-dns'), edit('mesh-sidecar-tproxy-dns', 'reviews.yaml', '    defaults: istio-cni\n', '    defaults: istio-cni\n    outboundPorts: { exclude: [5432] }\n')],
  'table-renamed': [dual(), edit('dual-stack', 'settings.yaml', 'nat: lb_nat', 'nat: edge_nat')],
  'layout-switched': [lbaas(), add(lbaas(), 'examples/lbaas-request/settings.yaml', PER_SERVICE)],
  'artifact-missing': [undefined, exampleSources('mesh-ambient-node')],
};

const diffs = new Map<string, SemanticDiff>();
function diffOf(name: string): SemanticDiff {
  let diff = diffs.get(name);
  if (!diff) {
    const [before, after] = CASES[name]!;
    diffs.set(name, (diff = semanticDiffArtifacts(before ? compileOne(before) : undefined, compileOne(after))));
  }
  return diff;
}
const object = (name: string, ref: string) => diffOf(name).objects.find((o) => o.object === ref);

describe('semantic diff: golden output per case', () => {
  it.each(Object.keys(CASES))('%s', (name) => {
    const text = formatSemanticDiff(diffOf(name), `${name}.nft`);
    const golden = new URL(`${name}.txt`, GOLDEN);
    if (process.env.NFTOPS_UPDATE_GOLDEN === '1') writeFileSync(golden, text);
    expect(text).toBe(readFileSync(golden, 'utf8'));
  });
});

describe('semantic diff: what each case says', () => {
  it('a service added: its ports and backends, the elements it adds, nothing else', () => {
    const diff = diffOf('service-added');
    // api has 3 slots (weights 1 and 2) like echo: it joins echo's group chain, so Settings is unchanged.
    expect(diff.objects.map((o) => `${o.object} ${o.status}`)).toEqual(['LoadBalancer/api added']);
    expect(object('service-added', 'LoadBalancer/api')!.changes).toEqual([
      'port TCP/443 grpc added on 192.0.2.12: round-robin over 198.51.100.14 . 8443, 198.51.100.15 . 8443 (weight 2), snat',
    ]);
    expect(object('service-added', 'LoadBalancer/api')!.elements).toEqual({ added: 4, removed: 0, changed: 0 });
    const perService = diffOf('service-added-per-service');
    expect(perService.objects.map((o) => `${o.object} ${o.status}`)).toEqual(['LoadBalancer/api added']);
    expect(perService.objects[0]!.rules).toEqual({ added: 1, removed: 0, changed: 0 });
  });

  it('backends: replaced, added, weights (as slots), in both layouts', () => {
    expect(object('backend-changed', 'LoadBalancer/echo')!.changes).toEqual([
      'TCP/80 http: backend 198.51.100.14 . 8080 added (slot 2)',
      'TCP/80 http: backend 198.51.100.12 . 8080 removed (was slot 1)',
      'TCP/8443 alt: backend 198.51.100.14 . 8443 added (slot 2)',
      'TCP/8443 alt: backend 198.51.100.12 . 8443 removed (was slot 1)',
      'UDP/53 dns: backend 198.51.100.14 . 5353 added (slot 2)',
      'UDP/53 dns: backend 198.51.100.12 . 5353 removed (was slot 1)',
    ]);
    expect(object('backend-added-per-service', 'LoadBalancer/web-v6')!.changes).toEqual([
      'TCP/443 https: backend 2001:db8:b::23 . 8443 added (slot 2)',
      'UDP/443 quic: backend 2001:db8:b::23 . 8443 added (slot 2)',
    ]);
    expect(object('weight-changed', 'LoadBalancer/echo')!.changes[0]).toBe('TCP/80 http: backend 198.51.100.11 . 8080 weight 1 -> 2 (1/3 -> 2/4 of the slots, now slots 0-1)');
    expect(object('weight-changed', 'Settings/default')!.changes).toEqual(['inet nftops_nat chain lb4-round-robin-4-snat added', 'inet nftops_nat chain lb4-round-robin-3-snat removed']);
    expect(object('weight-changed-per-service', 'LoadBalancer/web-v4')).toMatchObject({
      changes: ['TCP/443 https: backend 198.51.100.21 . 8443 weight 2 -> 3 (2/4 -> 3/5 of the slots, now slots 0-2)'],
      rules: { added: 0, removed: 0, changed: 1 },
    });
  });

  it('ports, schedulers, SNAT and services that get backends again', () => {
    expect(object('port-changed', 'LoadBalancer/echo')!.changes).toEqual([
      'port TCP/8443 alt removed',
      'port TCP/9443 alt added: round-robin over 198.51.100.11 . 8443, 198.51.100.12 . 8443, 198.51.100.13 . 8443, snat',
    ]);
    expect(object('scheduler-and-snat-changed', 'LoadBalancer/web-v6')!.changes).toEqual([
      'TCP/443 https: scheduler source-hash -> round-robin',
      'TCP/443 https: snat off -> on',
      'UDP/443 quic: scheduler source-hash -> round-robin',
      'UDP/443 quic: snat off -> on',
    ]);
    expect(object('no-backends-restored', 'LoadBalancer/retired')!.changes).toEqual([
      'SCTP/3868: backends again: to 2001:db8:b::31 . 3868, snat',
      'inet lb_nat chain lb-no-backends removed', // its rule was the chain's only one
    ]);
  });

  it('policies: a rule changed, a pod no longer selected', () => {
    const rule = object('policy-rule-changed', 'NetworkPolicy/allow-http')!;
    expect(rule.changes).toEqual(['rules: 1 added, 1 removed (1 -> 1)']);
    expect(rule.lines).toEqual([
      {
        table: 'inet nftops_filter',
        location: 'chain policy-allow-http',
        kind: 'rule',
        added: [],
        removed: [],
        changed: [
          {
            from: 'ip saddr 203.0.113.0/24 ip saddr != 203.0.113.128/25 meta l4proto tcp th dport { 8000-8010, 8080 } counter accept comment "NetworkPolicy/allow-http"',
            to: 'ip saddr 203.0.113.0/24 ip saddr != 203.0.113.192/26 meta l4proto tcp th dport { 8000-8010, 8080 } counter accept comment "NetworkPolicy/allow-http"',
          },
        ],
      },
    ]);
    expect(diffOf('policy-rule-changed').objects.map((o) => o.object)).toEqual(['NetworkPolicy/allow-http']);
    expect(object('policy-pods-changed', 'NetworkPolicy/allow-dns')!.changes).toEqual(['no longer selects pod 198.51.100.13']);
    // .13 is now selected by block-range alone: the pods map jumps straight to its chain, and the pod's default
    // deny carries its name.
    const blockRange = object('policy-pods-changed', 'NetworkPolicy/block-range')!;
    expect(blockRange.changes).toEqual([]);
    expect(blockRange.elements.changed).toBe(2);
  });

  it('mesh knobs: the chain rules they change', () => {
    const mesh = object('mesh-knob-changed', 'MeshRedirection/productpage-v1')!;
    expect(mesh.status).toBe('changed');
    expect(mesh.lines.map((l) => `${l.location}: ${l.changed.length} changed`)).toEqual(['chain istio-redirect: 1 changed']);
    expect(diffOf('mesh-exclude-added').objects.map((o) => o.object)).toEqual(['MeshRedirection/reviews-v2']);
    // The list replaces istio-cni's default exclude [15020]: the TCP and UDP return rules change in place.
    expect(diffOf('mesh-exclude-added').objects[0]).toMatchObject({ rules: { added: 0, removed: 0, changed: 2 }, lines: [{ location: 'chain istio-output' }] });
  });

  it('a renamed table is a rename, not a table removed and one added', () => {
    const diff = diffOf('table-renamed');
    expect(diff.tables).toEqual({ added: [], removed: [], renamed: [{ from: 'inet lb_nat', to: 'inet edge_nat' }] });
    expect(diff.objects).toEqual([
      { object: 'Settings/edge', status: 'changed', changes: ['table inet lb_nat renamed to inet edge_nat'], rules: { added: 0, removed: 0, changed: 0 }, elements: { added: 0, removed: 0, changed: 0 }, lines: [] },
    ]);
  });

  it('a layout switch changes lines but no service', () => {
    const diff = diffOf('layout-switched');
    const echo = object('layout-switched', 'LoadBalancer/echo')!;
    expect(echo.changes).toEqual([]); // same ports, backends, scheduler and SNAT
    expect(object('layout-switched', 'Settings/default')!.changes).toContain('inet nftops_nat map dispatch4 removed');
    expect(echo.rules.added).toBe(3);
    expect(echo.elements.removed).toBe(12);
    expect(diff.objects.map((o) => o.object)).toContain('Settings/default');
  });

  it('a missing committed artifact: everything is added; an unreadable one: not available', () => {
    const diff = diffOf('artifact-missing');
    expect(diff.tables.added).toEqual(['inet istio-ambient-nat']);
    expect(diff.objects.map((o) => `${o.object} ${o.status}`)).toEqual(['AmbientNode/worker-1 added']);
    const broken = semanticDiffArtifacts('table inet x {\n}\n', compileOne(lbaas()));
    expect(broken).toMatchObject({ available: false, reason: expect.stringContaining('ARTIFACT_NOT_AN_ARTIFACT') });
    expect(formatSemanticDiff(broken, 'x.nft')).toMatch(/^semantic diff of x\.nft: not available: the committed file is not an nftops artifact/);
    // A hand-edited body (digest mismatch) is still read: it is what is committed.
    const rendered = compileOne(lbaas());
    const edited = rendered.replace('198.51.100.13 . 8443', '198.51.100.99 . 8443');
    expect(semanticDiffArtifacts(edited, rendered).objects.map((o) => o.object)).toEqual(['LoadBalancer/echo']);
    expect(semanticDiffArtifacts(rendered, rendered)).toEqual({ available: true, tables: { added: [], removed: [], renamed: [] }, objects: [] });
  });

  it('is symmetric: swapping the sides swaps added and removed', () => {
    const [before, after] = CASES['service-added']!;
    const back = semanticDiffArtifacts(compileOne(after), compileOne(before!));
    expect(back.objects.map((o) => `${o.object} ${o.status}`)).toEqual(['LoadBalancer/api removed']);
    expect(back.objects[0]!.changes).toEqual(['port TCP/443 grpc removed']);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('nftops diff --semantic', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nftops-semantic-'));
    cpSync(join(REPO, 'examples'), join(dir, 'examples'), { recursive: true });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the per-object diff before the unified diff; exit codes unchanged', async () => {
    const current = captureIo(dir);
    expect(await main(['diff', 'examples', '--semantic'], current)).toBe(0);
    expect(current.out()).toBe('');
    const file = join(dir, 'examples/lbaas-request/services.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('- address: 198.51.100.12', '- address: 198.51.100.14'));
    const io = captureIo(dir);
    expect(await main(['diff', 'examples', '--semantic'], io)).toBe(1);
    const out = io.out();
    expect(out).toMatch(/^semantic diff of examples\/lbaas-request\/lbaas-request\.nft:\n {2}LoadBalancer\/echo \(changed\)\n {4}TCP\/80 http: backend 198\.51\.100\.14 \. 8080 added \(slot 2\)\n/);
    expect(out.indexOf('--- a/examples/lbaas-request/lbaas-request.nft')).toBeGreaterThan(out.indexOf('semantic diff of'));
    expect(io.err()).toContain('examples/lbaas-request/lbaas-request.nft: stale');
    const plain = captureIo(dir);
    expect(await main(['diff', 'examples'], plain)).toBe(1);
    expect(plain.out()).not.toContain('semantic diff');
    writeFileSync(join(dir, 'examples/oops.yaml'), 'apiVersion: nftops.dev/v9\nkind: LoadBalancer\n');
    expect(await main(['diff', 'examples', '--semantic'], captureIo(dir))).toBe(2);
  });

  it('--json always carries the semantic field of each artifact', async () => {
    rmSync(join(dir, 'examples/mesh-ambient-node/mesh-ambient-node.nft'));
    const policies = join(dir, 'examples/lbaas-request/policies.yaml');
    writeFileSync(policies, readFileSync(policies, 'utf8').replace('except: [203.0.113.128/25]', 'except: [203.0.113.192/26]'));
    const io = captureIo(dir);
    expect(await main(['diff', 'examples', '--json'], io)).toBe(1);
    const result = JSON.parse(io.out()) as { artifacts: { output: string; status: string; semantic: SemanticDiff }[] };
    expect(result.artifacts.every((a) => a.semantic.available)).toBe(true);
    const by = Object.fromEntries(result.artifacts.map((a) => [a.output, a]));
    expect(by['examples/dual-stack/dual-stack.nft']!.semantic.objects).toEqual([]);
    expect(by['examples/mesh-ambient-node/mesh-ambient-node.nft']!.semantic.objects.map((o) => `${o.object} ${o.status}`)).toEqual(['AmbientNode/worker-1 added']);
    expect(by['examples/lbaas-request/lbaas-request.nft']!.semantic.objects[0]).toMatchObject({ object: 'NetworkPolicy/allow-http', status: 'changed', rules: { changed: 1 } });
  });

  it('--help describes --semantic and the exit codes', async () => {
    const io = captureIo(dir);
    expect(await main(['diff', '--help'], io)).toBe(0);
    expect(io.out()).toContain('--semantic');
    expect(io.out()).toContain('Exit codes: 0');
  });
});

describe('semantic diff: artifacts rendered before the pod comments changed', () => {
  // The committed examples as the release before rendered them: pod chains for every pod (maps layout), and
  // default-deny comments that named the pod (`NetworkPolicy/x pod ADDR default deny`). The policies' pods are
  // the same in both versions, so the diff must not say a policy changed what it selects.
  it.each(['dual-stack', 'lbaas-request'])('%s: the same pods per policy, only rule and element lines move', (example) => {
    const before = readFileSync(new URL(`before-pod-comments/${example}.nft`, GOLDEN), 'utf8');
    const now = readFileSync(join(REPO, 'examples', example, `${example}.nft`), 'utf8');
    const diff = semanticDiffArtifacts(before, now);
    expect(diff.available).toBe(true);
    const policies = diff.objects.filter((o) => o.object.startsWith('NetworkPolicy/'));
    expect(policies.length).toBeGreaterThan(0);
    for (const policy of policies) {
      expect(policy.status, policy.object).toBe('changed');
      expect(policy.changes, policy.object).toEqual([]);
    }
  });
});
