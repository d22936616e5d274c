import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Document, isMap, isScalar, isSeq, type Node, type Pair } from 'yaml';
import type { PathSegment } from './yaml-input.js';

/** Where the JSON Schemas are published (their `$id`s). */
export const SCHEMA_URL_BASE = 'https://nftops.dev/schemas/v1alpha1/';

/**
 * The schema base for the modelines of files written to OUTPUT_DIR: a relative path to this checkout's
 * schemas/v1alpha1 when there is one (what the examples use), else the schemas' published URL.
 */
export function schemaBaseFor(outputDir: string | undefined): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/import or dist/import -> packages/cli -> repository root
  const schemas = join(here, '..', '..', '..', '..', 'schemas', 'v1alpha1');
  if (outputDir === undefined || !existsSync(join(schemas, 'settings.schema.json'))) return SCHEMA_URL_BASE;
  // Only inside the checkout that holds the schemas: elsewhere a relative path would point into it by chance.
  const root = join(schemas, '..', '..');
  const inside = relative(root, outputDir);
  if (inside.startsWith('..') || isAbsolute(inside)) return SCHEMA_URL_BASE;
  const rel = relative(outputDir, schemas).split(sep).join('/');
  return `${rel === '' ? '.' : rel}/`;
}

/** One output document: its value plus presentation (comments, flow style, hex numbers). */
export interface OutputDocument {
  readonly kind: string;
  /** Comment lines printed above the document (after the modeline), without the leading "#". */
  readonly comments: readonly string[];
  readonly value: Record<string, unknown>;
  /** Inline comments on values, by path. */
  readonly inline?: readonly { readonly path: readonly PathSegment[]; readonly text: string }[];
  /** Comment lines above keys, by path. */
  readonly above?: readonly { readonly path: readonly PathSegment[]; readonly lines: readonly string[] }[];
  /** Paths of collections written in flow style (`[a, b]`, `{ a: 1 }`). */
  readonly flow?: readonly (readonly PathSegment[])[];
  /** Paths of numbers written in hex. */
  readonly hex?: readonly (readonly PathSegment[])[];
}

function nodeAt(document: Document, path: readonly PathSegment[]): Node | undefined {
  const node = document.getIn(path, true);
  return node && typeof node === 'object' ? (node as Node) : undefined;
}

function pairAt(document: Document, path: readonly PathSegment[]): Pair | undefined {
  const parent = path.length === 1 ? document.contents : document.getIn(path.slice(0, -1), true);
  if (!isMap(parent)) return undefined;
  return parent.items.find((p) => isScalar(p.key) && p.key.value === path[path.length - 1]) as Pair | undefined;
}

function renderDocument(doc: OutputDocument, schemaBase: string): string {
  const document = new Document(doc.value);
  for (const path of doc.flow ?? []) {
    const node = nodeAt(document, path);
    if (isMap(node) || isSeq(node)) node.flow = true;
  }
  for (const path of doc.hex ?? []) {
    const node = nodeAt(document, path);
    if (isScalar(node)) node.format = 'HEX';
  }
  for (const { path, text } of doc.inline ?? []) {
    const node = nodeAt(document, path);
    if (node) node.comment = ` ${text}`;
  }
  for (const { path, lines } of doc.above ?? []) {
    const pair = pairAt(document, path);
    if (pair && isScalar(pair.key)) pair.key.commentBefore = lines.map((l) => ` ${l}`).join('\n');
  }
  const head = [`# yaml-language-server: $schema=${schemaBase}${doc.kind.toLowerCase()}.schema.json`, ...doc.comments.map((c) => (c === '' ? '#' : `# ${c}`))];
  let body = document.toString({ lineWidth: 0, flowCollectionPadding: true });
  if (!body.endsWith('\n')) body += '\n';
  // Flow maps keep their padding (`{ port: 80 }`), flow lists lose it (`[a, b]`), as in the examples.
  body = body
    .split('\n')
    .map((line) => (line.trimStart().startsWith('#') ? line : line.replace(/\[ (?=\S)/g, '[').replace(/(?<=\S) \]/g, ']')))
    .join('\n');
  return `${head.join('\n')}\n${body}`;
}

/** A multi-document YAML file: each document with its modeline and comments, separated by `---`. */
export function renderYamlFile(documents: readonly OutputDocument[], schemaBase: string): string {
  return documents.map((d) => renderDocument(d, schemaBase)).join('---\n');
}
