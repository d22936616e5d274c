#!/usr/bin/env node
// Benchmark: idle CPU and resident memory of the agent watching 10 artifacts.
//
//   npx tsc -b && node tools/bench/watch-idle.mjs [--seconds 60] [--artifacts 10] [--json] [--agent-arg=--drift-interval=0 ...]
//
// Starts the real agent with default settings (drift check every 30 s) against 10 artifacts in a throwaway
// network namespace, waits until it is ready, then samples /proc for SECONDS: CPU time of the agent itself
// (utime+stime) and of the nft processes it ran and reaped (cutime+cstime: the drift checks), and its RSS.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const { renderArtifact } = await import(join(ROOT, 'packages/artifact/dist/index.js'));
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    artifacts: { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
    'agent-arg': { type: 'string', multiple: true, default: [] },
  },
});
const SECONDS = Number(values.seconds);
const COUNT = Number(values.artifacts);
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

function artifact(i) {
  const name = `nftops_idle${i}`;
  const body = [
    `table inet ${name}`,
    `delete table inet ${name}`,
    `table inet ${name} {`,
    '  set allowed { type ipv4_addr; elements = { 192.0.2.1, 192.0.2.2, 198.51.100.7 } }',
    '  chain input {',
    `    type filter hook input priority ${i}; policy accept;`,
    '    ip saddr @allowed counter accept',
    `    tcp dport ${2000 + i} counter accept`,
    '  }',
    '}',
    '',
  ].join('\n');
  return renderArtifact({ generator: 'watch-idle', tables: [{ family: 'inet', name }], sourceDigest: '0'.repeat(64), body });
}

async function sample(pid) {
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  // fields after "comm)": state(0) ... utime(11) stime(12) cutime(13) cstime(14)
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { self: Number(stat[11]) + Number(stat[12]), children: Number(stat[13]) + Number(stat[14]), rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), at: performance.now() };
}

const netns = `nftops-idle-${randomBytes(3).toString('hex')}`;
const dir = await mkdtemp(join(tmpdir(), 'nftops-watch-idle-'));
execFileSync('ip', ['netns', 'add', netns]);
let agent;
try {
  await mkdir(join(dir, 'src', netns), { recursive: true });
  for (let i = 0; i < COUNT; i++) await writeFile(join(dir, 'src', netns, `a${i}.nft`), artifact(i));
  agent = spawn(process.execPath, [join(ROOT, 'packages/watcher/bin/nftops-watch.js'), '--dir', join(dir, 'src'), '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--log-format', 'json', ...values['agent-arg']], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent not ready:\n${log}`)), 30_000);
    agent.stderr.on('data', (chunk) => {
      log += chunk.toString();
      if (log.includes('"event":"agent.ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await new Promise((resolve) => setTimeout(resolve, 2000)); // let start-up work (state write, GC) settle
  const first = await sample(agent.pid);
  const rss = [];
  for (let s = 0; s < SECONDS; s++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    rss.push((await sample(agent.pid)).rssKb);
  }
  const last = await sample(agent.pid);
  const seconds = (last.at - first.at) / 1000;
  const drifts = (log.match(/"event":"drift\./g) ?? []).length;
  const summary = {
    artifacts: COUNT,
    agent_args: values['agent-arg'],
    seconds: +seconds.toFixed(1),
    agent_cpu_percent: +((100 * (last.self - first.self)) / TICKS / seconds).toFixed(3),
    nft_children_cpu_percent: +((100 * (last.children - first.children)) / TICKS / seconds).toFixed(3),
    rss_mb_end: +(last.rssKb / 1024).toFixed(1),
    rss_mb_max: +(Math.max(...rss) / 1024).toFixed(1),
    peak_rss_mb: +(last.hwmKb / 1024).toFixed(1),
    drift_events: drifts,
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
    console.log(`idle with ${COUNT} artifacts for ${summary.seconds} s: agent CPU ${summary.agent_cpu_percent}% of one core, nft (drift checks) ${summary.nft_children_cpu_percent}%`);
    console.log(`RSS ${summary.rss_mb_end} MB at the end (max ${summary.rss_mb_max} MB during the window, peak ${summary.peak_rss_mb} MB since start)`);
    console.log(`machine: ${summary.machine.cpus} CPUs, node ${summary.machine.node}, ${summary.machine.nft}, kernel ${summary.machine.kernel}, load ${summary.machine.loadavg_1m_at_end}`);
  }
} finally {
  agent?.kill('SIGKILL');
  execFileSync('ip', ['netns', 'delete', netns]);
  await rm(dir, { recursive: true, force: true });
}
