#!/usr/bin/env node
// Benchmark: time from an artifact's rename into the watched directory to the new rules being live.
//
//   npx tsc -b && node tools/bench/watch-latency.mjs [--changes 120] [--pause-ms 250] [--json]
//
// Runs the real agent (packages/watcher/bin/nftops-watch.js, default settings apart from a temporary state
// directory and an ephemeral status port) against a throwaway network namespace. Each version of the small
// artifact creates a chain named m<N>; `nft monitor` in the namespace prints the chain when the transaction
// commits, which is the moment the rules are live. Root only; touches nothing outside the namespace it creates.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const { renderArtifact } = await import(join(ROOT, 'packages/artifact/dist/index.js'));
const { values } = parseArgs({
  options: {
    changes: { type: 'string', default: '120' },
    warmup: { type: 'string', default: '5' },
    'pause-ms': { type: 'string', default: '250' },
    json: { type: 'boolean', default: false },
  },
});
const CHANGES = Number(values.changes);
const WARMUP = Number(values.warmup);
const PAUSE = Number(values['pause-ms']);

function artifact(n) {
  const body = [
    'table inet nftops_bench',
    'delete table inet nftops_bench',
    'table inet nftops_bench {',
    `  chain m${n} {`,
    '    counter',
    '  }',
    '  chain input {',
    '    type filter hook input priority 0; policy accept;',
    `    tcp dport ${1000 + (n % 50000)} accept`,
    `    ip saddr 192.0.2.${n % 250} jump m${n}`,
    '  }',
    '}',
    '',
  ].join('\n');
  return renderArtifact({ generator: 'watch-latency', tables: [{ family: 'inet', name: 'nftops_bench' }], sourceDigest: '0'.repeat(64), body });
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];

const netns = `nftops-bench-${randomBytes(3).toString('hex')}`;
const dir = await mkdtemp(join(tmpdir(), 'nftops-watch-bench-'));
const children = [];
execFileSync('ip', ['netns', 'add', netns]);
try {
  await mkdir(join(dir, 'src', netns), { recursive: true });
  const file = join(dir, 'src', netns, 'bench.nft');
  let version = 0;
  await writeFile(file, artifact(version));

  // nft monitor: one line per committed object.
  const monitor = spawn('ip', ['netns', 'exec', netns, 'nft', 'monitor', 'chains'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(monitor);
  const seen = new Map();
  const waiting = new Map();
  let buffer = '';
  monitor.stdout.on('data', (chunk) => {
    const now = performance.now();
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const line of lines) {
      const match = /^add chain inet nftops_bench m(\d+)\b/.exec(line);
      if (!match) continue;
      const n = Number(match[1]);
      if (!seen.has(n)) seen.set(n, now);
      waiting.get(n)?.(now);
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 300)); // let nft monitor subscribe

  const agent = spawn(process.execPath, [join(ROOT, 'packages/watcher/bin/nftops-watch.js'), '--dir', join(dir, 'src'), '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--log-format', 'json'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(agent);
  const events = [];
  const eventWaiters = [];
  let partial = '';
  agent.stderr.on('data', (chunk) => {
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const event = { ...JSON.parse(line), receivedAt: performance.now() };
      events.push(event);
      for (const waiter of eventWaiters.splice(0)) waiter();
    }
  });
  const waitEvent = (predicate, timeoutMs = 10_000) =>
    new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error('timed out waiting for the agent')), timeoutMs);
      const check = () => {
        const found = events.find(predicate);
        if (found) {
          clearTimeout(deadline);
          resolve(found);
        } else eventWaiters.push(check);
      };
      check();
    });
  await waitEvent((e) => e.event === 'agent.ready', 30_000);

  const latencies = [];
  const applyMs = [];
  for (let i = 0; i < WARMUP + CHANGES; i++) {
    version++;
    const text = artifact(version);
    const temp = join(dir, 'src', netns, `.bench.${version}.tmp`);
    await writeFile(temp, text);
    const live = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`version ${version} never went live`)), 10_000);
      waiting.set(version, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
    const start = performance.now();
    await rename(temp, file);
    const at = await live;
    waiting.delete(version);
    const digest = `sha256:${/# body: sha256:([0-9a-f]{64})/.exec(text)[1]}`;
    const ok = await waitEvent((e) => e.event === 'apply.ok' && e.digest === digest);
    if (i >= WARMUP) {
      latencies.push(at - start);
      applyMs.push(ok.ms);
    }
    await new Promise((resolve) => setTimeout(resolve, PAUSE));
  }
  const modes = new Set(events.filter((e) => e.event === 'apply.ok').slice(1).map((e) => e.mode));
  agent.kill('SIGTERM');
  await new Promise((resolve) => agent.on('close', resolve));

  const sorted = [...latencies].sort((a, b) => a - b);
  const summary = {
    changes: latencies.length,
    p50_ms: +quantile(sorted, 0.5).toFixed(1),
    p90_ms: +quantile(sorted, 0.9).toFixed(1),
    p99_ms: +quantile(sorted, 0.99).toFixed(1),
    min_ms: +sorted[0].toFixed(1),
    max_ms: +sorted.at(-1).toFixed(1),
    mean_ms: +(latencies.reduce((a, b) => a + b, 0) / latencies.length).toFixed(1),
    agent_apply_ms_p50: quantile([...applyMs].sort((a, b) => a - b), 0.5),
    apply_modes: [...modes],
    machine: {
      cpus: cpus().length,
      node: process.version,
      nft: execFileSync('nft', ['--version']).toString().trim(),
      kernel: execFileSync('uname', ['-r']).toString().trim(),
      loadavg_1m_at_end: Number(execFileSync('cat', ['/proc/loadavg']).toString().split(' ')[0]),
    },
  };
  if (values.json) console.log(JSON.stringify(summary, null, 2));
  else {
    console.log(`rename -> live over ${summary.changes} changes (after ${WARMUP} warm-up): p50 ${summary.p50_ms} ms, p90 ${summary.p90_ms} ms, p99 ${summary.p99_ms} ms, min ${summary.min_ms} ms, max ${summary.max_ms} ms`);
    console.log(`agent-reported apply (nft -f) p50 ${summary.agent_apply_ms_p50} ms; apply modes: ${summary.apply_modes.join(', ')}`);
    console.log(`machine: ${summary.machine.cpus} CPUs, node ${summary.machine.node}, ${summary.machine.nft}, kernel ${summary.machine.kernel}, load ${summary.machine.loadavg_1m_at_end}`);
  }
} finally {
  for (const child of children) child.kill('SIGKILL');
  execFileSync('ip', ['netns', 'delete', netns]);
  await rm(dir, { recursive: true, force: true });
}
