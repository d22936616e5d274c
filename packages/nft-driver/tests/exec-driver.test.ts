import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createNftDriver, NftNotFoundError, parseNftDiagnostics } from '@nftops/nft-driver';
import { kernelAvailable, withNetns } from '@nftops/testkit';

describe('parseNftDiagnostics', () => {
  it('reads line and columns', () => {
    expect(parseNftDiagnostics('/dev/stdin:3:5-9: Error: syntax error, unexpected junk\n')).toEqual([
      { line: 3, columnStart: 5, columnEnd: 9, message: 'syntax error, unexpected junk' },
    ]);
  });
});

describe('exec driver', () => {
  it('reports a missing nft binary', async () => {
    const nft = createNftDriver({ env: { PATH: '/nonexistent' }, nftPath: '/nonexistent/nft' });
    await expect(nft.version()).rejects.toBeInstanceOf(NftNotFoundError);
  });

  it.runIf(kernelAvailable())('checks, applies and lists inside a namespace', async () => {
    await withNetns(async (netns) => {
      const nft = createNftDriver();
      expect(await nft.version()).toMatch(/^\d+\.\d+\.\d+$/);
      const ruleset = 'table inet t\ndelete table inet t\ntable inet t {\n chain c { type filter hook input priority 0; counter; }\n}\n';
      expect(await nft.check(ruleset, { netns })).toEqual({ ok: true });
      expect(await nft.listTables({ netns })).toEqual([]);
      expect(await nft.apply(ruleset, { netns })).toEqual({ ok: true });
      expect(await nft.listTables({ netns })).toEqual([{ family: 'inet', name: 't' }]);
      const table = await nft.listTable('inet', 't', { netns });
      expect(table?.some((item) => 'chain' in item)).toBe(true);
      expect(await nft.listTable('inet', 'absent_table', { netns })).toBeUndefined();
      const bad = await nft.apply('table inet t {\n chain c { junk }\n}\n', { netns });
      expect(bad.ok).toBe(false);
      if (!bad.ok) expect(bad.diagnostics[0]?.line).toBe(2);
    });
  });

  it.runIf(kernelAvailable())('with a spool directory, nft reads the ruleset from a file that is removed afterwards', async () => {
    const spoolDir = await mkdtemp(join(tmpdir(), 'nftops-spool-'));
    try {
      await withNetns(async (netns) => {
        const nft = createNftDriver({ spoolDir });
        const ruleset = 'table inet t\ndelete table inet t\ntable inet t {\n chain c { type filter hook input priority 0; counter; }\n}\n';
        expect(await nft.check(ruleset, { netns })).toEqual({ ok: true });
        expect(await nft.apply(ruleset, { netns })).toEqual({ ok: true });
        expect(await nft.listTables({ netns })).toEqual([{ family: 'inet', name: 't' }]);
        const bad = await nft.apply('table inet t {\n chain c { junk }\n}\n', { netns });
        expect(bad.ok).toBe(false);
        if (!bad.ok) expect(bad.diagnostics[0]?.line).toBe(2);
        expect(await readdir(spoolDir)).toEqual([]);
      });
    } finally {
      await rm(spoolDir, { recursive: true, force: true });
    }
  });
});
