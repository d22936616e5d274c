import type { IrChain, IrRule, IrTable } from './ir.js';
import { comment } from './nft-text.js';

/**
 * Collects lines and joins them in chunks of flat text as it goes: a line is a rope of the IR's strings, and
 * keeping 300 000 of them alive until one final join made the garbage collector copy each of them twice.
 * Chunks stay small enough for the young generation (a string of more than 128 KiB gets pages of its own).
 */
class Lines {
  private readonly chunks: string[] = [];
  private pending: string[] = [];

  push(...lines: string[]): void {
    for (const line of lines) this.pending.push(line);
    if (this.pending.length >= 512) this.flush();
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    this.pending.push('');
    this.chunks.push(this.pending.join('\n'));
    this.pending = [];
  }

  /** The text as pieces whose concatenation is every line, each ended by a newline. */
  pieces(): string[] {
    this.flush();
    return this.chunks;
  }
}

/** One element per line, so a change to one service is a one-line diff in review. */
function pushElements(lines: Lines, elements: readonly string[]): void {
  if (elements.length === 0) return;
  lines.push('\t\telements = {');
  const last = elements.length - 1;
  for (let i = 0; i < last; i++) lines.push(`\t\t\t${elements[i]!},`);
  lines.push(`\t\t\t${elements[last]!}`, '\t\t}');
}

function pushMapElements(lines: Lines, elements: Iterable<readonly [string, string]>): void {
  // One element behind, so the last one is known and goes without a comma.
  let previous: readonly [string, string] | undefined;
  for (const element of elements) {
    if (previous === undefined) lines.push('\t\telements = {');
    else lines.push(`\t\t\t${previous[0]} : ${previous[1]},`);
    previous = element;
  }
  if (previous !== undefined) lines.push(`\t\t\t${previous[0]} : ${previous[1]}`, '\t\t}');
}

function renderRule(rule: IrRule): string {
  const note = rule.detail ? `${rule.source} ${rule.detail}` : rule.source;
  return [...rule.match, ...(rule.statements ?? []), 'counter', ...rule.actions, comment(note)].join(' ');
}

function renderChain(chain: IrChain, lines: Lines): void {
  lines.push(`\tchain ${chain.name} {`);
  if (chain.base) {
    const b = chain.base;
    lines.push(`\t\ttype ${b.type} hook ${b.hook} priority ${b.priority}; policy ${b.policy};`);
  }
  for (const rule of chain.rules) lines.push(`\t\t${renderRule(rule)}`);
  lines.push('\t}');
}

/**
 * Prints tables as one transaction that replaces each of them whole: `table` (creates it if missing, so
 * the delete cannot fail), `delete table`, then the full definition. Applying it twice gives the same
 * state, and nothing of an earlier version survives. The result is pieces whose concatenation is the body.
 */
export function renderTables(tables: readonly IrTable[]): string[] {
  const lines = new Lines();
  tables.forEach((table, tableIndex) => {
    if (tableIndex > 0) lines.push('');
    const ref = `${table.family} ${table.name}`;
    lines.push(`table ${ref}`, `delete table ${ref}`, `table ${ref} {`, `\t${comment(table.comment)}`);
    for (const set of table.sets) {
      lines.push('', `\tset ${set.name} {`, `\t\t${set.type}`);
      if (set.comment !== undefined) lines.push(`\t\t${comment(set.comment)}`);
      if (set.flags.length > 0) lines.push(`\t\tflags ${set.flags.join(', ')}`);
      for (const statement of set.statements ?? []) lines.push(`\t\t${statement}`);
      pushElements(lines, set.elements);
      lines.push('\t}');
    }
    for (const map of table.maps) {
      lines.push('', `\tmap ${map.name} {`, `\t\t${map.type}`);
      if (map.flags.length > 0) lines.push(`\t\tflags ${map.flags.join(', ')}`);
      for (const statement of map.statements ?? []) lines.push(`\t\t${statement}`);
      pushMapElements(lines, map.elements);
      lines.push('\t}');
    }
    for (const chain of table.chains) {
      lines.push('');
      renderChain(chain, lines);
    }
    lines.push('}');
  });
  return lines.pieces();
}

/** The `Kind/name` a comment names first, when its first word has that form. */
function commentSource(line: string, from: number): string | undefined {
  let end = from;
  while (end < line.length && line[end] !== ' ' && line[end] !== '"') end++;
  const ref = line.slice(from, end);
  return ref.includes('/') ? ref : undefined;
}

const COMMENT_OPEN = ' comment "';

/**
 * The source object of one line of a rendered body (1-based): rules and set or map elements name it first in
 * their comment. Read back from the text rather than recorded while rendering, since it is only asked for
 * when nft reports an error, and recording it costs a map entry per line of a file that can hold 300 000.
 */
export function bodyLineSources(body: () => string): (line: number) => string | undefined {
  let sources: Map<number, string> | undefined;
  const index = (): Map<number, string> => {
    const found = new Map<number, string>();
    body().split('\n').forEach((line, i) => {
      // Rules and elements are indented twice or more; a set's or chain's own `comment` line names no object.
      if (!line.startsWith('\t\t') || line.startsWith('\t\tcomment ')) return;
      // A rule's comment is its last token; an element's comes before its `: value`, which holds none.
      const at = line.lastIndexOf(COMMENT_OPEN);
      const ref = at < 0 ? undefined : commentSource(line, at + COMMENT_OPEN.length);
      if (ref !== undefined) found.set(i + 1, ref);
    });
    return found;
  };
  return (line) => (sources ??= index()).get(line);
}
