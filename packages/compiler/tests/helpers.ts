import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SourceFile } from '@nftops/compiler';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const UPDATE = process.env.UPDATE_GOLDENS === '1';

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== 'expected') walk(path, out);
    } else if (/\.ya?ml$/.test(name)) out.push(path);
  }
  return out;
}

/** The YAML files under DIR as sources, with paths relative to DIR (as a CLI run inside DIR would name them). */
export function readFixture(dir: string): SourceFile[] {
  return walk(dir, []).map((file) => ({ path: relative(dir, file).split('\\').join('/'), text: readFileSync(file, 'utf8') }));
}

/** Compares TEXT with the golden file, or rewrites the golden when UPDATE_GOLDENS=1. */
export function golden(file: string, text: string): { expected: string; actual: string } {
  if (UPDATE || !existsSync(file)) {
    if (!UPDATE && process.env.CI === 'true') throw new Error(`golden file ${file} is missing`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  return { expected: readFileSync(file, 'utf8'), actual: text };
}

/** A deterministic pseudo-random generator, so permutation tests are reproducible from their seed. */
export function rng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
}

export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}
