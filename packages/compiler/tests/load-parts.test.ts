import jsYaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { compile, type SourceFile } from '@nftops/compiler';
import { documentParts } from '../src/load.js';
import { FIXTURES, readFixture, REPO } from './helpers.js';

function loadAll(text: string): unknown[] {
  return jsYaml.loadAll(text, undefined, { schema: jsYaml.CORE_SCHEMA, json: false });
}

/** The values of TEXT read part by part, or 'error' when js-yaml refuses one of the parts. */
function byParts(text: string, perPart: number): unknown[] | 'error' {
  const values: unknown[] = [];
  for (const part of documentParts(text, perPart)) {
    try {
      values.push(...loadAll(part));
    } catch {
      return 'error';
    }
  }
  return values;
}

function whole(text: string): unknown[] | 'error' {
  try {
    return loadAll(text);
  } catch {
    return 'error';
  }
}

const EDGE_CASES = [
  '',
  '---\n',
  '---\n---\n---\na: 1\n',
  '# only a comment\n---\na: 1\n---\nb: 2\n',
  'a: 1\n---\nb: 2',
  'a: 1\n---',
  'a: 1\n--- \nb: 2\n---\t\nc: 3\n--- # comment\nd: 4\n',
  '--- |\nliteral at column 0\n---\nnext: 1\n',
  '--- >\n  folded\n---\n- 1\n- 2\n',
  'a: 1\r\n---\r\nb: 2\r\n---\r\n',
  'a: "quoted\n---\nstill quoted"\n---\nb: 2\n',
  "a: 'single\n--- x\n'\n",
  '----\n---\n-----: 1\n',
  'a: |\n  block\n  ---\n  indented marker is content\n---\nb: 1\n',
  '%YAML 1.2\n---\na: 1\n---\nb: 2\n',
  'a: 1\n...\n---\nb: 2\n',
  '\ufeffa: 1\n---\nb: 2\n',
  'key: [1,\n---\n2]\n',
  '? complex\n: value\n---\n- - nested\n  - list\n',
  '---a: 1\n---\n',
];

function corpus(): string[] {
  const files = [...readFixture(FIXTURES), ...readFixture(`${REPO}examples`)].map((s) => s.text);
  // Every fixture file also as one long file, so parts are cut between documents of different shapes.
  return [...EDGE_CASES, ...files, files.join('\n---\n'), EDGE_CASES.join('\n---\n')];
}

describe('documentParts', () => {
  it('reads every fixture, example and edge case to the same values as the whole text, one document per part and in parts of 32', () => {
    for (const text of corpus()) {
      const expected = whole(text);
      for (const perPart of [1, 2, 32]) {
        const actual = byParts(text, perPart);
        if (expected === 'error') expect(actual, JSON.stringify(text.slice(0, 200))).toBe('error');
        else expect(actual, JSON.stringify(text.slice(0, 200))).toEqual(expected);
      }
    }
  });

  it('cuts only before document markers, and keeps texts with directives or document ends whole', () => {
    const docs = Array.from({ length: 70 }, (_, i) => `n: ${i}\n`).join('---\n');
    const parts = documentParts(docs);
    expect(parts.length).toBe(3);
    expect(parts.join('')).toBe(docs);
    for (const part of parts.slice(1)) expect(part.startsWith('---\n')).toBe(true);
    expect(documentParts(`%YAML 1.2\n---\n${docs}`)).toHaveLength(1);
    expect(documentParts(`${docs}...\n`)).toHaveLength(1);
  });
});

describe('a file read in parts', () => {
  const service = (i: number, extra = '') =>
    `apiVersion: nftops.dev/v1alpha1\nkind: LoadBalancer\nmetadata: { name: svc-${i} }\nspec:\n  address: 192.0.2.${i}\n  ports: [{ port: 80 }]\n  backends: [{ address: 198.51.100.${i} }]\n${extra}`;
  const file = (broken: number | undefined, extra: string) =>
    Array.from({ length: 100 }, (_, i) => service(i, i === broken ? extra : '')).join('---\n');
  // A comment holding `*x` sends the whole file down the precise path from its first document.
  const precise = (text: string): SourceFile[] => [{ path: 'svc.yaml', text: `# *precise\n${text}` }];

  it.each([
    ['a duplicate key', 'spec: {}\n'],
    ['a syntax error', '  backends: [\n'],
    ['a tab in the indentation', '\tfoo: 1\n'],
  ])('reports %s in a late part as the precise path does, with the earlier documents built', (_name, extra) => {
    const text = file(80, extra);
    const fast = compile([{ path: 'svc.yaml', text }]);
    const slow = compile(precise(text));
    expect(fast.ok).toBe(false);
    // The precise text has one more line at the top.
    const shifted = slow.diagnostics.map((d) => ({ ...d, line: d.line - 1 }));
    expect(fast.diagnostics).toEqual(shifted);
  });

  it('gives the same artifact as the whole-file precise path', () => {
    const text = file(undefined, '');
    const fast = compile([{ path: 'svc.yaml', text }]);
    const slow = compile(precise(text));
    expect(fast.ok).toBe(true);
    expect(fast.artifacts.map((a) => a.text)).toEqual(slow.artifacts.map((a) => a.text));
  });
});
