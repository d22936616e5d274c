import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '@nftops/cli';
import { captureIo } from './helpers.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
let dir: string;
const io = () => captureIo(dir);
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nftops-sign-'));
  cpSync(join(REPO, 'examples/lbaas-request/lbaas-request.nft'), join(dir, 'a.nft'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('nftops sign', () => {
  it('generates a key pair, signs, verifies, and catches tampering', async () => {
    expect(await main(['sign', '--generate-key', 'ci'], io())).toBe(0);
    expect(statSync(join(dir, 'ci.pem')).mode & 0o777).toBe(0o600);
    expect(await main(['sign', '--verify', 'ci.pub', 'a.nft'], io())).toBe(1);
    expect(await main(['sign', '--key', 'ci.pem', 'a.nft'], io())).toBe(0);
    expect(readFileSync(join(dir, 'a.nft'), 'utf8')).toMatch(/# signature: ed25519:/);
    const ok = io();
    expect(await main(['sign', '--verify', 'ci.pub', 'a.nft'], ok)).toBe(0);
    expect(ok.err()).toContain('a.nft: signature valid');
    writeFileSync(join(dir, 'a.nft'), readFileSync(join(dir, 'a.nft'), 'utf8').replace('# tables:', '# tables: inet evil,').replace(/,( inet nftops_nat)/, '$1'));
    const bad = io();
    expect(await main(['sign', '--verify', 'ci.pub', 'a.nft'], bad)).not.toBe(0);
  });

  it('a signed artifact is still current for nftops diff', async () => {
    cpSync(join(REPO, 'examples/lbaas-request'), join(dir, 'lbaas-request'), { recursive: true });
    expect(await main(['sign', '--generate-key', 'ci'], io())).toBe(0);
    expect(await main(['sign', '--key', 'ci.pem', 'lbaas-request/lbaas-request.nft'], io())).toBe(0);
    expect(await main(['diff', 'lbaas-request'], io())).toBe(0);
  });

  it('needs exactly one mode', async () => {
    expect(await main(['sign', 'a.nft'], io())).toBe(2);
  });
});
