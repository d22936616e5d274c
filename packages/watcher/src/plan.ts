import { parseBody, planIncremental } from '@nftops/artifact';

/**
 * Incremental planning at scale. `planIncremental(previous, next)` (@nftops/artifact) parses both bodies whole;
 * for 50 000 services that is two 24 MB bodies and a few hundred thousand lines, far too slow for a one-service
 * change. `planChange` gives the same answer from much smaller input: it cuts both bodies (as bytes, never
 * decoded whole) into tables and objects with native searches and compares, drops what cannot produce an
 * operation, and hands the rest, decoded, to `planIncremental`:
 *
 *  - a chain whose text is identical in both versions is left out of both (an unchanged chain yields nothing);
 *  - a set or map whose text is identical keeps its declaration but loses its elements in both (its name and
 *    declaration still take part in the planner's checks, e.g. "does a new rule look up a typeof map");
 *  - in a set or map that changed, the element lines of the common prefix and suffix of its element block are
 *    left out of both versions (an element line present in both yields nothing), unless a line of the changed
 *    middle also occurs outside the middle (moved or duplicated elements): then that set is kept whole;
 *  - table headers and declarations, and every other object, are kept whole.
 *
 * The planner compares elements by line, sets and chains by name, and emits operations in body order; the
 * reduced bodies keep the relative order of everything left in, so the transaction is the same text the
 * planner gives for the full bodies (a property test checks this). Anything outside the rendered layout makes
 * the indexer give up, and then `planIncremental` sees the full bodies.
 */

export interface ObjectIndex {
  readonly kind: 'set' | 'map' | 'chain';
  readonly name: string;
  /** The object's bytes, from its opening line through its `\t}` line and newline (a view into the body). */
  readonly bytes: Buffer;
  /** Offsets inside `bytes` of the element lines (after `\t\telements = {\n`, before `\t\t}\n`), if any. */
  readonly elements?: { readonly start: number; readonly end: number };
}

export interface TableIndex {
  readonly family: string;
  readonly name: string;
  /** The whole table: from `table F N` through its closing `}` line (a view into the body). */
  readonly bytes: Buffer;
  /**
   * `table F N` / `delete table F N` / `table F N {` and the declaration lines, and the table's objects; cut on
   * first use (a table whose bytes did not change is never cut: 20 000 policy chains took ~100 ms), undefined when
   * the table is not in the layout the compiler renders.
   */
  readonly content: () => { readonly head: Buffer; readonly objects: readonly ObjectIndex[] } | undefined;
}

export interface BodyIndex {
  readonly tables: readonly TableIndex[];
}

const NAME = '[A-Za-z][A-Za-z0-9_.-]*';
const TABLE_ADD = new RegExp(`^table (inet|ip|ip6|arp|bridge|netdev) (${NAME})$`);
const OBJECT_OPEN = new RegExp(`^\\t(set|map|chain) (${NAME}) \\{$`);
const ELEMENTS_OPEN = '\n\t\telements = {\n';
const ELEMENTS_CLOSE = '\t\t}\n';
const NEWLINE = 0x0a;
const COMMA = 0x2c;

/** The line of BODY at AT (as latin1, without its newline) and where the next begins; undefined past END. */
function lineIn(body: Buffer, at: number, end: number): [string, number] | undefined {
  if (at >= end) return undefined;
  const lineEnd = body.indexOf(NEWLINE, at);
  return lineEnd < 0 || lineEnd >= end ? undefined : [body.toString('latin1', at, lineEnd), lineEnd + 1];
}

/**
 * Cuts BODY (UTF-8 bytes) into tables and objects; undefined when it is not in the layout the compiler renders.
 * Only the lines at table level are decoded, as latin1 (one character per byte): everything they are compared
 * with is ASCII, so a line with other bytes matches nothing, as its UTF-8 decoding would not.
 */
export function indexBody(body: Buffer): BodyIndex | undefined {
  if (body.length === 0 || body[body.length - 1] !== NEWLINE) return undefined;
  const tables: TableIndex[] = [];
  const lineAt = (at: number) => lineIn(body, at, body.length);
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === NEWLINE && tables.length > 0) {
      pos++;
      continue;
    }
    const start = pos;
    const add = lineAt(pos);
    const match = add && TABLE_ADD.exec(add[0]);
    if (!add || !match) return undefined;
    const [, family, name] = match as unknown as [string, string, string];
    const del = lineAt(add[1]);
    if (!del || del[0] !== `delete table ${family} ${name}`) return undefined;
    const open = lineAt(del[1]);
    if (!open || open[0] !== `table ${family} ${name} {`) return undefined;
    // Everything inside the table is indented, so its first line that is `}` alone closes it.
    const close = body.indexOf('\n}\n', open[1] - 1);
    if (close < 0) return undefined;
    const end = close + 3;
    const contentStart = open[1];
    let cut: ReturnType<TableIndex['content']> | null = null;
    tables.push({
      family,
      name,
      bytes: body.subarray(start, end),
      content: () => {
        if (cut === null) cut = cutTable(body, start, contentStart, end);
        return cut;
      },
    });
    pos = end;
  }
  return tables.length > 0 ? { tables } : undefined;
}

/** The head and objects of the table in BODY[start, end), whose declaration lines begin at FROM. */
function cutTable(body: Buffer, start: number, from: number, end: number): { head: Buffer; objects: ObjectIndex[] } | undefined {
  const lineAt = (at: number) => lineIn(body, at, end);
  let pos = from;
  let headEnd = pos;
  const objects: ObjectIndex[] = [];
  const seen = new Set<string>();
  for (;;) {
    const line = lineAt(pos);
    if (!line) return undefined;
    const [text, next] = line;
    if (text === '}') break;
    if (text === '') {
      if (objects.length === 0) headEnd = next;
      pos = next;
      continue;
    }
    const object = OBJECT_OPEN.exec(text);
    if (!object) {
      if (objects.length > 0 || !text.startsWith('\t') || text.startsWith('\t\t')) return undefined;
      pos = next;
      headEnd = next;
      continue;
    }
    const [, kind, objectName] = object as unknown as [string, 'set' | 'map' | 'chain', string];
    const key = `${kind === 'chain' ? 'chain' : 'set'} ${objectName}`;
    if (seen.has(key)) return undefined;
    seen.add(key);
    const close = body.indexOf('\n\t}\n', next - 1);
    if (close < 0 || close >= end) return undefined;
    const bytes = body.subarray(pos, close + 4);
    let elements: ObjectIndex['elements'];
    if (kind !== 'chain') {
      const at = bytes.indexOf(ELEMENTS_OPEN);
      if (at >= 0) {
        const first = at + ELEMENTS_OPEN.length;
        const elementsEnd = bytes.indexOf(`\n${ELEMENTS_CLOSE}`, first - 1);
        if (elementsEnd < 0) return undefined;
        elements = { start: first, end: elementsEnd + 1 };
      }
    }
    objects.push({ kind, name: objectName, bytes, ...(elements ? { elements } : {}) });
    pos = close + 4;
  }
  return { head: body.subarray(start, headEnd), objects };
}

const CHUNK = 1 << 16;

/** Whether A[aStart, aStart + length) equals B[bStart, bStart + length). */
const sameBytes = (a: Buffer, aStart: number, b: Buffer, bStart: number, length: number) =>
  a.compare(b, bStart, bStart + length, aStart, aStart + length) === 0;

/** Length of the common prefix of A and B (chunks compared natively, then a binary search in the first that differs). */
function commonPrefix(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  let lo = 0;
  while (lo + CHUNK <= n && sameBytes(a, lo, b, lo, CHUNK)) lo += CHUNK;
  let hi = Math.min(lo + CHUNK, n);
  const base = lo;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (sameBytes(a, base, b, base, mid - base)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Length of the common suffix of A and B, at most LIMIT. */
function commonSuffix(a: Buffer, b: Buffer, limit: number): number {
  const n = Math.min(a.length, b.length, limit);
  let lo = 0;
  while (lo + CHUNK <= n && sameBytes(a, a.length - lo - CHUNK, b, b.length - lo - CHUNK, CHUNK)) lo += CHUNK;
  let hi = Math.min(lo + CHUNK, n);
  const base = lo;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (sameBytes(a, a.length - mid, b, b.length - mid, mid - base)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The element lines of a block (each line ends with "\n"; a trailing comma is part of the line). */
const splitLines = (block: string): string[] => (block === '' ? [] : block.slice(0, -1).split('\n'));
const stripComma = (line: string) => line.slice(3).replace(/,$/, '');

/** Whether the element LINE (without tabs and comma) occurs in BLOCK outside the byte range [from, to). */
function occursOutside(block: Buffer, line: string, from: number, to: number): boolean {
  // One search for both forms of the line (`...,\n` and `...\n`): the block is most of a large body.
  const needle = Buffer.from(`\t\t\t${line}`);
  for (let at = block.indexOf(needle); at >= 0; at = block.indexOf(needle, at + 1)) {
    const end = at + needle.length;
    const whole = block[end] === NEWLINE || (block[end] === COMMA && block[end + 1] === NEWLINE);
    if (whole && (at === 0 || block[at - 1] === NEWLINE) && (at < from || at >= to)) return true;
  }
  return false;
}

const MAX_MIDDLE_LINES = 4096;

/**
 * The reduced texts of a set or map that changed: its declaration and only the element lines outside the
 * common prefix and suffix. Undefined when a middle line also occurs outside the middle (keep the set whole).
 * Prefix and suffix are found on the bytes and cut at line starts, so only the middle is decoded.
 */
function reduceSet(previous: ObjectIndex, next: ObjectIndex): [string, string] | undefined {
  if (!previous.elements || !next.elements) return undefined;
  const a = previous.bytes.subarray(previous.elements.start, previous.elements.end);
  const b = next.bytes.subarray(next.elements.start, next.elements.end);
  let prefix = commonPrefix(a, b);
  if (prefix > 0 && a[prefix - 1] !== NEWLINE) prefix = a.lastIndexOf(NEWLINE, prefix - 1) + 1;
  let suffix = commonSuffix(a, b, Math.min(a.length, b.length) - prefix);
  // The suffix must start at a line start in both.
  while (suffix > 0 && !((a.length - suffix === 0 || a[a.length - suffix - 1] === NEWLINE) && (b.length - suffix === 0 || b[b.length - suffix - 1] === NEWLINE))) {
    const cut = a.indexOf(NEWLINE, a.length - suffix);
    suffix = cut < 0 ? 0 : a.length - cut - 1;
  }
  const linesA = splitLines(a.toString('utf8', prefix, a.length - suffix));
  const linesB = splitLines(b.toString('utf8', prefix, b.length - suffix));
  if (linesA.length + linesB.length > MAX_MIDDLE_LINES) return undefined;
  if (!linesA.every((l) => l.startsWith('\t\t\t')) || !linesB.every((l) => l.startsWith('\t\t\t'))) return undefined;
  for (const line of [...linesA, ...linesB]) {
    const element = stripComma(line);
    if (occursOutside(a, element, prefix, a.length - suffix) || occursOutside(b, element, prefix, b.length - suffix)) return undefined;
  }
  const render = (object: ObjectIndex, lines: string[]) =>
    object.bytes.toString('utf8', 0, object.elements!.start) + lines.map((line) => `\t\t\t${stripComma(line)},\n`).join('') + object.bytes.toString('utf8', object.elements!.end);
  return [render(previous, linesA), render(next, linesB)];
}

/** The text of an unchanged set or map without its elements. */
function withoutElements(object: ObjectIndex): string {
  if (!object.elements) return object.bytes.toString('utf8');
  return object.bytes.toString('utf8', 0, object.elements.start - ELEMENTS_OPEN.length + 1) + object.bytes.toString('utf8', object.elements.end + ELEMENTS_CLOSE.length);
}

/** The reduced pair of bodies, or undefined when the bodies cannot be reduced (then plan the full bodies). */
export function reduceBodies(previous: BodyIndex, next: BodyIndex): [string, string] | undefined {
  if (previous.tables.length !== next.tables.length) return undefined;
  let outA = '';
  let outB = '';
  for (let t = 0; t < next.tables.length; t++) {
    const oldTable = previous.tables[t]!;
    const nowTable = next.tables[t]!;
    if (oldTable.family !== nowTable.family || oldTable.name !== nowTable.name) return undefined;
    // A table that did not change yields no operation: it is left out of both bodies (tables are independent).
    if (oldTable.bytes.equals(nowTable.bytes)) continue;
    const old = oldTable.content();
    const now = nowTable.content();
    if (!old || !now) return undefined;
    const key = (o: ObjectIndex) => `${o.kind === 'chain' ? 'chain' : 'set'} ${o.name}`;
    const oldByKey = new Map(old.objects.map((o) => [key(o), o] as const));
    const newKeys = new Set(now.objects.map(key));
    const partsA = new Map<ObjectIndex, string>();
    let bodyB = '';
    for (const object of now.objects) {
      const was = oldByKey.get(key(object));
      if (was && was.kind === object.kind && was.bytes.equals(object.bytes)) {
        if (object.kind === 'chain') continue;
        const stripped = withoutElements(object);
        partsA.set(was, stripped);
        bodyB += stripped;
        continue;
      }
      if (was && was.kind === object.kind && object.kind !== 'chain') {
        const reduced = reduceSet(was, object);
        if (reduced) {
          partsA.set(was, reduced[0]);
          bodyB += reduced[1];
          continue;
        }
      }
      if (was) partsA.set(was, was.bytes.toString('utf8'));
      bodyB += object.bytes.toString('utf8');
    }
    let bodyA = '';
    for (const object of old.objects) {
      const part = partsA.get(object);
      if (part !== undefined) bodyA += part;
      else if (!newKeys.has(key(object))) bodyA += object.bytes.toString('utf8');
    }
    outA += `${old.head.toString('utf8')}${bodyA}}\n`;
    outB += `${now.head.toString('utf8')}${bodyB}}\n`;
  }
  return [outA, outB];
}

/** What an incremental plan does, per object, for the check of the tables read back after it. */
export interface PlanSummary {
  /** "family table name" of sets and maps whose elements change: how many are deleted and added. */
  readonly elements: ReadonlyMap<string, { readonly deleted: number; readonly added: number }>;
  /** Chains created, or rewritten (flushed and refilled), with their number of rules afterwards. */
  readonly chains: ReadonlyMap<string, number>;
  readonly removedChains: ReadonlySet<string>;
}

export type ChangePlan =
  | { readonly ok: true; readonly transaction: string; readonly operations: number; readonly summary: PlanSummary; readonly reduced: boolean }
  | { readonly ok: false; readonly reason: string };

/** Counts what the planner's transaction does, from the two (reduced) bodies it was computed from. */
function summarise(previous: string, next: string): PlanSummary | undefined {
  const before = parseBody(previous);
  const after = parseBody(next);
  if (!before || !after) return undefined;
  const elements = new Map<string, { deleted: number; added: number }>();
  const chains = new Map<string, number>();
  const removedChains = new Set<string>();
  for (let t = 0; t < after.tables.length; t++) {
    const old = before.tables[t]!;
    const now = after.tables[t]!;
    const ref = `${now.family} ${now.name}`;
    const oldObjects = new Map<string, (typeof old.objects)[number]>(old.objects.map((o) => [`${o.kind === 'chain' ? 'chain' : 'set'} ${o.name}`, o]));
    const newKeys = new Set<string>();
    for (const object of now.objects) {
      const key = `${object.kind === 'chain' ? 'chain' : 'set'} ${object.name}`;
      newKeys.add(key);
      const was = oldObjects.get(key);
      if (object.kind === 'chain') {
        if (!was || was.kind !== 'chain' || was.rules.length !== object.rules.length || was.rules.some((r, i) => r !== object.rules[i])) {
          chains.set(`${ref} ${object.name}`, object.rules.length);
        }
        continue;
      }
      if (!was || was.kind === 'chain') continue;
      const oldSet = new Set(was.elements);
      const newSet = new Set(object.elements);
      const deleted = was.elements.filter((e) => !newSet.has(e)).length;
      const added = object.elements.filter((e) => !oldSet.has(e)).length;
      if (deleted + added > 0) elements.set(`${ref} ${object.name}`, { deleted, added });
    }
    for (const [key, object] of oldObjects) if (object.kind === 'chain' && !newKeys.has(key)) removedChains.add(`${ref} ${object.name}`);
  }
  return { elements, chains, removedChains };
}

/**
 * The incremental transaction from PREVIOUS to NEXT (bodies), with a summary of what it does. PREVIOUS_INDEX and
 * NEXT_INDEX may be given when already known (they are cached per applied version).
 */
export function planChange(previous: Buffer, next: Buffer, previousIndex?: BodyIndex, nextIndex?: BodyIndex): ChangePlan {
  const a = previousIndex ?? indexBody(previous);
  const b = nextIndex ?? indexBody(next);
  const reduced = a && b ? reduceBodies(a, b) : undefined;
  const [fromText, toText] = reduced ?? [previous.toString('utf8'), next.toString('utf8')];
  const plan = planIncremental(fromText, toText);
  if (!plan.ok) return plan;
  const summary = summarise(fromText, toText);
  if (!summary) return { ok: false, reason: 'the plan cannot be summarised' };
  return { ok: true, transaction: plan.transaction, operations: plan.operations, summary, reduced: reduced !== undefined };
}
