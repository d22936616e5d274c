import { generateKeyPairSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, open, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signArtifact } from '@nftops/artifact';
import { FakeIpRouting, FakeNftDriver, NftNotFoundError, type NftDriver, type NftResult } from '@nftops/nft-driver';
import { Agent, FakeClock, Reconciler, StateStore, WatchMetrics, buildConfig, createMemoryLogger, writeFileAtomic, type ReconcilerOptions } from '@nftops/watcher';
import { startStatusServer } from '../src/http.js';
import { artifact, tempDir, testConfig, testReconciler, writeAtomic } from './helpers.js';

const a1 = (chain = 'one') => artifact({ 'inet t_a': `  chain ${chain} { }` });
const withRouting = (text: string, routing: string) => text.replace('\n# body: ', `\n# routing: ${routing}\n# body: `).replace(/# body: sha256:[0-9a-f]+\n/, (m) => m);

let dir: string;
let cleanup: () => Promise<void>;
let nft: FakeNftDriver;
let logger: ReturnType<typeof createMemoryLogger>;
let metrics: WatchMetrics;

beforeEach(async () => {
  ({ path: dir, cleanup } = await tempDir());
  nft = new FakeNftDriver();
  logger = createMemoryLogger();
  metrics = new WatchMetrics();
});
afterEach(async () => cleanup());

function reconciler(overrides: Partial<ReconcilerOptions> = {}): Reconciler {
  return testReconciler({ driver: nft, logger, metrics }, dir, overrides);
}
const pass = (r: Reconciler, drift = false, force = false) => r.reconcile({ trigger: 'manual', drift, force });
/** An agent on DIR/src without a file watcher or process metrics, drift checks every 10 s of CLOCK. */
const inProcessAgent = (clock: FakeClock, extra: Partial<ConstructorParameters<typeof Agent>[0]> = {}) =>
  new Agent({
    config: testConfig({ sources: [{ path: join(dir, 'src') }], stateDir: join(dir, 'state'), driftIntervalMs: 10_000 }),
    driver: nft,
    clock,
    logger,
    watch: false,
    processMetrics: false,
    ...extra,
  });
const nftCalls = () => nft.calls.filter((c) => c.op === 'check' || c.op === 'apply');
const attempt = (r: Reconciler, id = 'host/a.nft') => r.status(0).artifacts.find((a) => a.id === id)?.lastAttempt;

describe('integrity: digests first, signatures', () => {
  const keys = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');

  it('checks the body digest before anything else: a tampered, unsigned, unsafe body is a digest mismatch and never reaches nft', async () => {
    const { renderArtifact } = await import('@nftops/artifact');
    const unsafe = renderArtifact({ generator: 't', tables: [{ family: 'inet', name: 't_a' }], sourceDigest: '0'.repeat(64), body: 'flush ruleset\n' });
    await writeFile(join(dir, 'a.nft'), `${unsafe}table inet t_a { }\n`);
    const r = reconciler({ publicKey: keys.publicKey });
    await pass(r);
    expect(attempt(r)).toMatchObject({ result: 'invalid', code: 'WATCH_DIGEST_MISMATCH' });
    expect(nftCalls()).toEqual([]);
    expect(await metrics.text()).toContain('nftops_watch_refused_total{code="WATCH_DIGEST_MISMATCH"} 1');
  });

  it('with a public key, applies only validly signed artifacts; missing and invalid signatures change nothing', async () => {
    const r = reconciler({ publicKey: keys.publicKey });
    await writeFile(join(dir, 'a.nft'), signArtifact(a1(), keys.privateKey));
    expect(await pass(r)).toMatchObject({ applied: 1 });
    await writeAtomic(join(dir, 'a.nft'), a1('unsigned'));
    nft.calls.length = 0;
    expect(await pass(r)).toMatchObject({ applied: 0, rejected: 1 });
    expect(attempt(r)).toMatchObject({ result: 'invalid', code: 'WATCH_SIGNATURE_MISSING' });
    await writeAtomic(join(dir, 'a.nft'), signArtifact(a1('forged'), other.privateKey));
    expect(await pass(r)).toMatchObject({ applied: 0, rejected: 1 });
    expect(attempt(r)).toMatchObject({ result: 'invalid', code: 'WATCH_SIGNATURE_INVALID' });
    expect(nftCalls()).toEqual([]);
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    expect(r.status(0).artifacts[0]!.state).toBe('Failing');
    const text = await metrics.text();
    expect(text).toContain('nftops_watch_refused_total{code="WATCH_SIGNATURE_MISSING"} 1');
    expect(text).toContain('nftops_watch_refused_total{code="WATCH_SIGNATURE_INVALID"} 1');
    expect(logger.events.filter((e) => e.event === 'artifact.invalid').map((e) => e.fields.code)).toEqual(['WATCH_SIGNATURE_MISSING', 'WATCH_SIGNATURE_INVALID']);
    await writeAtomic(join(dir, 'a.nft'), signArtifact(a1('two'), keys.privateKey));
    expect(await pass(r)).toMatchObject({ applied: 1 });
    expect(nft.tableText('inet', 't_a')).toBe('chain two { }');
  });

  it('reads --public-key, --owner, --max-artifact-bytes and --allow-writable (and their config keys)', async () => {
    const pem = join(dir, 'key.pem');
    await writeFile(pem, keys.publicKey.export({ type: 'spki', format: 'pem' }));
    const config = buildConfig({ dir: [dir], 'public-key': pem, owner: 'root', 'max-artifact-bytes': '2MiB', 'allow-writable': true });
    expect(config.publicKey?.asymmetricKeyType).toBe('ed25519');
    expect(config).toMatchObject({ owner: 0, maxArtifactBytes: 2 * 1024 * 1024, allowWritable: true });
    expect(buildConfig({ dir: [dir] })).toMatchObject({ owner: process.geteuid!(), maxArtifactBytes: 64 * 1024 * 1024, allowWritable: false, incremental: true });
    expect(buildConfig({ dir: [dir], owner: 'any' }).owner).toBeUndefined();
    expect(() => buildConfig({ dir: [dir], owner: 'no-such-user-here' })).toThrow(/WATCH_CONFIG|no user/);
    const rsa = join(dir, 'rsa.pem');
    await writeFile(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }));
    expect(() => buildConfig({ dir: [dir], 'public-key': rsa })).toThrow(/ed25519/);
    await writeFile(join(dir, 'c.json'), JSON.stringify({ sources: [dir], publicKey: pem, owner: 0, maxArtifactBytes: '1MiB', allowWritable: true, incremental: false }));
    expect(buildConfig({ config: join(dir, 'c.json') })).toMatchObject({ owner: 0, maxArtifactBytes: 1 << 20, allowWritable: true, incremental: false });
  });
});

describe('integrity: file checks on the open file', () => {
  it('refuses a file writable by group or others, and applies it once fixed (same content)', async () => {
    await writeFile(join(dir, 'a.nft'), a1(), { mode: 0o644 });
    await chmod(join(dir, 'a.nft'), 0o664);
    const r = reconciler({ owner: process.geteuid!() });
    expect(await pass(r)).toMatchObject({ applied: 0, rejected: 1 });
    expect(attempt(r)).toMatchObject({ result: 'invalid', code: 'WATCH_UNSAFE_FILE' });
    expect(attempt(r)!.message).toMatch(/writable by its group \(mode 0664\)/);
    await chmod(join(dir, 'a.nft'), 0o646);
    await pass(r);
    expect(attempt(r)!.message).toMatch(/writable by others/);
    expect(nftCalls()).toEqual([]);
    await chmod(join(dir, 'a.nft'), 0o644);
    expect(await pass(r)).toMatchObject({ applied: 1 });
    expect(reconciler({ allowWritable: true })).toBeDefined();
  });

  it('refuses a file not owned by the expected user; "any" owner accepts it', async () => {
    await writeFile(join(dir, 'a.nft'), a1(), { mode: 0o644 });
    await chown(join(dir, 'a.nft'), 4242, 4242);
    const r = reconciler({ owner: 0 });
    await pass(r);
    expect(attempt(r)).toMatchObject({ code: 'WATCH_UNSAFE_FILE', message: expect.stringMatching(/belongs to uid 4242, not to the expected owner uid 0/) });
    expect(await pass(reconciler({ owner: undefined }))).toMatchObject({ applied: 1 });
  });

  it('follows a symlink inside the directory, refuses one pointing outside it', async () => {
    const outside = await tempDir('nftops-outside-');
    try {
      await writeFile(join(outside.path, 'evil.nft'), artifact({ 'inet t_evil': '  chain c { }' }));
      await mkdir(join(dir, 'store'));
      await writeFile(join(dir, 'store', 'real.nft.txt'), a1());
      await symlink(join(outside.path, 'evil.nft'), join(dir, 'evil.nft'));
      await symlink('store/real.nft.txt', join(dir, 'a.nft'));
      const r = reconciler();
      expect(await pass(r)).toMatchObject({ applied: 1, rejected: 1 });
      expect(attempt(r, 'host/evil.nft')).toMatchObject({ code: 'WATCH_UNSAFE_FILE', message: expect.stringMatching(/symlink to .*outside the artifact directory/) });
      expect(nft.tableText('inet', 't_evil')).toBeUndefined();
      expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    } finally {
      await outside.cleanup();
    }
  });

  it('checks the size before reading: an 8 GiB sparse file is refused at once; a FIFO is skipped without blocking', async () => {
    const handle = await open(join(dir, 'huge.nft'), 'w', 0o644);
    await handle.truncate(8 * 1024 ** 3);
    await handle.close();
    execFileSync('mkfifo', ['-m', '0644', join(dir, 'pipe.nft')]);
    await writeFile(join(dir, 'a.nft'), a1());
    const r = reconciler({ maxArtifactBytes: 100 });
    const started = Date.now();
    const report = await pass(r);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(report).toMatchObject({ applied: 0, rejected: 2 });
    expect(attempt(r, 'host/huge.nft')).toMatchObject({ code: 'WATCH_TOO_LARGE', message: expect.stringMatching(/8589934592 bytes, over the 100-byte limit/) });
    expect(attempt(r)).toMatchObject({ code: 'WATCH_TOO_LARGE' });
    expect(r.status(0).artifacts.map((a) => a.id)).toEqual(['host/a.nft', 'host/huge.nft']);
  });
});

describe('routing companion (fake ip)', () => {
  const rule = 'rule4 fwmark 0x539/0xffffffff table 133 priority 32765';
  const route = 'route4 local 0.0.0.0/0 dev lo table 133';
  const routed = (routing: string, chain = 'one') => {
    const text = a1(chain);
    return text.replace(/\n# body: /, `\n# routing: ${routing}\n# body: `);
  };

  it('applies the routing after the nft transaction, removes items a new version drops, and all of it with the artifact', async () => {
    const ip = new FakeIpRouting();
    const r = reconciler({ routing: ip });
    await writeFile(join(dir, 'a.nft'), routed(`${rule}; ${route}`));
    await pass(r);
    expect(ip.items()).toEqual([route, rule]);
    expect(r.status(0).artifacts[0]!.routing).toMatchObject({ state: 'Ready', items: [rule, route] });
    await writeAtomic(join(dir, 'a.nft'), routed(rule, 'two'));
    await pass(r);
    expect(ip.items()).toEqual([rule]);
    const { rm } = await import('node:fs/promises');
    await rm(join(dir, 'a.nft'));
    await pass(r);
    expect(ip.items()).toEqual([]);
    expect(await metrics.text()).toMatch(/nftops_watch_routing_changes_total\{op="remove"\} 2/);
  });

  it('leaves routing it did not add, and items another artifact still wants', async () => {
    const ip = new FakeIpRouting();
    const { parseRouting } = await import('@nftops/artifact');
    const parsed = parseRouting(route);
    if (!parsed.ok) throw new Error(parsed.message);
    await ip.apply(parsed.routing); // someone else's route, there before the agent
    const r = reconciler({ routing: ip });
    await writeFile(join(dir, 'a.nft'), routed(`${rule}; ${route}`));
    await writeFile(join(dir, 'b.nft'), artifact({ 'inet t_b': '  chain c { }' }).replace(/\n# body: /, `\n# routing: ${rule}\n# body: `));
    await pass(r);
    expect(r.status(0).artifacts.map((a) => a.state)).toEqual(['Ready', 'Ready']);
    const { rm } = await import('node:fs/promises');
    await rm(join(dir, 'a.nft'));
    await pass(r);
    expect(ip.items()).toEqual([route, rule]); // route pre-existed; rule is still wanted by b.nft
  });

  it('a routing failure is logged, counted, shown in status and retried; the nft rules stay', async () => {
    const ip = new FakeIpRouting();
    const r = reconciler({ routing: ip });
    await writeFile(join(dir, 'a.nft'), routed(rule));
    ip.failNext('RTNETLINK answers: Operation not permitted');
    const report = await pass(r);
    expect(report).toMatchObject({ applied: 1, errors: 1 });
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    expect(r.status(0).artifacts[0]!.routing).toMatchObject({ state: 'Failing', error: expect.stringMatching(/Operation not permitted/), failures: 1 });
    expect(logger.events.find((e) => e.event === 'routing.failed')?.fields.code).toBe('WATCH_ROUTING');
    expect(await metrics.text()).toContain('nftops_watch_routing_failures_total 1');
    expect(await pass(r)).toMatchObject({ errors: 0 }); // the retry pass
    expect(ip.items()).toEqual([rule]);
    expect(r.status(0).artifacts[0]!.routing).toMatchObject({ state: 'Ready' });
    expect(logger.events.some((e) => e.event === 'routing.recovered')).toBe(true);
  });
});

describe('faults (fake nft, fake clock, failing disk)', () => {
  it('nft missing or failing for reasons unrelated to the ruleset: an error, retried, never remembered as a bad artifact', async () => {
    let mode: 'missing' | 'eperm' | 'ok' = 'missing';
    // Every nft run fails the same way, whether it checks or applies.
    const failing = (run: (ruleset: string, target?: { netns?: string }) => Promise<NftResult>) => async (ruleset: string, target?: { netns?: string }) => {
      if (mode === 'missing') throw new NftNotFoundError(['/nonexistent/nft']);
      if (mode === 'eperm') return { ok: false, stderr: 'netlink: Error: Could not process rule: Operation not permitted\n', diagnostics: [] };
      return run(ruleset, target);
    };
    const faulty: NftDriver = Object.assign(Object.create(nft) as NftDriver, { check: failing(nft.check.bind(nft)), apply: failing(nft.apply.bind(nft)) });
    await writeFile(join(dir, 'a.nft'), a1());
    const r = reconciler({ driver: faulty });
    expect(await pass(r)).toMatchObject({ errors: 1, applied: 0 });
    expect(attempt(r)).toMatchObject({ result: 'error', code: 'WATCH_NFT_ERROR', message: expect.stringMatching(/nft was not found/) });
    mode = 'eperm';
    expect(await pass(r)).toMatchObject({ errors: 1, rejected: 0 });
    expect(attempt(r)).toMatchObject({ result: 'error', message: expect.stringMatching(/Operation not permitted/) });
    mode = 'ok';
    expect(await pass(r)).toMatchObject({ applied: 1 });
  });

  it('an apply that fails after its check passed is retried, not remembered', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    let failApply = 3;
    const flaky: NftDriver = Object.assign(Object.create(nft) as NftDriver, {
      apply: async (ruleset: string, target?: { netns?: string }) =>
        failApply-- > 0 ? { ok: false, stderr: 'Error: Could not process rule: No such file or directory\n', diagnostics: [] } : nft.apply(ruleset, target),
    });
    const r = reconciler({ driver: flaky });
    expect(await pass(r)).toMatchObject({ applied: 0, errors: 1, rejected: 0 });
    expect(attempt(r)).toMatchObject({ result: 'error' });
    expect(await pass(r)).toMatchObject({ applied: 1 });
  });

  it('disk full while saving: status and metrics say so, the rules are applied, the save is retried and catches up', async () => {
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'src', 'a.nft'), a1());
    let full = true;
    const write: typeof writeFileAtomic = async (path, data, mode) => {
      if (full) throw Object.assign(new Error(`ENOSPC: no space left on device, write '${path}'`), { code: 'ENOSPC' });
      return writeFileAtomic(path, data, mode);
    };
    const clock = new FakeClock();
    const agent = inProcessAgent(clock, { store: new StateStore(join(dir, 'state'), { write }) });
    await agent.start();
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    expect(agent.status().stateError).toMatch(/ENOSPC/);
    expect(logger.events.find((e) => e.event === 'state.write_failed')?.fields.code).toBe('WATCH_STATE');
    expect(await agent.metrics.text()).toMatch(/nftops_watch_state_write_failures_total [1-9]/);
    full = false;
    clock.advance(1000); // the retry
    await agent.idle();
    expect(agent.status().stateError).toBeUndefined();
    const saved = JSON.parse(await readFile(join(dir, 'state', 'status.json'), 'utf8')) as { artifacts: { id: string }[] };
    expect(saved.artifacts.map((a) => a.id)).toEqual(['host/a.nft']);
    await agent.stop();
  });

  it('clock jumps: wall-clock jumps move timestamps only; the drift interval and the retry backoff run on monotonic time', async () => {
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'src', 'a.nft'), a1());
    const clock = new FakeClock();
    const agent = inProcessAgent(clock);
    await agent.start();
    const passes = agent.passes;
    clock.jump(+3_600_000); // an hour forward
    clock.advance(9_000);
    await agent.idle();
    expect(agent.passes).toBe(passes); // no early drift pass
    clock.jump(-7_200_000); // two hours back
    clock.advance(1_000);
    await agent.idle();
    expect(agent.passes).toBe(passes + 1); // exactly on the interval
    // Backoff: nft fails; retries at 1 s, 2 s, 4 s of monotonic time whatever the wall clock does.
    nft.rejectWhen(() => 'Operation not permitted');
    nft.tamper('inet', 't_a', undefined);
    agent.reconcileNow('manual', false);
    await agent.idle();
    const retries = () => agent.passes;
    const at = retries();
    clock.jump(-86_400_000);
    clock.advance(999);
    await agent.idle();
    expect(retries()).toBe(at);
    clock.advance(1);
    await agent.idle();
    expect(retries()).toBe(at + 1);
    clock.jump(+86_400_000);
    clock.advance(1_999);
    await agent.idle();
    expect(retries()).toBe(at + 1);
    nft.clearRejecters();
    clock.advance(1);
    await agent.idle();
    expect(retries()).toBe(at + 2);
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    expect(agent.status().updatedAt).toBe(new Date(clock.now()).toISOString());
    await agent.stop();
  });
});

describe('status server: read-only', () => {
  it('answers 405 to anything but GET and HEAD, 404 to unknown paths, and changes nothing', async () => {
    const m = new WatchMetrics();
    let statusCalls = 0;
    const { server, address } = await startStatusServer({ ready: () => true, status: () => (statusCalls++, { version: 1, updatedAt: '', ready: true, artifacts: [], recent: [] }), metrics: m }, '127.0.0.1', 0);
    try {
      expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
      const base = `http://${address}`;
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
        const res = await fetch(`${base}/status`, { method });
        expect(res.status, method).toBe(405);
      }
      expect((await fetch(`${base}/reconcile`)).status).toBe(404);
      expect((await fetch(`${base}/status/../metrics`)).status).toBe(200);
      expect((await fetch(`${base}/nope`, { method: 'HEAD' })).status).toBe(404);
      const head = await fetch(`${base}/status`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe('');
      expect(statusCalls).toBe(1);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('binds to loopback by default', () => {
    expect(buildConfig({ dir: ['/tmp'] }).listen).toEqual({ host: '127.0.0.1', port: 9780 });
  });
});

describe('status rendering of the new fields', () => {
  it('prints a state directory that cannot be written and failing routing', async () => {
    const { renderStatus } = await import('@nftops/watcher');
    const text = renderStatus(
      {
        version: 1,
        updatedAt: '2026-01-01T00:00:00.000Z',
        ready: true,
        stateError: 'ENOSPC: no space left on device',
        artifacts: [
          {
            id: 'host/mesh.nft',
            netns: 'host',
            sourcePath: '/srv',
            state: 'Ready',
            live: true,
            applied: { digest: `sha256:${'a'.repeat(64)}`, file: '/srv/mesh.nft', at: '2026-01-01T00:00:00.000Z', tables: ['inet t'], mode: 'incremental' },
            routing: { items: ['rule4 fwmark 0x539/0xffffffff table 133 priority 32765'], state: 'Failing', error: 'RTNETLINK answers: Operation not permitted', failures: 3, since: '2026-01-01T00:00:00.000Z' },
            history: [],
          },
        ],
        recent: [],
      },
      '/var/lib/nftops-watch',
    );
    expect(text).toContain('state directory: NOT WRITABLE (ENOSPC: no space left on device)');
    expect(text).toContain('host/mesh.nft: routing failing since 2026-01-01T00:00:00.000Z (3x): WATCH_ROUTING: RTNETLINK answers: Operation not permitted');
  });
});
