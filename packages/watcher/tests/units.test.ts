import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeNftDriver } from '@nftops/nft-driver';
import {
  Agent,
  FakeClock,
  StateStore,
  buildConfig,
  createLogger,
  createMemoryLogger,
  fingerprint,
  guardBody,
  parseDuration,
  parseListen,
  renderStatus,
  startStatusServer,
  WatchMetrics,
  Reconciler,
  type StatusDocument,
} from '@nftops/watcher';
import { artifact, tempDir, testConfig, writeAtomic } from './helpers.js';

describe('body guard', () => {
  const tables = [{ family: 'inet', name: 'own' }, { family: 'ip', name: 'legacy' }] as const;
  it('accepts the replace idiom, defines, comments and commands on owned tables', () => {
    const body = [
      'define BACKENDS = { 198.51.100.10 }',
      '# a comment mentioning flush ruleset and table inet other',
      'table inet own',
      'delete table inet own',
      'table inet own {',
      '  chain c { type filter hook input priority 0; ip saddr $BACKENDS counter; comment "table inet other { }" }',
      '}',
      'add rule ip legacy c counter; add element inet own s { 1 }',
      'table legacy { chain x { } }',
    ].join('\n');
    expect(guardBody(body, tables)).toEqual({ ok: true });
  });

  it.each([
    ['flush ruleset', /whole ruleset/],
    ['list ruleset', /whole ruleset/],
    ['delete table inet other', /inet other is not named/],
    ['table ip own { }', /ip own is not named/],
    ['add rule inet own c counter; add rule bridge x c drop', /bridge x is not named/],
    ['include "/etc/nftables.conf"', /include/],
    ['table inet $name { }', /literally/],
    ['monitor', /unsupported/],
  ])('refuses %j', (body, message) => {
    const result = guardBody(body, tables);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(message);
  });
});

describe('fingerprint', () => {
  const listing = (packets: number, handle: number, extra: Record<string, unknown> = {}) => [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    { table: { family: 'inet', name: 't', handle } },
    { chain: { family: 'inet', table: 't', name: 'c', handle: handle + 1, type: 'filter', hook: 'input', prio: 0, policy: 'accept' } },
    { rule: { family: 'inet', table: 't', chain: 'c', handle: handle + 2, expr: [{ counter: { packets, bytes: packets * 60 } }] } },
    { set: { family: 'inet', table: 't', name: 'seen', type: 'ipv4_addr', handle: handle + 3, flags: ['dynamic'], elem: extra.elem ?? [] } },
    { counter: { family: 'inet', table: 't', name: 'named', handle: handle + 4, packets, bytes: packets } },
  ];

  it('ignores counters, handles, nft version and dynamic set contents', () => {
    const a = fingerprint([{ family: 'inet', name: 't', json: listing(0, 1) }]);
    const b = fingerprint([{ family: 'inet', name: 't', json: listing(99, 40, { elem: ['203.0.113.5'] }) }]);
    expect(a).toBe(b);
  });

  it('changes when a rule changes or the table is gone', () => {
    const base = listing(0, 1);
    const changed = base.map((item) => ('rule' in item ? { rule: { ...item.rule, expr: [{ accept: null }] } } : item));
    const a = fingerprint([{ family: 'inet', name: 't', json: base }]);
    expect(fingerprint([{ family: 'inet', name: 't', json: changed }])).not.toBe(a);
    expect(fingerprint([{ family: 'inet', name: 't', json: undefined }])).not.toBe(a);
  });
});

describe('config', () => {
  it('parses durations and listen addresses', () => {
    expect(parseDuration('250ms', 'x')).toBe(250);
    expect(parseDuration('30s', 'x')).toBe(30_000);
    expect(parseDuration('1.5m', 'x')).toBe(90_000);
    expect(parseDuration('40', 'x')).toBe(40);
    expect(() => parseDuration('soon', 'x')).toThrow(/duration/);
    expect(parseListen('127.0.0.1:9780')).toEqual({ host: '127.0.0.1', port: 9780 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen('none')).toBeUndefined();
    expect(() => parseListen('9780')).toThrow(/HOST:PORT/);
  });

  it('builds defaults from flags, and reads sources with explicit namespaces from a JSON file', async () => {
    const { path, cleanup } = await tempDir();
    try {
      const config = buildConfig({ dir: ['arts'] }, path);
      expect(config).toMatchObject({
        sources: [{ path: join(path, 'arts') }],
        stateDir: '/var/lib/nftops-watch',
        listen: { host: '127.0.0.1', port: 9780 },
        driftIntervalMs: 30_000,
        prune: true,
        once: false,
        dryRun: false,
      });
      await writeFile(join(path, 'watch.json'), JSON.stringify({ sources: ['/srv/a', { path: '/srv/pod', netns: 'cni-1234' }], prune: false, listen: 'none', driftInterval: '5s' }));
      const fromFile = buildConfig({ config: 'watch.json', 'drift-interval': '2s' }, path);
      expect(fromFile.sources).toEqual([{ path: '/srv/a' }, { path: '/srv/pod', netns: 'cni-1234' }]);
      expect(fromFile).toMatchObject({ prune: false, listen: undefined, driftIntervalMs: 2000 });
      await writeFile(join(path, 'bad.json'), JSON.stringify({ sources: ['/a'], unknown: 1 }));
      expect(() => buildConfig({ config: 'bad.json' }, path)).toThrow(/unknown key/);
      await writeFile(join(path, 'badns.json'), JSON.stringify({ sources: [{ path: '/a', netns: '../../etc' }] }));
      expect(() => buildConfig({ config: 'badns.json' }, path)).toThrow(/namespace name/);
      expect(() => buildConfig({}, path)).toThrow(/no artifact directory/);
    } finally {
      await cleanup();
    }
  });
});

describe('state store', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ path: dir, cleanup } = await tempDir()));
  afterEach(async () => cleanup());

  it('keeps last good copies named by digest, round-trips records, and drops a corrupt copy', async () => {
    const src = join(dir, 'src');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(src);
    await writeFile(join(src, 'a.nft'), artifact({ 'inet t_a': '  chain one { }' }));
    const r = new Reconciler({
      driver: new FakeNftDriver(), clock: new FakeClock(), logger: createMemoryLogger(), sources: [{ path: src }],
      prune: true, dryRun: false, maxArtifactBytes: 1 << 20,
    });
    await r.reconcile({ trigger: 'manual', drift: false });
    const store = new StateStore(join(dir, 'state'));
    await store.init();
    await store.save(r.status(0), r.allRecords());
    const copies = await readdir(join(dir, 'state', 'last-good'));
    expect(copies).toHaveLength(1);
    expect(copies[0]).toMatch(/^[0-9a-f]{64}\.nft$/);

    const loaded = await new StateStore(join(dir, 'state')).load();
    expect(loaded.problems).toEqual([]);
    expect(loaded.records).toHaveLength(1);
    expect(loaded.records[0]).toMatchObject({ id: 'host/a.nft', live: false });
    expect(loaded.records[0]!.applied!.bytes.equals(await readFile(join(src, 'a.nft')))).toBe(true);

    // A second version replaces the copy; the old one is garbage-collected.
    await writeAtomic(join(src, 'a.nft'), artifact({ 'inet t_a': '  chain two { }' }));
    await r.reconcile({ trigger: 'manual', drift: false });
    await store.save(r.status(0), r.allRecords());
    const after = await readdir(join(dir, 'state', 'last-good'));
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(copies[0]);

    await writeFile(join(dir, 'state', 'last-good', after[0]!), 'corrupted');
    const damaged = await new StateStore(join(dir, 'state')).load();
    expect(damaged.records[0]!.applied).toBeUndefined();
    expect(damaged.problems[0]).toMatch(/unusable/);
  });
});

describe('agent scheduling (fake clock)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ path: dir, cleanup } = await tempDir()));
  afterEach(async () => cleanup());

  async function agent(extra: Partial<Parameters<typeof testConfig>[0]> = {}) {
    const clock = new FakeClock();
    const nft = new FakeNftDriver();
    const a = new Agent({
      config: testConfig({ sources: [{ path: join(dir, 'src') }], stateDir: join(dir, 'state'), debounceMs: 20, maxDelayMs: 100, ...extra }),
      driver: nft,
      clock,
      logger: createMemoryLogger(),
      watch: false,
      processMetrics: false,
    });
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'src'), { recursive: true });
    await a.start();
    return { a, clock, nft };
  }

  /** Writes one artifact and lets the agent apply it (the debounce is 20 ms of the fake clock). */
  async function applyFirst(a: Agent, clock: FakeClock): Promise<void> {
    await writeFile(join(dir, 'src', 'a.nft'), artifact({ 'inet t_a': '  chain one { }' }));
    a.notify('add');
    clock.advance(20);
    await a.idle();
  }

  it('coalesces a burst of events into one pass after the quiet period', async () => {
    const { a, clock } = await agent();
    const before = a.passes;
    for (let i = 0; i < 10; i++) {
      a.notify('change');
      clock.advance(5);
    }
    expect(a.passes).toBe(before);
    clock.advance(20);
    await a.idle();
    expect(a.passes).toBe(before + 1);
    await a.stop();
  });

  it('does not let a continuous stream of events postpone the pass beyond the max delay', async () => {
    const { a, clock } = await agent();
    const before = a.passes;
    for (let i = 0; i < 12; i++) {
      a.notify('change');
      clock.advance(10);
      await a.idle();
    }
    expect(a.passes).toBeGreaterThanOrEqual(before + 1);
    await a.stop();
  });

  it('runs a drift pass on the interval', async () => {
    const { a, clock, nft } = await agent({ driftIntervalMs: 1000 });
    await applyFirst(a, clock);
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    nft.tamper('inet', 't_a', undefined);
    clock.advance(1000);
    await a.idle();
    expect(nft.tableText('inet', 't_a')).toBe('chain one { }');
    expect(await a.metrics.text()).toMatch(/nftops_watch_drift_repairs_total 1/);
    await a.stop();
  });

  it('waits longer between drift checks when a check takes more than 5 % of the interval', async () => {
    const { a, clock, nft } = await agent({ driftIntervalMs: 1000 });
    await applyFirst(a, clock);
    // From now on every listing takes 200 ms (as 50 000 services take seconds): a drift pass every 4 s at most.
    const listTable = nft.listTable.bind(nft);
    nft.listTable = async (...args) => {
      clock.advance(200);
      return listTable(...args);
    };
    const drifts = () => nft.calls.filter((c) => c.op === 'listTable').length;
    clock.advance(1000);
    await a.idle();
    const afterFirst = drifts();
    expect(afterFirst).toBeGreaterThan(0);
    clock.advance(1000);
    await a.idle();
    expect(drifts(), 'no second drift check 1 s later').toBe(afterFirst);
    clock.advance(3000);
    await a.idle();
    expect(drifts(), 'the next one comes 20 times the last check later').toBeGreaterThan(afterFirst);
    await a.stop();
  });

  it('writes status.json after a pass that changed something', async () => {
    const { a, clock } = await agent();
    await applyFirst(a, clock);
    const doc = JSON.parse(await readFile(join(dir, 'state', 'status.json'), 'utf8')) as StatusDocument;
    expect(doc.ready).toBe(true);
    expect(doc.artifacts[0]).toMatchObject({ id: 'host/a.nft', state: 'Ready' });
    await a.stop();
  });
});

describe('status server', () => {
  it('serves healthz, readyz (503 until ready), metrics and status', async () => {
    let ready = false;
    const metrics = new WatchMetrics();
    const doc: StatusDocument = { version: 1, updatedAt: new Date(0).toISOString(), ready: false, artifacts: [], recent: [] };
    const { server, address } = await startStatusServer({ ready: () => ready, status: () => doc, metrics }, '127.0.0.1', 0);
    try {
      const get = async (path: string) => {
        const res = await fetch(`http://${address}${path}`);
        return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
      };
      expect((await get('/healthz')).status).toBe(200);
      expect((await get('/readyz')).status).toBe(503);
      ready = true;
      expect((await get('/readyz')).status).toBe(200);
      const m = await get('/metrics');
      expect(m.type).toContain('text/plain');
      for (const name of [
        'nftops_watch_applies_total',
        'nftops_watch_apply_duration_seconds',
        'nftops_watch_last_success_timestamp_seconds',
        'nftops_watch_drift_repairs_total',
        'nftops_watch_artifact_info',
        'nftops_watch_reconcile_duration_seconds',
      ]) {
        expect(m.body).toContain(`# TYPE ${name}`);
      }
      expect(JSON.parse((await get('/status')).body)).toEqual(doc);
      expect((await get('/nope')).status).toBe(404);
    } finally {
      server.close();
    }
  });
});

describe('logs and status rendering', () => {
  it('writes one JSON object per event, or a readable line on a terminal', () => {
    const lines: string[] = [];
    createLogger({ format: 'auto', isTty: false, write: (l) => lines.push(l), now: () => 0 }).info('apply.ok', 'artifact applied', { artifact: 'host/a.nft', ms: 3 });
    expect(JSON.parse(lines[0]!)).toEqual({ time: '1970-01-01T00:00:00.000Z', level: 'info', event: 'apply.ok', msg: 'artifact applied', artifact: 'host/a.nft', ms: 3 });
    createLogger({ format: 'auto', isTty: true, write: (l) => lines.push(l), now: () => 0 }).warn('drift.repaired', 'put back', { artifact: 'host/a.nft' });
    expect(lines[1]).toMatch(/^00:00:00\.000 WARN +drift\.repaired +put back {2}artifact=host\/a\.nft\n$/);
    const quiet: string[] = [];
    createLogger({ level: 'warn', format: 'json', write: (l) => quiet.push(l) }).info('x', 'y');
    expect(quiet).toEqual([]);
  });

  it('prints applied and attempted digests per artifact and the last five attempts', () => {
    const attempt = (result: string, digest: string, code?: string) => ({
      id: 'host/a.nft', netns: 'host', digest, result, trigger: 'event', at: '2025-01-01T00:00:02.000Z', firstAt: '2025-01-01T00:00:02.000Z', count: 1,
      ...(code ? { code, message: 'Error: bad' } : {}),
    });
    const good = `sha256:${'a'.repeat(64)}`;
    const bad = `sha256:${'b'.repeat(64)}`;
    const doc = {
      version: 1, updatedAt: '2025-01-01T00:00:03.000Z', ready: true,
      agent: { pid: 42, startedAt: '2025-01-01T00:00:00.000Z', listen: '127.0.0.1:9780', dryRun: false, prune: true, sources: [{ path: '/srv/nftops' }] },
      artifacts: [{
        id: 'host/a.nft', netns: 'host', sourcePath: '/srv/nftops', state: 'Failing', live: true,
        applied: { digest: good, file: '/srv/nftops/a.nft', at: '2025-01-01T00:00:01.000Z', tables: ['inet t'] },
        lastAttempt: attempt('rejected', bad, 'WATCH_NFT_REJECTED'), history: [],
      }],
      recent: [attempt('rejected', bad, 'WATCH_NFT_REJECTED'), attempt('applied', good)],
    } as unknown as StatusDocument;
    const text = renderStatus(doc, '/var/lib/nftops-watch', () => true);
    expect(text).toContain('agent: pid 42 running');
    expect(text).toMatch(/host\/a\.nft +host +Failing +sha256:aaaaaaaaaaaa +2025-01-01T00:00:01.000Z +sha256:bbbbbbbbbbbb +rejected WATCH_NFT_REJECTED/);
    expect(text).toContain('last 5 attempts:');
    expect(text).toContain('host/a.nft  applied  sha256:aaaaaaaaaaaa');
  });
});
