#!/usr/bin/env node
// Benchmark: a one-service change among N services, with the real agent. Time from the rename of the new
// artifact into the watched directory until the new backend is live in the kernel.
//
//   npx tsc -b && node tools/bench/watch-change.mjs [--sizes 1000,10000,50000] [--changes 10] [--policies 0]
//        [--pause-ms 200] [--back-to-back] [--agent-arg=--no-incremental] [--json]
//
// Per size: tools/bench/compile-child.mjs compiles the synthetic set (tools/bench/synthetic.mjs, maps layout)
// twice: as is, and with service 0's last backend moved (CHANGED=1). The agent (packages/watcher/bin, drift
// checks off so they do not compete with the measurement) applies the first version at start-up; then the two
// versions alternate. For each change the artifact is first written under a temporary name in the same
// directory, then the clock starts and it is renamed over the watched file; it stops when `nft monitor new
// elements` in the namespace prints the changed backends6 element (the commit). `nft get element` and `nft -j
// list map` are not used to poll: on nft 1.0.6 each of them reads the whole map (tens of seconds at 50k).
// The next change waits for the agent's apply.ok (logged after it has read back what it applied); with
// --back-to-back it is renamed as soon as the previous change is live, so its time includes waiting for the
// agent to finish that read-back (what a user changing two services one after the other sees).
//
// Root only; everything happens in a network namespace and a temporary directory it creates and removes.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,50000' },
    changes: { type: 'string', default: '10' },
    policies: { type: 'string', default: '0' },
    'pause-ms': { type: 'string', default: '200' },
    'back-to-back': { type: 'boolean', default: false },
    'agent-arg': { type: 'string', multiple: true, default: [] },
    'ready-timeout': { type: 'string', default: '1800' },
    json: { type: 'boolean', default: false },
  },
});
const SIZES = values.sizes.split(',').map(Number);
const CHANGES = Math.max(1, Number(values.changes));
const PAUSE = Number(values['pause-ms']);
const READY_MS = Number(values['ready-timeout']) * 1000;
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
const load = () => +loadavg()[0].toFixed(2);
const log = (msg) => process.stderr.write(`[watch-change] ${msg}\n`);

/** Matches the monitor line of service 0's slot 3 with the given backend. */
// backends6, or one of its shards (backends6-s0 ...) beyond 4096 backend elements.
const elementLine = (backend) => new RegExp(`^add element inet nftops_nat backends6(?:-s\\d+)? \\{ 2001:db8:f:: \\. tcp \\. 80 \\. 3 .*: ${backend.replace(/\./g, '\\.')} \\. 8080 \\}`);
/**
 * A waiter over ITEMS (filled as lines arrive; every arrival calls each function in WAITERS): resolves with the
 * first item matching PREDICATE, or rejects after TIMEOUT_MS.
 */
const waitIn = (items, waiters) => (predicate, timeoutMs, what) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const check = () => {
      const found = items.find(predicate);
      if (!found) return;
      clearTimeout(timer);
      waiters.delete(check);
      resolve(found);
    };
    waiters.add(check);
    check();
  });

const VERSIONS = [
  { name: 'base', changed: '0', backend: '2001:db8:b::3' },
  { name: 'changed', changed: '1', backend: '2001:db8:b::3:ffff' },
];

function compileVersion(work, services, version) {
  const out = join(work, `${services}-${version.name}.nft`);
  const run = spawnSync(process.execPath, [join(ROOT, 'tools/bench/compile-child.mjs'), String(services), values.policies, 'maps', out, version.changed], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (run.status !== 0) throw new Error(`compile failed: ${run.stderr}`);
  return { ...JSON.parse(run.stdout), file: out };
}

function lineReader(stream, onLine) {
  let partial = '';
  stream.on('data', (chunk) => {
    const at = performance.now();
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const line of lines) onLine(line, at);
  });
}

async function measure(services) {
  const work = await mkdtemp(join(tmpdir(), 'nftops-watch-change-'));
  const netns = `nftops-wc-${randomBytes(3).toString('hex')}`;
  const children = [];
  execFileSync('ip', ['netns', 'add', netns]);
  try {
    log(`${services} services: compiling`);
    const compiled = VERSIONS.map((v) => compileVersion(work, services, v));
    const texts = await Promise.all(compiled.map((c) => readFile(c.file, 'utf8')));
    const digests = texts.map((t) => `sha256:${/# body: sha256:([0-9a-f]{64})/.exec(t)[1]}`);
    const dir = join(work, 'src', netns);
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'bench.nft');
    await writeFile(file, texts[0]);

    const agentArgs = [join(ROOT, 'packages/watcher/bin/nftops-watch.js'), '--dir', join(work, 'src'), '--state-dir', join(work, 'state'), '--listen', '127.0.0.1:0', '--drift-interval', '0', '--max-artifact-bytes', '1GiB', '--log-format', 'json', ...values['agent-arg']];
    // As deployed (deploy/systemd, Containerfile): the agent's malloc on huge pages, unless the caller set
    // GLIBC_TUNABLES; nft gets glibc's default (NFTOPS_NFT_GLIBC_TUNABLES, when set).
    const env = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1', ...process.env };
    const agent = spawn(process.execPath, agentArgs, { stdio: ['ignore', 'ignore', 'pipe'], env });
    children.push(agent);
    const events = [];
    const waiters = new Set();
    lineReader(agent.stderr, (line, at) => {
      if (!line.startsWith('{')) return;
      events.push({ ...JSON.parse(line), receivedAt: at });
      for (const w of [...waiters]) w();
    });
    const waitEvent = waitIn(events, waiters);
    const startLoad = load();
    const readyStarted = performance.now();
    await waitEvent((e) => e.event === 'agent.ready', READY_MS, 'the agent to apply the first version');
    const readyMs = performance.now() - readyStarted;
    // The first apply's own transaction (a cold apply into the empty namespace, as the agent runs it).
    const firstApplyMs = events.find((e) => e.event === 'apply.ok')?.ms;
    log(`${services} services: agent ready after ${(readyMs / 1000).toFixed(1)} s (first apply ${firstApplyMs} ms, then the read-back)`);

    // The monitor starts once the agent has applied the first version: it then reads the ruleset once (seconds at
    // 50k). Started before, it had to take every element event of the first apply, and at 50 000 services (32
    // backend maps) it lost track of sets ("Received event for an unknown set") and never printed the changes.
    // A probe set that exists before it starts tells when it is ready.
    const probe = (args, input) => spawnSync('ip', ['netns', 'exec', netns, 'nft', ...args], { input, encoding: 'utf8' });
    probe(['-f', '-'], 'table inet nftops_bench_probe {\n set s { type ipv4_addr; }\n}\n');
    // nft monitor: one line per committed element.
    const monitor = spawn('ip', ['netns', 'exec', netns, 'nft', 'monitor', 'new', 'elements'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(monitor);
    const seen = [];
    const monitorWaiters = new Set();
    lineReader(monitor.stdout, (line, at) => {
      // Only the probe and service 0's slot 3 matter (the first full apply prints every element).
      if (!line.includes('nftops_bench_probe') && !line.includes('2001:db8:f:: . tcp . 80 . 3 ')) return;
      seen.push({ line, at });
      for (const w of [...monitorWaiters]) w();
    });
    const waitSeen = waitIn(seen, monitorWaiters);
    const waitLine = (pattern, after, timeoutMs) => waitSeen((s) => s.at >= after && pattern.test(s.line), timeoutMs, String(pattern)).then((found) => found.at);

    let current = 0;
    const change = async (measured) => {
      const next = 1 - current;
      const temp = join(dir, `.bench.${randomBytes(4).toString('hex')}.tmp`);
      await writeFile(temp, texts[next]);
      const eventsBefore = events.length;
      const start = performance.now();
      await rename(temp, file);
      const live = await waitLine(elementLine(VERSIONS[next].backend), start, 600_000);
      const applied = waitEvent((e) => e.event === 'apply.ok' && e.digest === digests[next] && events.indexOf(e) >= eventsBefore, 1_800_000, 'apply.ok');
      current = next;
      const report = (ok) => {
        if (measured) log(`${services} services: change ${VERSIONS[next].name} live after ${(live - start).toFixed(1)} ms (${ok.mode}, agent tx ${ok.ms} ms, read-back ${ok.readMs} ms)`);
        if (process.env.NFTOPS_BENCH_TRACE) for (const e of events.slice(eventsBefore)) log(`  +${(e.receivedAt - start).toFixed(0)} ms ${e.event} ${JSON.stringify({ ms: e.ms, planMs: e.planMs, readMs: e.readMs, scanMs: e.scanMs })}`);
        return { ms: live - start, mode: ok.mode, txMs: ok.ms, operations: ok.operations };
      };
      // Back to back, the next rename follows right away; this change's apply.ok is collected later.
      return values['back-to-back'] ? { ms: live - start, done: applied.then(report) } : report(await applied);
    };
    // Probe (every 5 s, one element of a known set) until the monitor has read the ruleset and prints events.
    for (let i = 1; ; i++) {
      const after = performance.now();
      probe(['add', 'element', 'inet', 'nftops_bench_probe', 's', `{ 192.0.2.${i % 250} }`]);
      const printed = await waitLine(/nftops_bench_probe/, after, 5000).then(() => true, () => false);
      if (printed) break;
      if (i > 120) throw new Error('nft monitor never started');
    }
    log(`${services} services: nft monitor ready`);

    // Warm-up: both versions go through the agent once.

    for (let i = 0; i < 2; i++) await (await change(false)).done;
    const results = [];
    for (let i = 0; i < CHANGES; i++) {
      if (!values['back-to-back']) await new Promise((resolve) => setTimeout(resolve, PAUSE));
      results.push(await change(true));
    }
    for (const [i, result] of results.entries()) if (result.done) results[i] = await result.done;
    const sorted = results.map((r) => r.ms).sort((a, b) => a - b);
    const tx = results.map((r) => r.txMs).sort((a, b) => a - b);
    agent.kill('SIGTERM');
    await new Promise((resolve) => agent.on('close', resolve));
    return {
      services,
      policies: Number(values.policies),
      artifactMiB: +(compiled[0].bytes / 2 ** 20).toFixed(2),
      changes: results.length,
      p50_ms: +quantile(sorted, 0.5).toFixed(1),
      p90_ms: +quantile(sorted, 0.9).toFixed(1),
      min_ms: +sorted[0].toFixed(1),
      max_ms: +sorted.at(-1).toFixed(1),
      agent_tx_p50_ms: quantile(tx, 0.5),
      modes: [...new Set(results.map((r) => r.mode))],
      startup_s: +(readyMs / 1000).toFixed(1),
      first_apply_ms: firstApplyMs,
      load_start: startLoad,
      load_end: load(),
    };
  } finally {
    for (const child of children) child.kill('SIGKILL');
    spawnSync('ip', ['netns', 'delete', netns]);
    await rm(work, { recursive: true, force: true });
  }
}

const machine = {
  cpus: cpus().length,
  model: cpus()[0]?.model,
  node: process.version,
  nft: execFileSync('nft', ['--version']).toString().trim(),
  kernel: execFileSync('uname', ['-r']).toString().trim(),
};
const rows = [];
for (const size of SIZES) {
  const row = await measure(size);
  rows.push(row);
  if (!values.json) log(JSON.stringify(row));
}
if (values.json) console.log(JSON.stringify({ machine, agentArgs: values['agent-arg'], rows }, null, 2));
else {
  console.log(`# one-service change, rename -> backend live (nft monitor)${values['back-to-back'] ? ', changes back to back' : ''}; ${machine.cpus} CPUs (${machine.model}), node ${machine.node}, ${machine.nft}, kernel ${machine.kernel}${values['agent-arg'].length ? `, agent ${values['agent-arg'].join(' ')}` : ''}`);
  console.log('| services | artifact MiB | changes | p50 ms | p90 ms | min ms | max ms | agent tx p50 ms | modes | agent start-up s | first apply ms | load (start/end) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.services} | ${r.artifactMiB} | ${r.changes} | ${r.p50_ms} | ${r.p90_ms} | ${r.min_ms} | ${r.max_ms} | ${r.agent_tx_p50_ms} | ${r.modes.join(', ')} | ${r.startup_s} | ${r.first_apply_ms} | ${r.load_start} / ${r.load_end} |`);
  }
}
