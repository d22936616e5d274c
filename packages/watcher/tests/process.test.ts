import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createNetns, deleteNetns, kernelAvailable, netnsExec } from '@nftops/testkit';
import { artifact, filterArtifact, tempDir, writeAtomic } from './helpers.js';
import { runAgent, spawnAgent, type AgentProcess } from './agent-process.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** The real bin, as an operator runs it. */
describe.runIf(kernelAvailable())('nftops-watch process', () => {
  let netns: string;
  let dir: string;
  let cleanup: () => Promise<void>;
  const running: AgentProcess[] = [];

  beforeAll(() => {
    execFileSync('npx', ['tsc', '-b', 'packages/watcher'], { cwd: ROOT, stdio: 'pipe', timeout: 120_000 });
  });
  beforeEach(async () => {
    netns = await createNetns('nftops-p');
    ({ path: dir, cleanup } = await tempDir());
  });
  afterEach(async () => {
    for (const agent of running.splice(0)) {
      agent.killGroup();
      await agent.exited;
    }
    await deleteNetns(netns);
    await cleanup();
  });

  const start = (args: string[], options: { netns?: string } = {}) => {
    const agent = spawnAgent(args, options);
    running.push(agent);
    return agent;
  };
  const tableText = async (name: string, family = 'inet') => {
    const result = await netnsExec(netns, 'nft', ['list', 'table', family, name]);
    return result.exitCode === 0 ? String(result.stdout) : undefined;
  };
  const digestOf = (text: string) => `sha256:${/# body: sha256:([0-9a-f]{64})/.exec(text)![1]}`;
  const common = () => ['--dir', join(dir, 'src'), '--state-dir', join(dir, 'state')];

  it('--once applies the top-level artifacts to its own (host) namespace and exits 0; a bad one exits 1 and changes nothing', async () => {
    await mkdir(join(dir, 'src'));
    const good = filterArtifact('nftops_t', 'tcp dport 22 accept');
    await writeFile(join(dir, 'src', 't.nft'), good);
    // Run inside the test namespace: there, the agent's "host" namespace is the throwaway one.
    const ok = await runAgent([...common(), '--once', '--listen', 'none'], { netns });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.events.find((e) => e.event === 'apply.ok')).toMatchObject({ artifact: 'host/t.nft', netns: 'host', digest: digestOf(good) });
    expect(await tableText('nftops_t')).toContain('tcp dport 22 accept');

    const before = await tableText('nftops_t');
    await writeAtomic(join(dir, 'src', 't.nft'), filterArtifact('nftops_t', 'ip saddr @missing drop'));
    const dry = await runAgent([...common(), '--once', '--dry-run', '--listen', 'none'], { netns });
    expect(dry.code).toBe(1);
    const bad = await runAgent([...common(), '--once', '--listen', 'none'], { netns });
    expect(bad.code).toBe(1);
    expect(bad.events.find((e) => e.event === 'apply.rejected')).toMatchObject({ code: 'WATCH_NFT_REJECTED', lastGood: digestOf(good) });
    expect(bad.stderr).not.toMatch(/\n\s+at /); // no stack traces
    expect(await tableText('nftops_t')).toBe(before);

    const next = filterArtifact('nftops_t', 'tcp dport 443 accept');
    await writeAtomic(join(dir, 'src', 't.nft'), next);
    const dryGood = await runAgent([...common(), '--once', '--dry-run', '--listen', 'none'], { netns });
    expect(dryGood.code).toBe(0);
    expect(await tableText('nftops_t')).toBe(before);

    const status = await runAgent(['status', '--state-dir', join(dir, 'state')]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('host/t.nft');
    expect(status.stdout).toContain(digestOf(good).slice(0, 19));
    expect(status.stdout).toMatch(/rejected +WATCH_NFT_REJECTED/);
    expect(status.stdout).toContain('last 5 attempts:');
    const json = JSON.parse((await runAgent(['status', '--json', '--state-dir', join(dir, 'state')])).stdout) as { artifacts: { applied: { digest: string } }[] };
    expect(json.artifacts[0]!.applied.digest).toBe(digestOf(good));
  });

  it('serves status over HTTP, reconciles on SIGHUP, and on SIGTERM exits 0 leaving the rules in place', async () => {
    await mkdir(join(dir, 'src', netns), { recursive: true });
    const text = filterArtifact('nftops_t', 'tcp dport 22 accept');
    await writeFile(join(dir, 'src', netns, 't.nft'), text);
    const agent = start([...common(), '--listen', '127.0.0.1:0', '--drift-interval', '0']);
    const started = await agent.waitEvent((e) => e.event === 'agent.start', 'start');
    const base = `http://${started.listen as string}`;
    await agent.waitEvent((e) => e.event === 'agent.ready', 'ready');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain(`nftops_watch_artifact_info{artifact="${netns}/t.nft",netns="${netns}",digest="${digestOf(text)}"} 1`);
    expect(metrics).toContain('nftops_watch_applies_total{result="success"} 1');
    expect(metrics).toContain('nftops_watch_process_resident_memory_bytes');
    const status = (await (await fetch(`${base}/status`)).json()) as { ready: boolean; artifacts: { id: string }[] };
    expect(status.ready).toBe(true);

    await netnsExec(netns, 'nft', ['flush', 'table', 'inet', 'nftops_t']);
    agent.child.kill('SIGHUP');
    await agent.waitEvent((e) => e.event === 'drift.repaired', 'the drift repair after SIGHUP');
    expect(await tableText('nftops_t')).toContain('tcp dport 22 accept');

    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(agent.events.at(-1)).toMatchObject({ event: 'agent.stop', reason: 'SIGTERM' });
    expect(await tableText('nftops_t')).toContain('tcp dport 22 accept');
    const saved = JSON.parse(await readFile(join(dir, 'state', 'status.json'), 'utf8')) as { artifacts: { applied: { digest: string } }[] };
    expect(saved.artifacts[0]!.applied.digest).toBe(digestOf(text));
  });

  it('comes up with the last good rules when the directory is not there yet (boot before git sync)', async () => {
    const link = join(dir, 'git', 'current');
    await mkdir(join(dir, 'git', 'tree', netns), { recursive: true });
    const text = filterArtifact('nftops_t', 'tcp dport 22 accept');
    await writeFile(join(dir, 'git', 'tree', netns, 't.nft'), text);
    const { symlink, rm } = await import('node:fs/promises');
    await symlink('tree', link);
    const once = await runAgent(['--dir', link, '--state-dir', join(dir, 'state'), '--once', '--listen', 'none']);
    expect(once.code, once.stderr).toBe(0);
    // "Reboot": the namespace is empty, the synced directory is gone.
    await netnsExec(netns, 'nft', ['delete', 'table', 'inet', 'nftops_t']);
    await rm(join(dir, 'git'), { recursive: true });
    const agent = start(['--dir', link, '--state-dir', join(dir, 'state'), '--listen', 'none']);
    await agent.waitEvent((e) => e.event === 'agent.ready', 'ready');
    expect(agent.events.some((e) => e.event === 'source.unavailable')).toBe(true);
    expect(await tableText('nftops_t')).toContain('tcp dport 22 accept');
    // Git catches up with a newer version.
    const newer = filterArtifact('nftops_t', 'tcp dport 80 accept');
    await mkdir(join(dir, 'git', 'tree2', netns), { recursive: true });
    await writeFile(join(dir, 'git', 'tree2', netns, 't.nft'), newer);
    await symlink('tree2', link);
    await agent.waitEvent((e) => e.event === 'apply.ok' && e.digest === digestOf(newer), 'the synced version');
    expect(await tableText('nftops_t')).toContain('tcp dport 80 accept');
  });

  it('killed with SIGKILL in the middle of an apply: the kernel holds the old or the new ruleset, complete, and a restart converges', async () => {
    // Big artifacts (a 30k-element set) make nft take long enough to be killed while it runs.
    const ELEMENTS = 30_000;
    const big = (version: number) => {
      const elements = Array.from({ length: ELEMENTS }, (_, i) => `2001:db8:${version.toString(16)}::${(i + 1).toString(16)}`);
      return artifact({ 'inet nftops_big': `  set s { type ipv6_addr; elements = { ${elements.join(', ')} } }\n  chain v${version} { }` });
    };
    const liveVersion = async () => {
      const result = await netnsExec(netns, 'nft', ['-j', 'list', 'table', 'inet', 'nftops_big']);
      if (result.exitCode !== 0) return { version: undefined, elements: 0 };
      const items = (JSON.parse(String(result.stdout)) as { nftables: Record<string, { name?: string; elem?: unknown[] }>[] }).nftables;
      const chains = items.filter((i) => i.chain).map((i) => Number(i.chain!.name!.slice(1)));
      const set = items.find((i) => i.set)?.set;
      const prefixes = new Set((set?.elem ?? []).map((e) => String(e).split('::')[0]));
      return { version: chains.length === 1 ? chains[0] : NaN, elements: set?.elem?.length ?? 0, prefixes: [...prefixes] };
    };
    const nftApplyRunning = (pid: number): boolean => {
      let children: string[];
      try {
        children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      } catch {
        return false;
      }
      return children.some((child) => {
        try {
          const cmd = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').join(' ');
          return / -f \S/.test(cmd) && !cmd.includes('--check');
        } catch {
          return false;
        }
      });
    };

    await mkdir(join(dir, 'src', netns), { recursive: true });
    await writeFile(join(dir, 'src', netns, 'big.nft'), big(1));
    const args = [...common(), '--listen', 'none', '--drift-interval', '0'];
    let agent = start(args);
    await agent.waitEvent((e) => e.event === 'agent.ready', 'ready', 30_000);
    expect(await liveVersion()).toMatchObject({ version: 1, elements: ELEMENTS });

    let killedDuringApply = 0;
    for (let version = 2; version <= 4; version++) {
      await writeAtomic(join(dir, 'src', netns, 'big.nft'), big(version));
      // Wait until nft -f (not --check) runs for this agent, then kill the agent and nft together.
      const appliedBefore = agent.events.filter((e) => e.event === 'apply.ok').length;
      const deadline = Date.now() + 20_000;
      let caught = false;
      while (Date.now() < deadline) {
        if (nftApplyRunning(agent.pid)) {
          caught = true;
          break;
        }
        if (agent.events.filter((e) => e.event === 'apply.ok').length > appliedBefore) break;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      if (caught) killedDuringApply++;
      agent.killGroup('SIGKILL');
      await agent.exited;
      const live = await liveVersion();
      expect([version - 1, version]).toContain(live.version);
      expect(live.elements).toBe(ELEMENTS);
      expect(live.prefixes).toEqual([`2001:db8:${live.version!.toString(16)}`]);

      agent = start(args);
      await agent.waitEvent((e) => e.event === 'agent.ready', 'ready after restart', 30_000);
      expect(await liveVersion()).toMatchObject({ version, elements: ELEMENTS });
      const status = JSON.parse(await readFile(join(dir, 'state', 'status.json'), 'utf8')) as { artifacts: { applied: { digest: string } }[] };
      expect(status.artifacts[0]!.applied.digest).toBe(digestOf(big(version)));
    }
    // Not an assertion on timing: just make sure the scenario was exercised at least once.
    expect(killedDuringApply).toBeGreaterThan(0);
  });
});
