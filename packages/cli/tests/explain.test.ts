import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseArtifact, parseBody } from '@nftops/artifact';
import { NftNotFoundError, type NftDriver, type NftTableJson, type NftTarget } from '@nftops/nft-driver';
import { main } from '@nftops/cli';
import { runExplain } from '../src/commands/explain.js';
import { explainRuleset, formatExplain, readRuleset, type ExplainReport } from '../src/explain/index.js';
import { lookupsPerPacket } from '../src/explain/map.js';
import { FIXTURES, readFixture } from './fixtures/explain/scenarios.js';
import { captureIo } from './helpers.js';

/**
 * `nftops explain` from recorded `nft -j list ruleset` output (fixtures/explain, recorded by explain-record.test.ts
 * from real loads and real traffic; *.observed.json is what the clients saw). The kernel test is
 * explain-kernel.test.ts.
 */

type Summary = { byBackend: Record<string, number>; failures: Record<string, number> };
const observed = (name: string) => readFixture(name).observed as Record<string, Summary>;

function artifactOf(text: string) {
  const parsed = parseArtifact(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return { tables: parsed.artifact.header.tables, body: parseBody(parsed.artifact.body) };
}

function explainFixture(name: string, withArtifact = false): ExplainReport {
  const f = readFixture(name);
  return explainRuleset(readRuleset(f.nftables), withArtifact ? { artifacts: [artifactOf(f.artifact)] } : {});
}

/** `address:port` → connections, for one service port. */
function perBackend(report: ExplainReport, object: string, port: string): Record<string, number> {
  const found = report.services.find((s) => s.object === object)?.ports.find((p) => p.port === port);
  if (!found) throw new Error(`${object} ${port} not in the report`);
  return Object.fromEntries(found.backends.map((b) => [`${b.address}:${b.port}`, b.connections]));
}

const port = (report: ExplainReport, object: string, name: string) => report.services.find((s) => s.object === object)!.ports.find((p) => p.port === name)!;
const pod = (report: ExplainReport, address: string) => report.pods.find((p) => p.pod === address)!;
const policy = (report: ExplainReport, object: string) => report.policies.find((p) => p.object === object)!;

describe('explain: the maps layout (element counters)', () => {
  const report = explainFixture('small-maps');
  const seen = observed('small-maps');

  it('counts connections per backend from the backend map elements, weights as slots', () => {
    const udp = perBackend(report, 'LoadBalancer/web', 'UDP/80');
    expect(udp).toEqual({ '198.51.100.11:8080': 20, '198.51.100.12:8080': 10, '198.51.100.13:8080': 10 });
    // What the clients saw: the answered ones, and the quarantined pod's share timed out.
    expect(seen.udp!.byBackend).toEqual({ '198.51.100.11:8080': udp['198.51.100.11:8080'], '198.51.100.12:8080': udp['198.51.100.12:8080'] });
    expect(seen.udp!.failures).toEqual({ timeout: udp['198.51.100.13:8080'] });
    expect(perBackend(report, 'LoadBalancer/web', 'TCP/80')).toEqual({ '198.51.100.11:8080': 20, '198.51.100.12:8080': 10, '198.51.100.13:8080': 10 });
    const tcp = port(report, 'LoadBalancer/web', 'TCP/80');
    expect(tcp).toMatchObject({ name: 'http', address: '192.0.2.10', connections: 40, perBackend: 'counted', rejected: null });
    expect(tcp.backends.map((b) => b.slots)).toEqual([[0, 1], [2], [3]]);
    expect(tcp.backends.every((b) => b.counted && b.bytes !== null)).toBe(true);
  });

  it('lists the backends without counts when the backend map has no element counters (Settings backendCounters)', () => {
    // The same recorded ruleset, as nft lists it when the backend map is declared without `counter`.
    const items = readFixture('small-maps').nftables.map((item) => {
      const set = (item as { map?: { name?: string; elem?: unknown[] } }).map;
      if (!set?.name?.startsWith('backends')) return item;
      const elem = (set.elem ?? []).map((pair) => {
        const [key, value] = pair as [{ elem: { val: unknown } }, unknown];
        return [key.elem.val, value];
      });
      return { map: { ...set, stmt: undefined, elem } };
    });
    const uncounted = explainRuleset(readRuleset(items as Record<string, unknown>[]));
    const tcp = port(uncounted, 'LoadBalancer/web', 'TCP/80');
    expect(tcp).toMatchObject({ connections: 40, perBackend: 'unavailable' });
    expect(tcp.backends.map((b) => [b.address, b.slots, b.counted, b.bytes])).toEqual([
      ['198.51.100.11', [0, 1], false, null],
      ['198.51.100.12', [2], false, null],
      ['198.51.100.13', [3], false, null],
    ]);
    expect(uncounted.notes.join('\n')).toMatch(/map backends4 has no element counters \(Settings spec\.backendCounters/);
  });

  it('counts rejections of a service without backends once per packet (TCP and UDP)', () => {
    expect(port(report, 'LoadBalancer/gone', 'TCP/80')).toMatchObject({ connections: null, perBackend: 'none', rejected: { packets: 5 } });
    // A UDP packet looks the no-backends set up twice (the TCP reset rule first): the element counter says 10.
    expect(port(report, 'LoadBalancer/gone', 'UDP/80').rejected!.packets).toBe(5);
    expect(seen.goneTcp!.failures).toEqual({ refused: 5 });
    expect(seen.goneUdp!.failures).toEqual({ refused: 5 });
  });

  it("names each pod's default-deny drops, and the packets each policy accepted and evaluated", () => {
    // 10 UDP datagrams and 10 TCP SYNs to the quarantined pod.
    expect(pod(report, '198.51.100.13')).toMatchObject({ policies: ['NetworkPolicy/quarantine'], dropped: { packets: 20 }, where: 'set isolated4' });
    expect(pod(report, '198.51.100.11').dropped.packets).toBe(0);
    expect(pod(report, '198.51.100.12').dropped.packets).toBe(0);
    const allow = policy(report, 'NetworkPolicy/allow-web');
    expect(allow.rules.map((r) => [r.rule, r.packets >= (r.rule.includes('tcp') ? 30 : 0)])).toEqual([
      ['ip saddr 203.0.113.0/24 tcp dport 8080 accept', true],
      ['ip saddr 203.0.113.0/24 udp dport 8080 accept', true],
    ]);
    expect(allow.rules[1]!.packets).toBe(30); // one datagram per answered UDP flow
    expect(allow.evaluated.map((e) => e.pod)).toEqual(['198.51.100.11', '198.51.100.12']);
    expect(policy(report, 'NetworkPolicy/quarantine')).toMatchObject({ accepted: { packets: 0 }, rules: [], evaluated: [{ pod: '198.51.100.13', packets: 20 }] });
  });

  it('says connections for nat chains and their maps, packets for filter chains', () => {
    const units = new Set(report.rows.map((r) => `${r.what} ${r.unit}`));
    expect([...units].sort()).toEqual([
      'accepted packets',
      'backend connections',
      'default-deny packets',
      'evaluated packets',
      'no-backends packets',
      'rule connections', // Settings: dispatch, snat, group chain
      'rule packets', // Settings: forward, no-backends chain
      'service connections',
    ]);
    expect(report.settings.map((s) => s.object)).toEqual(['Settings/small']);
    expect(report.unattributed).toBe(0);
    expect(report.tables).toEqual(['inet nftops_filter', 'inet nftops_nat']);
  });
});

describe('explain: the per-service layout', () => {
  const report = explainFixture('small-per-service');

  it('derives per-backend counts from the port counter for round robin, and says so', () => {
    expect(perBackend(report, 'LoadBalancer/web', 'TCP/80')).toEqual({ '198.51.100.11:8080': 20, '198.51.100.12:8080': 10, '198.51.100.13:8080': 10 });
    expect(perBackend(report, 'LoadBalancer/web', 'UDP/80')).toEqual({ '198.51.100.11:8080': 20, '198.51.100.12:8080': 10, '198.51.100.13:8080': 10 });
    const tcp = port(report, 'LoadBalancer/web', 'TCP/80');
    expect(tcp).toMatchObject({ perBackend: 'derived', connections: 40 });
    expect(tcp.backends.every((b) => !b.counted && b.bytes === null)).toBe(true);
    expect(formatExplain(report)).toContain('~ derived: per-service layout');
    expect(formatExplain(report)).toMatch(/LoadBalancer\/web +backend +~20 +connections/);
  });

  it('gives the same drops and rejections as the maps layout, and the per-pod packets of the forward chain', () => {
    expect(port(report, 'LoadBalancer/gone', 'TCP/80').rejected!.packets).toBe(5);
    expect(port(report, 'LoadBalancer/gone', 'UDP/80').rejected!.packets).toBe(5);
    expect(pod(report, '198.51.100.13')).toMatchObject({ dropped: { packets: 20 }, received: { packets: 20 } });
    expect(policy(report, 'NetworkPolicy/allow-web').rules[1]!.packets).toBe(30);
  });

  it('reports per-backend counts as not available for source-hash (dual-stack), with a note', () => {
    const dual = explainFixture('dual-stack');
    expect(perBackend(dual, 'LoadBalancer/web-v4', 'TCP/443')).toEqual({ '198.51.100.21:8443': 20, '198.51.100.22:8443': 10, '198.51.100.23:9443': 10 });
    expect(observed('dual-stack').v4!.byBackend).toEqual({ '198.51.100.21:8443': 20, '198.51.100.22:8443': 10 });
    const v6 = port(dual, 'LoadBalancer/web-v6', 'TCP/443');
    expect(v6).toMatchObject({ connections: 10, perBackend: 'unavailable' });
    expect(dual.notes).toContain('LoadBalancer/web-v6 TCP/443 https: source-hash in the per-service layout has one counter per service port; per-backend counts need layout: maps');
    expect(dual.rows.filter((r) => r.object === 'LoadBalancer/web-v6' && r.what === 'backend').every((r) => r.count === null)).toBe(true);
    expect(pod(dual, '198.51.100.23').dropped.packets).toBe(10);
    expect(dual.idle).toEqual(['LoadBalancer/retired']);
  });
});

describe('explain: lbaas-request in both layouts', () => {
  it.each(['maps', 'per-service'])('%s: 10 connections per backend, the 10 to .13 dropped by its default deny', (layout) => {
    const report = explainFixture(`lbaas-${layout}`);
    expect(perBackend(report, 'LoadBalancer/echo', 'TCP/80')).toEqual({ '198.51.100.11:8080': 10, '198.51.100.12:8080': 10, '198.51.100.13:8080': 10 });
    expect(perBackend(report, 'LoadBalancer/echo', 'UDP/53')).toEqual({ '198.51.100.11:5353': 10, '198.51.100.12:5353': 10, '198.51.100.13:5353': 10 });
    expect(perBackend(report, 'LoadBalancer/echo', 'TCP/8443')).toEqual({ '198.51.100.11:8443': 0, '198.51.100.12:8443': 0, '198.51.100.13:8443': 0 });
    expect(report.pods.map((p) => [p.pod, p.dropped.packets, p.policies])).toEqual([
      ['198.51.100.11', 0, ['NetworkPolicy/allow-dns', 'NetworkPolicy/allow-http']],
      ['198.51.100.12', 0, ['NetworkPolicy/allow-dns', 'NetworkPolicy/allow-http']],
      ['198.51.100.13', 10, ['NetworkPolicy/allow-dns', 'NetworkPolicy/block-range']],
    ]);
    expect(policy(report, 'NetworkPolicy/allow-dns').accepted.packets).toBe(30);
    expect(policy(report, 'NetworkPolicy/block-range').accepted.packets).toBe(0);
    expect(observed(`lbaas-${layout}`).http!.failures).toEqual({ timeout: 10 });
  });
});

describe('explain: mesh', () => {
  it('groups every chain counter under its MeshRedirection, as connections (nat hooks)', () => {
    const report = explainFixture('mesh-sidecar');
    expect(report.services).toEqual([]);
    expect(report.mesh.map((m) => m.object)).toEqual(['MeshRedirection/productpage-v1']);
    const chains = Object.fromEntries(report.mesh[0]!.chains.map((c) => [c.chain, c.rules.map((r) => `${r.detail}=${r.count}`)]));
    expect(chains['output']).toEqual(['outbound=4']);
    expect(chains['istio-redirect']).toEqual(['to proxy=4']);
    expect(chains['istio-output']!.at(-1)).toBe('outbound all=4');
    expect(chains['istio-inbound']).toEqual(['tunnel port=0', 'inbound exclude=0', 'inbound exclude=0', 'inbound exclude=0', 'inbound all=0']);
    expect(report.rows.every((r) => r.unit === 'connections')).toBe(true);
  });

  it('with the artifact, shows each rule as written', () => {
    const report = explainFixture('mesh-sidecar', true);
    const output = report.mesh[0]!.chains.find((c) => c.chain === 'istio-output')!;
    expect(output.rules[0]!.rule).toBe('oifname lo ip saddr 127.0.0.6/32 return');
    expect(explainFixture('mesh-sidecar').mesh[0]!.chains.find((c) => c.chain === 'istio-output')!.rules[0]!.rule).toBe('oifname lo ip saddr 127.0.0.6 return');
  });
});

describe('explain: restricting to artifacts', () => {
  const lbaas = readFixture('lbaas-maps');
  const mesh = readFixture('mesh-sidecar');
  const both = [...lbaas.nftables, ...mesh.nftables.filter((item) => !('metainfo' in item))];

  it('reads only the tables an artifact owns', () => {
    const report = explainRuleset(readRuleset(both), { artifacts: [artifactOf(mesh.artifact)] });
    expect(report.tables).toEqual(['inet istio-proxy-nat']);
    expect(report.rows.every((r) => r.object === 'MeshRedirection/productpage-v1')).toBe(true);
    expect(report.notLoaded).toEqual([]);
    expect(explainRuleset(readRuleset(both)).tables).toEqual(['inet istio-proxy-nat', 'inet nftops_filter', 'inet nftops_nat']);
  });

  it('names the tables and objects of an artifact that the live ruleset lacks', () => {
    const dual = readFixture('dual-stack');
    const report = explainRuleset(readRuleset(lbaas.nftables), { artifacts: [artifactOf(dual.artifact)] });
    expect(report.tables).toEqual([]);
    expect(report.tablesNotLoaded).toEqual(['inet lb_filter', 'inet lb_nat']);
    expect(report.notLoaded).toEqual([
      'LoadBalancer/retired',
      'LoadBalancer/web-v4',
      'LoadBalancer/web-v6',
      'NetworkPolicy/monitoring',
      'NetworkPolicy/quarantine',
      'NetworkPolicy/web-clients',
      'Settings/edge',
    ]);
    expect(formatExplain(report)).toContain('not loaded: table inet lb_filter, table inet lb_nat');
  });

  it('leaves rules without a Kind/name comment out, and counts them', () => {
    const foreign = [
      { table: { family: 'inet', name: 'other', handle: 1 } },
      { chain: { family: 'inet', table: 'other', name: 'input', handle: 1, type: 'filter', hook: 'input', prio: 0, policy: 'accept' } },
      { rule: { family: 'inet', table: 'other', chain: 'input', handle: 2, comment: 'ssh', expr: [{ counter: { packets: 7, bytes: 420 } }, { accept: null }] } },
      { rule: { family: 'inet', table: 'other', chain: 'input', handle: 3, expr: [{ counter: { packets: 1, bytes: 60 } }, { drop: null }] } },
    ];
    const report = explainRuleset(readRuleset([...lbaas.nftables, ...foreign]));
    expect(report.unattributed).toBe(2);
    expect(report.rows.some((r) => r.table === 'inet other')).toBe(false);
    expect(report.notes).toContain('2 rules with a counter but no Kind/name comment (not from nftops) left out');
  });
});

describe('explain: details', () => {
  it('counts how often one packet looks a set up', () => {
    const table = readRuleset(readFixture('small-maps').nftables).find((t) => t.name === 'nftops_nat')!;
    expect(lookupsPerPacket(table, 'no-backends4', 'tcp')).toBe(1);
    expect(lookupsPerPacket(table, 'no-backends4', 'udp')).toBe(2);
    expect(lookupsPerPacket(table, 'no-backends4', 'sctp')).toBe(2);
    expect(lookupsPerPacket(table, 'dispatch4', 'tcp')).toBe(1);
    expect(lookupsPerPacket(table, 'backends4', 'udp')).toBe(1);
  });

  it('prints one aligned table sorted by object, and is deterministic (golden files)', () => {
    for (const name of ['small-maps', 'mesh-sidecar']) {
      const text = formatExplain(explainFixture(name, true));
      const golden = new URL(`${name}.txt`, FIXTURES);
      if (process.env.NFTOPS_UPDATE_GOLDEN === '1') writeFileSync(golden, text);
      expect(text).toBe(readFileSync(golden, 'utf8'));
      const lines = text.split('\n');
      const header = lines.find((l) => l.startsWith('OBJECT'))!;
      const rows = lines.slice(lines.indexOf(header) + 1, lines.indexOf('', lines.indexOf(header)));
      // Every row starts its COUNT, UNIT and DETAIL columns where the header does.
      for (const column of ['UNIT', 'BYTES', 'WHERE', 'DETAIL']) {
        const at = header.indexOf(column);
        for (const row of rows) expect(row[at - 1], `${column} in ${row}`).toBe(' ');
      }
      const objects = rows.map((r) => r.split(' ')[0]!);
      expect(objects).toEqual([...objects].sort((a, b) => (a.split('/')[0] === b.split('/')[0] ? (a < b ? -1 : a > b ? 1 : 0) : 0)));
    }
    expect(formatExplain(explainFixture('small-maps'), { nonzero: true })).not.toMatch(/ {2}0 {2}(packets|connections)/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The command, with an injected driver.

class RecordedNft {
  readonly targets: (NftTarget | undefined)[] = [];
  constructor(private readonly items: NftTableJson | (() => never)) {}
  async listRuleset(target?: NftTarget): Promise<NftTableJson> {
    this.targets.push(target);
    return typeof this.items === 'function' ? this.items() : this.items;
  }
}
const driver = (items: NftTableJson | (() => never)) => new RecordedNft(items) as unknown as NftDriver & RecordedNft;

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'nftops-explain-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('nftops explain (command)', () => {
  const lbaas = readFixture('lbaas-maps');

  it('--json: the report for machines, from the namespace given with --netns', async () => {
    const nft = driver(lbaas.nftables);
    const io = captureIo(dir);
    expect(await runExplain(['--netns', 'lb-1', '--json'], io, nft, { netnsExists: (n) => n === 'lb-1' })).toBe(0);
    expect(nft.targets).toEqual([{ netns: 'lb-1' }]);
    const report = JSON.parse(io.out());
    expect(report).toMatchObject({ ok: true, netns: 'lb-1', tables: ['inet nftops_filter', 'inet nftops_nat'] });
    expect(report.services[0].ports[0]).toMatchObject({ port: 'TCP/80', connections: 30, perBackend: 'counted' });
    expect(io.err()).toBe('');
  });

  it('reads the current namespace by default, and prints the table', async () => {
    const nft = driver(lbaas.nftables);
    const io = captureIo(dir);
    expect(await runExplain([], io, nft)).toBe(0);
    expect(nft.targets).toEqual([undefined]);
    expect(io.out()).toMatch(/^tables: inet nftops_filter, inet nftops_nat\n\nOBJECT +WHAT +COUNT +UNIT +BYTES +WHERE +DETAIL\n/);
    expect(io.out()).toMatch(/LoadBalancer\/echo +backend +10 +connections +\d+ +inet nftops_nat map backends4 +TCP\/80 http -> 198\.51\.100\.13:8080 \(slot 2\)/);
    expect(io.out()).toMatch(/NetworkPolicy\/allow-dns +default-deny +10 +packets .* pod 198\.51\.100\.13 dropped: no rule of allow-dns, block-range accepted/);
  });

  it('--artifact FILE and source PATHs restrict to the tables they own', async () => {
    writeFileSync(join(dir, 'mesh.nft'), readFixture('mesh-sidecar').artifact);
    const both = [...lbaas.nftables, ...readFixture('mesh-sidecar').nftables];
    const io = captureIo(dir);
    expect(await runExplain(['--artifact', 'mesh.nft', '--json'], io, driver(both))).toBe(0);
    expect(JSON.parse(io.out()).tables).toEqual(['inet istio-proxy-nat']);
    const sources = captureIo(REPO);
    expect(await runExplain(['examples/mesh-sidecar-default', '--json'], sources, driver(both))).toBe(0);
    expect(JSON.parse(sources.out()).tables).toEqual(['inet istio-proxy-nat']);
    const text = captureIo(REPO);
    expect(await runExplain(['examples/dual-stack'], text, driver(both))).toBe(0);
    expect(text.out()).toContain('not loaded: table inet lb_filter, table inet lb_nat');
  });

  it('errors have stable codes, exit 2 and no stack trace', async () => {
    const cases: [string[], NftDriver, string][] = [
      [['--artifact', 'nowhere.nft'], driver([]), 'EXPLAIN_ARTIFACT_UNREADABLE'],
      [['--artifact', 'junk.nft'], driver([]), 'EXPLAIN_ARTIFACT_INVALID'],
      [['--netns', 'no-such-netns-here'], driver([]), 'EXPLAIN_NETNS_NOT_FOUND'],
      [[], driver(() => { throw new Error('nft list ruleset failed: Operation not permitted'); }), 'EXPLAIN_NFT_FAILED'],
      [[], driver(() => { throw new NftNotFoundError(['/usr/sbin']); }), 'NFT_NOT_FOUND'],
    ];
    writeFileSync(join(dir, 'junk.nft'), 'table inet x {}\n');
    for (const [args, nft, code] of cases) {
      const io = captureIo(dir);
      expect(await runExplain(args, io, nft), code).toBe(2);
      expect(io.err()).toMatch(new RegExp(`^nftops explain: error ${code}: `));
      expect(io.err()).not.toMatch(/\n\s+at /);
      expect(io.out()).toBe('');
      const json = captureIo(dir);
      expect(await runExplain([...args, '--json'], json, nft)).toBe(2);
      expect(JSON.parse(json.out())).toMatchObject({ ok: false, errors: [{ code }] });
    }
    const sources = captureIo(dir);
    writeFileSync(join(dir, 'bad.yaml'), 'kind: [');
    expect(await runExplain(['bad.yaml'], sources, driver([]))).toBe(2);
    expect(sources.err()).toContain('bad.yaml:1:');
  });

  it('has --help with exit codes, and rejects unknown flags with exit 2', async () => {
    const io = captureIo(dir);
    expect(await main(['explain', '--help'], io)).toBe(0);
    expect(io.out()).toContain('Usage: nftops explain');
    expect(io.out()).toContain('Exit codes');
    expect(io.out()).toContain('EXPLAIN_NETNS_NOT_FOUND');
    const bad = captureIo(dir);
    expect(await main(['explain', '--frob'], bad)).toBe(2);
    expect(bad.err()).toContain('Usage: nftops explain');
    const top = captureIo(dir);
    await main(['--help'], top);
    expect(top.out()).toMatch(/^ {2}explain {3}/m);
  });
});
