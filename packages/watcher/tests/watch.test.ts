import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SourceWatcher, createMemoryLogger } from '@nftops/watcher';
import { tempDir, waitFor, writeAtomic } from './helpers.js';

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A SourceWatcher on a fresh directory tree; EVENTS collects the reasons it reports. */
async function watching(): Promise<{ dir: string; events: string[] }> {
  const { path, cleanup } = await tempDir();
  const dir = join(path, 'src');
  await mkdir(join(dir, 'ns1'), { recursive: true });
  await writeFile(join(dir, 'ns1', 'a.nft'), 'version 0\n');
  const events: string[] = [];
  const watcher = new SourceWatcher({ path: dir }, (reason) => events.push(reason), createMemoryLogger());
  await watcher.start();
  cleanups.push(cleanup, () => watcher.close());
  return { dir, events };
}

describe('source watcher (real directory, inotify)', () => {
  it('reports every replacement of a file by rename, even quick ones of the same size', async () => {
    const { dir, events } = await watching();
    const file = join(dir, 'ns1', 'a.nft');
    // The agent's pass can take any time, so each replacement must be reported on its own: chokidar's own
    // add/change events compare stats and throttle per file, and once in ~1 000 such replacements said nothing.
    for (let i = 1; i <= 300; i++) {
      const before = events.length;
      await writeAtomic(file, `version ${i % 4}\n`);
      await waitFor(() => events.slice(before).some((reason) => reason.endsWith(file)), `an event for replacement ${i}`, 2000);
    }
  });

  it('ignores dot files (editors and writers stage their temporary files as such)', async () => {
    const { dir, events } = await watching();
    await writeFile(join(dir, 'ns1', '.staging'), 'x');
    await writeFile(join(dir, 'ns1', 'b.nft'), 'y');
    await waitFor(() => events.some((reason) => reason.endsWith(join(dir, 'ns1', 'b.nft'))), 'the event for b.nft', 2000);
    expect(events.filter((reason) => reason.includes('.staging'))).toEqual([]);
  });
});
