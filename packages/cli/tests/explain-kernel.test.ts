import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '@nftops/cli';
import { kernelAvailable, withLbTopology, type LbTopology } from '@nftops/testkit';
import {
  compileOne,
  LBAAS_TOPOLOGY,
  lbaasSources,
  lbaasTraffic,
  SMALL_TOPOLOGY,
  smallSources,
  smallTraffic,
  type Layout,
} from './fixtures/explain/scenarios.js';
import { captureIo } from './helpers.js';

/**
 * End to end, in the kernel: compile, load into the LB namespace of a fresh client / LB / backend topology,
 * send a known number of connections, then `nftops explain --netns <lb> --json` must report exactly those
 * per-backend counts, the rejections of the service without backends and the default-deny drops.
 */

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

interface Report {
  services: { object: string; ports: { port: string; connections: number | null; perBackend: string; rejected: { packets: number } | null; backends: { address: string; port: number; connections: number }[] }[] }[];
  pods: { pod: string; dropped: { packets: number } }[];
  policies: { object: string; rules: { rule: string; packets: number }[] }[];
  tables: string[];
}

async function explain(t: LbTopology, extra: string[] = []): Promise<Report> {
  const io = captureIo(REPO);
  const code = await main(['explain', '--netns', t.lbNetns, '--json', ...extra], io);
  expect(io.err()).toBe('');
  expect(code).toBe(0);
  return JSON.parse(io.out()) as Report;
}

const perBackend = (report: Report, object: string, port: string) =>
  Object.fromEntries(
    report.services
      .find((s) => s.object === object)!
      .ports.find((p) => p.port === port)!
      .backends.map((b) => [`${b.address}:${b.port}`, b.connections]),
  );
const rejected = (report: Report, object: string, port: string) => report.services.find((s) => s.object === object)!.ports.find((p) => p.port === port)!.rejected?.packets;
const dropped = (report: Report) => Object.fromEntries(report.pods.map((p) => [p.pod, p.dropped.packets]));

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'nftops-explain-kernel-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.runIf(kernelAvailable())('nftops explain in the kernel', () => {
  it.each(['maps', 'per-service'] as Layout[])('%s layout: per-backend connections, rejections and drops, exactly', async (layout) => {
    const artifact = compileOne(smallSources(layout));
    const file = join(dir, `small-${layout}.nft`);
    writeFileSync(file, artifact);
    await withLbTopology(SMALL_TOPOLOGY, async (t) => {
      await t.applyRulesetOrThrow(artifact);
      const before = await explain(t, ['--artifact', file]);
      expect(before.tables).toEqual(['inet nftops_filter', 'inet nftops_nat']);
      expect(perBackend(before, 'LoadBalancer/web', 'TCP/80')).toEqual({ '198.51.100.11:8080': 0, '198.51.100.12:8080': 0, '198.51.100.13:8080': 0 });

      const seen = await smallTraffic(t);
      // What the clients saw: weights 2:1:1 over 40 flows per protocol; the quarantined pod's 10 time out.
      for (const summary of [seen.udp, seen.tcp]) {
        expect(summary.byBackend).toEqual({ '198.51.100.11:8080': 20, '198.51.100.12:8080': 10 });
        expect(summary.failures).toEqual({ timeout: 10 });
      }
      expect(seen.goneTcp.failures).toEqual({ refused: 5 });
      expect(seen.goneUdp.failures).toEqual({ refused: 5 });

      const report = await explain(t, ['--artifact', file]);
      const expected = { '198.51.100.11:8080': 20, '198.51.100.12:8080': 10, '198.51.100.13:8080': 10 };
      expect(perBackend(report, 'LoadBalancer/web', 'TCP/80')).toEqual(expected);
      expect(perBackend(report, 'LoadBalancer/web', 'UDP/80')).toEqual(expected);
      const tcp = report.services.find((s) => s.object === 'LoadBalancer/web')!.ports.find((p) => p.port === 'TCP/80')!;
      expect(tcp).toMatchObject({ connections: 40, perBackend: layout === 'maps' ? 'counted' : 'derived' });
      expect(rejected(report, 'LoadBalancer/gone', 'TCP/80')).toBe(5);
      expect(rejected(report, 'LoadBalancer/gone', 'UDP/80')).toBe(5);
      // 10 UDP datagrams and 10 TCP SYNs (one each: the client gives up before TCP retransmits).
      expect(dropped(report)).toEqual({ '198.51.100.11': 0, '198.51.100.12': 0, '198.51.100.13': 20 });
      const allow = report.policies.find((p) => p.object === 'NetworkPolicy/allow-web')!;
      expect(allow.rules.map((r) => r.packets)[1]).toBe(30); // UDP: one datagram per answered flow
      expect(allow.rules.map((r) => r.packets)[0]).toBeGreaterThanOrEqual(30); // TCP: every client packet of 30 connections
    });
  });

  it('examples/lbaas-request as committed: 10 connections per backend, the 10 to .13 dropped by its default deny', async () => {
    const artifact = compileOne(lbaasSources('maps'));
    await withLbTopology(LBAAS_TOPOLOGY, async (t) => {
      await t.applyRulesetOrThrow(artifact);
      const seen = await lbaasTraffic(t);
      expect(seen.http.byBackend).toEqual({ '198.51.100.11:8080': 10, '198.51.100.12:8080': 10 });
      expect(seen.http.failures).toEqual({ timeout: 10 });
      const report = await explain(t, ['--artifact', 'examples/lbaas-request/lbaas-request.nft']);
      expect(perBackend(report, 'LoadBalancer/echo', 'TCP/80')).toEqual({ '198.51.100.11:8080': 10, '198.51.100.12:8080': 10, '198.51.100.13:8080': 10 });
      expect(perBackend(report, 'LoadBalancer/echo', 'UDP/53')).toEqual({ '198.51.100.11:5353': 10, '198.51.100.12:5353': 10, '198.51.100.13:5353': 10 });
      expect(dropped(report)).toEqual({ '198.51.100.11': 0, '198.51.100.12': 0, '198.51.100.13': 10 });
      // The human table names the same numbers.
      const io = captureIo(REPO);
      expect(await main(['explain', '--netns', t.lbNetns, 'examples/lbaas-request', '--nonzero'], io)).toBe(0);
      expect(io.out()).toMatch(/NetworkPolicy\/allow-dns +default-deny +10 +packets .*pod 198\.51\.100\.13 dropped/);
      expect(io.out()).toMatch(/LoadBalancer\/echo +backend +10 +connections .*TCP\/80 http -> 198\.51\.100\.13:8080/);
    });
  });
});
