#!/usr/bin/env node
// Scale benchmark (issue 5): compile, cold/warm/incremental apply, and data-plane new-connection rate, for
// the maps layout (default) and the per-service layout rendered from the same input, in the same run.
//
//   npm run build && node tools/bench/scale.mjs [--sizes 1,1000,10000,50000] [--policies 10000]
//        [--repetitions 25] [--duration 400] [--concurrency 64] [--apply-timeout 600] [--apply-runs 3] [--skip-dataplane]
//        [--compile-runs 3] [--skip-apply]
//        [--json out.json]
//
// The data-plane columns come from dataplane.mjs, run once at the end over every artifact that loaded
// within --apply-timeout, interleaved (see there); "vs 1 service" is relative to the smallest size of the
// same layout.
//
// Needs root, nft, ip and gcc. Everything happens in namespaces it creates and deletes.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseArtifact, planIncremental } from '../../packages/artifact/dist/index.js';
import { createNetns, deleteNetns } from '../../packages/testkit/dist/index.js';
import { DEFAULTS, formatResult, loadArtifact, measureDataPlane, probeEnv } from './dataplane.mjs';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1,1000,10000,50000' },
    policies: { type: 'string', default: '10000' },
    repetitions: { type: 'string', default: String(DEFAULTS.repetitions) },
    duration: { type: 'string', default: String(DEFAULTS.durationMs) },
    concurrency: { type: 'string', default: String(DEFAULTS.concurrency) },
    'apply-timeout': { type: 'string', default: '600' },
    'apply-runs': { type: 'string', default: '3' },
    'skip-dataplane': { type: 'boolean', default: false },
    'compile-runs': { type: 'string', default: '3' },
    'skip-apply': { type: 'boolean', default: false },
    layouts: { type: 'string', default: 'maps,per-service' },
    json: { type: 'string' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const layouts = values.layouts.split(',');
const policies = Number(values.policies);
const applyTimeout = Number(values['apply-timeout']) * 1000;
const applyRuns = Math.max(1, Number(values['apply-runs']));
const compileRuns = Math.max(1, Number(values['compile-runs']));
const work = mkdtempSync(join(tmpdir(), 'nftops-bench-'));
const child = new URL('./compile-child.mjs', import.meta.url).pathname;

function compileOnce(services, layout, changed) {
  const out = join(work, `${layout}-${services}${changed ? '-next' : ''}.nft`);
  const run = spawnSync(process.execPath, [child, String(services), String(services >= 50000 ? policies : 0), layout, out, changed ? '1' : '0'], {
    encoding: 'utf8',
    // The last service is the probe of the data-plane benchmark: last in rule order, routed to real listeners.
    env: { ...process.env, NFTOPS_BENCH_PROBE: probeEnv(services) },
    maxBuffer: 1 << 20,
  });
  if (run.status !== 0) throw new Error(`compile failed: ${run.stderr}`);
  return { ...JSON.parse(run.stdout), file: out };
}

const timeNft = (netns, file) => loadArtifact(netns, file, applyTimeout);

/** One round in a fresh namespace: cold load, the next version over it, back, then the incremental change. */
async function applyRound(file, nextFile, plan) {
  const netns = await createNetns('nftops-bench');
  try {
    const cold = timeNft(netns, file);
    if (cold.timedOut) return { cold, warm: undefined, incremental: undefined };
    const warm = timeNft(netns, nextFile);
    // Back to the first version, then the one-service change as an incremental transaction.
    timeNft(netns, file);
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

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
};

/**
 * Apply times, the median of --apply-runs rounds (each in a fresh namespace): a single `nft -f` of tens of MiB
 * varies by a factor of two here with how fast the kernel hands out (huge) pages.
 */
async function applyTimes(file, nextFile) {
  const body = (f) => {
    const parsed = parseArtifact(readFileSync(f, 'utf8'));
    if (!parsed.ok) throw new Error(parsed.message);
    return parsed.artifact.body;
  };
  const plan = planIncremental(body(file), body(nextFile));
  const rounds = [];
  for (let i = 0; i < applyRuns; i++) {
    const round = await applyRound(file, nextFile, plan);
    rounds.push(round);
    if (round.cold.timedOut) return round;
  }
  const ms = (pick) => {
    const values = rounds.map(pick).filter((v) => v !== undefined);
    return values.length === 0 ? undefined : { ms: median(values.map((v) => v.ms)), runs: values.map((v) => Math.round(v.ms)), timedOut: values.some((v) => v.timedOut) };
  };
  return { cold: ms((r) => r.cold), warm: ms((r) => r.warm), incremental: ms((r) => r.incremental) };
}

const rows = [];
const nftVersion = execFileSync('nft', ['--version'], { encoding: 'utf8' }).trim();
const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
console.log(`# nftops scale benchmark — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} CPUs (${cpus()[0]?.model}), node ${process.version}, ${nftVersion}, kernel ${kernel}`);
const files = new Map(); // row → artifact file, for the data-plane run
for (const layout of layouts) {
  for (const services of sizes) {
    // Each compile in a fresh process; the median of --compile-runs, and the largest peak RSS.
    const compiles = Array.from({ length: compileRuns }, () => compileOnce(services, layout, false));
    const compiled = compiles[0];
    const compileFields = {
      layout,
      services,
      policies: services >= 50000 ? policies : 0,
      compileMs: Math.round(median(compiles.map((c) => c.ms))),
      compileRuns: compiles.map((c) => Math.round(c.ms)),
      compileRssMiB: Math.round(Math.max(...compiles.map((c) => c.maxRssMiB))),
      artifactMiB: +(compiled.bytes / 2 ** 20).toFixed(2),
    };
    if (values['skip-apply']) {
      rows.push(compileFields);
      console.log(JSON.stringify(compileFields));
      continue;
    }
    const next = compileOnce(services, layout, true);
    const apply = await applyTimes(compiled.file, next.file);
    const row = {
      ...compileFields,
      coldMs: apply.cold.timedOut ? `>${applyTimeout}` : Math.round(apply.cold.ms),
      warmMs: apply.warm ? Math.round(apply.warm.ms) : '-',
      incrementalMs: apply.incremental ? Math.round(apply.incremental.ms) : '-',
      applyRuns: { cold: apply.cold.runs, warm: apply.warm?.runs, incremental: apply.incremental?.runs },
    };
    rows.push(row);
    if (!apply.cold.timedOut) files.set(row, compiled.file);
    console.log(JSON.stringify(row));
  }
}

// One interleaved data-plane run over all artifacts that loaded: one group per layout, smallest size first.
if (!values['skip-dataplane'] && !values['skip-apply']) {
  const groups = layouts
    .map((layout) => rows.filter((row) => row.layout === layout && files.has(row)).sort((a, b) => a.services - b.services))
    .filter((group) => group.length > 0);
  const results = await measureDataPlane(
    groups.map((group) => group.map((row) => ({ id: `${row.layout}-${row.services}`, file: files.get(row) }))),
    { repetitions: Number(values.repetitions), durationMs: Number(values.duration), concurrency: Number(values.concurrency), loadTimeoutMs: applyTimeout },
  );
  for (const [i, row] of groups.flat().entries()) {
    row.dataPlane = results[i];
    console.log(JSON.stringify({ layout: row.layout, services: row.services, ...formatResult(results[i]), failed: results[i].failed }));
  }
}

console.log('\n| layout | services | policies | compile ms | compile peak RSS MiB | artifact MiB | cold apply ms | warm apply ms | one-service incremental ms | new conn/s (median) | IQR (min–max) | vs 1 service (IQR) | first-packet latency p50 / p99 µs |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const dp = formatResult(r.dataPlane);
  console.log(`| ${r.layout} | ${r.services} | ${r.policies} | ${r.compileMs} | ${r.compileRssMiB} | ${r.artifactMiB} | ${r.coldMs ?? '-'} | ${r.warmMs ?? '-'} | ${r.incrementalMs ?? '-'} | ${dp.rate} | ${dp.spread} | ${dp.ratio} | ${dp.latency} |`);
}
if (values.json) writeFileSync(values.json, JSON.stringify(rows, null, 2));
rmSync(work, { recursive: true, force: true });
