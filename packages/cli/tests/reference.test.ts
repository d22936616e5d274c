// docs/reference.md is generated from the JSON Schemas by tools/gen-reference.mjs. Like the committed .nft
// artifacts, the committed reference must be what the generator renders now: a schema change without
// `node tools/gen-reference.mjs` fails here with the first differing line.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { SUPPORTED_API_VERSIONS } from '@nftops/compiler';
// @ts-expect-error -- a plain .mjs tool without type declarations
import { fieldPaths, loadSchemas, renderReference } from '../../../tools/gen-reference.mjs';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const REFERENCE = join(REPO, 'docs/reference.md');

type Schema = Record<string, any>;
const schemas = (loadSchemas as (dir?: string) => { version: string; file: string; schema: Schema }[])();
const render = renderReference as (dir?: string) => string;

/** The lines of one "## Kind (apiVersion)" section. */
function section(doc: string, title: string): string {
  const start = doc.indexOf(`\n## ${title}\n`);
  if (start < 0) return '';
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

/** Every property path of a schema, walked independently of the generator. */
function walk(node: Schema, root: Schema, path: string, out: string[]): string[] {
  let n = node;
  while (n && typeof n.$ref === 'string') {
    const target = n.$ref.slice(2).split('/').reduce((o: Schema, k: string) => o[k], root);
    n = { ...target, ...Object.fromEntries(Object.entries(n).filter(([k]) => k !== '$ref')) };
  }
  for (const [key, child] of Object.entries<Schema>(n.properties ?? {})) {
    const p = path === '' ? key : `${path}.${key}`;
    out.push(p);
    walk(child, root, p, out);
  }
  if (n.items) {
    let item = n.items as Schema;
    if (typeof item.$ref === 'string') item = item.$ref.slice(2).split('/').reduce((o: Schema, k: string) => o[k], root);
    if (item.properties) walk(item, root, `${path}[]`, out);
  }
  return out;
}

let temp: string | undefined;
afterEach(() => {
  if (temp) rmSync(temp, { recursive: true, force: true });
  temp = undefined;
});

describe('docs/reference.md', () => {
  it('is what tools/gen-reference.mjs renders from schemas/ now (run `node tools/gen-reference.mjs` if not)', () => {
    const expected = render();
    const committed = readFileSync(REFERENCE, 'utf8');
    if (committed !== expected) {
      const a = committed.split('\n');
      const b = expected.split('\n');
      const line = a.findIndex((l, i) => l !== b[i]);
      expect.fail(
        `docs/reference.md is stale: first difference at line ${line + 1}\n  committed: ${a[line] ?? '<end of file>'}\n  generated: ${b[line] ?? '<end of file>'}\nrun: node tools/gen-reference.mjs`,
      );
    }
  });

  it('has one section per kind and version, for every API version the compiler accepts', () => {
    const doc = readFileSync(REFERENCE, 'utf8');
    const versions = new Set(schemas.map((s) => s.schema.properties.apiVersion.const as string));
    for (const v of SUPPORTED_API_VERSIONS) expect(versions, `no schemas for ${v}`).toContain(v);
    const kinds = schemas.map((s) => s.schema.properties.kind.const as string);
    for (const kind of ['AmbientNode', 'Artifact', 'LoadBalancer', 'MeshRedirection', 'NetworkPolicy', 'Settings']) {
      expect(kinds).toContain(kind);
    }
    for (const { schema } of schemas) {
      const title = `${schema.properties.kind.const} (${schema.properties.apiVersion.const})`;
      expect(doc, `section ${title}`).toContain(`\n## ${title}\n`);
      expect(doc, `contents entry for ${title}`).toContain(`- [${title}](#`);
    }
  });

  it('lists every field of every schema, with its type, default and constraints', () => {
    const doc = readFileSync(REFERENCE, 'utf8');
    for (const { schema } of schemas) {
      const title = `${schema.properties.kind.const} (${schema.properties.apiVersion.const})`;
      const text = section(doc, title);
      const paths = walk(schema, schema, '', []);
      expect(paths.length).toBeGreaterThan(5);
      expect((fieldPaths as (s: Schema) => string[])(schema)).toEqual(paths);
      for (const path of paths) expect(text, `${title}: row for ${path}`).toContain(`| \`${path}\` |`);
    }
    const lb = section(doc, 'LoadBalancer (nftops.dev/v1alpha1)');
    expect(lb).toMatch(/\| `spec\.ports\[\]\.protocol` \| string \|  \| `"TCP"` \| one of `"TCP"`, `"UDP"`, `"SCTP"` \|/);
    expect(lb).toMatch(/\| `spec\.ports\[\]\.port` \| integer \| yes \|  \| 1–65535 \| The port clients connect to\. \|/);
    expect(lb).toMatch(/\| `spec\.address` \| string \| yes \|  \| pattern `\^\[0-9A-Fa-f\.:\]\+\$`; 2–45 characters \|/);
    const artifact = section(doc, 'Artifact (nftops.dev/v1alpha1)');
    expect(artifact).toContain('| `spec.sources` | array of string |  | `["."]` | 1–256 items; each item: pattern');
    const settings = section(doc, 'Settings (nftops.dev/v1alpha1)');
    expect(settings).toContain('| `spec.mark` | object |  | `{"value":1,"mask":1}` |');
    // Pipes of regular expressions are escaped so they do not split the table.
    for (const line of doc.split('\n').filter((l) => l.startsWith('| `'))) {
      expect(line.replace(/\\\|/g, '').split('|').length, line).toBe(8);
    }
  });

  it('is deterministic and follows the schemas', () => {
    expect(render()).toBe(render());
    temp = mkdtempSync(join(tmpdir(), 'nftops-ref-'));
    cpSync(join(REPO, 'schemas'), temp, { recursive: true });
    const file = join(temp, 'v1alpha1', readdirSync(join(temp, 'v1alpha1')).find((f) => f.startsWith('loadbalancer'))!);
    const schema = JSON.parse(readFileSync(file, 'utf8'));
    schema.properties.spec.properties.scheduler.description = 'A changed description.';
    writeFileSync(file, JSON.stringify(schema));
    const changed = render(temp);
    expect(changed).not.toBe(render());
    expect(changed).toContain('| A changed description. |');
  });

  it('the generator has a --check mode for CI', () => {
    const run = spawnSync(process.execPath, [join(REPO, 'tools/gen-reference.mjs'), '--check'], { cwd: REPO, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});
