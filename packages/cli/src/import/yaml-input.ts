import { isMap, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';
import type { ImportReport, Position } from './report.js';

export type PathSegment = string | number;

/** One parsed input document whose paths map back to lines and columns. */
export interface YamlInput {
  readonly file: string;
  readonly value: unknown;
  /** Position of the value at PATH, or of its nearest existing ancestor. */
  locate(path: readonly PathSegment[]): Position;
  /** Position of the key of the property at PATH (for unknown fields). */
  locateKey(path: readonly PathSegment[]): Position;
}

/** Inputs are small (a model, a pod); this bounds hostile ones. */
const MAX_BYTES = 4 * 1024 * 1024;

/**
 * Parses FILE's TEXT (YAML 1.2, so JSON too) as exactly one document. Syntax errors, duplicate keys and
 * several documents are reported with their position; the result is then undefined.
 */
export function parseYamlInput(file: string, text: string, report: ImportReport, what: string): YamlInput | undefined {
  const start = { file, line: 1, column: 1 };
  if (Buffer.byteLength(text) > MAX_BYTES) {
    report.error('IMPORT_READ', start, `${what} is larger than ${MAX_BYTES} bytes`);
    return undefined;
  }
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const position = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: col };
  };
  if (!Array.isArray(documents)) {
    report.error('IMPORT_YAML_SYNTAX', start, `${what} is empty`);
    return undefined;
  }
  let failed = false;
  for (const document of documents) {
    for (const error of document.errors) {
      report.error('IMPORT_YAML_SYNTAX', position(error.pos[0]), `${what}: ${firstLine(error.message)}`);
      failed = true;
    }
  }
  if (failed) return undefined;
  const nonEmpty = documents.filter((d) => d.contents !== null);
  if (nonEmpty.length !== 1) {
    const at = nonEmpty[1] ? position(nonEmpty[1].range[0]) : start;
    report.error('IMPORT_YAML_SYNTAX', at, `${what} must hold exactly one YAML document, it holds ${nonEmpty.length}`);
    return undefined;
  }
  const document = nonEmpty[0]!;
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    report.error('IMPORT_YAML_SYNTAX', start, `${what}: ${firstLine((error as Error).message)}`);
    return undefined;
  }
  return {
    file,
    value,
    locate: (path) => position(nodeAt(document, path).range?.[0] ?? 0),
    locateKey: (path) => position(keyAt(document, path) ?? nodeAt(document, path).range?.[0] ?? 0),
  };
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim();
}

/** The node at PATH, or its nearest existing ancestor. */
function nodeAt(document: Document, path: readonly PathSegment[]): Node {
  let node = document.contents as Node;
  for (const segment of path) {
    const child = childOf(node, segment);
    if (!child) break;
    node = child;
  }
  return node;
}

function childOf(node: Node, segment: PathSegment): Node | undefined {
  if (isMap(node)) {
    const pair = node.items.find((p) => String((p.key as { value?: unknown } | null)?.value ?? p.key) === String(segment));
    return (pair?.value ?? pair?.key ?? undefined) as Node | undefined;
  }
  if (isSeq(node) && typeof segment === 'number') return (node.items[segment] as Node | undefined) ?? undefined;
  return undefined;
}

function keyAt(document: Document, path: readonly PathSegment[]): number | undefined {
  if (path.length === 0) return undefined;
  const parent = nodeAt(document, path.slice(0, -1));
  if (!isMap(parent)) return undefined;
  const last = String(path[path.length - 1]);
  const pair = parent.items.find((p) => String((p.key as { value?: unknown } | null)?.value ?? p.key) === last);
  return (pair?.key as Node | undefined)?.range?.[0];
}
