import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderArtifact, type TableRef } from '@nftops/artifact';
import { FakeClock, Reconciler, type ReconcilerOptions, type WatchConfig } from '@nftops/watcher';

export const ZERO = '0'.repeat(64);

/** An artifact whose body replaces each table whole; TABLE_BODIES maps "family name" to the inside of the table. */
export function artifact(tableBodies: Record<string, string>): string {
  const tables: TableRef[] = Object.keys(tableBodies).map((key) => {
    const [family, name] = key.split(' ') as [TableRef['family'], string];
    return { family, name };
  });
  const body = tables
    .map((t) => {
      const inner = tableBodies[`${t.family} ${t.name}`]!;
      return `table ${t.family} ${t.name}\ndelete table ${t.family} ${t.name}\ntable ${t.family} ${t.name} {\n${inner}\n}\n`;
    })
    .join('');
  return renderArtifact({ generator: 'nftops-test', tables, sourceDigest: ZERO, body });
}

/** A one-table artifact with a filter chain on input whose rules are RULES (a real nft body). */
export function filterArtifact(table: string, rules: string, chain = 'input'): string {
  return artifact({
    [`inet ${table}`]: `  chain ${chain} {\n    type filter hook input priority 0; policy accept;\n${rules
      .split('\n')
      .filter(Boolean)
      .map((l) => `    ${l}`)
      .join('\n')}\n  }`,
  });
}

let counter = 0;
/** Writes TEXT to a temp file in the same directory, then renames it over PATH. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const dir = join(path, '..');
  const temp = join(dir, `.tmp-${process.pid}-${counter++}`);
  await writeFile(temp, text);
  await rename(temp, path);
}

export async function tempDir(prefix = 'nftops-watch-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** Polls FN until it returns a truthy value; throws with DESCRIBE() after TIMEOUT ms. */
export async function waitFor<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 10_000, describe?: () => Promise<string> | string): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe ? `\n${await describe()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function testConfig(overrides: Partial<WatchConfig> & Pick<WatchConfig, 'sources' | 'stateDir'>): WatchConfig {
  return {
    listen: undefined,
    driftIntervalMs: 0,
    debounceMs: 20,
    maxDelayMs: 500,
    prune: true,
    once: false,
    dryRun: false,
    nftPath: undefined,
    nftTimeoutMs: 30_000,
    maxArtifactBytes: 1024 * 1024,
    owner: undefined,
    allowWritable: false,
    incremental: true,
    logFormat: 'json',
    logLevel: 'debug',
    ...overrides,
  };
}

/** Sends a few UDP datagrams to 127.0.0.1:9 inside NETNS, so input counters on lo move. */
export async function loopbackTraffic(netns: string, count = 5): Promise<void> {
  const { execFile } = await import('node:child_process');
  const script = `const s=require('node:dgram').createSocket('udp4');let n=${count};const go=()=>s.send('x',9,'127.0.0.1',()=>{if(--n>0)go();else s.close();});go();`;
  await new Promise<void>((resolve, reject) =>
    execFile('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { timeout: 10_000 }, (error) => (error ? reject(error) : resolve())),
  );
}

/** A Reconciler over DIR as the unit tests use it: a fake clock, pruning on, not a dry run, files up to 1 MiB. */
export function testReconciler(
  base: Pick<ReconcilerOptions, 'driver' | 'logger' | 'metrics'>,
  dir: string,
  overrides: Partial<ReconcilerOptions> = {},
): Reconciler {
  return new Reconciler({ clock: new FakeClock(), sources: [{ path: dir }], prune: true, dryRun: false, maxArtifactBytes: 1 << 20, ...base, ...overrides });
}
