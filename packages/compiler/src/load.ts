import jsYaml from 'js-yaml';
import { Composer, isMap, isNode, isPair, isScalar, isSeq, Lexer, LineCounter, Parser, type CST, type Document, type Node } from 'yaml';
import type { SourceFile } from './api.js';
import type { DiagnosticBag, Position } from './diagnostics.js';

/** Limits that keep hostile input bounded in time and memory. */
export const LOAD_LIMITS = {
  maxFileBytes: 4 * 1024 * 1024,
  maxAliasCount: 100,
  maxDepth: 64,
} as const;

export type PathSegment = string | number;

/** Maps a path inside one document back to a line and column. */
export interface Locator {
  /** Position of the value at PATH, or of its nearest existing ancestor. */
  locate(path: readonly PathSegment[]): Position;
  /** Position of the key of the property at PATH (for unknown-field errors). */
  locateKey(path: readonly PathSegment[]): Position;
}

/** One YAML document with the means to map a path inside it back to a line and column. */
export interface LoadedDocument {
  readonly file: string;
  /** 0-based index of the document in its file. */
  readonly index: number;
  readonly value: unknown;
  /** Holds the file's precise parse (made on first use), never the value: the model keeps it per object. */
  readonly locator: Locator;
}

/** True when VALUE nests deeper than LIMIT levels (a scalar is level 0, a mapping or list of scalars level 1). */
function nestsDeeperThan(value: unknown, limit: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (limit === 0) return true;
  // Recursion stops at LIMIT levels, so the stack stays shallow whatever the input.
  for (const child of Array.isArray(value) ? value : Object.values(value)) if (nestsDeeperThan(child, limit - 1)) return true;
  return false;
}


/** An alias (`*name`) anywhere in the text sends the file down the precise path, which bounds expansion. */
const ALIAS = /(^|[\s[{,:-])\*[^\s,\]}]/m;

const LONE_CR = /\r(?!\n)/;

/**
 * Plain scalars that js-yaml's core schema reads otherwise than YAML 1.2's core schema (0b101, +0x50, -0o7 are
 * numbers to js-yaml and strings to yaml; +.5 the other way round): such a file takes the precise path, so a
 * value never depends on which parser read it.
 */
const AMBIGUOUS_SCALAR = /(?:^|[\s[{,:])(?:[-+]?0b[01]|[-+]0[ox][0-9a-fA-F]|[-+]\.[0-9])/m;

/** Documents js-yaml reads at a time: small parts let each part's YAML tree die young, before the next is read. */
const PART_DOCUMENTS = 32;

/** A line that only a document marker or directive can start with (YAML forbids both inside any scalar). */
const DOCUMENT_END_OR_DIRECTIVE = /^(?:\.\.\.(?:[ \t\r\n]|$)|%)/m;

/**
 * TEXT cut before `---` lines into parts of about PER_PART documents each. YAML forbids such a line inside
 * any scalar, so it always starts a document and the parts hold the same documents as the whole; a text with
 * directives or `...` ends (which tie documents together) stays whole. Parsing the parts one after another
 * gives the values of the whole, document for document (tests/load-parts.test.ts checks this).
 */
export function documentParts(text: string, perPart = PART_DOCUMENTS): string[] {
  if (DOCUMENT_END_OR_DIRECTIVE.test(text)) return [text];
  const parts: string[] = [];
  let partStart = 0;
  let documents = 0;
  let lineStart = 0;
  while (lineStart < text.length) {
    if (text.startsWith('---', lineStart)) {
      const next = text.charCodeAt(lineStart + 3);
      // After `---`: end of text, space, tab, \r or \n.
      if (Number.isNaN(next) || next === 32 || next === 9 || next === 13 || next === 10) {
        if (documents >= perPart) {
          parts.push(text.slice(partStart, lineStart));
          partStart = lineStart;
          documents = 0;
        }
        documents++;
      }
    }
    const newline = text.indexOf('\n', lineStart);
    if (newline < 0) break;
    lineStart = newline + 1;
  }
  parts.push(text.slice(partStart));
  return parts;
}

/**
 * Parses a file into its documents, a few at a time (see documentParts), so the caller can build the model
 * from each part before the next one is read. The common case (no aliases, valid YAML) takes a fast parser for
 * the values and keeps the precise parser, which knows the position of every node, for when a diagnostic
 * needs a position; anything unusual (aliases, syntax errors, duplicate keys) goes to the precise parser,
 * whose diagnostics are the ones users see: for the whole file, or, when the fast parser stops at a later
 * part, for the documents from that part on.
 */
export function* loadFileInParts(source: SourceFile, bag: DiagnosticBag): Generator<LoadedDocument[], void, undefined> {
  const start = { file: source.path, line: 1, column: 1 };
  if (Buffer.byteLength(source.text, 'utf8') > LOAD_LIMITS.maxFileBytes) {
    bag.add('YAML_TOO_LARGE', start, `the file is larger than ${LOAD_LIMITS.maxFileBytes} bytes`, {
      hint: 'split it into several files',
    });
    return;
  }
  // js-yaml ends a line at a lone \r and yaml does not, so the two paths would read different documents; a
  // terminal also hides what a \r is followed by. Lines end with \n or \r\n.
  const cr = LONE_CR.exec(source.text);
  if (cr) {
    const before = source.text.slice(0, cr.index);
    const line = before.split('\n').length;
    bag.add('YAML_SYNTAX', { file: source.path, line, column: cr.index - before.lastIndexOf('\n') }, 'a carriage return (\\r) without a line feed', {
      hint: 'end lines with \\n or \\r\\n',
    });
    return;
  }
  const precise = lazyPreciseParse(source);
  let firstDocument = 0;
  if (!ALIAS.test(source.text) && !AMBIGUOUS_SCALAR.test(source.text)) {
    let complete = true;
    for (const part of documentParts(source.text)) {
      let values: unknown[];
      try {
        values = jsYaml.loadAll(part, undefined, { schema: jsYaml.CORE_SCHEMA, json: false });
      } catch {
        complete = false;
        break;
      }
      const result: LoadedDocument[] = [];
      values.forEach((value, offset) => {
        const index = firstDocument + offset;
        if (value === null || value === undefined) return;
        if (nestsDeeperThan(value, LOAD_LIMITS.maxDepth)) {
          bag.add('YAML_TOO_DEEP', precise.documentStart(index), `the document nests deeper than ${LOAD_LIMITS.maxDepth} levels`);
          return;
        }
        result.push({ file: source.path, index, value, locator: new DocumentLocator(precise, index) });
      });
      firstDocument += values.length;
      yield result;
    }
    if (complete) return;
  }
  yield loadPrecisely(source, bag, precise, firstDocument);
}

interface PreciseParse {
  readonly document: (index: number) => Document.Parsed | undefined;
  readonly documentStart: (index: number) => Position;
  readonly position: (offset: number) => Position;
  readonly all: () => Document.Parsed[];
  /** Offset at which the syntax tree got deeper than SYNTAX_DEPTH_LIMIT (then all() is empty). */
  readonly tooDeepAt: () => number | undefined;
}

/**
 * How deep the precise parser's syntax tree may get before composing stops. Its composer recurses once per
 * level, and near the end of the stack V8 can abort the whole process (a `[` repeated 100000 times, compiled
 * twice, did). The syntax tree itself is built without recursion, so its depth is checked first; documents
 * between maxDepth and this bound still get the exact YAML_TOO_DEEP check after conversion.
 */
const SYNTAX_DEPTH_LIMIT = LOAD_LIMITS.maxDepth * 4;

class NestingTooDeep extends Error {
  constructor(readonly offset: number) {
    super('nesting too deep');
  }
}

/** `Parser.parse`, with the depth of the syntax tree checked after every token. */
function* boundedTokens(text: string, lineCounter: LineCounter): Generator<CST.Token> {
  const parser = new Parser(lineCounter.addNewLine);
  lineCounter.addNewLine(0);
  for (const lexeme of new Lexer().lex(text)) {
    yield* parser.next(lexeme);
    if (parser.stack.length > SYNTAX_DEPTH_LIMIT) throw new NestingTooDeep(parser.offset);
  }
  yield* parser.end();
}

function lazyPreciseParse(source: SourceFile): PreciseParse {
  const lineCounter = new LineCounter();
  let docs: Document.Parsed[] | undefined;
  let tooDeepAt: number | undefined;
  const all = () => {
    if (!docs) {
      // Duplicate keys are found by duplicateKeys(): yaml's own check compares every key with every earlier one.
      // The core schema even under a `%YAML 1.1` directive (where `n:` is false and `<<` merges), as js-yaml reads it;
      // no process warnings (yaml writes one to stderr for a mapping used as a key).
      try {
        docs = Array.from(new Composer({ uniqueKeys: false, schema: 'core', logLevel: 'error' }).compose(boundedTokens(source.text, lineCounter)));
      } catch (error) {
        if (!(error instanceof NestingTooDeep)) throw error;
        tooDeepAt = error.offset;
        docs = [];
      }
    }
    return docs;
  };
  const position = (offset: number): Position => {
    all();
    const { line, col } = lineCounter.linePos(offset);
    return { file: source.path, line, column: col };
  };
  return {
    all,
    tooDeepAt: () => (all(), tooDeepAt),
    position,
    document: (index) => all()[index],
    documentStart: (index) => position(all()[index]?.contents?.range?.[0] ?? 0),
  };
}

/** The documents of a file from FIRST_DOCUMENT on (the ones before it were read by the fast parser), by the precise parser. */
function loadPrecisely(source: SourceFile, bag: DiagnosticBag, precise: PreciseParse, firstDocument: number): LoadedDocument[] {
  const { position } = precise;
  const result: LoadedDocument[] = [];
  const deep = precise.tooDeepAt();
  if (deep !== undefined) {
    bag.add('YAML_TOO_DEEP', position(deep), `the file nests deeper than ${LOAD_LIMITS.maxDepth} levels`);
    return result;
  }
  precise.all().forEach((doc, index) => {
    if (index < firstDocument) return;
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        const code = error.code === 'DUPLICATE_KEY' ? 'YAML_DUPLICATE_KEY' : 'YAML_SYNTAX';
        const message = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        bag.add(code, position(error.pos[0]), message, {
          hint: code === 'YAML_DUPLICATE_KEY' ? 'remove one of the two keys' : 'check indentation and quoting',
        });
      }
      return;
    }
    if (doc.contents === null) return; // an empty document (`---` alone) holds nothing
    const duplicates = duplicateKeys(doc);
    if (duplicates.length > 0) {
      for (const offset of duplicates) {
        bag.add('YAML_DUPLICATE_KEY', position(offset), 'Map keys must be unique', { hint: 'remove one of the two keys' });
      }
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: LOAD_LIMITS.maxAliasCount });
    } catch (error) {
      bag.add('YAML_ALIAS_LIMIT', position(doc.contents.range?.[0] ?? 0), (error as Error).message, {
        hint: `aliases may expand to at most ${LOAD_LIMITS.maxAliasCount} nodes`,
      });
      return;
    }
    // As on the fast path, where js-yaml cannot tell `--- null` from an empty document between two `---`.
    if (value === null || value === undefined) return;
    if (nestsDeeperThan(value, LOAD_LIMITS.maxDepth)) {
      bag.add('YAML_TOO_DEEP', position(doc.contents.range?.[0] ?? 0), `the document nests deeper than ${LOAD_LIMITS.maxDepth} levels`);
      return;
    }
    result.push({ file: source.path, index, value, locator: new DocumentLocator(precise, index) });
  });
  return result;
}

/**
 * Offsets of the keys that repeat an earlier key of their mapping (yaml's rule: scalar keys with equal values;
 * other keys only when they are the same node), in time linear in the size of the document.
 */
function duplicateKeys(doc: Document.Parsed): number[] {
  const found: number[] = [];
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const key = pair.key;
        const identity = isScalar(key) ? key.value : key;
        if (!seen.has(identity)) seen.add(identity);
        else {
          const at = isNode(key) ? key : isNode(pair.value) ? pair.value : undefined;
          found.push(at?.range?.[0] ?? 0);
        }
        stack.push(pair.key, pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
  return found;
}

/**
 * A class rather than closures: the model keeps one locator per object (60 000 at scale), and closures made
 * in the loops above would also keep those loops' scopes, with every document of the file, alive.
 */
class DocumentLocator implements Locator {
  constructor(
    private readonly precise: PreciseParse,
    private readonly index: number,
  ) {}

  private nodeAt(path: readonly PathSegment[]): Node | undefined {
    const doc = this.precise.document(this.index);
    if (!doc) return undefined;
    for (let length = path.length; length >= 0; length--) {
      const node = length === 0 ? doc.contents : doc.getIn(path.slice(0, length), true);
      if (isNode(node) && node.range) return node;
    }
    return undefined;
  }

  locate(path: readonly PathSegment[]): Position {
    return this.precise.position(this.nodeAt(path)?.range?.[0] ?? 0);
  }

  locateKey(path: readonly PathSegment[]): Position {
    const { position } = this.precise;
    const parent = this.nodeAt(path.slice(0, -1));
    const key = path[path.length - 1];
    if (parent && isMap(parent)) {
      for (const item of parent.items) {
        if (isPair(item) && isScalar(item.key) && item.key.value === key && item.key.range) {
          return position(item.key.range[0]);
        }
      }
    }
    if (parent && isSeq(parent) && typeof key === 'number') {
      const item = parent.items[key];
      if (isNode(item) && item.range) return position(item.range[0]);
    }
    return position(parent?.range?.[0] ?? 0);
  }
}
