import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { planIncremental, renderArtifact } from '@nftops/artifact';
import { WatchMetrics, createMemoryLogger, type Reconciler, type ReconcilerOptions } from '@nftops/watcher';
import { planChange } from '../src/plan.js';
import { tempDir, testReconciler, writeAtomic, ZERO } from './helpers.js';
import { ModelNftDriver } from './model-driver.js';

/** A body in the layout the compiler renders (what the incremental planner understands). */
export function layoutBody(table: string, options: { backends: Record<string, string>; chains?: Record<string, string[]>; type?: string; comment?: string }): string {
  const elements = Object.entries(options.backends).map(([k, v]) => `\t\t\t${k} : ${v}`);
  const chains = Object.entries(options.chains ?? {}).map(([name, rules]) => `\tchain ${name} {\n${rules.map((r) => `\t\t${r}\n`).join('')}\t}\n`);
  return [
    `table inet ${table}\n`,
    `delete table inet ${table}\n`,
    `table inet ${table} {\n`,
    `\tcomment "${options.comment ?? 'test'}"\n\n`,
    `\tmap backends {\n\t\ttype ${options.type ?? 'ipv4_addr : ipv4_addr'}\n`,
    elements.length > 0 ? `\t\telements = {\n${elements.join(',\n')}\n\t\t}\n` : '',
    '\t}\n',
    ...chains.map((c) => `\n${c}`),
    '\tchain pre {\n\t\ttype nat hook prerouting priority -100; policy accept;\n\t\tdnat ip to ip daddr map @backends\n\t}\n',
    '}\n',
  ].join('');
}

export const layoutArtifact = (body: string, tables: string[]) =>
  renderArtifact({ generator: 'nftops-test', tables: tables.map((name) => ({ family: 'inet' as const, name })), sourceDigest: ZERO, body });

const lb = (backends: Record<string, string>, extra: Partial<Parameters<typeof layoutBody>[1]> = {}, table = 't_lb') =>
  layoutArtifact(layoutBody(table, { backends, ...extra }), [table]);

let dir: string;
let cleanup: () => Promise<void>;
let nft: ModelNftDriver;
let logger: ReturnType<typeof createMemoryLogger>;
let metrics: WatchMetrics;

beforeEach(async () => {
  ({ path: dir, cleanup } = await tempDir());
  nft = new ModelNftDriver();
  logger = createMemoryLogger();
  metrics = new WatchMetrics();
});
afterEach(async () => cleanup());

function reconciler(overrides: Partial<ReconcilerOptions> = {}): Reconciler {
  return testReconciler({ driver: nft, logger, metrics }, dir, overrides);
}
const pass = (r: Reconciler, drift = false) => r.reconcile({ trigger: 'manual', drift });
const applies = () => nft.calls.filter((c) => c.op === 'apply');
const metric = async (name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)`, 'm').exec(await metrics.text())?.[1] ?? 0);
const base = { '192.0.2.1': '198.51.100.1', '192.0.2.2': '198.51.100.2', '192.0.2.3': '198.51.100.3' };

describe('incremental apply: decisions (in-memory nft)', () => {
  it('sends only the element changes for an element-only change, without a separate check, and records the mode', async () => {
    await writeFile(join(dir, 'lb.nft'), lb(base));
    const r = reconciler();
    await pass(r);
    expect(r.status(0).artifacts[0]!.applied!.mode).toBe('full');
    nft.calls.length = 0;
    await writeAtomic(join(dir, 'lb.nft'), lb({ ...base, '192.0.2.2': '198.51.100.22', '192.0.2.4': '198.51.100.4' }));
    expect(await pass(r)).toMatchObject({ applied: 1, rejected: 0, errors: 0 });
    const tx = nft.calls.filter((c) => c.op === 'check' || c.op === 'apply');
    expect(tx.map((c) => c.op)).toEqual(['apply']);
    expect(tx[0]!.ruleset).toMatch(/^delete element inet t_lb backends \{\n\t192\.0\.2\.2\n\}\nadd element inet t_lb backends \{/);
    expect(tx[0]!.ruleset).not.toContain('table inet');
    expect(nft.elements('inet', 't_lb', 'backends')).toEqual(['192.0.2.1 : 198.51.100.1', '192.0.2.3 : 198.51.100.3', '192.0.2.2 : 198.51.100.22', '192.0.2.4 : 198.51.100.4']);
    const [status] = r.status(0).artifacts;
    expect(status).toMatchObject({ state: 'Ready', applied: { mode: 'incremental' } });
    expect(status!.incrementalFallback).toBeUndefined();
    expect(await metric('nftops_watch_apply_mode_total{mode="incremental"}')).toBe(1);
    expect(await metric('nftops_watch_apply_mode_total{mode="full"}')).toBe(1);
    expect(logger.events.filter((e) => e.event === 'apply.ok').map((e) => e.fields.mode)).toEqual(['replace', 'incremental']);
  });

  it('applies whole after a restart (the previous version is not known to be live), then incrementally', async () => {
    await writeFile(join(dir, 'lb.nft'), lb(base));
    const first = reconciler();
    await pass(first);
    const second = reconciler();
    second.restore(first.allRecords(), []);
    await writeAtomic(join(dir, 'lb.nft'), lb({ ...base, '192.0.2.9': '198.51.100.9' }));
    nft.calls.length = 0;
    await pass(second);
    expect(applies()[0]!.ruleset).toContain('delete table inet t_lb');
    expect(await metric('nftops_watch_incremental_fallbacks_total{reason="not-live"}')).toBe(1);
    await writeAtomic(join(dir, 'lb.nft'), lb(base));
    nft.calls.length = 0;
    await pass(second);
    expect(applies()[0]!.ruleset).toMatch(/^delete element/);
  });

  it('falls back to a full apply when the planner refuses (a changed map declaration)', async () => {
    await writeFile(join(dir, 'lb.nft'), lb(base));
    const r = reconciler();
    await pass(r);
    await writeAtomic(join(dir, 'lb.nft'), lb(base, { type: 'ipv4_addr : ipv4_addr\n\t\tcounter' }));
    nft.calls.length = 0;
    await pass(r);
    expect(applies()).toHaveLength(1);
    expect(applies()[0]!.ruleset).toContain('delete table inet t_lb');
    expect(r.status(0).artifacts[0]!.incrementalFallback).toMatch(/^plan-refused: map backends in inet t_lb changed its declaration/);
    expect(await metric('nftops_watch_incremental_fallbacks_total{reason="plan-refused"}')).toBe(1);
  });

  it('falls back to a full apply when nft refuses the incremental transaction', async () => {
    await writeFile(join(dir, 'lb.nft'), lb(base));
    const r = reconciler();
    await pass(r);
    nft.rejectWhen((ruleset) => (ruleset.includes('add element') ? 'refusing element changes' : undefined));
    await writeAtomic(join(dir, 'lb.nft'), lb({ ...base, '192.0.2.5': '198.51.100.5' }));
    nft.calls.length = 0;
    expect(await pass(r)).toMatchObject({ applied: 1, rejected: 0 });
    expect(nft.calls.filter((c) => c.op === 'check' || c.op === 'apply').map((c) => `${c.op} ${c.ruleset!.split('\n')[0]}`)).toEqual([
      'apply add element inet t_lb backends {',
      'apply table inet t_lb',
    ]);
    expect(r.status(0).artifacts[0]!.applied!.mode).toBe('full');
    expect(await metric('nftops_watch_incremental_fallbacks_total{reason="apply-failed"}')).toBe(1);
    expect(nft.elements('inet', 't_lb', 'backends')).toContain('192.0.2.5 : 198.51.100.5');
  });

  it('detects drift on the previous state after an incremental apply and applies the artifact whole', async () => {
    await writeFile(join(dir, 'lb.nft'), lb(base));
    const r = reconciler();
    await pass(r);
    nft.tamperDeleteElement('inet', 't_lb', 'backends', '192.0.2.1'); // someone removed an element the plan does not touch
    await writeAtomic(join(dir, 'lb.nft'), lb({ ...base, '192.0.2.6': '198.51.100.6' }));
    nft.calls.length = 0;
    await pass(r);
    const ops = applies().map((c) => c.ruleset!.split('\n')[0]);
    expect(ops).toEqual(['add element inet t_lb backends {', 'table inet t_lb']);
    expect(nft.elements('inet', 't_lb', 'backends')).toEqual(['192.0.2.1 : 198.51.100.1', '192.0.2.2 : 198.51.100.2', '192.0.2.3 : 198.51.100.3', '192.0.2.6 : 198.51.100.6']);
    expect(logger.events.find((e) => e.event === 'incremental.mismatch')?.fields.problem).toMatch(/backends: 1 elements gone and 1 new, the plan deleted 0 and added 1/);
    expect(r.status(0).artifacts[0]).toMatchObject({ applied: { mode: 'full' }, incrementalFallback: expect.stringMatching(/^drift/) });
    expect(await metric('nftops_watch_incremental_fallbacks_total{reason="drift"}')).toBe(1);
    // The mismatch showed in the map the plan wrote, read back alone; the whole apply after it was read back whole.
    expect(nft.calls.filter((c) => c.op.startsWith('list')).map((c) => c.op)).toEqual(['listObject', 'listTable']);
    expect(logger.events.filter((e) => e.event === 'apply.ok').map((e) => [e.fields.mode, e.fields.readScope])).toEqual([
      ['replace', 'tables'],
      ['replace', 'tables'],
    ]);
    // A drift check now finds the tables as recorded.
    expect(await pass(r, true)).toMatchObject({ repaired: 0 });
  });

  it('after a drift pass found drift, the next change goes in whole', async () => {
    await writeFile(join(dir, 'lb.nft'), lb(base));
    const r = reconciler({ dryRun: false });
    await pass(r);
    nft.rejectWhen((ruleset) => (ruleset.startsWith('table inet t_lb') ? 'no full applies right now' : undefined));
    nft.tamperDeleteElement('inet', 't_lb', 'backends', '192.0.2.1');
    await pass(r, true); // the repair fails: the record stays suspect
    nft.clearRejecters();
    await writeAtomic(join(dir, 'lb.nft'), lb({ ...base, '192.0.2.7': '198.51.100.7' }));
    nft.calls.length = 0;
    await pass(r);
    expect(applies()[0]!.ruleset.split('\n')[0]).toBe('table inet t_lb');
    expect(nft.elements('inet', 't_lb', 'backends')).toHaveLength(4);
  });

  it('combines the incremental plans of several artifacts of one namespace into one transaction', async () => {
    await writeFile(join(dir, 'a.nft'), lb(base, {}, 't_a'));
    await writeFile(join(dir, 'b.nft'), lb(base, {}, 't_b'));
    const r = reconciler();
    await pass(r);
    await writeAtomic(join(dir, 'a.nft'), lb({ ...base, '192.0.2.8': '198.51.100.8' }, {}, 't_a'));
    await writeAtomic(join(dir, 'b.nft'), lb({ '192.0.2.1': '198.51.100.1' }, {}, 't_b'));
    nft.calls.length = 0;
    expect(await pass(r)).toMatchObject({ applied: 2 });
    expect(applies()).toHaveLength(1);
    expect(applies()[0]!.ruleset).toContain('add element inet t_a backends');
    expect(applies()[0]!.ruleset).toContain('delete element inet t_b backends');
    expect(r.status(0).artifacts.map((a) => a.applied!.mode)).toEqual(['incremental', 'incremental']);
  });

  it('rewrites a changed chain and adds a new one incrementally', async () => {
    await writeFile(join(dir, 'lb.nft'), lb(base, { chains: { svc: ['counter', 'accept'] } }));
    const r = reconciler();
    await pass(r);
    await writeAtomic(join(dir, 'lb.nft'), lb(base, { chains: { svc: ['counter', 'drop'], extra: ['counter'] } }));
    nft.calls.length = 0;
    await pass(r);
    expect(applies()[0]!.ruleset).toBe('add chain inet t_lb extra\nflush chain inet t_lb svc\nadd rule inet t_lb svc counter\nadd rule inet t_lb svc drop\nadd rule inet t_lb extra counter\n');
    expect(r.status(0).artifacts[0]!.applied!.mode).toBe('incremental');
    // A new chain has a handle only a listing of its table shows: the whole table is read back.
    expect(nft.calls.filter((c) => c.op.startsWith('list')).map((c) => c.op)).toEqual(['listTable']);
    expect(logger.events.filter((e) => e.event === 'apply.ok').map((e) => e.fields.readScope)).toEqual(['tables', 'tables']);
  });

  it('reads back only the objects an incremental change wrote; drift elsewhere is found by the next drift check', async () => {
    await writeFile(join(dir, 'lb.nft'), lb(base, { chains: { svc: ['counter', 'accept'] } }));
    const r = reconciler();
    await pass(r);
    const recorded = r.status(0).artifacts[0]!.applied!.fingerprint;
    nft.tamperRules('inet', 't_lb', 'svc', ['counter', 'drop']); // drift in a chain the next change does not touch
    await writeAtomic(join(dir, 'lb.nft'), lb({ ...base, '192.0.2.9': '198.51.100.9' }, { chains: { svc: ['counter', 'accept'] } }));
    nft.calls.length = 0;
    await pass(r);
    expect(r.status(0).artifacts[0]!.applied!.mode).toBe('incremental');
    expect(nft.calls.filter((c) => c.op.startsWith('list')).map((c) => c.op)).toEqual(['listObject']);
    expect(logger.events.filter((e) => e.event === 'apply.ok').map((e) => e.fields.readScope)).toEqual(['tables', 'objects']);
    // The fingerprint follows from the map read back alone: it is the one a listing of the table gives once
    // the chain is as the artifact says.
    const patched = r.status(0).artifacts[0]!.applied!.fingerprint;
    expect(patched).not.toBe(recorded);
    expect(await pass(r, true)).toMatchObject({ repaired: 1 });
    expect(nft.rules('inet', 't_lb', 'svc')).toEqual(['counter', 'accept']);
    expect(r.status(0).artifacts[0]!.applied!.fingerprint).toBe(patched);
    expect(await pass(r, true)).toMatchObject({ repaired: 0 });
  });
});

describe('planChange: the reduced bodies give the planner\'s own answer', () => {
  const address = fc.integer({ min: 1, max: 40 }).map((i) => `192.0.2.${i}`);
  const version = fc.record({
    // Non-ASCII text (comments) shifts byte offsets against character offsets: the reducer works on bytes.
    backends: fc.dictionary(address, fc.integer({ min: 1, max: 4 }).map((i) => (i === 4 ? '198.51.100.4 comment "straße ✓"' : `198.51.100.${i}`)), { maxKeys: 12 }),
    // Repeated elements: a line of the changed middle can then also occur outside it (the set is planned whole).
    other: fc.array(fc.integer({ min: 1, max: 6 }).map((i) => `192.0.2.${i}`), { maxLength: 10 }),
    chains: fc.dictionary(fc.constantFrom('a', 'b', 'c'), fc.array(fc.constantFrom('counter', 'accept', 'drop', 'ip saddr @other accept'), { maxLength: 3 }), { maxKeys: 3 }),
    comment: fc.constantFrom('x', 'y', 'grüße'),
  });
  type Version = { backends: Record<string, string>; other: string[]; chains: Record<string, string[]>; comment: string };
  const renderTable = (table: string, v: Version) => {
    const body = layoutBody(table, { backends: v.backends, chains: v.chains, comment: v.comment });
    const other = v.other.length > 0 ? `\tset other {\n\t\ttype ipv4_addr\n\t\telements = {\n${v.other.map((e) => `\t\t\t${e}`).join(',\n')}\n\t\t}\n\t}\n` : '\tset other {\n\t\ttype ipv4_addr\n\t}\n';
    return body.replace('\tmap backends {', `${other}\n\tmap backends {`);
  };
  // A second table, often the same in both versions (the reducer leaves an unchanged table out).
  const render = (v: Version, second: Version) => `${renderTable('t', v)}\n${renderTable('u', second)}`;

  it('same transaction (or refusal) as planIncremental on the full bodies', () => {
    fc.assert(
      fc.property(version, version, fc.boolean(), version, fc.option(version), (a, b, same, c, d) => {
        const previous = render(a, c);
        const next = render(same ? { ...a, backends: { ...a.backends, '192.0.2.200': '198.51.100.200' } } : b, d ?? c);
        const full = planIncremental(previous, next);
        const fast = planChange(Buffer.from(previous), Buffer.from(next));
        expect(fast.ok).toBe(full.ok);
        if (fast.ok && full.ok) {
          expect(fast.transaction).toBe(full.transaction);
          expect(fast.operations).toBe(full.operations);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('body guard fast path', () => {
  it('splits statements exactly like the character-by-character reference', async () => {
    const { splitStatements } = await import('../src/body-guard.js');
    const { splitStatementsReference } = await import('./body-guard-reference.js');
    const token = fc.constantFrom('{', '}', '"', '#', '\n', '\\', '\\\n', ';', ' ', '\t', 'table', 'inet', 'x', 'delete', 'chain c', 'elements = ', '1.2.3.4');
    fc.assert(
      fc.property(fc.array(token, { maxLength: 60 }), (tokens) => {
        const text = tokens.join('');
        expect(splitStatements(text)).toEqual(splitStatementsReference(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('guards bytes exactly as it guards their UTF-8 text (non-ASCII characters and white space included)', async () => {
    const { guardBody, guardBodyBytes } = await import('../src/body-guard.js');
    const tables = [{ family: 'inet' as const, name: 't' }];
    const token = fc.constantFrom(
      '{', '}', '"', '#', '\n', '\\', '\\\n', ';', ' ', '\t', 'table inet t', 'add chain inet t c', 'delete table inet t', 'flush ruleset', 'x',
      'ü', '✓', '😀', '\u00a0', '\u2028', '\u3000', '\ufeff', 'table\u00a0inet t', 'define a = 1',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 40 }), (tokens) => {
        const text = tokens.join('');
        expect(guardBodyBytes(Buffer.from(text), tables)).toEqual(guardBody(text, tables));
      }),
      { numRuns: 5000 },
    );
  });
});
