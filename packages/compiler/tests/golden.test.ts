import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile, formatDiagnostic, DIAGNOSTIC_CODES } from '@nftops/compiler';
import { FIXTURES, golden, readFixture, REPO } from './helpers.js';

const cases = readdirSync(FIXTURES).filter((name) => !name.startsWith('_') && name !== 'traffic').sort();
const errorCases = readdirSync(join(FIXTURES, '_error_')).sort();

describe('golden artifacts', () => {
  it.each(cases)('%s', (name) => {
    const dir = join(FIXTURES, name);
    const result = compile(readFixture(dir), { generator: 'nftops test' });
    const diagnostics = result.diagnostics.map(formatDiagnostic).join('\n');
    expect(result.ok, diagnostics).toBe(true);
    const d = golden(join(dir, 'expected', 'diagnostics.txt'), `${diagnostics}\n`);
    expect(d.actual).toBe(d.expected);
    for (const artifact of result.artifacts) {
      const g = golden(join(dir, 'expected', `${artifact.name}.nft`), artifact.text);
      expect(g.actual, `artifact ${artifact.name}`).toBe(g.expected);
    }
  });

  it('the committed example artifacts are current', () => {
    const result = compile(readFixture(join(REPO, 'examples')).map((s) => ({ ...s, path: `examples/${s.path}` })));
    expect(result.ok, result.diagnostics.map(formatDiagnostic).join('\n')).toBe(true);
    expect(result.artifacts.length).toBeGreaterThanOrEqual(2);
    for (const artifact of result.artifacts) {
      expect(artifact.output).toBeDefined();
      expect(readFileSync(join(REPO, artifact.output!), 'utf8'), artifact.output).toBe(artifact.text);
    }
  });

  it('every rule and commented element traces back to the metadata.name of its object', () => {
    const sources = readFixture(join(REPO, 'examples')).map((s) => ({ ...s, path: `examples/${s.path}` }));
    const result = compile(sources);
    let traced = 0;
    for (const artifact of result.artifacts) {
      artifact.text.split('\n').forEach((text, index) => {
        const named = /^\t\t(?!comment ).* comment "([A-Za-z]+\/[^ "]+)/.exec(text)?.[1];
        const source = artifact.ruleSource(index + 1);
        expect(source?.object, `${artifact.name}:${index + 1} ${text}`).toBe(named);
        // Built-in default settings come from no file.
        if (!source || (source.object === 'Settings/default' && source.file === '')) return;
        traced++;
        const file = sources.find((s) => s.path === source.file)!;
        const line = file.text.split('\n')[source.line - 1]!;
        expect(line.slice(source.column - 1), `${source.file}:${source.line}`).toMatch(new RegExp(`^['"]?${source.object.split('/')[1]!.replace(/\./g, '\\.')}`));
      });
    }
    expect(traced).toBeGreaterThan(100);
  });
});

describe('error fixtures', () => {
  it.each(errorCases)('%s', (code) => {
    const dir = join(FIXTURES, '_error_', code);
    const result = compile(readFixture(dir));
    const text = `${result.diagnostics.map(formatDiagnostic).join('\n')}\n`;
    const g = golden(join(dir, 'expected-diagnostics.txt'), text);
    expect(g.actual).toBe(g.expected);
    expect(result.diagnostics.map((d) => d.code)).toContain(code);
    const isWarning = result.diagnostics.find((d) => d.code === code)?.severity === 'warning';
    expect(result.ok).toBe(isWarning && result.diagnostics.every((d) => d.severity === 'warning'));
    for (const d of result.diagnostics) {
      expect(d.line).toBeGreaterThan(0);
      expect(d.column).toBeGreaterThan(0);
      expect(d.file).toBe('input.yaml');
    }
  });

  it('every compiler diagnostic code has a fixture or a test elsewhere', () => {
    // Codes that only the CLI or the kernel can produce are tested in the cli package; SCHEMA_INVALID is the
    // fallback for schema keywords the schemas do not use yet; UNSAFE_NAME from rendering is defence in depth.
    const elsewhere = new Set(['YAML_TOO_LARGE', 'YAML_NOT_UTF8', 'SOURCE_NOT_FOUND', 'NFT_REJECTED', 'SCHEMA_INVALID']);
    const missing = Object.keys(DIAGNOSTIC_CODES).filter((code) => !errorCases.includes(code) && !elsewhere.has(code));
    expect(missing).toEqual([]);
  });
});
