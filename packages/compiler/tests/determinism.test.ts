import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { compile, type SourceFile } from '@nftops/compiler';
import { FIXTURES, readFixture, REPO, rng, shuffle } from './helpers.js';

/** Lists whose order carries no meaning, by the key that holds them. */
const UNORDERED = new Set(['ports', 'backends', 'podAddresses', 'ingress', 'from', 'except']);

function scramble(value: unknown, random: () => number, key?: string): unknown {
  if (Array.isArray(value)) {
    const items = value.map((item) => scramble(item, random));
    return key !== undefined && UNORDERED.has(key) ? shuffle(items, random) : items;
  }
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).map(([k, v]) => [k, scramble(v, random, k)] as const);
    return Object.fromEntries(shuffle(entries, random));
  }
  return value;
}

/** The same objects with files, documents, keys and meaning-free lists in another order. */
function permute(sources: readonly SourceFile[], seed: number): SourceFile[] {
  const random = rng(seed);
  return shuffle(sources, random).map((source) => {
    const docs = parseAllDocuments(source.text) as ReturnType<typeof parseAllDocuments> & unknown[];
    const values = (docs as { toJS(): unknown }[]).map((doc) => doc.toJS()).filter((v) => v !== null);
    const text = shuffle(values, random)
      .map((value) => stringify(scramble(value, random)))
      .join('---\n');
    return { path: source.path, text };
  });
}

const inputs: [string, SourceFile[]][] = [
  ...readdirSync(FIXTURES)
    .filter((name) => !name.startsWith('_') && name !== 'traffic')
    .map((name) => [name, readFixture(join(FIXTURES, name))] as [string, SourceFile[]]),
  ['examples', readFixture(join(REPO, 'examples'))],
];

describe('determinism', () => {
  it.each(inputs)('%s: byte-identical across 25 permutations of its sources', (_name, sources) => {
    const reference = compile(sources);
    expect(reference.ok).toBe(true);
    for (let seed = 1; seed <= 25; seed++) {
      const permuted = compile(permute(sources, seed));
      expect(permuted.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      expect(permuted.artifacts.map((a) => a.text), `seed ${seed}`).toEqual(reference.artifacts.map((a) => a.text));
    }
  });

  it('the permutation really changes the sources', () => {
    const sources = readFixture(join(FIXTURES, 'policy-semantics'));
    expect(permute(sources, 3).map((s) => s.text)).not.toEqual(sources.map((s) => s.text));
  });

  it('the same input compiled twice gives the same bytes', () => {
    const sources = readFixture(join(REPO, 'examples'));
    expect(compile(sources).artifacts.map((a) => a.text)).toEqual(compile(sources).artifacts.map((a) => a.text));
  });
});
