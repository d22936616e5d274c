#!/usr/bin/env node
// Generates docs/reference.md from the JSON Schemas in schemas/<version>/*.schema.json: one section per kind
// and version, one table row per field (path, type, required, default, allowed values, description).
// Deterministic: versions and files are sorted, properties keep their order in the schema, no timestamps.
//
//   node tools/gen-reference.mjs           write docs/reference.md (only if it changed)
//   node tools/gen-reference.mjs --check   exit 1 when docs/reference.md is stale
//   node tools/gen-reference.mjs --stdout  print it
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const REFERENCE_PATH = join(ROOT, 'docs/reference.md');

/** Reads schemas/<version>/*.schema.json, sorted by version, then kind. */
export function loadSchemas(schemaDir = join(ROOT, 'schemas')) {
  const out = [];
  for (const version of readdirSync(schemaDir).sort()) {
    const dir = join(schemaDir, version);
    let files;
    try {
      files = readdirSync(dir).filter((f) => f.endsWith('.schema.json')).sort();
    } catch {
      continue; // not a directory
    }
    for (const file of files) {
      const schema = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      out.push({ version, file: `schemas/${version}/${file}`, schema });
    }
  }
  return out.sort((a, b) => cmp(a.version, b.version) || cmp(kindOf(a.schema), kindOf(b.schema)));
}

function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function kindOf(schema) {
  return schema.properties?.kind?.const ?? schema.title ?? '';
}

function apiVersionOf(schema) {
  return schema.properties?.apiVersion?.const ?? '';
}

/** Follows local "$ref": "#/$defs/NAME" references, merging the referring node's own keywords over it. */
function resolve(node, root) {
  let current = node;
  const seen = new Set();
  while (current && typeof current.$ref === 'string') {
    const ref = current.$ref;
    if (seen.has(ref)) throw new Error(`circular $ref ${ref}`);
    seen.add(ref);
    if (!ref.startsWith('#/')) throw new Error(`only local $ref is supported, got ${ref}`);
    let target = root;
    for (const part of ref.slice(2).split('/')) target = target?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (!target) throw new Error(`unresolved $ref ${ref}`);
    const { $ref: _ignored, ...own } = current;
    current = { ...target, ...own };
  }
  return current ?? {};
}

const code = (text) => {
  const s = String(text);
  const ticks = s.includes('`') ? '``' : '`';
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : '';
  return `${ticks}${pad}${s}${pad}${ticks}`;
};
const json = (value) => code(JSON.stringify(value));

/** A short type name: string, integer, array of string, map of string, "*" or array of integer, ... */
function typeOf(node, root) {
  const n = resolve(node, root);
  if ('const' in n) return `constant ${json(n.const)}`;
  if (Array.isArray(n.anyOf) || Array.isArray(n.oneOf)) {
    return (n.anyOf ?? n.oneOf).map((alt) => typeOf(alt, root)).join(' or ');
  }
  if (Array.isArray(n.enum)) {
    const kinds = [...new Set(n.enum.map((v) => (v === null ? 'null' : Number.isInteger(v) ? 'integer' : typeof v)))];
    return kinds.join(' or ');
  }
  const type = Array.isArray(n.type) ? n.type.join(' or ') : n.type;
  if (type === 'array') {
    if (!n.items) return 'array';
    const item = typeOf(n.items, root);
    return `array of ${item.includes(' or ') ? `(${item})` : item}`;
  }
  if (type === 'object' && !n.properties && n.additionalProperties && typeof n.additionalProperties === 'object') {
    return `map of ${typeOf(n.additionalProperties, root)}`;
  }
  return type ?? 'any';
}

function range(min, max, unit) {
  if (min === undefined && max === undefined) return undefined;
  if (min !== undefined && max !== undefined) return min === max ? `exactly ${min}${unit}` : `${min}–${max}${unit}`;
  return min !== undefined ? `≥ ${min}${unit}` : `≤ ${max}${unit}`;
}

/** The constraints of one schema node, as short phrases. */
function constraints(node, root, depth = 0) {
  const deeper = depth < 3;
  const n = resolve(node, root);
  const out = [];
  if (Array.isArray(n.enum)) out.push(`one of ${n.enum.map((v) => json(v)).join(', ')}`);
  if (n.pattern !== undefined) out.push(`pattern ${code(n.pattern)}`);
  const numeric = range(n.minimum, n.maximum, '');
  if (numeric) out.push(numeric);
  if (n.exclusiveMinimum !== undefined) out.push(`> ${n.exclusiveMinimum}`);
  if (n.exclusiveMaximum !== undefined) out.push(`< ${n.exclusiveMaximum}`);
  const length = range(n.minLength, n.maxLength, ' characters');
  if (length) out.push(length);
  const items = range(n.minItems, n.maxItems, ' items');
  if (items) out.push(items);
  const props = range(n.minProperties, n.maxProperties, n.maxProperties === 1 && n.minProperties === undefined ? ' key' : ' keys');
  if (props) out.push(props);
  if (n.propertyNames?.pattern !== undefined) out.push(`keys: pattern ${code(n.propertyNames.pattern)}`);
  if (deeper) {
    const alternatives = n.anyOf ?? n.oneOf;
    if (Array.isArray(alternatives)) {
      for (const alt of alternatives) {
        const inner = constraints(alt, root, depth + 1);
        if (inner.length > 0) out.push(`${typeOf(alt, root)}: ${inner.join(', ')}`.replace(/;/g, ','));
      }
    }
    if (n.type === 'array' && n.items) {
      const item = resolve(n.items, root);
      if (!isObjectWithProperties(item)) {
        const inner = constraints(item, root, depth + 1);
        if (inner.length > 0) out.push(`each item: ${inner.join(', ')}`);
      }
    }
    if (n.type === 'object' && !n.properties && n.additionalProperties && typeof n.additionalProperties === 'object') {
      const inner = constraints(n.additionalProperties, root, depth + 1);
      if (inner.length > 0) out.push(`values: ${inner.join(', ')}`);
    }
  }
  if (n.additionalProperties === false && n.properties) out.push('no other keys');
  return out;
}

function isObjectWithProperties(n) {
  return n && typeof n === 'object' && n.properties && typeof n.properties === 'object';
}

/** Shown for the envelope fields when their schema has no description of its own. */
const ENVELOPE = {
  apiVersion: 'API group and version of this object.',
  kind: 'The kind of object.',
  metadata: 'Name, labels and annotations.',
  spec: 'The desired state.',
};

function descriptionOf(node, root, path) {
  const n = resolve(node, root);
  const parts = [];
  if (n.description) parts.push(n.description);
  else if (ENVELOPE[path]) parts.push(ENVELOPE[path]);
  if (n.type === 'array' && n.items) {
    const item = resolve(n.items, root);
    if (item.description && !isObjectWithProperties(item)) parts.push(`Each item: ${item.description}`);
  }
  if (!n.description && Array.isArray(n.anyOf ?? n.oneOf)) {
    const inner = (n.anyOf ?? n.oneOf).map((alt) => resolve(alt, root).description).filter(Boolean);
    parts.push(...new Set(inner));
  }
  return parts.join(' ');
}

/** One row per field, depth first, in the schema's own property order. */
function collectRows(node, root, path, required, rows) {
  const n = resolve(node, root);
  if (path !== '') {
    rows.push({
      path,
      type: typeOf(n, root),
      required,
      default: 'default' in n ? json(n.default) : '',
      allowed: constraints(n, root).join('; '),
      description: descriptionOf(n, root, path),
    });
  }
  if (isObjectWithProperties(n)) {
    const req = new Set(n.required ?? []);
    for (const [key, child] of Object.entries(n.properties)) {
      collectRows(child, root, path === '' ? key : `${path}.${key}`, req.has(key), rows);
    }
  }
  if (n.type === 'array' && n.items) {
    const item = resolve(n.items, root);
    if (isObjectWithProperties(item)) {
      const req = new Set(item.required ?? []);
      for (const [key, child] of Object.entries(item.properties)) {
        collectRows(child, root, `${path}[].${key}`, req.has(key), rows);
      }
    }
  }
  return rows;
}

/** All field paths of a schema, as they appear in the reference (exported for tests). */
export function fieldPaths(schema) {
  return collectRows(schema, schema, '', false, []).map((r) => r.path);
}

// Markdown specials in prose cells are escaped, so "*" or [] in a description stay literal.
// An underscore inside a word (ISTIO_META_DNS_CAPTURE) cannot start emphasis, so only the others are escaped.
const cell = (text) =>
  String(text)
    .replace(/[\\|*<>[\]`]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g, (c) => `\\${c}`)
    .replace(/\r?\n/g, ' ');
// Backslashes inside code spans are literal in Markdown; only the pipe needs escaping in a table cell.
const codeCell = (text) => String(text).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

function anchor(text) {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .trim()
    .replace(/ /g, '-');
}

/** The whole reference document. */
export function renderReference(schemaDir = join(ROOT, 'schemas')) {
  const schemas = loadSchemas(schemaDir);
  const lines = [
    '<!-- Generated by tools/gen-reference.mjs from schemas/. Do not edit: change the JSON Schemas and run `node tools/gen-reference.mjs`. -->',
    '',
    '# nftops object reference',
    '',
    'Every kind and field the compiler accepts, generated from the JSON Schemas (draft 2020-12) that the',
    'compiler validates with. Field paths use `.` for nested objects and `[]` for list items. "Allowed" lists',
    'what the schema enforces; the compiler checks more (addresses, CIDR host bits, overlapping marks, names',
    'nft would not parse, ...): see "What the compiler checks beyond the schema" in the README and',
    '`DIAGNOSTIC_CODES` in `packages/compiler/src/diagnostics.ts`.',
    '',
    'Every document has `apiVersion`, `kind`, `metadata` and `spec`. Unknown keys are errors everywhere. A file',
    'may hold several documents separated by `---`.',
    '',
    '## Contents',
    '',
  ];
  for (const { schema } of schemas) {
    const title = `${kindOf(schema)} (${apiVersionOf(schema)})`;
    lines.push(`- [${title}](#${anchor(title)})`);
  }
  for (const { file, schema } of schemas) {
    const kind = kindOf(schema);
    const title = `${kind} (${apiVersionOf(schema)})`;
    lines.push('', `## ${title}`, '');
    if (schema.description) lines.push(schema.description, '');
    lines.push(`Schema: [\`${file}\`](../${file}). Editors: \`# yaml-language-server: $schema=<path to ${file}>\`.`, '');
    lines.push('| Field | Type | Required | Default | Allowed | Description |', '|---|---|---|---|---|---|');
    for (const row of collectRows(schema, schema, '', false, [])) {
      lines.push(
        `| \`${codeCell(row.path)}\` | ${codeCell(row.type)} | ${row.required ? 'yes' : ''} | ${codeCell(row.default)} | ${codeCell(row.allowed)} | ${cell(row.description)} |`,
      );
    }
  }
  lines.push('');
  return lines.join('\n');
}

function main(argv) {
  const text = renderReference();
  if (argv.includes('--stdout')) {
    process.stdout.write(text);
    return 0;
  }
  const current = existsSync(REFERENCE_PATH) ? readFileSync(REFERENCE_PATH, 'utf8') : undefined;
  if (argv.includes('--check')) {
    if (current === text) return 0;
    process.stderr.write(`${relative(process.cwd(), REFERENCE_PATH) || REFERENCE_PATH} is stale: run node tools/gen-reference.mjs\n`);
    return 1;
  }
  if (current !== text) {
    writeFileSync(REFERENCE_PATH, text);
    process.stderr.write(`wrote ${relative(process.cwd(), REFERENCE_PATH)}\n`);
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));
