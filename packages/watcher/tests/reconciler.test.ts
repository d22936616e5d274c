import { mkdir, rm, writeFile, rename, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeNftDriver, type NftDriver } from '@nftops/nft-driver';
import { WatchMetrics, createMemoryLogger, type Reconciler, type ReconcilerOptions } from '@nftops/watcher';
import { artifact, tempDir, testReconciler, writeAtomic } from './helpers.js';

const a1 = (chain = 'one') => artifact({ 'inet t_a': `  chain ${chain} { }` });
const b1 = (chain = 'one') => artifact({ 'inet t_b': `  chain ${chain} { }` });

let dir: string;
let cleanup: () => Promise<void>;
let nft: FakeNftDriver;
let logger: ReturnType<typeof createMemoryLogger>;
let metrics: WatchMetrics;
let namespaces: Set<string>;

beforeEach(async () => {
  ({ path: dir, cleanup } = await tempDir());
  nft = new FakeNftDriver();
  logger = createMemoryLogger();
  metrics = new WatchMetrics();
  namespaces = new Set(['ns1', 'ns2']);
});
afterEach(async () => cleanup());

function reconciler(overrides: Partial<ReconcilerOptions> = {}): Reconciler {
  return testReconciler({ driver: nft, logger, metrics }, dir, { netnsExists: async (name) => namespaces.has(name), ...overrides });
}

const ops = (op: string) => nft.calls.filter((c) => c.op === op);
const pass = (r: Reconciler, drift = false, force = false) => r.reconcile({ trigger: 'manual', drift, force });

describe('reconciler: apply, change, remove', () => {
  it('applies a new artifact in the host namespace, then does nothing while it is unchanged', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    const r = reconciler();
    const report = await pass(r);
    expect(report).toMatchObject({ applied: 1, rejected: 0, errors: 0 });
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    expect(ops('check')).toHaveLength(0); // nft -f is all or nothing: no separate check
    expect(ops('apply')).toHaveLength(1);
    expect(ops('apply')[0]!.netns).toBeUndefined();
    expect(r.ready).toBe(true);
    const [status] = r.status(0).artifacts;
    expect(status).toMatchObject({ id: 'host/a.nft', netns: 'host', state: 'Ready', live: true });
    expect(status!.applied!.fingerprint).toMatch(/^sha256:/);

    nft.calls.length = 0;
    expect(await pass(r)).toMatchObject({ applied: 0, changed: false });
    expect(nft.calls).toEqual([]);
  });

  it('targets namespaces from the directory layout: NAME/ is /var/run/netns/NAME, host/ is the host', async () => {
    await mkdir(join(dir, 'ns1'));
    await mkdir(join(dir, 'host'));
    await writeFile(join(dir, 'ns1', 'a.nft'), a1());
    await writeFile(join(dir, 'host', 'b.nft'), b1());
    await mkdir(join(dir, '.hidden'));
    await writeFile(join(dir, '.hidden', 'x.nft'), a1('hidden'));
    await writeFile(join(dir, 'notes.txt'), 'not an artifact');
    const r = reconciler();
    await pass(r);
    expect(nft.tableText('inet', 't_a', { netns: 'ns1' })).toBe('chain one { }');
    expect(nft.tableText('inet', 't_b')).toBe('chain one { }');
    expect(nft.tableText('inet', 't_a')).toBeUndefined();
    expect(r.status(0).artifacts.map((a) => [a.id, a.netns])).toEqual([
      ['host/b.nft', 'host'],
      ['ns1/a.nft', 'ns1'],
    ]);
  });

  it('maps a whole directory to one namespace with an explicit source netns', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    await mkdir(join(dir, 'ns1'));
    await writeFile(join(dir, 'ns1', 'b.nft'), b1());
    const r = reconciler({ sources: [{ path: dir, netns: 'ns2' }] });
    await pass(r);
    expect(nft.tableText('inet', 't_a', { netns: 'ns2' })).toBe('chain one { }');
    expect(nft.tableText('inet', 't_b', { netns: 'ns1' })).toBeUndefined(); // subdirectories ignored in flat mode
  });

  it('puts artifacts of one namespace that changed together into one transaction, one per namespace', async () => {
    await mkdir(join(dir, 'ns1'));
    await writeFile(join(dir, 'a.nft'), a1());
    await writeFile(join(dir, 'b.nft'), b1());
    await writeFile(join(dir, 'ns1', 'a.nft'), a1());
    const r = reconciler();
    await pass(r);
    const applies = ops('apply');
    expect(applies).toHaveLength(2);
    const host = applies.find((c) => c.netns === undefined)!;
    expect(host.ruleset).toContain('table inet t_a {');
    expect(host.ruleset).toContain('table inet t_b {');
    expect(applies.find((c) => c.netns === 'ns1')!.ruleset).toContain('table inet t_a {');
  });

  it('applies a changed artifact once, and removes the tables of a deleted one with a guarded delete', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    await writeFile(join(dir, 'b.nft'), b1());
    const r = reconciler();
    await pass(r);
    await writeAtomic(join(dir, 'a.nft'), a1('two'));
    await rm(join(dir, 'b.nft'));
    nft.calls.length = 0;
    const report = await pass(r);
    expect(report).toMatchObject({ applied: 1, removed: 1 });
    expect(ops('apply')).toHaveLength(1);
    expect(ops('apply')[0]!.ruleset).toMatch(/^table inet t_b\ndelete table inet t_b\n/);
    expect(nft.tableText('inet', 't_a')).toBe('chain two { }');
    expect(nft.tableText('inet', 't_b')).toBeUndefined();
    expect(r.status(0).artifacts.map((a) => a.id)).toEqual(['host/a.nft']);
    expect(r.recentAttempts()[0]).toMatchObject({ id: 'host/b.nft', result: 'removed' });
  });

  it('a guarded delete succeeds even when someone already deleted the table', async () => {
    await writeFile(join(dir, 'b.nft'), b1());
    await writeFile(join(dir, 'a.nft'), a1());
    const r = reconciler();
    await pass(r);
    nft.tamper('inet', 't_b', undefined);
    await rm(join(dir, 'b.nft'));
    expect(await pass(r)).toMatchObject({ removed: 1, errors: 0 });
  });

  it('with pruning off, a deleted artifact leaves its tables and is no longer managed', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    await writeFile(join(dir, 'b.nft'), b1());
    const r = reconciler({ prune: false });
    await pass(r);
    await rm(join(dir, 'b.nft'));
    nft.calls.length = 0;
    await pass(r, true);
    expect(ops('apply')).toHaveLength(0);
    expect(nft.tableText('inet', 't_b')).toBe('chain one { }');
    expect(r.status(0).artifacts.map((a) => a.id)).toEqual(['host/a.nft']);
    expect(r.recentAttempts()[0]).toMatchObject({ id: 'host/b.nft', result: 'released' });
  });

  it('does not delete a table that moved to another artifact (file renamed)', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    const r = reconciler();
    await pass(r);
    await rename(join(dir, 'a.nft'), join(dir, 'renamed.nft'));
    nft.calls.length = 0;
    const report = await pass(r);
    expect(report).toMatchObject({ applied: 1, removed: 1, rejected: 0 });
    expect(ops('apply')[0]!.ruleset).not.toMatch(/^table inet t_a\ndelete table inet t_a\ntable inet t_a\n/);
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
  });

  it('deletes a table that a new version of an artifact no longer names', async () => {
    await writeFile(join(dir, 'a.nft'), artifact({ 'inet t_a': '  chain c { }', 'ip t_old': '  chain c { }' }));
    const r = reconciler();
    await pass(r);
    expect(nft.tableText('ip', 't_old')).toBe('chain c { }');
    await writeAtomic(join(dir, 'a.nft'), a1());
    await pass(r);
    expect(nft.tableText('ip', 't_old')).toBeUndefined();
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
  });
});

describe('reconciler: bad artifacts change nothing', () => {
  it('a digest mismatch (partial write) never reaches nft; the last good version stays', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    const r = reconciler();
    await pass(r);
    const full = a1('two');
    await writeFile(join(dir, 'a.nft'), full.slice(0, full.length - 10));
    nft.calls.length = 0;
    const report = await pass(r);
    expect(report).toMatchObject({ applied: 0, rejected: 1 });
    expect(nft.calls.filter((c) => c.op === 'check' || c.op === 'apply')).toEqual([]);
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    const [status] = r.status(0).artifacts;
    expect(status).toMatchObject({ state: 'Failing', lastAttempt: { result: 'invalid', code: 'WATCH_DIGEST_MISMATCH' } });
    expect(status!.applied!.digest).toMatch(/^sha256:/);
    expect(logger.events.find((e) => e.event === 'artifact.invalid')?.fields.code).toBe('WATCH_DIGEST_MISMATCH');

    await writeFile(join(dir, 'a.nft'), full);
    expect(await pass(r)).toMatchObject({ applied: 1 });
    expect(nft.tableText('inet', 't_a')).toBe('chain two { }');
  });

  it('refuses a body that touches a table its header does not name, or the whole ruleset', async () => {
    const r = reconciler();
    const { renderArtifact } = await import('@nftops/artifact');
    const make = (body: string) => renderArtifact({ generator: 't', tables: [{ family: 'inet', name: 't_a' }], sourceDigest: '0'.repeat(64), body });
    await writeFile(join(dir, 'foreign.nft'), make('table inet t_a { }\ndelete table inet other\n'));
    await writeFile(join(dir, 'flush.nft'), make('flush ruleset\ntable inet t_a { }\n'));
    await pass(r);
    const byId = Object.fromEntries(r.status(0).artifacts.map((a) => [a.id, a.lastAttempt]));
    expect(byId['host/foreign.nft']).toMatchObject({ result: 'invalid', code: 'WATCH_UNSAFE_BODY' });
    expect(byId['host/flush.nft']).toMatchObject({ result: 'invalid', code: 'WATCH_UNSAFE_BODY' });
    expect(ops('apply').every((c) => !c.ruleset!.includes('other') && !c.ruleset!.includes('flush'))).toBe(true);
  });

  it('an applied version keeps its own copy of a large file: the next read reuses the read buffer and changes nothing applied', async () => {
    // Files of 1 MiB and more are read into buffers reused from pass to pass (ReadBuffers).
    const large = (chain: string) => artifact({ 'inet t_a': `  chain ${chain} {\n    # ${chain.repeat((1 << 20) / chain.length)}\n  }` });
    const first = large('one');
    await writeFile(join(dir, 'a.nft'), first);
    const r = reconciler({ maxArtifactBytes: 4 << 20 });
    expect(await pass(r)).toMatchObject({ applied: 1 });
    nft.rejectWhen((ruleset) => (ruleset.includes('chain bad') ? 'bad chain' : undefined));
    await writeAtomic(join(dir, 'a.nft'), large('bad'));
    expect(await pass(r)).toMatchObject({ applied: 0, rejected: 1 });
    const applied = r.allRecords()[0]!.applied!;
    expect(applied.bytes.toString('utf8')).toBe(first);
    expect(applied.body.bytes.toString('utf8')).toBe(first.slice(first.indexOf('\n\n') + 2));
    // A drift repair puts back exactly the applied version.
    nft.clearRejecters();
    nft.tamper('inet', 't_a', 'chain tampered { }');
    expect(await pass(r, true)).toMatchObject({ repaired: 1 });
    expect(ops('apply').at(-1)!.ruleset).toContain('chain one {');
  });

  it('an artifact nft refuses leaves the previous rules; the same digest is not retried, a new one is tried at once', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    const r = reconciler();
    await pass(r);
    nft.rejectWhen((ruleset) => (ruleset.includes('chain bad') ? 'bad chain' : undefined));
    await writeAtomic(join(dir, 'a.nft'), a1('bad'));
    expect(await pass(r)).toMatchObject({ applied: 0, rejected: 1 });
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    expect(r.status(0).artifacts[0]).toMatchObject({ state: 'Failing', lastAttempt: { result: 'rejected', code: 'WATCH_NFT_REJECTED' } });
    expect(r.status(0).artifacts[0]!.lastAttempt!.message).toContain('bad chain');

    nft.calls.length = 0;
    await pass(r);
    await pass(r);
    expect(nft.calls.filter((c) => c.op === 'check' || c.op === 'apply')).toEqual([]);

    await writeAtomic(join(dir, 'a.nft'), a1('good'));
    expect(await pass(r)).toMatchObject({ applied: 1 });
    expect(nft.tableText('inet', 't_a')).toBe('chain good { }');
  });

  it('a forced pass (SIGHUP) retries a remembered bad digest', async () => {
    nft.rejectWhen((ruleset) => (ruleset.includes('chain bad') ? 'bad chain' : undefined));
    await writeFile(join(dir, 'a.nft'), a1('bad'));
    const r = reconciler();
    await pass(r);
    nft.clearRejecters();
    expect(await pass(r)).toMatchObject({ applied: 0 });
    expect(await pass(r, true, true)).toMatchObject({ applied: 1 });
  });

  it('when one of several changed artifacts is bad, only it is refused and the others go in', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    await writeFile(join(dir, 'b.nft'), b1());
    const r = reconciler();
    await pass(r);
    nft.rejectWhen((ruleset) => (ruleset.includes('chain bad') ? 'bad chain' : undefined));
    await writeAtomic(join(dir, 'a.nft'), a1('bad'));
    await writeAtomic(join(dir, 'b.nft'), b1('two'));
    const report = await pass(r);
    expect(report).toMatchObject({ applied: 1, rejected: 1 });
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    expect(nft.tableText('inet', 't_b')).toBe('chain two { }');
    const states = Object.fromEntries(r.status(0).artifacts.map((a) => [a.id, a.state]));
    expect(states).toEqual({ 'host/a.nft': 'Failing', 'host/b.nft': 'Ready' });
  });

  it('artifacts that fail only together go in one at a time; the one nft still refuses is judged by nft --check and rejected', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    await writeFile(join(dir, 'b.nft'), b1());
    const r = reconciler();
    await pass(r);
    // Each new version is fine alone, not together; and b's is refused once a's is live.
    nft.rejectWhen((ruleset) =>
      ruleset.includes('chain three') && (ruleset.includes('chain two') || nft.tableText('inet', 't_a') === 'chain two { }') ? 'conflict' : undefined,
    );
    await writeAtomic(join(dir, 'a.nft'), a1('two'));
    await writeAtomic(join(dir, 'b.nft'), b1('three'));
    nft.calls.length = 0;
    expect(await pass(r)).toMatchObject({ applied: 1, rejected: 1, errors: 0 });
    expect(nft.tableText('inet', 't_a')).toBe('chain two { }');
    expect(nft.tableText('inet', 't_b')).toBe('chain one { }');
    expect(r.status(0).artifacts.find((a) => a.id === 'host/b.nft')).toMatchObject({ state: 'Failing', lastAttempt: { result: 'rejected', code: 'WATCH_NFT_REJECTED' } });
    // Together (apply), each alone (check), together again (apply), then one at a time: a (apply), b (apply, then the check that judges it).
    const firstLine = (ruleset: string) => ruleset.split('\n').find((l) => l.startsWith('table ') && !l.endsWith('{'))!;
    expect(nft.calls.filter((c) => c.op === 'check' || c.op === 'apply').map((c) => `${c.op} ${c.ruleset!.includes('t_a') && c.ruleset!.includes('t_b') ? 'both' : firstLine(c.ruleset!)}`)).toEqual([
      'apply both',
      'check table inet t_a',
      'check table inet t_b',
      'apply both',
      'apply table inet t_a',
      'apply table inet t_b',
      'check table inet t_b',
    ]);
  });

  it('refuses both when two new artifacts claim the same table', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    await writeFile(join(dir, 'z.nft'), artifact({ 'inet t_a': '  chain thief { }' }));
    const r = reconciler();
    expect(await pass(r)).toMatchObject({ applied: 0, rejected: 2 });
    expect(nft.tableText('inet', 't_a')).toBeUndefined();
  });

  it('refuses a newcomer that claims a table another artifact owns', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    const r = reconciler();
    await pass(r);
    await writeFile(join(dir, 'z.nft'), artifact({ 'inet t_a': '  chain thief { }' }));
    const report = await pass(r);
    expect(report).toMatchObject({ applied: 0, rejected: 1 });
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    expect(r.status(0).artifacts.find((a) => a.id === 'host/z.nft')!.lastAttempt).toMatchObject({ code: 'WATCH_TABLE_CONFLICT' });
  });

  it('keeps counting a repeated failure in one history entry instead of logging it again', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    const r = reconciler();
    await pass(r);
    await writeFile(join(dir, 'z.nft'), artifact({ 'inet t_a': '  chain thief { }' }));
    await pass(r);
    await pass(r);
    await pass(r);
    const z = r.status(0).artifacts.find((a) => a.id === 'host/z.nft')!;
    expect(z.history).toHaveLength(1);
    expect(z.history[0]!.count).toBe(3);
    expect(logger.events.filter((e) => e.event === 'apply.rejected')).toHaveLength(1);
  });
});

describe('reconciler: drift', () => {
  it('repairs a changed or deleted table on a drift pass, and counts it', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    await writeFile(join(dir, 'b.nft'), b1());
    const r = reconciler();
    await pass(r);
    nft.calls.length = 0;
    expect(await pass(r, true)).toMatchObject({ repaired: 0 });
    expect(ops('apply')).toHaveLength(0);

    nft.tamper('inet', 't_a', 'chain one { }\nchain intruder { }');
    nft.tamper('inet', 't_b', undefined);
    expect(await pass(r, true)).toMatchObject({ repaired: 2 });
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    expect(nft.tableText('inet', 't_b')).toBe('chain one { }');
    expect(await metrics.text()).toMatch(/nftops_watch_drift_repairs_total 2/);
    expect(r.status(0).artifacts[0]!.lastAttempt).toMatchObject({ result: 'repaired' });
  });

  it('repairs the last good version even while a newer version is refused', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    const r = reconciler();
    await pass(r);
    nft.rejectWhen((ruleset) => (ruleset.includes('chain bad') ? 'bad chain' : undefined));
    await writeAtomic(join(dir, 'a.nft'), a1('bad'));
    await pass(r);
    nft.tamper('inet', 't_a', undefined);
    expect(await pass(r, true, true)).toMatchObject({ repaired: 1, rejected: 1 });
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    // Still failing: the repair restored the last good version, the newest one is still refused.
    const [status] = r.status(0).artifacts;
    expect(status).toMatchObject({ state: 'Failing', lastAttempt: { result: 'rejected' } });
    expect(status!.history.map((a) => a.result)).toContain('repaired');
    expect(await metrics.text()).toContain('nftops_watch_artifact_failing{artifact="host/a.nft",netns="host"} 1');
  });
});

describe('reconciler: sources, namespaces and failures', () => {
  it('keeps (does not prune) the artifacts of a directory that disappeared', async () => {
    const link = join(dir, 'current');
    await mkdir(join(dir, 'tree1'));
    await writeFile(join(dir, 'tree1', 'a.nft'), a1());
    await symlink('tree1', link);
    const r = reconciler({ sources: [{ path: link }] });
    await pass(r);
    await rm(link);
    nft.calls.length = 0;
    expect(await pass(r, true)).toMatchObject({ removed: 0 });
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    expect(logger.events.some((e) => e.event === 'source.unavailable')).toBe(true);
  });

  it('restores the last good versions when the directory is missing at start-up', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    const first = reconciler();
    await pass(first);
    const records = first.allRecords();
    await rm(join(dir, 'a.nft'));
    await rm(dir, { recursive: true });
    const fresh = new FakeNftDriver();
    const second = reconciler({ driver: fresh });
    second.restore(records, first.recentAttempts());
    expect(await pass(second)).toMatchObject({ applied: 1 });
    expect(fresh.tableText('inet', 't_a')).toBe('chain one { }');
  });

  it('re-applies restored artifacts at start-up even when unchanged (the kernel may have rebooted)', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    const first = reconciler();
    await pass(first);
    const fresh = new FakeNftDriver();
    const second = reconciler({ driver: fresh });
    second.restore(first.allRecords(), []);
    expect(await pass(second)).toMatchObject({ applied: 1 });
    expect(fresh.tableText('inet', 't_a')).toBe('chain one { }');
  });

  it('reports a missing namespace as a retryable error and applies once it exists', async () => {
    await mkdir(join(dir, 'ns3'));
    await writeFile(join(dir, 'ns3', 'a.nft'), a1());
    const r = reconciler();
    expect(await pass(r)).toMatchObject({ applied: 0, errors: 1 });
    expect(r.status(0).artifacts[0]!.lastAttempt).toMatchObject({ result: 'error', code: 'WATCH_NETNS_MISSING' });
    expect(r.ready).toBe(false);
    namespaces.add('ns3');
    expect(await pass(r)).toMatchObject({ applied: 1 });
    expect(nft.tableText('inet', 't_a', { netns: 'ns3' })).toBe('chain one { }');
  });

  it('treats a failing nft (timeout, missing binary) as retryable, not as a bad artifact', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    let failNext = 1;
    const flaky: NftDriver = Object.assign(Object.create(nft) as NftDriver, {
      apply: async (ruleset: string, target?: { netns?: string }) => {
        if (failNext-- > 0) throw Object.assign(new Error('nft did not finish within 10 ms'), { code: 'NFT_TIMEOUT' });
        return nft.apply(ruleset, target);
      },
    });
    const r = reconciler({ driver: flaky });
    expect(await pass(r)).toMatchObject({ errors: 1, applied: 0 });
    expect(r.status(0).artifacts[0]!.lastAttempt).toMatchObject({ result: 'error', code: 'WATCH_NFT_ERROR' });
    expect(await pass(r)).toMatchObject({ applied: 1, errors: 0 });
  });

  it('dry run: checks, never applies or deletes', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    const r = reconciler({ dryRun: true });
    const report = await pass(r);
    expect(report).toMatchObject({ applied: 0, rejected: 0 });
    expect(ops('check')).toHaveLength(1);
    expect(ops('apply')).toHaveLength(0);
    expect(r.status(0).artifacts[0]!.lastAttempt).toMatchObject({ result: 'checked' });
    nft.calls.length = 0;
    await pass(r);
    expect(ops('check')).toHaveLength(0);
  });

  it('exports the applied digest per artifact and applies by result', async () => {
    await writeFile(join(dir, 'a.nft'), a1());
    const r = reconciler();
    await pass(r);
    const digest = r.status(0).artifacts[0]!.applied!.digest;
    const text = await metrics.text();
    expect(text).toContain(`nftops_watch_artifact_info{artifact="host/a.nft",netns="host",digest="${digest}"} 1`);
    expect(text).toContain('nftops_watch_applies_total{result="success"} 1');
    expect(text).toMatch(/nftops_watch_apply_duration_seconds_count 1/);
    expect(text).toMatch(/nftops_watch_last_success_timestamp_seconds [1-9]/);
    expect(text).toMatch(/nftops_watch_reconcile_duration_seconds_count\{trigger="manual"\} 1/);
    await writeAtomic(join(dir, 'a.nft'), a1('two'));
    await pass(r);
    const after = await metrics.text();
    expect(after).not.toContain(digest);
    expect(after.match(/nftops_watch_artifact_info\{/g)).toHaveLength(1);
  });
});
