import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createNetns, deleteNetns, kernelAvailable, netnsExec } from '@nftops/testkit';
import { Agent, createMemoryLogger, type StatusDocument } from '@nftops/watcher';
import { spoolBase } from '../src/agent.js';
import { FAULT_STEPS } from '../src/fault.js';
import { artifact, tempDir, testConfig, waitFor, writeAtomic } from './helpers.js';
import { BIN } from './agent-process.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const ELEMENTS = 1500;

/** Version N: a set of ELEMENTS addresses with prefix N and a chain named vN, so a partial state is visible. */
const version = (n: number) => {
  const elements = Array.from({ length: ELEMENTS }, (_, i) => `2001:db8:${n.toString(16)}::${(i + 1).toString(16)}`);
  return artifact({ 'inet nftops_f': `  set s { type ipv6_addr; elements = { ${elements.join(', ')} } }\n  chain v${n} { }` });
};
const digestOf = (text: string) => `sha256:${/# body: sha256:([0-9a-f]{64})/.exec(text)![1]}`;

async function liveVersion(netns: string): Promise<{ version: number | undefined; elements: number; complete: boolean }> {
  const result = await netnsExec(netns, 'nft', ['-j', 'list', 'table', 'inet', 'nftops_f']);
  if (result.exitCode !== 0) return { version: undefined, elements: 0, complete: false };
  const items = (JSON.parse(String(result.stdout)) as { nftables: Record<string, { name?: string; elem?: unknown[] }>[] }).nftables;
  const chains = items.filter((i) => i.chain).map((i) => Number(i.chain!.name!.slice(1)));
  const elements = items.find((i) => i.set)?.set?.elem ?? [];
  const version = chains.length === 1 ? chains[0] : undefined;
  const prefixes = new Set(elements.map((e) => String(e).split('::')[0]));
  return { version, elements: elements.length, complete: version !== undefined && elements.length === ELEMENTS && prefixes.size === 1 && prefixes.has(`2001:db8:${version.toString(16)}`) };
}

/**
 * The fault matrix (see README "Fault matrix"): nft failing, hanging or missing; the directory removed and
 * recreated; SIGKILL of the agent at every step of an apply. Each case: the kernel holds a complete ruleset
 * (old or new), status says what happened, and the agent converges once the fault is gone.
 */
describe.runIf(kernelAvailable())('fault matrix on the real kernel', () => {
  const namespaces: string[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let agent: Agent | undefined;

  beforeAll(() => {
    execFileSync('npx', ['tsc', '-b', 'packages/watcher'], { cwd: ROOT, stdio: 'pipe', timeout: 120_000 });
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    for (const netns of namespaces.splice(0)) await deleteNetns(netns);
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });
  const setup = async () => {
    const netns = await createNetns('nftops-f');
    namespaces.push(netns);
    const tmp = await tempDir();
    cleanups.push(tmp.cleanup);
    await mkdir(join(tmp.path, 'src', netns), { recursive: true });
    return { netns, dir: tmp.path, file: join(tmp.path, 'src', netns, 'f.nft') };
  };

  it('nft failing, hanging, then missing: errors in status, the old rules stay, and each time the agent converges by itself', async () => {
    const { netns, dir, file } = await setup();
    const wrapper = join(dir, 'bin', 'nft');
    const modeFile = join(dir, 'bin', 'mode');
    await mkdir(join(dir, 'bin'));
    const script = `#!/bin/sh\ncase "$(cat '${modeFile}' 2>/dev/null)" in\n  fail) echo "netlink: Error: Could not process rule: Operation not permitted" >&2; exit 1 ;;\n  hang) exec sleep 30 ;;\nesac\nexec /usr/sbin/nft "$@"\n`;
    await writeFile(wrapper, script, { mode: 0o755 });
    await writeFile(file, version(1));
    const logger = createMemoryLogger();
    agent = new Agent({
      config: testConfig({ sources: [{ path: join(dir, 'src') }], stateDir: join(dir, 'state'), nftPath: wrapper, nftTimeoutMs: 1500 }),
      logger,
      processMetrics: false,
    });
    await agent.start();
    const id = `${netns}/f.nft`;
    const status = () => agent!.status().artifacts.find((a) => a.id === id)!;
    expect(await liveVersion(netns)).toMatchObject({ version: 1, complete: true });

    const cases: { fault: string; on: () => Promise<void>; off: () => Promise<void>; message: RegExp }[] = [
      { fault: 'failing', on: () => writeFile(modeFile, 'fail'), off: () => rm(modeFile), message: /Operation not permitted/ },
      { fault: 'hanging', on: () => writeFile(modeFile, 'hang'), off: () => rm(modeFile), message: /did not finish within 1500 ms/ },
      { fault: 'missing', on: () => rename(wrapper, `${wrapper}.away`), off: () => rename(`${wrapper}.away`, wrapper), message: /not found|ENOENT|failed to execute/ },
    ];
    let n = 1;
    for (const c of cases) {
      await c.on();
      const next = version(++n);
      await writeAtomic(file, next);
      await waitFor(() => status().lastAttempt?.digest === digestOf(next) && status().lastAttempt?.result === 'error', `the ${c.fault} nft to be reported`, 20_000);
      expect(status(), c.fault).toMatchObject({ state: 'Failing', lastAttempt: { code: 'WATCH_NFT_ERROR', message: expect.stringMatching(c.message) } });
      expect(await liveVersion(netns), c.fault).toMatchObject({ version: n - 1, complete: true });
      await c.off();
      await waitFor(() => status().applied?.digest === digestOf(next), `convergence after ${c.fault} nft`, 20_000);
      expect(await liveVersion(netns), c.fault).toMatchObject({ version: n, complete: true });
      expect(status().state).toBe('Ready');
    }
    expect(logger.events.filter((e) => e.event === 'apply.error').length).toBeGreaterThanOrEqual(3);
  });

  it('the directory removed and recreated: the last good rules stay meanwhile, nothing is pruned, the new version goes in', async () => {
    const { netns, dir, file } = await setup();
    await writeFile(file, version(1));
    const logger = createMemoryLogger();
    agent = new Agent({ config: testConfig({ sources: [{ path: join(dir, 'src') }], stateDir: join(dir, 'state') }), logger, processMetrics: false });
    await agent.start();
    await rm(join(dir, 'src'), { recursive: true });
    await waitFor(() => logger.events.some((e) => e.event === 'source.unavailable'), 'the directory to be missed', 10_000);
    await agent.idle();
    expect(await liveVersion(netns)).toMatchObject({ version: 1, complete: true });
    expect(agent.status().artifacts[0]).toMatchObject({ state: 'Ready' });
    await mkdir(join(dir, 'src', netns), { recursive: true });
    await writeFile(file, version(2));
    await waitFor(() => agent!.status().artifacts[0]?.applied?.digest === digestOf(version(2)), 'the recreated directory to be applied', 15_000);
    expect(await liveVersion(netns)).toMatchObject({ version: 2, complete: true });
    expect(logger.events.filter((e) => e.event === 'artifact.removed')).toEqual([]);
  });

  it('SIGKILL at every step of an apply: the kernel holds the old or the new version, complete; a restart converges', async () => {
    const results = await Promise.all(
      FAULT_STEPS.map(async (step) => {
        const { netns, dir, file } = await setup();
        const args = ['--dir', join(dir, 'src'), '--state-dir', join(dir, 'state'), '--listen', 'none', '--once', '--log-format', 'json'];
        const once = (env: NodeJS.ProcessEnv) =>
          new Promise<{ code: number | null; signal: string | null; stderr: string; pid: number }>((resolve) => {
            let stderr = '';
            const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
            child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
            child.on('close', (code, signal) => resolve({ code, signal, stderr, pid: child.pid! }));
          });
        await writeFile(file, version(1));
        const first = await once({});
        expect(first.code, first.stderr).toBe(0);
        await writeAtomic(file, version(2));
        const killed = await once({ NFTOPS_WATCH_FAULT: step });
        // Give an orphaned nft (during-apply) time to finish what it was doing.
        const spool = `nftops-watch-spool-${killed.pid}-`;
        await waitFor(() => !readdirSync('/proc').some((p) => /^\d+$/.test(p) && safeRead(`/proc/${p}/cmdline`).includes(spool)), 'the orphaned nft to finish', 20_000);
        const afterKill = await liveVersion(netns);
        const statusAfterKill = JSON.parse(await readFile(join(dir, 'state', 'status.json'), 'utf8')) as StatusDocument;
        const converge = await once({});
        const afterRestart = await liveVersion(netns);
        const statusAfter = JSON.parse(await readFile(join(dir, 'state', 'status.json'), 'utf8')) as StatusDocument;
        return { step, killed, afterKill, statusAfterKill, converge, afterRestart, statusAfter };
      }),
    );
    for (const r of results) {
      expect(r.killed.signal, `${r.step}: ${r.killed.stderr.slice(-500)}`).toBe('SIGKILL');
      expect(r.killed.stderr, r.step).toContain(`"step":"${r.step}"`);
      expect(r.afterKill, r.step).toMatchObject({ complete: true });
      expect([1, 2], r.step).toContain(r.afterKill.version);
      // status.json is whole (written atomically) and names a version that was applied.
      expect([digestOf(version(1)), digestOf(version(2))], r.step).toContain(r.statusAfterKill.artifacts[0]!.applied!.digest);
      expect(r.converge.code, `${r.step}: ${r.converge.stderr.slice(-500)}`).toBe(0);
      expect(r.afterRestart, r.step).toMatchObject({ version: 2, complete: true });
      expect(r.statusAfter.artifacts[0], r.step).toMatchObject({ state: 'Ready', applied: { digest: digestOf(version(2)) } });
    }
    // What each step left in the kernel: the old version before nft -f starts, the new one from then on.
    const byStep = Object.fromEntries(results.map((r) => [r.step, r.afterKill.version]));
    expect(byStep['before-apply']).toBe(1);
    expect(byStep['during-apply']).toBe(2); // nft reads its whole input from the spool file and commits
    expect(byStep['after-apply']).toBe(2);
    expect(byStep['during-save']).toBe(2);
    // Spool files of killed agents are cleaned up by the next start.
    expect(readdirSync(spoolBase()).filter((n) => n.startsWith('nftops-watch-spool-') && !alive(Number(/-(\d+)-/.exec(n)?.[1])))).toEqual([]);
  });
});

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
