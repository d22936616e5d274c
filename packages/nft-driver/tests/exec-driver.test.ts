import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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

  it("gives nft glibc's default malloc whatever GLIBC_TUNABLES the caller has, or NFTOPS_NFT_GLIBC_TUNABLES", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nftops-env-'));
    try {
      // A stand-in nft that records the GLIBC_TUNABLES it was started with.
      const fake = join(dir, 'nft');
      await writeFile(fake, `#!/bin/sh\necho "\${GLIBC_TUNABLES-unset}" > ${join(dir, 'seen')}\necho 'nftables v1.0.6 (Lester Gooch #5)'\n`, { mode: 0o755 });
      const script = `const { createNftDriver } = await import('@nftops/nft-driver'); await createNftDriver({ nftPath: ${JSON.stringify(fake)} }).version();`;
      const seen = async (env: NodeJS.ProcessEnv) => {
        execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env } });
        return (await readFile(join(dir, 'seen'), 'utf8')).trim();
      };
      expect(await seen({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1', NFTOPS_NFT_GLIBC_TUNABLES: undefined })).toBe('unset');
      expect(await seen({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1', NFTOPS_NFT_GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' })).toBe('glibc.malloc.hugetlb=0');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
