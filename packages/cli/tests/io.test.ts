import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readSources, writeFileAtomic } from '../src/io.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'nftops-io-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('readSources', () => {
  it('decodes UTF-8 once, strips one byte order mark and keeps a second', () => {
    writeFileSync(join(dir, 'a.yaml'), Buffer.from('\ufeffa: "é😀"\n', 'utf8'));
    writeFileSync(join(dir, 'b.yaml'), Buffer.from('\ufeff\ufeffb: 1\n', 'utf8'));
    const { sources, diagnostics } = readSources(dir, ['.']);
    expect(diagnostics).toEqual([]);
    expect(sources).toEqual([
      { path: 'a.yaml', text: 'a: "é😀"\n' },
      { path: 'b.yaml', text: '\ufeffb: 1\n' },
    ]);
  });

  it('names the line and column of the first byte that is not UTF-8', () => {
    writeFileSync(join(dir, 'bad.yaml'), Buffer.from([0x61, 0x0a, 0x62, 0x62, 0xc3, 0x28, 0x0a]));
    expect(readSources(dir, ['.']).diagnostics).toMatchObject([{ code: 'YAML_NOT_UTF8', file: 'bad.yaml', line: 2, column: 3 }]);
  });
});

describe('writeFileAtomic', () => {
  it('writes large text in pieces without splitting a surrogate pair, and leaves no temporary file', () => {
    // A pair straddles the 1 MiB piece boundary (in UTF-16 code units), and another sits at the very end.
    const text = `${'a'.repeat((1 << 20) - 1)}😀${'b'.repeat(1 << 20)}é😀`;
    const file = join(dir, 'out.nft');
    writeFileAtomic(file, text);
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(readdirSync(dir)).toEqual(['out.nft']);
  });
});
