import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile, formatDiagnostic } from '@nftops/compiler';
import { createNftDriver } from '@nftops/nft-driver';
import { kernelAvailable, withLbTopology, type LbTopology, type LbTopologyOptions, type TrafficSummary } from '@nftops/testkit';
import { BACKEND_SHARD_SIZE } from '../src/lower.js';

/**
 * Traffic tests: compile YAML from fixtures/traffic, load the artifact into the LB namespace of a fresh
 * client / LB / backend topology with the real nft, send real connections and assert on what the backend
 * servers report (which backend answered, which source address it saw).
 *
 * Topology (see @nftops/testkit createLbTopology): VIPs 192.0.2.10-12 and 2001:db8:f::10-12 on the LB's lo,
 * backends 198.51.100.10-12 and 2001:db8:b::10-12 each serving TCP and UDP on 8080, 8081 and 9000, the LB's
 * backend-side addresses 198.51.100.1 and 2001:db8:b::1 (what a masqueraded flow comes from).
 */

const FIXTURES = new URL('./fixtures/traffic/', import.meta.url);
const EXAMPLES = new URL('../../../examples/', import.meta.url);
const nft = createNftDriver();

const VIPS = ['192.0.2.10', '192.0.2.11', '192.0.2.12', '2001:db8:f::10', '2001:db8:f::11', '2001:db8:f::12'];
const LB4 = '198.51.100.1';
const LB6 = '2001:db8:b::1';

type Layout = 'maps' | 'per-service';
const LAYOUTS: readonly Layout[] = ['maps', 'per-service'];

/** Sets Settings spec.layout: in the source's Settings document, or in an added one. */
function withLayout(text: string, layout: Layout): string {
  const settings = /^kind: Settings\n(?:.*\n)*?spec:\n/m.exec(text);
  if (settings) {
    const at = settings.index + settings[0].length;
    return `${text.slice(0, at)}  layout: ${layout}\n${text.slice(at)}`;
  }
  return `${text}\n---\napiVersion: nftops.dev/v1alpha1\nkind: Settings\nmetadata: { name: layout }\nspec:\n  layout: ${layout}\n`;
}

/** Compiles the fixture (plus EXTRA YAML documents) with the given layout and returns the single artifact's text. */
function artifactFor(layout: Layout, fixture: string, extra?: string): string {
  let text = readFileSync(new URL(fixture, FIXTURES), 'utf8');
  if (extra) text += `\n---\n${extra}`;
  text = withLayout(text, layout);
  const result = compile([{ path: fixture, text }]);
  const errors = result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  expect(errors, `compile ${fixture}`).toEqual([]);
  expect(result.ok).toBe(true);
  expect(result.artifacts).toHaveLength(1);
  const artifact = result.artifacts[0]!.text;
  // Make sure the layout really is the one under test.
  expect(/vmap @dispatch/.test(artifact), `${fixture} rendered in the ${layout} layout`).toBe(layout === 'maps');
  return artifact;
}

/** Compiles every YAML file of examples/NAME and returns the single artifact's text. */
function exampleArtifact(name: string): string {
  const dir = new URL(`${name}/`, EXAMPLES);
  const sources = readdirSync(dir)
    .filter((file) => /\.ya?ml$/.test(file))
    .sort()
    .map((file) => ({ path: `examples/${name}/${file}`, text: readFileSync(new URL(file, dir), 'utf8') }));
  const result = compile(sources);
  expect(result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  expect(result.artifacts).toHaveLength(1);
  return result.artifacts[0]!.text;
}

/**
 * Builds a fresh topology, loads the artifact compiled from FIXTURE, runs FN and always tears everything down.
 * On failure the LB's ruleset with its counters is appended to the error: it shows which rules packets hit.
 */
async function scenario(
  artifact: string,
  options: LbTopologyOptions,
  fn: (t: LbTopology) => Promise<void>,
): Promise<void> {
  await withLbTopology({ vips: VIPS, serverPorts: [8080, 8081, 9000], ...options }, async (t) => {
    const loaded = await nft.apply(artifact, { netns: t.lbNetns });
    expect(loaded, 'nft -f of the compiled artifact').toEqual({ ok: true });
    try {
      await fn(t);
    } catch (error) {
      if (error instanceof Error) error.message += `\n\nLB ruleset after the traffic:\n${await t.listRuleset()}`;
      throw error;
    }
  });
}

/**
 * Per-flow timeout where some flows must succeed and others are dropped (all flows in flight at once). It must stay
 * below TCP's initial retransmission timeout (1 s): a SYN dropped in the forward hook never confirms its conntrack
 * entry, so the retransmitted SYN is a new flow, numgen picks the next backend, and the exact counts are gone.
 */
const MIXED_TIMEOUT = 900;
/** Per-flow timeout where every flow must be dropped. */
const DROP_TIMEOUT = 700;

const all = (summary: TrafficSummary) => summary.ok === summary.total && Object.keys(summary.failures).length === 0;

/** COUNT flows that must all fail the same way (short timeouts, all in flight at once). */
async function expectBlocked(t: LbTopology, vip: string, port: number, protocol: 'tcp' | 'udp', source: string | undefined, failure = 'timeout', count = 3) {
  const summary = await t.traffic({ vip, port, protocol, source, count, timeoutMs: DROP_TIMEOUT, concurrency: count });
  expect(summary, `${protocol} ${vip}:${port} from ${source ?? 'default'} should fail with ${failure}`).toMatchObject({
    ok: 0,
    failures: { [failure]: count },
  });
}

describe.runIf(kernelAvailable())('compiled artifacts carry real traffic', () => {
  describe.each(LAYOUTS)('%s layout', (layout) => {
    it.each(['local', 'routed'] as const)('round robin spreads connections exactly evenly (TCP and UDP, IPv4 and IPv6), SNAT on by default; VIP %s', async (vipMode) => {
      await scenario(artifactFor(layout, 'round-robin.yaml'), { vipMode }, async (t) => {
        const v4 = await t.traffic({ vip: '192.0.2.10', port: 80, count: 90 });
        expect(v4.byBackend).toEqual({ '198.51.100.10:8080': 30, '198.51.100.11:8080': 30, '198.51.100.12:8080': 30 });
        expect(v4.bySawSource).toEqual({ [LB4]: 90 });
        const v6 = await t.traffic({ vip: '2001:db8:f::10', port: 80, count: 90 });
        expect(v6.byBackend).toEqual({ '[2001:db8:b::10]:8080': 30, '[2001:db8:b::11]:8080': 30, '[2001:db8:b::12]:8080': 30 });
        expect(v6.bySawSource).toEqual({ [LB6]: 90 });
        const u4 = await t.traffic({ vip: '192.0.2.10', port: 53, protocol: 'udp', count: 30 });
        expect(u4.byBackend).toEqual({ '198.51.100.10:8080': 10, '198.51.100.11:8080': 10, '198.51.100.12:8080': 10 });
        const u6 = await t.traffic({ vip: '2001:db8:f::10', port: 53, protocol: 'udp', count: 30 });
        expect(u6.byBackend).toEqual({ '[2001:db8:b::10]:8080': 10, '[2001:db8:b::11]:8080': 10, '[2001:db8:b::12]:8080': 10 });
      });
    });

    it('weights are honoured exactly (2:1, and 4:2 on IPv6)', async () => {
      await scenario(artifactFor(layout, 'weights.yaml'), {}, async (t) => {
        const v4 = await t.traffic({ vip: '192.0.2.10', port: 80, count: 90 });
        expect(v4.byBackend).toEqual({ '198.51.100.10:8080': 60, '198.51.100.11:8080': 30 });
        const v6 = await t.traffic({ vip: '2001:db8:f::10', port: 80, count: 90 });
        expect(v6.byBackend).toEqual({ '[2001:db8:b::10]:8080': 60, '[2001:db8:b::11]:8080': 30 });
      });
    });

    it("a backend's own port is used instead of the service's targetPort", async () => {
      await scenario(artifactFor(layout, 'backend-port.yaml'), {}, async (t) => {
        const v4 = await t.traffic({ vip: '192.0.2.10', port: 80, count: 40 });
        expect(v4.byBackend).toEqual({ '198.51.100.10:8080': 10, '198.51.100.11:8081': 10, '198.51.100.12:8081': 20 });
        const v6 = await t.traffic({ vip: '2001:db8:f::10', port: 53, protocol: 'udp', count: 30 });
        expect(v6.byBackend).toEqual({ '[2001:db8:b::10]:8081': 15, '[2001:db8:b::11]:8080': 15 });
      });
    });

    it('random reaches every backend', async () => {
      await scenario(artifactFor(layout, 'schedulers.yaml'), {}, async (t) => {
        for (const [vip, backends] of [
          ['192.0.2.10', ['198.51.100.10:8080', '198.51.100.11:8080', '198.51.100.12:8080']],
          ['2001:db8:f::10', ['[2001:db8:b::10]:8080', '[2001:db8:b::11]:8080', '[2001:db8:b::12]:8080']],
        ] as const) {
          const summary = await t.traffic({ vip, port: 80, count: 90 });
          expect(all(summary), JSON.stringify(summary)).toBe(true);
          expect(Object.keys(summary.byBackend).sort()).toEqual([...backends]);
          // Binomial(90, 1/3): fewer than 6 or more than 60 hits has a probability below 1e-7.
          for (const count of Object.values(summary.byBackend)) expect(count).toBeGreaterThan(5);
          for (const count of Object.values(summary.byBackend)) expect(count).toBeLessThan(60);
        }
      });
    });

    it('source-hash keeps each client on one backend and spreads different clients', async () => {
      const v4Clients = Array.from({ length: 8 }, (_, i) => `203.0.113.${21 + i}`);
      const v6Clients = Array.from({ length: 8 }, (_, i) => `2001:db8:c::${21 + i}`);
      await scenario(artifactFor(layout, 'schedulers.yaml'), { clientAddresses: [...v4Clients, ...v6Clients] }, async (t) => {
        for (const [vip, clients] of [
          ['192.0.2.11', v4Clients],
          ['2001:db8:f::11', v6Clients],
        ] as const) {
          const tcp = await t.traffic({ vip, port: 80, sources: clients, count: clients.length * 6 });
          expect(all(tcp), JSON.stringify(tcp.failures)).toBe(true);
          const chosen = new Set<string>();
          for (const source of clients) {
            const backends = Object.keys(tcp.bySource[source]!.byBackend);
            expect(backends, `${source} -> ${vip} always lands on the same backend`).toHaveLength(1);
            chosen.add(backends[0]!);
          }
          if (vip === '192.0.2.11') {
            // The hash is of the source address only: the UDP port of the same service picks the same backend.
            const udp = await t.traffic({ vip, port: 53, protocol: 'udp', sources: clients, count: clients.length * 3 });
            for (const source of clients) {
              expect(Object.keys(udp.bySource[source]!.byBackend), `${source} UDP`).toEqual(Object.keys(tcp.bySource[source]!.byBackend));
            }
          }
          expect(chosen.size, `backends chosen for ${clients.length} clients of ${vip}`).toBeGreaterThanOrEqual(2);
        }
      });
    });

    it('SNAT: Settings default off, per-service on and explicit off; backends see the client or the LB', async () => {
      const clientAddresses = ['203.0.113.2', '2001:db8:c::2'];
      await scenario(artifactFor(layout, 'snat.yaml'), { clientAddresses }, async (t) => {
        const checks = [
          { vip: '192.0.2.10', port: 80, protocol: 'tcp', saw: '203.0.113.2' },
          { vip: '192.0.2.11', port: 80, protocol: 'tcp', saw: LB4 },
          { vip: '192.0.2.11', port: 53, protocol: 'udp', saw: LB4 },
          { vip: '192.0.2.12', port: 53, protocol: 'udp', saw: '203.0.113.2' },
          { vip: '2001:db8:f::10', port: 80, protocol: 'tcp', saw: '2001:db8:c::2' },
          { vip: '2001:db8:f::11', port: 80, protocol: 'tcp', saw: LB6 },
          { vip: '2001:db8:f::12', port: 53, protocol: 'udp', saw: '2001:db8:c::2' },
        ] as const;
        for (const check of checks) {
          const summary = await t.traffic({ vip: check.vip, port: check.port, protocol: check.protocol, count: 10 });
          expect(summary.bySawSource, `${check.protocol} ${check.vip}:${check.port}`).toEqual({ [check.saw]: 10 });
        }
      });
    });

    describe('network policies (forward hook, original client address, post-DNAT pod address and port)', () => {
      const families = [
        { name: 'IPv4', vip: (n: number) => `192.0.2.${n}`, pod10: (port: number) => `198.51.100.10:${port}`, allowed: '203.0.113.10', except: '203.0.113.70', outside: '203.0.113.200' },
        { name: 'IPv6', vip: (n: number) => `2001:db8:f::${n}`, pod10: (port: number) => `[2001:db8:b::10]:${port}`, allowed: '2001:db8:c::10', except: '2001:db8:c::70', outside: '2001:db8:c::200' },
      ];
      const clientAddresses = families.flatMap((f) => [f.allowed, f.except, f.outside]);

      it('allowed sources get through, the except range and other sources are dropped, ports and UDP are checked; unselected pods are not filtered; ingress: [] denies', async () => {
        await scenario(artifactFor(layout, 'policy.yaml'), { clientAddresses }, async (t) => {
          for (const f of families) {
            // Selected pod (.10), allowed source: TCP 8080 and 8081 are inside 8080-8090, UDP 8080 is allowed.
            for (const [port, protocol, backendPort] of [[80, 'tcp', 8080], [81, 'tcp', 8081], [53, 'udp', 8080]] as const) {
              const summary = await t.traffic({ vip: f.vip(10), port, protocol, source: f.allowed, count: 10 });
              expect(all(summary), `${f.name} allowed ${protocol}/${port}: ${JSON.stringify(summary)}`).toBe(true);
              expect(summary.byBackend).toEqual({ [f.pod10(backendPort)]: 10 });
            }
            await Promise.all([
              // Allowed source, but the pod port is outside the allowed ranges (TCP 9000; UDP 8081 is not UDP 8080).
              expectBlocked(t, f.vip(10), 90, 'tcp', f.allowed),
              expectBlocked(t, f.vip(10), 54, 'udp', f.allowed),
              // Source in the except range, and a source outside the CIDR.
              expectBlocked(t, f.vip(10), 80, 'tcp', f.except),
              expectBlocked(t, f.vip(10), 53, 'udp', f.except),
              expectBlocked(t, f.vip(10), 80, 'tcp', f.outside),
              // ingress: [] on pod .12: nobody gets in.
              expectBlocked(t, f.vip(12), 80, 'tcp', f.allowed),
            ]);
            // Pod .11 is selected by no policy: every source and port reaches it.
            for (const port of [80, 90]) {
              const summary = await t.traffic({ vip: f.vip(11), port, sources: [f.allowed, f.except, f.outside], count: 15 });
              expect(all(summary), `${f.name} unselected pod, port ${port}: ${JSON.stringify(summary.bySource)}`).toBe(true);
            }
          }
        });
      });

      it('policies are OR-ed: allow-all beats deny-all, and either of two narrow policies admits', async () => {
        await scenario(artifactFor(layout, 'policy-or.yaml'), { clientAddresses }, async (t) => {
          for (const f of families) {
            const sources = [f.allowed, f.except, f.outside];
            for (const [port, protocol] of [[80, 'tcp'], [53, 'udp']] as const) {
              const summary = await t.traffic({ vip: f.vip(10), port, protocol, sources, count: 15 });
              expect(all(summary), `${f.name} allow-all ${protocol}: ${JSON.stringify(summary.bySource)}`).toBe(true);
            }
            // only-10 admits .10 / c::10, only-70 admits .70 / c::70 (TCP only); nothing admits .200 / c::200.
            const narrow = await t.traffic({ vip: f.vip(11), port: 80, sources: [f.allowed, f.except], count: 10 });
            expect(all(narrow), `${f.name} only-10 or only-70: ${JSON.stringify(narrow.bySource)}`).toBe(true);
            await expectBlocked(t, f.vip(11), 80, 'tcp', f.outside);
          }
        });
      });

      it('edges: several excepts, a second ipBlock re-allowing part of an except range, endPort inclusive, ports without from; non-LB flows pass', async () => {
        const v4 = { vip: (n: number) => `192.0.2.${n}`, allowed: ['203.0.113.10', '203.0.113.70'], blocked: ['203.0.113.20', '203.0.113.100'] };
        const v6 = { vip: (n: number) => `2001:db8:f::${n}`, allowed: ['2001:db8:c::5', '2001:db8:c::45'], blocked: ['2001:db8:c::15', '2001:db8:c::70'] };
        const clientAddresses = [...v4.allowed, ...v4.blocked, ...v6.allowed, ...v6.blocked];
        await scenario(artifactFor(layout, 'policy-edges.yaml'), { clientAddresses, serverPorts: [8080, 8090, 8091] }, async (t) => {
          for (const f of [v4, v6]) {
            // Pod .10: 8080 and 8090 (the inclusive end of 8080-8090) from the allowed sources.
            for (const port of [80, 82]) {
              const summary = await t.traffic({ vip: f.vip(10), port, sources: f.allowed, count: 10 });
              expect(all(summary), `${f.vip(10)}:${port} from ${f.allowed}: ${JSON.stringify(summary.bySource)}`).toBe(true);
            }
            await Promise.all([
              // 8091 is past endPort.
              ...f.allowed.map((source) => expectBlocked(t, f.vip(10), 83, 'tcp', source)),
              // In the first block's excepts and not re-allowed by the second block.
              ...f.blocked.map((source) => expectBlocked(t, f.vip(10), 80, 'tcp', source)),
              // Pod .11 admits UDP 8080 from anyone, and nothing else.
              ...[...f.allowed, ...f.blocked].map((source) => expectBlocked(t, f.vip(11), 80, 'tcp', source)),
            ]);
            const udp = await t.traffic({ vip: f.vip(11), port: 53, protocol: 'udp', sources: [...f.allowed, ...f.blocked], count: 12 });
            expect(all(udp), `UDP to pod .11: ${JSON.stringify(udp.bySource)}`).toBe(true);
          }
          // A flow that did not come through a VIP carries no LB mark and is not policed: straight to pod .10.
          for (const [pod, source] of [['198.51.100.10', '203.0.113.100'], ['2001:db8:b::10', '2001:db8:c::70']] as const) {
            const direct = await t.traffic({ vip: pod, port: 8091, source, count: 3 });
            expect(direct.bySawSource, `direct ${source} -> ${pod}`).toEqual({ [source]: 3 });
          }
        });
      });
    });

    it('marks are real masks: foreign meta mark and ct mark bits survive, SNAT and policies still work with them set', async () => {
      const foreign = `table inet foreign
delete table inet foreign
table inet foreign {
  chain pre {
    type filter hook prerouting priority -150; policy accept;
    meta mark set meta mark | 0x10
    ct state new ct mark set ct mark | 0x4000
  }
  chain observe {
    type filter hook forward priority 10; policy accept;
    ct direction original ct mark & 0x4100 == 0x4100 counter comment "kept"
    ct mark & 0x4000 == 0 counter comment "ct-lost"
    meta mark & 0x10 == 0 counter comment "meta-lost"
  }
}
`;
      const clientAddresses = ['203.0.113.2', '2001:db8:c::2'];
      await scenario(artifactFor(layout, 'marks.yaml'), { clientAddresses }, async (t) => {
        expect(await nft.apply(foreign, { netns: t.lbNetns })).toEqual({ ok: true });
        const v4 = await t.traffic({ vip: '192.0.2.10', port: 80, count: 20 });
        expect(v4.byBackend).toEqual({ '198.51.100.10:8080': 10, '198.51.100.11:8080': 10 });
        expect(v4.bySawSource, 'SNAT with a foreign meta mark bit set').toEqual({ [LB4]: 20 });
        const keep = await t.traffic({ vip: '192.0.2.11', port: 80, count: 10 });
        expect(keep.bySawSource).toEqual({ '203.0.113.2': 10 });
        const v6 = await t.traffic({ vip: '2001:db8:f::10', port: 80, count: 20 });
        expect(v6.bySawSource).toEqual({ [LB6]: 20 });
        await Promise.all([expectBlocked(t, '192.0.2.12', 80, 'tcp', undefined), expectBlocked(t, '2001:db8:f::12', 80, 'tcp', undefined)]);

        const listing = await t.listRuleset();
        const counter = (name: string) => Number(new RegExp(`counter packets (\\d+) bytes \\d+ comment "${name}"`).exec(listing)?.[1]);
        expect(counter('kept'), listing).toBeGreaterThanOrEqual(50);
        expect(counter('ct-lost'), listing).toBe(0);
        expect(counter('meta-lost'), listing).toBe(0);
      });
    });

    describe('a service without backends', () => {
      const sentinel = async (t: LbTopology) => {
        // Anything that escaped the no-backends rule would reach these LB-local sockets and be answered.
        await t.startServer('lb', ['192.0.2.12', '2001:db8:f::12'], [80, 53]);
      };
      const othersWork = async (t: LbTopology) => {
        const v4 = await t.traffic({ vip: '192.0.2.10', port: 80, count: 30 });
        expect(v4.byBackend).toEqual({ '198.51.100.10:8080': 15, '198.51.100.11:8080': 15 });
        const v6 = await t.traffic({ vip: '2001:db8:f::10', port: 80, count: 30 });
        expect(v6.byBackend).toEqual({ '[2001:db8:b::10]:8080': 15, '[2001:db8:b::11]:8080': 15 });
      };

      it('is rejected at once by default (connection refused) while the others keep working', async () => {
        await scenario(artifactFor(layout, 'empty-backends.yaml'), {}, async (t) => {
          await sentinel(t);
          const started = Date.now();
          for (const vip of ['192.0.2.12', '2001:db8:f::12']) {
            for (const protocol of ['tcp', 'udp'] as const) {
              const summary = await t.traffic({ vip, port: protocol === 'tcp' ? 80 : 53, protocol, count: 5, concurrency: 1 });
              expect(summary.failures, `${protocol} ${vip}: ${JSON.stringify(summary)}`).toEqual({ refused: 5 });
            }
          }
          // 20 sequential refusals; a drop would have cost 20 timeouts of 1 s.
          expect(Date.now() - started).toBeLessThan(5_000);
          await othersWork(t);
        });
      });

      it('is dropped when Settings say emptyBackends: drop, while the others keep working', async () => {
        // The Settings example of the spec, with emptyBackends: drop.
        const settings = `apiVersion: nftops.dev/v1alpha1
kind: Settings
metadata: { name: lb }
spec:
  snat: true
  emptyBackends: drop
  mark: { value: 0x1, mask: 0x1 }
  snatMark: { value: 0x2, mask: 0x2 }
`;
        await scenario(artifactFor(layout, 'empty-backends.yaml', settings), {}, async (t) => {
          await sentinel(t);
          await Promise.all([
            expectBlocked(t, '192.0.2.12', 80, 'tcp', undefined),
            expectBlocked(t, '192.0.2.12', 53, 'udp', undefined),
            expectBlocked(t, '2001:db8:f::12', 80, 'tcp', undefined),
            expectBlocked(t, '2001:db8:f::12', 53, 'udp', undefined),
          ]);
          await othersWork(t);
        });
      });
    });
  });

  it('maps layout: a large artifact spreads its backends over several maps, and every one carries traffic', async () => {
    // A few more services of 4 backends than one map holds (BACKEND_SHARD_SIZE), so the IPv6 backends go to two.
    const filler = Array.from({ length: BACKEND_SHARD_SIZE / 4 + 8 }, (_, i) => {
      const backends = [0, 1, 2, 3].map((b) => `{ address: '2001:db8:e:1::${(i * 4 + b).toString(16)}' }`).join(', ');
      return `apiVersion: nftops.dev/v1alpha1\nkind: LoadBalancer\nmetadata: { name: filler-${i} }\nspec:\n  address: '2001:db8:e::${i.toString(16)}'\n  ports: [{ port: 80, targetPort: 8080 }]\n  backends: [${backends}]\n`;
    });
    const probes = ['2001:db8:f::10', '2001:db8:f::11', '2001:db8:f::12'].map(
      (vip, i) =>
        `apiVersion: nftops.dev/v1alpha1\nkind: LoadBalancer\nmetadata: { name: probe-${i} }\nspec:\n  address: '${vip}'\n  ports: [{ port: 80, targetPort: 8080 }]\n  backends: [{ address: '2001:db8:b::10' }, { address: '2001:db8:b::11' }, { address: '2001:db8:b::12' }]\n`,
    );
    const result = compile([{ path: 'large.yaml', text: [...filler, ...probes].join('---\n') }]);
    expect(result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
    const artifact = result.artifacts[0]!.text;
    expect(artifact.match(/^\tmap backends6\S* \{$/gm)).toEqual(['\tmap backends6-s0 {', '\tmap backends6-s1 {']);
    const probeChains = new Set([...artifact.matchAll(/^\t\t\t2001:db8:f::1[0-2] \. tcp \. 80 comment "[^"]*" : goto ([^\s,]+),?$/gm)].map((m) => m[1]));
    expect([...probeChains].sort(), 'the probes sit in both maps').toEqual(['lb6-round-robin-3-snat-s0', 'lb6-round-robin-3-snat-s1']);
    await scenario(artifact, { vipMode: 'routed' }, async (t) => {
      for (const vip of ['2001:db8:f::10', '2001:db8:f::11', '2001:db8:f::12']) {
        const summary = await t.traffic({ vip, port: 80, count: 30 });
        expect(summary.byBackend, vip).toEqual({ '[2001:db8:b::10]:8080': 10, '[2001:db8:b::11]:8080': 10, '[2001:db8:b::12]:8080': 10 });
      }
    });
  });

  describe('the committed examples behave as their comments say', () => {
    it('lbaas-request: the policies of the ch-k8s-lbaas debug request, per backend, TCP and UDP', async () => {
      const inside = '203.0.113.10'; // allow-http's 203.0.113.0/24 minus its except 203.0.113.128/25
      const excepted = '203.0.113.200';
      await scenario(
        exampleArtifact('lbaas-request'),
        {
          vips: ['192.0.2.10'],
          clientAddresses: [inside, excepted],
          backendAddresses: ['198.51.100.11', '198.51.100.12', '198.51.100.13'],
          serverPorts: [8080, 8443, 5353],
        },
        async (t) => {
          // http 80 -> 8080, round robin: .11 and .12 (allow-http) answer, .13 (block-range: TCP 8443 only) drops.
          const http = await t.traffic({ vip: '192.0.2.10', port: 80, source: inside, count: 30, timeoutMs: MIXED_TIMEOUT, concurrency: 30 });
          expect(http.byBackend).toEqual({ '198.51.100.11:8080': 10, '198.51.100.12:8080': 10 });
          expect(http.failures).toEqual({ timeout: 10 });
          // From the except range nobody answers on 8080.
          await expectBlocked(t, '192.0.2.10', 80, 'tcp', excepted, 'timeout', 6);
          // dns 53 -> 5353/UDP: allow-dns admits any source on every pod.
          const dns = await t.traffic({ vip: '192.0.2.10', port: 53, protocol: 'udp', sources: [inside, excepted], count: 30 });
          expect(dns.byBackend).toEqual({ '198.51.100.11:5353': 10, '198.51.100.12:5353': 10, '198.51.100.13:5353': 10 });
          // alt 8443: only .13 (block-range, 203.0.113.0/24 without except) admits it, from both sources.
          const alt = await t.traffic({ vip: '192.0.2.10', port: 8443, sources: [inside, excepted], count: 30, timeoutMs: MIXED_TIMEOUT, concurrency: 30 });
          expect(alt.byBackend).toEqual({ '198.51.100.13:8443': 10 });
          expect(alt.failures).toEqual({ timeout: 20 });
        },
      );
    });

    it('dual-stack: weighted IPv4 with a quarantined pod, source-hash IPv6 without SNAT, custom names and marks', async () => {
      const allowed4 = '203.0.113.70'; // web-clients: 203.0.113.0/24 except 203.0.113.0/26
      const excepted4 = '203.0.113.10';
      const allowed6 = '2001:db8:c::70';
      await scenario(
        exampleArtifact('dual-stack'),
        {
          vips: ['192.0.2.20', '2001:db8:f::20', '2001:db8:f::30'],
          clientAddresses: [allowed4, excepted4, allowed6],
          backendAddresses: ['198.51.100.21', '198.51.100.22', '198.51.100.23', '2001:db8:b::21', '2001:db8:b::22'],
          serverPorts: [8443, 9443],
        },
        async (t) => {
          // Weights 2:1:1 over 40 flows: 20 / 10 / 10; .23 (port 9443) is quarantined (ingress: []), so its 10 drop.
          const v4 = await t.traffic({ vip: '192.0.2.20', port: 443, source: allowed4, count: 40, timeoutMs: MIXED_TIMEOUT, concurrency: 40 });
          expect(v4.byBackend).toEqual({ '198.51.100.21:8443': 20, '198.51.100.22:8443': 10 });
          expect(v4.failures).toEqual({ timeout: 10 });
          expect(v4.bySawSource).toEqual({ [LB4]: 30 });
          await expectBlocked(t, '192.0.2.20', 443, 'tcp', excepted4, 'timeout', 8);
          // IPv6: source-hash (one backend for the one client), SNAT off: the pods see the client.
          for (const protocol of ['tcp', 'udp'] as const) {
            const v6 = await t.traffic({ vip: '2001:db8:f::20', port: 443, protocol, source: allowed6, count: 10 });
            expect(v6.ok, `${protocol}: ${JSON.stringify(v6)}`).toBe(10);
            expect(Object.keys(v6.byBackend)).toHaveLength(1);
            expect(v6.bySawSource).toEqual({ [allowed6]: 10 });
          }
        },
      );
    });
  });
});
