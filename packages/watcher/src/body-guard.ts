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
  const owned = new Set(tables.map((t) => `${t.family} ${t.name}`));
  for (const { line, head } of splitStatements(body)) {
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
