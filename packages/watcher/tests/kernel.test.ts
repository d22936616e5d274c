import { mkdir, open, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNetns, deleteNetns, kernelAvailable, netnsExec } from '@nftops/testkit';
import { Agent, createMemoryLogger, type WatchConfig } from '@nftops/watcher';
import { artifact, filterArtifact, loopbackTraffic, tempDir, testConfig, waitFor, writeAtomic } from './helpers.js';

/**
 * The agent in this process with the real nft driver and real directory watching, applying into throwaway
 * network namespaces. Every wait is bounded; namespaces and directories are removed after each test.
 */
describe.runIf(kernelAvailable())('watcher on the real kernel', () => {
  let netns: string;
  let dir: string;
  let cleanup: () => Promise<void>;
  let agent: Agent | undefined;
  let logger: ReturnType<typeof createMemoryLogger>;

  beforeEach(async () => {
    netns = await createNetns('nftops-w');
    ({ path: dir, cleanup } = await tempDir());
    logger = createMemoryLogger();
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await deleteNetns(netns);
    await cleanup();
  });

  async function start(overrides: Partial<WatchConfig> = {}, sourcePath = join(dir, 'src')): Promise<Agent> {
    agent = new Agent({
      config: testConfig({ sources: [{ path: sourcePath }], stateDir: join(dir, 'state'), ...overrides }),
      logger,
      processMetrics: false,
    });
    await agent.start();
    return agent;
  }

  const nft = async (...args: string[]) => {
    const result = await netnsExec(netns, 'nft', args);
    if (result.exitCode !== 0) throw new Error(`nft ${args.join(' ')}: ${String(result.stderr)}`);
    return String(result.stdout);
  };
  const tableText = async (name: string, family = 'inet') => {
    const result = await netnsExec(netns, 'nft', ['list', 'table', family, name]);
    return result.exitCode === 0 ? String(result.stdout) : undefined;
  };
  const appliedDigest = (id: string) => agent!.status().artifacts.find((a) => a.id === id)?.applied?.digest;
  const digestOf = (text: string) => `sha256:${/# body: sha256:([0-9a-f]{64})/.exec(text)![1]}`;
  const waitApplied = (id: string, text: string) =>
    waitFor(() => appliedDigest(id) === digestOf(text), `${id} to be applied`, 10_000, () => JSON.stringify(agent!.status(), null, 1));
  const appliedDigests = () => logger.events.filter((e) => e.event === 'apply.ok').map((e) => e.fields.digest as string);

  it('applies, changes and removes an artifact as files come, change and go', async () => {
    await mkdir(join(dir, 'src', netns), { recursive: true });
    const keep = filterArtifact('nftops_keep', 'counter');
    await writeFile(join(dir, 'src', netns, 'keep.nft'), keep);
    await start();
    expect(agent!.reconciler.ready).toBe(true);
    expect(await tableText('nftops_keep')).toContain('counter packets');

    const v1 = filterArtifact('nftops_t', 'tcp dport 22 accept');
    await writeAtomic(join(dir, 'src', netns, 't.nft'), v1);
    await waitApplied(`${netns}/t.nft`, v1);
    expect(await tableText('nftops_t')).toContain('tcp dport 22 accept');

    const v2 = filterArtifact('nftops_t', 'tcp dport 443 accept');
    await writeAtomic(join(dir, 'src', netns, 't.nft'), v2);
    await waitApplied(`${netns}/t.nft`, v2);
    const live = await tableText('nftops_t');
    expect(live).toContain('tcp dport 443 accept');
    expect(live).not.toContain('dport 22');

    await rm(join(dir, 'src', netns, 't.nft'));
    await waitFor(async () => (await tableText('nftops_t')) === undefined, 'the table to be deleted');
    expect(await tableText('nftops_keep')).toBeDefined();
    expect(agent!.status().artifacts.map((a) => a.id)).toEqual([`${netns}/keep.nft`]);
  });

  it('a bad artifact changes nothing in the kernel; the next good one goes in at once', async () => {
    await mkdir(join(dir, 'src', netns), { recursive: true });
    const good = filterArtifact('nftops_t', 'tcp dport 22 accept\ncounter');
    await writeFile(join(dir, 'src', netns, 't.nft'), good);
    await start();
    const before = await nft('-j', 'list', 'table', 'inet', 'nftops_t');

    // Parses, but the kernel check fails: the set does not exist.
    const bad = filterArtifact('nftops_t', 'ip saddr @no_such_set drop');
    await writeAtomic(join(dir, 'src', netns, 't.nft'), bad);
    await waitFor(() => agent!.status().artifacts[0]?.lastAttempt?.result === 'rejected', 'the rejection');
    const failing = agent!.status().artifacts[0]!;
    expect(failing).toMatchObject({ state: 'Failing', lastAttempt: { code: 'WATCH_NFT_REJECTED', digest: digestOf(bad) }, applied: { digest: digestOf(good) } });
    expect(failing.lastAttempt!.message).toMatch(/no_such_set/);
    expect(await nft('-j', 'list', 'table', 'inet', 'nftops_t')).toBe(before);

    // The same bad digest is not retried, even by a full pass.
    const checksBefore = logger.events.length;
    agent!.reconcileNow('manual', false);
    await agent!.idle();
    expect(logger.events.slice(checksBefore).filter((e) => e.event === 'apply.rejected')).toEqual([]);
    expect(agent!.status().artifacts[0]!.lastAttempt!.count).toBe(1);

    // A digest mismatch (someone edited the body without re-rendering) changes nothing either.
    await writeAtomic(join(dir, 'src', netns, 't.nft'), good.replace('dport 22', 'dport 23'));
    await waitFor(() => agent!.status().artifacts[0]?.lastAttempt?.code === 'WATCH_DIGEST_MISMATCH', 'the digest mismatch');
    expect(await nft('-j', 'list', 'table', 'inet', 'nftops_t')).toBe(before);

    const fixed = filterArtifact('nftops_t', 'tcp dport 80 accept');
    await writeAtomic(join(dir, 'src', netns, 't.nft'), fixed);
    await waitApplied(`${netns}/t.nft`, fixed);
    expect(await tableText('nftops_t')).toContain('tcp dport 80 accept');
    expect(appliedDigests()).toEqual([digestOf(good), digestOf(fixed)]);
  });

  it('repairs drift: a rule deleted by hand, a table flushed, a table deleted; traffic on counters is not drift', async () => {
    await mkdir(join(dir, 'src', netns), { recursive: true });
    const text = filterArtifact('nftops_t', 'iifname "lo" counter\ntcp dport 22 accept\ntcp dport 443 accept');
    await writeFile(join(dir, 'src', netns, 't.nft'), text);
    await start();
    const drift = async () => {
      agent!.reconcileNow('manual', false);
      await agent!.idle();
    };
    const repairs = async () => Number(/nftops_watch_drift_repairs_total (\d+)/.exec(await agent!.metrics.text())![1]);
    const original = await tableText('nftops_t');

    // Traffic moves counters: not drift.
    await loopbackTraffic(netns);
    expect(await tableText('nftops_t')).not.toContain('counter packets 0 bytes 0');
    await drift();
    expect(await repairs()).toBe(0);

    const handles = JSON.parse(await nft('-j', '-a', 'list', 'chain', 'inet', 'nftops_t', 'input')) as { nftables: { rule?: { handle: number; expr: unknown[] } }[] };
    const rule = handles.nftables.find((i) => i.rule && JSON.stringify(i.rule.expr).includes('443'))!.rule!;
    await nft('delete', 'rule', 'inet', 'nftops_t', 'input', 'handle', String(rule.handle));
    expect(await tableText('nftops_t')).not.toContain('443');
    await drift();
    expect(await repairs()).toBe(1);
    expect(await tableText('nftops_t')).toContain('tcp dport 443 accept');

    await nft('flush', 'table', 'inet', 'nftops_t');
    await drift();
    expect(await repairs()).toBe(2);
    expect(await tableText('nftops_t')).toContain('tcp dport 22 accept');

    await nft('delete', 'table', 'inet', 'nftops_t');
    await drift();
    expect(await repairs()).toBe(3);
    expect((await tableText('nftops_t'))?.replace(/packets \d+ bytes \d+/g, '')).toBe(original?.replace(/packets \d+ bytes \d+/g, ''));
    expect(logger.events.filter((e) => e.event === 'drift.repaired')).toHaveLength(3);
  });

  it('never touches foreign tables or their counters across many applies', async () => {
    const foreign = [
      'table inet foreign_fw {',
      '  counter hits { }',
      '  set blocked { type ipv4_addr; elements = { 192.0.2.99 } }',
      '  chain input { type filter hook input priority 10; policy accept; counter name hits; counter; }',
      '}',
      'table ip foreign_nat {',
      '  chain pre { type nat hook prerouting priority -100; counter; }',
      '}',
    ].join('\n');
    const load = await netnsExec(netns, 'nft', ['-f', '-'], foreign);
    expect(load.exitCode, String(load.stderr)).toBe(0);
    await loopbackTraffic(netns);
    const snapshot = async () => nft('-j', '-a', 'list', 'table', 'inet', 'foreign_fw').then(async (a) => a + (await nft('-j', '-a', 'list', 'table', 'ip', 'foreign_nat')));
    const before = await snapshot();
    expect(before).toMatch(/"packets": [1-9]/);

    await mkdir(join(dir, 'src', netns), { recursive: true });
    await start();
    for (let i = 0; i < 8; i++) {
      const text = artifact({
        'inet nftops_a': `  chain c${i} { type filter hook input priority 0; policy accept; tcp dport ${1000 + i} accept; counter; }`,
        'ip nftops_b': `  chain c { type filter hook output priority 0; policy accept; udp dport ${2000 + i} accept; }`,
      });
      await writeAtomic(join(dir, 'src', netns, 'a.nft'), text);
      await waitApplied(`${netns}/a.nft`, text);
    }
    await rm(join(dir, 'src', netns, 'a.nft'));
    await waitFor(async () => (await tableText('nftops_a')) === undefined, 'the tables to be removed');
    expect(await snapshot()).toBe(before);
  });

  it('coalesces a burst of new files into one transaction', async () => {
    await mkdir(join(dir, 'src', netns), { recursive: true });
    await start({ debounceMs: 500, maxDelayMs: 2000 });
    const texts = Array.from({ length: 5 }, (_, i) => filterArtifact(`nftops_burst${i}`, `tcp dport ${3000 + i} accept`));
    for (const [i, text] of texts.entries()) await writeAtomic(join(dir, 'src', netns, `b${i}.nft`), text);
    for (const [i, text] of texts.entries()) await waitApplied(`${netns}/b${i}.nft`, text);
    const oks = logger.events.filter((e) => e.event === 'apply.ok');
    expect(oks).toHaveLength(5);
    expect(oks.every((e) => e.fields.batch === 5)).toBe(true);
  });

  it('follows git-sync style symlink swaps of the whole directory', async () => {
    const root = join(dir, 'git');
    const link = join(root, 'current');
    const worktree = async (hash: string, text: string) => {
      await mkdir(join(root, '.worktrees', hash, netns), { recursive: true });
      await writeFile(join(root, '.worktrees', hash, netns, 'lb.nft'), text);
    };
    const publish = async (hash: string) => {
      await symlink(join('.worktrees', hash), join(root, 'tmp-link'));
      await rename(join(root, 'tmp-link'), link);
    };
    const versions = Array.from({ length: 4 }, (_, i) => filterArtifact('nftops_lb', `tcp dport ${8000 + i} accept`));
    await worktree('h0', versions[0]!);
    await publish('h0');
    await start({}, link);
    expect(await tableText('nftops_lb')).toContain('dport 8000');
    for (let i = 1; i < versions.length; i++) {
      await worktree(`h${i}`, versions[i]!);
      await publish(`h${i}`);
      await rm(join(root, '.worktrees', `h${i - 1}`), { recursive: true }); // git-sync's cleanup of the old tree
      await waitApplied(`${netns}/lb.nft`, versions[i]!);
      expect(await tableText('nftops_lb')).toContain(`dport ${8000 + i}`);
    }
    // Only complete versions were ever applied, each once, and the old trees' deletion pruned nothing.
    expect(appliedDigests()).toEqual(versions.map(digestOf));
    expect(logger.events.filter((e) => e.event === 'artifact.removed')).toEqual([]);
  });

  it('replacing a live table keeps its base chains and ends exactly where the plain idiom ends', async () => {
    const versions = [
      // v0: sets, a verdict map, a named counter, a regular chain, two base chains.
      artifact({
        'inet nftops_lb': [
          '  counter hits { }',
          '  set vips { type ipv4_addr; elements = { 192.0.2.10 } }',
          '  map svc { type ipv4_addr : verdict; elements = { 192.0.2.10 : jump svc_a } }',
          '  chain svc_a {',
          '    counter name hits',
          '  }',
          '  chain prerouting {',
          '    type nat hook prerouting priority dstnat; policy accept;',
          '    ip daddr vmap @svc',
          '  }',
          '  chain input {',
          '    type filter hook input priority 0; policy accept;',
          '    ip daddr @vips counter',
          '  }',
        ].join('\n'),
      }),
      // v1: the regular chain renamed, the set gone, the input chain moved to another priority, a new base chain.
      artifact({
        'inet nftops_lb': [
          '  counter hits { }',
          '  map svc { type ipv4_addr : verdict; elements = { 192.0.2.10 : jump svc_b, 192.0.2.11 : jump svc_b } }',
          '  chain svc_b {',
          '    counter name hits',
          '    accept',
          '  }',
          '  chain prerouting {',
          '    type nat hook prerouting priority dstnat; policy accept;',
          '    ip daddr vmap @svc',
          '  }',
          '  chain input {',
          '    type filter hook input priority 10; policy accept;',
          '  }',
          '  chain output {',
          '    type filter hook output priority 0; policy accept;',
          '  }',
        ].join('\n'),
      }),
      // v2: back to a plain chain set, policy drop on a kept chain.
      artifact({
        'inet nftops_lb': [
          '  chain prerouting {',
          '    type nat hook prerouting priority dstnat; policy accept;',
          '    ip daddr 192.0.2.10 tcp dport 80 dnat ip to 198.51.100.10:8080',
          '  }',
          '  chain output {',
          '    type filter hook output priority 0; policy drop;',
          '  }',
        ].join('\n'),
      }),
    ];
    const reference = await createNetns('nftops-ref');
    try {
      await mkdir(join(dir, 'src', netns), { recursive: true });
      await writeFile(join(dir, 'src', netns, 'lb.nft'), versions[0]!);
      await start();
      const { fingerprint } = await import('@nftops/watcher');
      const canonical = async (ns: string) => {
        const result = await netnsExec(ns, 'nft', ['-j', 'list', 'table', 'inet', 'nftops_lb']);
        return fingerprint([{ family: 'inet', name: 'nftops_lb', json: (JSON.parse(String(result.stdout)) as { nftables: Record<string, unknown>[] }).nftables }]);
      };
      for (const [i, text] of versions.entries()) {
        const ref = await netnsExec(reference, 'nft', ['-f', '-'], text);
        expect(ref.exitCode, String(ref.stderr)).toBe(0);
        if (i > 0) {
          await writeAtomic(join(dir, 'src', netns, 'lb.nft'), text);
          await waitApplied(`${netns}/lb.nft`, text);
        }
        expect(await canonical(netns), `version ${i}`).toBe(await canonical(reference));
      }
      const modes = logger.events.filter((e) => e.event === 'apply.ok').map((e) => e.fields.mode);
      expect(modes).toEqual(['replace', 'keep-base-chains', 'keep-base-chains']);
    } finally {
      await deleteNetns(reference);
    }
  });

  it('the keep-base-chains form ends where the plain idiom ends even when someone edited the table in between', async () => {
    const version = (port: number) =>
      artifact({
        'inet nftops_lb': [
          '  set vips { type ipv4_addr; elements = { 192.0.2.10 } }',
          '  chain svc {',
          `    tcp dport ${port} accept`,
          '  }',
          '  chain prerouting {',
          '    type nat hook prerouting priority dstnat; policy accept;',
          '    ip daddr @vips jump svc',
          '  }',
        ].join('\n'),
      });
    await mkdir(join(dir, 'src', netns), { recursive: true });
    await writeFile(join(dir, 'src', netns, 'lb.nft'), version(1));
    await start();
    const { fingerprint } = await import('@nftops/watcher');
    const reference = await createNetns('nftops-ref');
    try {
      const canonical = async (ns: string) => {
        const result = await netnsExec(ns, 'nft', ['-j', 'list', 'table', 'inet', 'nftops_lb']);
        return fingerprint([{ family: 'inet', name: 'nftops_lb', json: (JSON.parse(String(result.stdout)) as { nftables: Record<string, unknown>[] }).nftables }]);
      };
      const step = async (port: number, intrude: string) => {
        const load = await netnsExec(netns, 'nft', ['-f', '-'], intrude);
        expect(load.exitCode, String(load.stderr)).toBe(0);
        const text = version(port);
        await writeAtomic(join(dir, 'src', netns, 'lb.nft'), text);
        await waitApplied(`${netns}/lb.nft`, text);
        await netnsExec(reference, 'nft', ['-f', '-'], text);
        expect(await canonical(netns)).toBe(await canonical(reference));
      };
      // Objects added behind the agent's back: the leftovers check re-applies the artifact as written.
      await step(2, 'add chain inet nftops_lb intruder\nadd set inet nftops_lb extra { type ipv4_addr; }\n');
      expect(logger.events.some((e) => e.event === 'hitless.leftovers')).toBe(true);
      // An object deleted behind its back: the cached handle no longer exists, nft refuses, the plain form goes in.
      await step(3, 'flush chain inet nftops_lb prerouting\ndelete set inet nftops_lb vips\n');
      // Untouched: the keep-base-chains form.
      await step(4, '');
      expect(logger.events.filter((e) => e.event === 'apply.ok').at(-1)!.fields.mode).toBe('keep-base-chains');
    } finally {
      await deleteNetns(reference);
    }
  });

  it('never applies a half-written artifact from an in-place write', async () => {
    await mkdir(join(dir, 'src', netns), { recursive: true });
    const make = (port: number) =>
      artifact({
        'inet nftops_x': `  chain c { type filter hook input priority 0; policy accept; tcp dport ${port} accept; }`,
        'inet nftops_y': `  chain c { type filter hook output priority 0; policy accept; tcp dport ${port} accept; }`,
      });
    const v1 = make(1111);
    await writeFile(join(dir, 'src', netns, 'x.nft'), v1);
    await start();
    const v2 = make(2222);
    // Cut right after the first table: on its own that prefix is a valid nft file, only the digest tells.
    const cut = v2.indexOf('table inet nftops_y');
    for (const [at, pause] of [[cut, 250], [Math.floor((cut + v2.length) / 2), 250]] as const) {
      const handle = await open(join(dir, 'src', netns, 'x.nft'), 'w');
      await handle.write(v2.slice(0, at));
      await handle.sync();
      await new Promise((resolve) => setTimeout(resolve, pause)); // longer than the debounce: the agent looks at it
      await agent!.idle();
      expect(await tableText('nftops_x')).toContain('dport 1111');
      expect(await tableText('nftops_y')).toContain('dport 1111');
      await handle.write(v2.slice(at));
      await handle.close();
      await waitApplied(`${netns}/x.nft`, v2);
      await writeAtomic(join(dir, 'src', netns, 'x.nft'), v1);
      await waitApplied(`${netns}/x.nft`, v1);
    }
    expect(new Set(appliedDigests())).toEqual(new Set([digestOf(v1), digestOf(v2)]));
    expect(logger.events.some((e) => e.event === 'artifact.invalid' && e.fields.code === 'WATCH_DIGEST_MISMATCH')).toBe(true);
  });
});
