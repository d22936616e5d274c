#!/usr/bin/env node
// Data-plane benchmark (issue 5): new-connection rate and first-packet latency through a load-balancer
// namespace, for several artifacts in the same run.
//
//   npm run build && node tools/bench/dataplane.mjs \
//        --artifacts maps-1.nft,maps-10000.nft,maps-50000.nft \
//        --artifacts per-service-1.nft,per-service-10000.nft \
//        [--repetitions 25] [--duration 400] [--connections 20000] [--concurrency 64]
//        [--latency-connections 1000] [--warmup 3000] [--load-timeout 600] [--json out.json]
//
// Each --artifacts list is one group (one layout, growing sizes); its first artifact is the group's baseline.
// The artifacts must route the probe service (PROBE below) to real backends: compile them with
// `NFTOPS_BENCH_PROBE=$(node -e "import('./tools/bench/dataplane.mjs').then((m) => console.log(m.probeEnv(N)))")
// node tools/bench/compile-child.mjs N POLICIES LAYOUT OUT` (scale.mjs does this).
//
// How it measures, and why:
// - The load generator is tools/bench/conn-rate.c (built here with gcc -O2): non-blocking connects on epoll,
//   each connection reset as soon as it is established, a server that accepts and closes. No user-space
//   runtime sits in the path, so the rate is bound by the kernel's per-connection work, which includes the
//   load balancer's NAT rules, not by a JavaScript client.
// - Every connection is a new conntrack flow (the client walks explicit source ports over several source
//   addresses and never reuses a tuple in a topology), so every SYN is evaluated by the NAT rules.
// - Every artifact gets its own topology (client, LB and backend namespaces) and is loaded once.
// - The repetitions are interleaved and short: repetition r measures every artifact once for DURATION ms
//   (a rate run at CONCURRENCY, then a first-packet latency run at concurrency 1), starting at a different
//   artifact each time, so drift and bursts of other work on a shared machine hit all artifacts alike. The
//   ratio to the group's baseline is the median of per-repetition ratios (both measured seconds apart).
// - Nothing is pinned to CPUs or reniced. On this 2-core machine pinning client and server to different
//   cores measured no steadier (A/A ratio spread 59–157 % pinned, 82–123 % not, load average 6) and lowered
//   the rate, because a pinned process cannot move off a core another job is using.
//
// Needs root, gcc, nft and ip. Traffic stays in the namespaces it creates (documentation addresses only);
// they are deleted on exit, also on errors.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { NFT_ENV } from '../../packages/nft-driver/dist/index.js';
import { createLbTopology } from '../../packages/testkit/dist/index.js';

/** The probe service: its VIP is routed to the LB namespace and its backends are the C servers. */
export const PROBE = {
  vip: '2001:db8:f::ffff:ffff',
  port: 80,
  backends: ['2001:db8:b::10', '2001:db8:b::11', '2001:db8:b::12', '2001:db8:b::13'],
  backendPort: 8080,
};

/** NFTOPS_BENCH_PROBE for compile-child.mjs: the last of SERVICES services is the probe (last in rule order). */
export function probeEnv(services) {
  return JSON.stringify({ index: services - 1, vip: PROBE.vip, backends: PROBE.backends });
}

// Client source tuples: ports FIRST_PORT.. (PORT_COUNT of them) on each of the client addresses, which lie in
// 2001:db8:c::/64 (what the synthetic policies admit) and are created as many as a run needs.
const FIRST_PORT = 10_000;
const PORT_COUNT = 50_000;
const clientAddress = (i) => `2001:db8:c::1:${i.toString(16)}`;

/** Compiles conn-rate.c into DIR; returns the binary's path. */
export function buildConnRate(dir) {
  const source = new URL('./conn-rate.c', import.meta.url).pathname;
  const binary = join(dir, 'conn-rate');
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', binary, source], { stdio: 'inherit' });
  return binary;
}

/** Starts `conn-rate server :: PORT` in NETNS and resolves once it listens. It exits when its stdin closes. */
async function startServer(binary, netns, port) {
  const child = spawn('ip', ['netns', 'exec', netns, binary, 'server', '::', String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const lines = createInterface({ input: child.stdout });
  const ready = await Promise.race([
    new Promise((resolve) => lines.once('line', (line) => resolve(line === 'ready'))),
    exited.then(() => false),
  ]);
  if (!ready) throw new Error(`conn-rate server did not start in ${netns}`);
  return {
    async stop() {
      child.stdin.end();
      const killer = setTimeout(() => child.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** One client run from the topology's client namespace: COUNT connections from tuple number START. */
function runClient(binary, entry, sources, { start, count, concurrency, durationMs, timeoutMs = 2_000 }) {
  const run = spawnSync(
    'ip',
    ['netns', 'exec', entry.topology.clientNetns, binary, 'client', PROBE.vip, String(PROBE.port), sources.join(','), String(FIRST_PORT), String(PORT_COUNT), String(start), String(count), String(concurrency), String(timeoutMs), String(durationMs)],
    { encoding: 'utf8', timeout: 600_000 },
  );
  if (run.status !== 0) throw new Error(`conn-rate client failed in ${entry.topology.clientNetns}: ${run.stderr || run.error?.message}`);
  return JSON.parse(run.stdout);
}

/**
 * `nft -f FILE` in NETNS with a timeout (large per-service rulesets take minutes), in the environment the agent
 * gives nft (malloc huge pages), so the times are those a node sees.
 */
export function loadArtifact(netns, file, timeoutMs) {
  const started = performance.now();
  const run = spawnSync('ip', ['netns', 'exec', netns, 'nft', '-f', file], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ...NFT_ENV } });
  const ms = performance.now() - started;
  if (run.error?.code === 'ETIMEDOUT' || run.signal) return { ms, timedOut: true };
  if (run.status !== 0) throw new Error(`nft -f ${file} failed: ${run.stderr}`);
  return { ms, timedOut: false };
}

/** Quantile Q of VALUES, linear between order statistics. */
function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  return sorted[below] + (sorted[Math.min(below + 1, sorted.length - 1)] - sorted[below]) * (position - below);
}

/** { median, q1, q3, min, max } of VALUES. */
const spread = (values) => ({
  median: quantile(values, 0.5),
  q1: quantile(values, 0.25),
  q3: quantile(values, 0.75),
  min: Math.min(...values),
  max: Math.max(...values),
});

/** measureDataPlane's options: per run at most CONNECTIONS connections and DURATION_MS of starting them. */
export const DEFAULTS = {
  repetitions: 25,
  durationMs: 400,
  connections: 20_000,
  concurrency: 64,
  // The first-packet latency run (concurrency 1) after each rate run, for half of DURATION_MS at most; 0: none.
  latencyConnections: 1_000,
  warmup: 3_000,
  loadTimeoutMs: 600_000,
  log: (line) => console.error(line),
};

/**
 * Measures every artifact in GROUPS (arrays of { id, file }; the first of each group is its baseline).
 * Returns one result per artifact, in input order: { id, file, group, loaded, loadMs } and, when it loaded,
 * runs (conn-rate's output per repetition), failed (connections that failed or timed out), rate (spread of
 * the per-repetition rates, connections per second), ratio (spread of the per-repetition rate ratios to the
 * group's baseline) and latencyUs ({ p50, p99 }: medians over the repetitions of the concurrency-1 runs).
 */
export async function measureDataPlane(groups, options = {}) {
  const { repetitions, durationMs, connections, concurrency, latencyConnections, warmup, loadTimeoutMs, log } = { ...DEFAULTS, ...options };
  // Enough client addresses that no topology ever reuses a (source address, source port) tuple.
  const perTopology = warmup + repetitions * (connections + latencyConnections);
  const sources = Array.from({ length: Math.max(2, Math.ceil(perTopology / PORT_COUNT)) }, (_, i) => clientAddress(i));
  const work = mkdtempSync(join(tmpdir(), 'nftops-dataplane-'));
  const entries = groups.flatMap((artifacts, group) => artifacts.map((artifact) => ({ ...artifact, group, runs: [] })));
  try {
    const binary = buildConnRate(work);
    for (const entry of entries) {
      entry.topology = await createLbTopology({
        clientAddresses: sources,
        backendAddresses: PROBE.backends,
        vips: [PROBE.vip],
        vipMode: 'routed',
        serverPorts: [],
        prefix: 'nftops-dp',
      });
      entry.server = await startServer(binary, entry.topology.backendNetns, PROBE.backendPort);
      const load = loadArtifact(entry.topology.lbNetns, entry.file, loadTimeoutMs);
      entry.loaded = !load.timedOut;
      entry.loadMs = load.ms;
      log(`${entry.id}: ${entry.loaded ? `loaded in ${Math.round(load.ms)} ms` : `not loaded within ${loadTimeoutMs / 1000} s`}`);
      entry.nextTuple = 0;
      if (entry.loaded) {
        // Warm-up: caches, allocator, conntrack and socket slabs; and proof that the probe service answers.
        const warm = runClient(binary, entry, sources, { start: 0, count: warmup, concurrency, durationMs: 600_000 });
        entry.nextTuple = warmup;
        if (warm.connected !== warmup) throw new Error(`${entry.id}: warm-up connected ${warm.connected} of ${warmup}: ${JSON.stringify(warm)}`);
      } else {
        // Free the namespaces (and the half-loaded ruleset) now rather than at the end.
        await entry.server.stop();
        await entry.topology.destroy();
      }
    }

    const measured = entries.filter((entry) => entry.loaded);
    for (let r = 0; r < repetitions; r++) {
      // Rotate the order: each artifact takes each position about equally often.
      const order = measured.map((_, i) => measured[(i + r) % measured.length]);
      for (const entry of order) {
        const rate = runClient(binary, entry, sources, { start: entry.nextTuple, count: connections, concurrency, durationMs });
        entry.nextTuple += connections;
        const latency = latencyConnections > 0
          ? runClient(binary, entry, sources, { start: entry.nextTuple, count: latencyConnections, concurrency: 1, durationMs: Math.ceil(durationMs / 2) })
          : undefined;
        entry.nextTuple += latencyConnections;
        entry.runs[r] = { rate, latency };
      }
      log(`repetition ${r + 1}/${repetitions}: ${measured.map((e) => `${e.id} ${Math.round(e.runs[r].rate.rate)}/s`).join(', ')}`);
    }

    return entries.map((entry) => {
      const result = { id: entry.id, file: entry.file, group: entry.group, loaded: entry.loaded, loadMs: Math.round(entry.loadMs) };
      if (!entry.loaded) return result;
      const baseline = entries.find((other) => other.group === entry.group);
      const runs = (field) => entry.runs.map((run) => run[field]).filter(Boolean);
      return {
        ...result,
        runs: entry.runs,
        failed: [...runs('rate'), ...runs('latency')].reduce((sum, run) => sum + run.failed + run.timedOut, 0),
        rate: spread(runs('rate').map((run) => run.rate)),
        ratio: baseline.loaded ? spread(entry.runs.map((run, r) => run.rate.rate / baseline.runs[r].rate.rate)) : undefined,
        latencyUs: latencyConnections > 0
          ? { p50: quantile(runs('latency').map((run) => run.latencyUs.p50), 0.5), p99: quantile(runs('latency').map((run) => run.latencyUs.p99), 0.5) }
          : undefined,
      };
    });
  } finally {
    for (const entry of entries) {
      await entry.server?.stop();
      await entry.topology?.destroy();
    }
    rmSync(work, { recursive: true, force: true });
  }
}

/** Table cells shared by this script and scale.mjs: rate median and spread, ratio to the baseline, latency. */
export function formatResult(result) {
  if (!result?.loaded) return { rate: '–', spread: '–', ratio: '–', latency: '–' };
  const pct = (x) => `${(x * 100).toFixed(0)} %`;
  const { rate, ratio, latencyUs } = result;
  return {
    rate: String(Math.round(rate.median)),
    spread: `${Math.round(rate.q1)}–${Math.round(rate.q3)} (${Math.round(rate.min)}–${Math.round(rate.max)})`,
    ratio: ratio ? `${pct(ratio.median)} (${pct(ratio.q1)}–${pct(ratio.q3)})` : '–',
    latency: latencyUs ? `${Math.round(latencyUs.p50)} / ${Math.round(latencyUs.p99)}` : '–',
  };
}

/** The column headers matching formatResult. */
export const RESULT_HEADERS = {
  rate: 'new conn/s (median)',
  spread: 'IQR (min–max)',
  ratio: 'vs 1 service: median of paired ratios (IQR)',
  latency: 'first-packet latency p50 / p99 µs',
};

async function main() {
  const { values } = parseArgs({
    options: {
      artifacts: { type: 'string', multiple: true },
      repetitions: { type: 'string', default: String(DEFAULTS.repetitions) },
      duration: { type: 'string', default: String(DEFAULTS.durationMs) },
      connections: { type: 'string', default: String(DEFAULTS.connections) },
      concurrency: { type: 'string', default: String(DEFAULTS.concurrency) },
      'latency-connections': { type: 'string', default: String(DEFAULTS.latencyConnections) },
      warmup: { type: 'string', default: String(DEFAULTS.warmup) },
      'load-timeout': { type: 'string', default: String(DEFAULTS.loadTimeoutMs / 1000) },
      json: { type: 'string' },
    },
  });
  if (!values.artifacts?.length) throw new Error('give at least one --artifacts a.nft,b.nft,...');
  const groups = values.artifacts.map((list) => list.split(',').map((file) => ({ id: basename(file, '.nft'), file })));
  const results = await measureDataPlane(groups, {
    repetitions: Number(values.repetitions),
    durationMs: Number(values.duration),
    connections: Number(values.connections),
    concurrency: Number(values.concurrency),
    latencyConnections: Number(values['latency-connections']),
    warmup: Number(values.warmup),
    loadTimeoutMs: Number(values['load-timeout']) * 1000,
  });
  console.log(`\n| artifact | ${Object.values(RESULT_HEADERS).join(' | ')} | failed |`);
  console.log(`|---|${'---|'.repeat(Object.keys(RESULT_HEADERS).length)}---|`);
  for (const result of results) {
    const cells = formatResult(result);
    console.log(`| ${result.id} | ${Object.keys(RESULT_HEADERS).map((key) => cells[key]).join(' | ')} | ${result.loaded ? result.failed : 'not loaded'} |`);
  }
  if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
}

if (process.argv[1] === new URL(import.meta.url).pathname) await main();
