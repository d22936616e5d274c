#!/usr/bin/env node
// Scale benchmark (issue 5): compile, cold/warm/incremental apply, and data-plane new-connection rate, for
// the maps layout (default) and the per-service layout rendered from the same input, in the same run.
//
//   npm run build && node tools/bench/scale.mjs [--sizes 1,1000,10000,50000] [--policies 10000]
//        [--connections 3000] [--concurrency 32] [--apply-timeout 600] [--skip-dataplane] [--json out.json]
//
// Needs root, nft and ip (network namespaces). Everything happens in namespaces it creates and deletes.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseArtifact, planIncremental } from '../../packages/artifact/dist/index.js';
import { createNetns, deleteNetns, withLbTopology } from '../../packages/testkit/dist/index.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1,1000,10000,50000' },
    policies: { type: 'string', default: '10000' },
    connections: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '32' },
    'apply-timeout': { type: 'string', default: '600' },
    'skip-dataplane': { type: 'boolean', default: false },
    layouts: { type: 'string', default: 'maps,per-service' },
    json: { type: 'string' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const layouts = values.layouts.split(',');
const policies = Number(values.policies);
const connections = Number(values.connections);
const concurrency = Number(values.concurrency);
const applyTimeout = Number(values['apply-timeout']) * 1000;
const work = mkdtempSync(join(tmpdir(), 'nftops-bench-'));
const child = new URL('./compile-child.mjs', import.meta.url).pathname;

// The probe service: its VIP is routed to the LB namespace and its backends are real listeners.
const PROBE = { vip: '2001:db8:f::ffff:ffff', backends: ['2001:db8:b::10', '2001:db8:b::11', '2001:db8:b::12', '2001:db8:b::13'] };

function compileOnce(services, layout, changed) {
  const out = join(work, `${layout}-${services}${changed ? '-next' : ''}.nft`);
  const run = spawnSync(process.execPath, [child, String(services), String(services >= 50000 ? policies : 0), layout, out, changed ? '1' : '0'], {
    encoding: 'utf8',
    env: { ...process.env, NFTOPS_BENCH_PROBE: JSON.stringify({ index: services - 1, ...PROBE }) },
    maxBuffer: 1 << 20,
  });
  if (run.status !== 0) throw new Error(`compile failed: ${run.stderr}`);
  return { ...JSON.parse(run.stdout), file: out };
}

function timeNft(netns, file) {
  const start = process.hrtime.bigint();
  const run = spawnSync('ip', ['netns', 'exec', netns, 'nft', '-f', file], { encoding: 'utf8', timeout: applyTimeout });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (run.error?.code === 'ETIMEDOUT' || run.signal) return { ms, timedOut: true };
  if (run.status !== 0) throw new Error(`nft -f ${file} failed: ${run.stderr}`);
  return { ms, timedOut: false };
}

async function applyTimes(file, nextFile) {
  const netns = await createNetns('nftops-bench');
  try {
    const cold = timeNft(netns, file);
    if (cold.timedOut) return { cold, warm: undefined, incremental: undefined };
    const warm = timeNft(netns, nextFile);
    // Back to the first version, then the one-service change as an incremental transaction.
    timeNft(netns, file);
    const body = (f) => {
      const parsed = parseArtifact(readFileSync(f, 'utf8'));
      if (!parsed.ok) throw new Error(parsed.message);
      return parsed.artifact.body;
    };
    const plan = planIncremental(body(file), body(nextFile));
    let incremental;
    if (plan.ok) {
      const planFile = `${nextFile}.plan`;
      writeFileSync(planFile, plan.transaction);
      incremental = { ...timeNft(netns, planFile), operations: plan.operations };
    }
    return { cold, warm, incremental };
  } finally {
    await deleteNetns(netns);
  }
}

async function dataPlaneRate(file) {
  return withLbTopology(
    { clientAddresses: ['2001:db8:c::2'], backendAddresses: PROBE.backends, vips: [PROBE.vip], vipMode: 'routed', serverPorts: [8080], serverProtocols: ['tcp'], prefix: 'nftops-bdp' },
    async (topology) => {
      // nft -f directly, with the benchmark's own timeout: large per-service rulesets take minutes to load.
      const loaded = timeNft(topology.lbNetns, file);
      if (loaded.timedOut) return undefined;
      // Warm up (neighbour entries, listeners), then measure.
      await topology.connectMany({ vip: PROBE.vip, port: 80, count: 100, concurrency });
      const start = performance.now();
      const results = await topology.connectMany({ vip: PROBE.vip, port: 80, count: connections, concurrency });
      const seconds = (performance.now() - start) / 1000;
      const failed = results.filter((r) => !r.ok).length;
      return { rate: (connections - failed) / seconds, failed };
    },
  );
}

const rows = [];
const nftVersion = execFileSync('nft', ['--version'], { encoding: 'utf8' }).trim();
const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
console.log(`# nftops scale benchmark — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} CPUs (${cpus()[0]?.model}), node ${process.version}, ${nftVersion}, kernel ${kernel}`);
for (const layout of layouts) {
  for (const services of sizes) {
    const compiled = compileOnce(services, layout, false);
    const next = compileOnce(services, layout, true);
    const apply = await applyTimes(compiled.file, next.file);
    const dp = values['skip-dataplane'] || apply.cold.timedOut ? undefined : await dataPlaneRate(compiled.file);
    const row = {
      layout,
      services,
      policies: services >= 50000 ? policies : 0,
      compileMs: Math.round(compiled.ms),
      compileRssMiB: Math.round(compiled.maxRssMiB),
      artifactMiB: +(compiled.bytes / 2 ** 20).toFixed(2),
      coldMs: apply.cold.timedOut ? `>${applyTimeout}` : Math.round(apply.cold.ms),
      warmMs: apply.warm ? Math.round(apply.warm.ms) : '-',
      incrementalMs: apply.incremental ? Math.round(apply.incremental.ms) : '-',
      connPerSec: dp ? Math.round(dp.rate) : '-',
      failed: dp ? dp.failed : '-',
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}
const base = (layout) => rows.find((r) => r.layout === layout && r.services === Math.min(...sizes))?.connPerSec;
console.log('\n| layout | services | policies | compile ms | compile peak RSS MiB | artifact MiB | cold apply ms | warm apply ms | one-service incremental ms | new conn/s | vs 1 service |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const ratio = typeof r.connPerSec === 'number' && base(r.layout) ? `${((r.connPerSec / base(r.layout)) * 100).toFixed(0)} %` : '-';
  console.log(`| ${r.layout} | ${r.services} | ${r.policies} | ${r.compileMs} | ${r.compileRssMiB} | ${r.artifactMiB} | ${r.coldMs} | ${r.warmMs} | ${r.incrementalMs} | ${r.connPerSec} | ${ratio} |`);
}
if (values.json) writeFileSync(values.json, JSON.stringify(rows, null, 2));
rmSync(work, { recursive: true, force: true });
