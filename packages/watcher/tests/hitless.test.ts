import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '@nftops/compiler';
import { kernelAvailable, withLbTopology, type TrafficSummary } from '@nftops/testkit';
import { Agent, createMemoryLogger } from '@nftops/watcher';
import { artifact, tempDir, testConfig, waitFor, writeAtomic } from './helpers.js';

const VIP = '192.0.2.10';
const BACKENDS = ['198.51.100.10', '198.51.100.11', '198.51.100.12', '198.51.100.13'];

/**
 * The LB artifact: DNAT the VIP to BACKEND. No set or map in the rule, on purpose: with a rule looking up a map
 * the transaction removes (the anonymous map of a replaced `numgen ... map { }` rule), this test lost 1-2 of
 * ~6 500 connections in about one run in twenty, with the plain idiom and with keep-base-chains alike; without
 * such a map, none in 20 runs (packages/watcher/README.md, "What no whole apply avoids").
 */
function lbArtifact(backend: string): string {
  return artifact({
    'inet nftops_lb': [
      '  chain prerouting {',
      '    type nat hook prerouting priority dstnat; policy accept;',
      `    ip daddr ${VIP} tcp dport 80 counter dnat ip to ${backend}:8080`,
      '  }',
    ].join('\n'),
  });
}

/** Compiled (maps layout) LB artifact for the VIP with four BACKENDS: four slots, whichever backends fill them. */
function compiledArtifact(backends: readonly string[]): string {
  const text = [
    'apiVersion: nftops.dev/v1alpha1\nkind: Settings\nmetadata: { name: t }\nspec: { layout: maps }\n',
    `apiVersion: nftops.dev/v1alpha1\nkind: LoadBalancer\nmetadata: { name: web }\nspec:\n  address: '${VIP}'\n  ports: [{ port: 80, targetPort: 8080 }]\n  backends: [${backends.map((b) => `{ address: '${b}' }`).join(', ')}]\n`,
  ].join('---\n');
  const result = compile([{ path: 'lb.yaml', text }]);
  if (!result.ok) throw new Error(JSON.stringify(result.diagnostics.slice(0, 3)));
  return result.artifacts[0]!.text;
}

/**
 * A client in one namespace opens connections without pause through the LB namespace while the agent applies 50
 * changes (NEXT gives change N's artifact). Every connection must succeed: all servers keep running, so a failure
 * could only come from a moment without (or with half) a ruleset: the VIP is a local address of the LB, so a
 * packet that escaped DNAT would be refused. Every change must go in the way MODE says.
 */
async function underTraffic(first: string, next: (change: number) => string, mode: 'keep-base-chains' | 'incremental', backends: readonly string[]): Promise<void> {
  const { path: dir, cleanup } = await tempDir();
  const logger = createMemoryLogger();
  let agent: Agent | undefined;
  try {
    await withLbTopology(
      { backendAddresses: [...backends, '2001:db8:b::10'], vips: [VIP], serverPorts: [8080], serverProtocols: ['tcp'], prefix: 'nftops-hl' },
      async (t) => {
        await mkdir(join(dir, 'src', t.lbNetns), { recursive: true });
        const file = join(dir, 'src', t.lbNetns, 'lb.nft');
        await writeFile(file, first);
        agent = new Agent({
          config: testConfig({ sources: [{ path: join(dir, 'src') }], stateDir: join(dir, 'state'), logLevel: 'info' }),
          logger,
          processMetrics: false,
        });
        await agent.start();
        const warm = await t.traffic({ vip: VIP, port: 80, count: 20, concurrency: 4 });
        expect(warm.failures).toEqual({});

        // The client: batches until the changes are done, at most 2 000 connections a second. Every connection
        // takes a source port of its own (a new conntrack flow), and the topology has 45 000: paced, they last
        // 22 s, enough for 50 changes on a loaded machine (unpaced, 4 000 a second ran out once in a full
        // suite). Should they still run out, the client stops and the changes go on without traffic.
        const applied = () => logger.events.filter((e) => e.event === 'apply.ok').length - 1;
        let changing = true;
        let changesUnderTraffic = 0;
        const batches: TrafficSummary[] = [];
        const client = (async () => {
          let used = 20; // the warm-up
          while (changing && used + 100 <= 45_000) {
            const started = performance.now();
            batches.push(await t.traffic({ vip: VIP, port: 80, count: 100, concurrency: 1, timeoutMs: 3000 }));
            used += 100;
            changesUnderTraffic = applied();
            const rest = 50 - (performance.now() - started);
            if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
          }
        })();

        const id = `${t.lbNetns}/lb.nft`;
        try {
          for (let change = 0; change < 50; change++) {
            const text = next(change);
            const digest = `sha256:${/# body: sha256:([0-9a-f]{64})/.exec(text)![1]}`;
            await writeAtomic(file, text);
            await waitFor(() => agent!.status().artifacts.find((a) => a.id === id)?.applied?.digest === digest, `change ${change}`, 15_000);
          }
        } finally {
          changing = false;
          await client;
        }

        const total = batches.reduce((n, b) => n + b.total, 0);
        const ok = batches.reduce((n, b) => n + b.ok, 0);
        const failures: Record<string, number> = {};
        const byAddress: Record<string, number> = {};
        for (const batch of batches) {
          for (const [kind, n] of Object.entries(batch.failures)) failures[kind] = (failures[kind] ?? 0) + n;
          for (const [address, n] of Object.entries(batch.byBackendAddress)) byAddress[address] = (byAddress[address] ?? 0) + n;
        }
        // On a failure, say how each change went in.
        const story = () =>
          JSON.stringify({
            total,
            modes: logger.events.filter((e) => e.event === 'apply.ok').map((e) => e.fields.mode),
            warnings: logger.events.filter((e) => e.level === 'warn' || e.level === 'error').map((e) => `${e.event}: ${JSON.stringify(e.fields)}`),
          });
        expect(failures, story()).toEqual({});
        expect(ok).toBe(total);
        expect(total).toBeGreaterThanOrEqual(300);
        expect(changesUnderTraffic, 'changes applied while the client ran').toBeGreaterThanOrEqual(25);
        for (const address of backends) expect(byAddress[address] ?? 0, address).toBeGreaterThan(0);
        // 1 initial apply + 50 changes, each its own transaction; none refused.
        const applies = logger.events.filter((e) => e.event === 'apply.ok');
        expect(applies).toHaveLength(51);
        expect(applies.slice(1).map((e) => e.fields.mode), story()).toEqual(Array.from({ length: 50 }, () => mode));
        expect(logger.events.filter((e) => e.level === 'warn' || e.level === 'error')).toEqual([]);
        console.log(`hitless (${mode}): ${total} connections during ${changesUnderTraffic} of 50 changes, 0 failed, per backend ${JSON.stringify(byAddress)}`);
      },
    );
  } finally {
    await agent?.stop();
    await cleanup();
  }
}

describe.runIf(kernelAvailable())('hitless artifact changes', () => {
  it('50 whole applies moving the VIP from backend to backend under continuous connections: zero failed connections', async () => {
    // The rule changes every time, so each change is a whole apply, and it keeps the NAT base chain registered.
    await underTraffic(lbArtifact(BACKENDS[0]!), (change) => lbArtifact(BACKENDS[(change + 1) % BACKENDS.length]!), 'keep-base-chains', BACKENDS);
  });

  it('50 incremental changes of a compiled service\'s backends under continuous connections: zero failed connections', async () => {
    // Four slots filled by four of five backends, a different one left out each time: the same four keys of the
    // backends map get new values, so each change is element operations on kept maps.
    const five = [...BACKENDS, '198.51.100.14'];
    const without = (n: number) => five.filter((_, i) => i !== n % five.length);
    await underTraffic(compiledArtifact(without(4)), (change) => compiledArtifact(without(change)), 'incremental', five);
  });
});
