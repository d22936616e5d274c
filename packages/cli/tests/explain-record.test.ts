import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createNftDriver } from '@nftops/nft-driver';
import { kernelAvailable, withLbTopology, withNetns } from '@nftops/testkit';
import {
  compileOne,
  DUAL_STACK_TOPOLOGY,
  dualStackTraffic,
  exampleSources,
  FIXTURES,
  fixturePath,
  LBAAS_TOPOLOGY,
  lbaasSources,
  lbaasTraffic,
  SMALL_TOPOLOGY,
  smallSources,
  smallTraffic,
} from './fixtures/explain/scenarios.js';

/**
 * Records the `nft -j list ruleset` fixtures of explain.test.ts from real loads and real traffic in throwaway
 * namespaces. Off by default; run `NFTOPS_RECORD_FIXTURES=1 npx vitest run --project cli explain-record`.
 */
const record = kernelAvailable() && process.env.NFTOPS_RECORD_FIXTURES === '1';
const nft = createNftDriver();

function save(name: string, artifact: string, items: readonly Record<string, unknown>[], observed: unknown): void {
  writeFileSync(fixturePath(name), `${JSON.stringify({ nftables: items }, null, 1)}\n`);
  writeFileSync(new URL(`${name}.nft`, FIXTURES), artifact);
  writeFileSync(new URL(`${name}.observed.json`, FIXTURES), `${JSON.stringify(observed, null, 2)}\n`);
}

describe.runIf(record)('record explain fixtures', () => {
  it.each(['maps', 'per-service'] as const)('a small deployment, %s layout', async (layout) => {
    const artifact = compileOne(smallSources(layout));
    await withLbTopology(SMALL_TOPOLOGY, async (t) => {
      await t.applyRulesetOrThrow(artifact);
      const observed = await smallTraffic(t);
      save(`small-${layout}`, artifact, await nft.listRuleset({ netns: t.lbNetns }), observed);
    });
  });

  it.each(['maps', 'per-service'] as const)('lbaas-request, %s layout', async (layout) => {
    const artifact = compileOne(lbaasSources(layout));
    await withLbTopology(LBAAS_TOPOLOGY, async (t) => {
      await t.applyRulesetOrThrow(artifact);
      const observed = await lbaasTraffic(t);
      save(`lbaas-${layout}`, artifact, await nft.listRuleset({ netns: t.lbNetns }), observed);
    });
  });

  it('dual-stack (per-service, weights, source-hash, quarantine)', async () => {
    const artifact = compileOne(exampleSources('dual-stack'));
    await withLbTopology(DUAL_STACK_TOPOLOGY, async (t) => {
      await t.applyRulesetOrThrow(artifact);
      const observed = await dualStackTraffic(t);
      save('dual-stack', artifact, await nft.listRuleset({ netns: t.lbNetns }), observed);
    });
  });

  it('mesh sidecar: outbound connections redirected to the proxy port', async () => {
    const artifact = compileOne(exampleSources('mesh-sidecar-default'));
    await withNetns(async (netns) => {
      const ip = (...args: string[]) => execFileSync('ip', ['-n', netns, ...args]);
      // A veth pair inside the namespace gives 192.0.2.0/24 a non-loopback route.
      ip('link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
      ip('address', 'add', '192.0.2.1/24', 'dev', 'v0');
      ip('link', 'set', 'v0', 'up');
      ip('link', 'set', 'v1', 'up');
      const loaded = await nft.apply(artifact, { netns });
      expect(loaded).toEqual({ ok: true });
      // 4 connections to 192.0.2.50:80: redirected to 127.0.0.1:15001, where nothing listens (refused).
      const script = `const net=require('node:net');let n=0;for(let i=0;i<4;i++){const s=net.connect({host:'192.0.2.50',port:80});s.on('error',()=>{if(++n===4)process.exit(0)});s.on('connect',()=>{s.destroy();if(++n===4)process.exit(0)})}setTimeout(()=>process.exit(1),5000)`;
      execFileSync('ip', ['netns', 'exec', netns, process.execPath, '-e', script]);
      save('mesh-sidecar', artifact, await nft.listRuleset({ netns }), { outbound: 4 });
    });
  });
});
