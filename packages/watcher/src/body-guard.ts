import type { TableRef } from '@nftops/artifact';

/**
 * A lexical guard run on every artifact body before nft sees it. It enforces the watcher's promise that only
 * tables named in an artifact's header are ever touched:
 *
 *  - every top-level command must name a table, and that table must be in the header;
 *  - `flush ruleset` (or any `ruleset` command), `include`, and commands the watcher does not know are refused.
 *
 * It is not an nft parser: statements inside a `table ... { }` block are not inspected (they can only address
 * that table), and `define` lines are allowed. The body stays what nft validates.
 */
export type GuardResult = { readonly ok: true } | { readonly ok: false; readonly message: string };

const FAMILIES = new Set(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);
const VERBS = new Set(['add', 'create', 'insert', 'replace', 'delete', 'destroy', 'flush', 'reset', 'list']);
const OBJECTS = new Set(['table', 'chain', 'rule', 'set', 'map', 'element', 'counter', 'quota', 'limit', 'flowtable', 'secmark', 'synproxy']);
const CT_OBJECTS = new Set(['helper', 'timeout', 'expectation']);

const SKIP_BLOCK = /[^{}"#\n\\]+/y;
const SKIP_STRING = /[^"\n]+/y;
const SKIP_COMMENT = /[^\n]+/y;

export interface Statement {
  /** 1-based line of the statement's first character. */
  readonly line: number;
  /** The statement up to its first `{` (or all of it), trimmed. */
  readonly head: string;
  /** Offsets of the whole statement in the text (end exclusive, before the terminating newline or `;`). */
  readonly start: number;
  readonly end: number;
  /** Offsets of the content between the statement's outer braces, when it has a block. */
  readonly block?: { readonly start: number; readonly end: number };
}

/**
 * Splits TEXT into its statements at brace depth 0 (comments and quoted strings respected). A statement ends
 * at a newline or `;` at depth 0; a block `{ ... }` may span lines.
 */
export function splitStatements(text: string): Statement[] {
  const statements: Statement[] = [];
  let depth = 0;
  let head = '';
  let headDone = false;
  let line = 1;
  let startLine = 1;
  let start = -1;
  let blockStart = -1;
  let block: { start: number; end: number } | undefined;
  let inString = false;
  let inComment = false;
  const finish = (at: number) => {
    if (head.trim() !== '' || block) statements.push({ line: startLine, head: head.trim(), start: start < 0 ? at : start, end: at, ...(block ? { block } : {}) });
    head = '';
    headDone = false;
    start = -1;
    block = undefined;
  };
  const mark = (i: number) => {
    if (start < 0) {
      start = i;
      startLine = line;
    }
  };
  for (let i = 0; i < text.length; i++) {
    // Fast path: skip runs of characters that cannot change the state (inside blocks, strings and comments,
    // which is nearly all of a large body), with one native regex step instead of a loop turn per character.
    const skip = inComment ? SKIP_COMMENT : inString ? (depth > 0 || headDone ? SKIP_STRING : undefined) : depth > 0 ? SKIP_BLOCK : undefined;
    if (skip) {
      skip.lastIndex = i;
      if (skip.test(text)) {
        i = skip.lastIndex;
        if (i >= text.length) break;
      }
    }
    const c = text[i]!;
    if (inComment) {
      if (c === '\n') {
        inComment = false;
        line++;
        if (depth === 0) finish(i);
      }
      continue;
    }
    if (c === '\n') line++;
    if (inString) {
      if (c === '"') inString = false;
      if (depth === 0 && !headDone) head += c;
      continue;
    }
    if (c === '#') {
      inComment = true;
      continue;
    }
    if (c === '"') {
      mark(i);
      inString = true;
      if (depth === 0 && !headDone) head += c;
      continue;
    }
    if (c === '\\' && text[i + 1] === '\n') {
      i++;
      line++;
      if (depth === 0 && !headDone) head += ' ';
      continue;
    }
    if (c === '{') {
      mark(i);
      if (depth === 0) {
        headDone = true;
        blockStart = i + 1;
      }
      depth++;
      continue;
    }
    if (c === '}') {
      depth = Math.max(0, depth - 1);
      if (depth === 0 && blockStart >= 0) {
        block = { start: blockStart, end: i };
        blockStart = -1;
      }
      continue;
    }
    if (depth === 0 && (c === '\n' || c === ';')) {
      finish(i);
      continue;
    }
    if (depth === 0 && !headDone) {
      if (!/\s/.test(c)) mark(i);
      head += c;
    }
  }
  finish(text.length);
  return statements;
}

export function guardBody(body: string, tables: readonly TableRef[]): GuardResult {
  return guardHeads(splitStatements(body), tables);
}

/**
 * `guardBody` on a body's UTF-8 BYTES, without decoding it: the same statements, heads and lines as
 * `splitStatements` gives for the decoded text (a property test checks this), found by one pass over the bytes.
 * The characters that matter lexically are ASCII, and bytes of multi-byte characters are never ASCII, so only
 * the heads of top-level statements (a few bytes per table) are decoded.
 */
export function guardBodyBytes(body: Uint8Array, tables: readonly TableRef[]): GuardResult {
  return guardHeads(splitHeadsBytes(body), tables);
}

function guardHeads(statements: Iterable<Pick<Statement, 'line' | 'head'>>, tables: readonly TableRef[]): GuardResult {
  const owned = new Set(tables.map((t) => `${t.family} ${t.name}`));
  for (const { line, head } of statements) {
    const tokens = head.split(/\s+/);
    let i = 0;
    const first = tokens[0]!;
    if (first === 'define' || first === 'undefine' || first === 'redefine') continue;
    const fail = (why: string): GuardResult => ({ ok: false, message: `body line ${line}: ${why} (${JSON.stringify(head.slice(0, 80))})` });
    if (first === 'include') return fail('"include" is not allowed in an artifact');
    if (VERBS.has(first)) i++;
    const object = tokens[i];
    if (object === 'ruleset') return fail('commands on the whole ruleset are never run by the watcher');
    if (object === 'ct' && CT_OBJECTS.has(tokens[i + 1] ?? '')) i += 2;
    else if (object !== undefined && OBJECTS.has(object)) i++;
    else return fail(`unsupported top-level command`);
    let family = 'ip';
    if (FAMILIES.has(tokens[i] ?? '')) family = tokens[i++]!;
    const name = tokens[i];
    if (name === undefined || !/^[A-Za-z][A-Za-z0-9_-]*$/.test(name)) return fail('the command does not name a table literally');
    if (!owned.has(`${family} ${name}`)) return fail(`table ${family} ${name} is not named in the artifact header`);
  }
  return { ok: true };
}

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const HASH = 0x23;
const BACKSLASH = 0x5c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const SEMICOLON = 0x3b;
/** Bytes that end a run inside a block (as SKIP_BLOCK): braces, quote, comment, newline, backslash. */
const BLOCK_STOP = new Uint8Array(256);
for (const c of [OPEN, CLOSE, QUOTE, HASH, NEWLINE, BACKSLASH]) BLOCK_STOP[c] = 1;

/** Length of the UTF-8 character whose first byte is LEAD. */
const utf8Length = (lead: number) => (lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4);

/**
 * The (line, head) pairs `splitStatements` gives for the UTF-8 decoding of BYTES, with the same state machine
 * stepping over bytes. Heads are collected as bytes and decoded when the statement ends; whether a non-ASCII
 * character outside strings is white space (it then does not start the statement) is decided on the decoded
 * character, as the text version does.
 */
function splitHeadsBytes(bytes: Uint8Array): { line: number; head: string }[] {
  const statements: { line: number; head: string }[] = [];
  const n = bytes.length;
  let depth = 0;
  let head: number[] = [];
  let headDone = false;
  let line = 1;
  let startLine = 1;
  let started = false;
  let hasBlock = false;
  let blockOpen = false;
  let inString = false;
  let inComment = false;
  const finish = () => {
    const text = Buffer.from(head).toString('utf8').trim();
    if (text !== '' || hasBlock) statements.push({ line: startLine, head: text });
    head = [];
    headDone = false;
    started = false;
    hasBlock = false;
  };
  const mark = () => {
    if (!started) {
      started = true;
      startLine = line;
    }
  };
  for (let i = 0; i < n; i++) {
    // Tight loops over the runs that cannot change the state (as the text version's sticky regexes): inside
    // comments up to the newline, inside strings in blocks up to the quote or newline, inside blocks (nearly
    // all of a large body) up to a stop byte.
    if (inComment) while (i < n && bytes[i] !== NEWLINE) i++;
    else if (inString) {
      if (depth > 0 || headDone) while (i < n && bytes[i] !== QUOTE && bytes[i] !== NEWLINE) i++;
    } else if (depth > 0) while (i < n && BLOCK_STOP[bytes[i]!] === 0) i++;
    if (i >= n) break;
    const c = bytes[i]!;
    if (inComment) {
      inComment = false;
      line++;
      if (depth === 0) finish();
      continue;
    }
    if (c === NEWLINE) line++;
    const collect = depth === 0 && !headDone;
    if (inString) {
      if (c === QUOTE) inString = false;
      if (collect) head.push(c);
      continue;
    }
    if (c === HASH) {
      inComment = true;
      continue;
    }
    if (c === QUOTE) {
      mark();
      inString = true;
      if (collect) head.push(c);
      continue;
    }
    if (c === BACKSLASH && bytes[i + 1] === NEWLINE) {
      i++;
      line++;
      if (collect) head.push(0x20);
      continue;
    }
    if (c === OPEN) {
      mark();
      if (depth === 0) {
        headDone = true;
        blockOpen = true;
      }
      depth++;
      continue;
    }
    if (c === CLOSE) {
      depth = Math.max(0, depth - 1);
      // A statement has a block once its outer braces close (an unclosed one at the end does not count).
      if (depth === 0 && blockOpen) {
        hasBlock = true;
        blockOpen = false;
      }
      continue;
    }
    if (depth === 0 && (c === NEWLINE || c === SEMICOLON)) {
      finish();
      continue;
    }
    if (!collect) continue;
    if (c < 0x80) {
      if (!(c === 0x20 || (c >= 0x09 && c <= 0x0d))) mark();
      head.push(c);
      continue;
    }
    const end = Math.min(n, i + utf8Length(c));
    const char = Buffer.from(bytes.buffer, bytes.byteOffset + i, end - i).toString('utf8');
    if (!/^\s+$/.test(char)) mark();
    for (; i < end; i++) head.push(bytes[i]!);
    i--;
  }
  finish();
  return statements;
}
