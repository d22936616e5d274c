import type { IrChain, IrRule, IrTable } from './ir.js';
import { comment } from './nft-text.js';

export interface RenderedBody {
  readonly text: string;
  /** 1-based line within the body → `Kind/name` of the rule on that line. */
  readonly lineSources: ReadonlyMap<number, string>;
}

/** One element per line, so a change to one service is a one-line diff in review. */
function pushElements(lines: string[], elements: readonly string[], sources: Map<number, string>): void {
  if (elements.length === 0) return;
  lines.push('\t\telements = {');
  elements.forEach((element, i) => {
    lines.push(`\t\t\t${element}${i < elements.length - 1 ? ',' : ''}`);
    const traced = elementSource(element);
    if (traced !== undefined) sources.set(lines.length, traced);
  });
  lines.push('\t\t}');
}

/** An element's comment names its source object (`Kind/name`) the way rule comments do. */
function elementSource(element: string): string | undefined {
  const start = element.indexOf(' comment "');
  if (start < 0) return undefined;
  const from = start + 10;
  let end = from;
  while (end < element.length && element[end] !== ' ' && element[end] !== '"') end++;
  const ref = element.slice(from, end);
  return ref.includes('/') ? ref : undefined;
}

function renderRule(rule: IrRule): string {
  const note = rule.detail ? `${rule.source} ${rule.detail}` : rule.source;
  return [...rule.match, ...(rule.statements ?? []), 'counter', ...rule.actions, comment(note)].join(' ');
}

function renderChain(chain: IrChain, lines: string[], sources: Map<number, string>): void {
  lines.push(`\tchain ${chain.name} {`);
  if (chain.base) {
    const b = chain.base;
    lines.push(`\t\ttype ${b.type} hook ${b.hook} priority ${b.priority}; policy ${b.policy};`);
  }
  for (const rule of chain.rules) {
    lines.push(`\t\t${renderRule(rule)}`);
    sources.set(lines.length, rule.source);
  }
  lines.push('\t}');
}

/**
 * Prints tables as one transaction that replaces each of them whole: `table` (creates it if missing, so
 * the delete cannot fail), `delete table`, then the full definition. Applying it twice gives the same
 * state, and nothing of an earlier version survives.
 */
export function renderTables(tables: readonly IrTable[]): RenderedBody {
  const lines: string[] = [];
  const sources = new Map<number, string>();
  tables.forEach((table, tableIndex) => {
    if (tableIndex > 0) lines.push('');
    const ref = `${table.family} ${table.name}`;
    lines.push(`table ${ref}`, `delete table ${ref}`, `table ${ref} {`, `\t${comment(table.comment)}`);
    for (const set of table.sets) {
      lines.push('', `\tset ${set.name} {`, `\t\t${set.type}`);
      if (set.comment !== undefined) lines.push(`\t\t${comment(set.comment)}`);
      if (set.flags.length > 0) lines.push(`\t\tflags ${set.flags.join(', ')}`);
      for (const statement of set.statements ?? []) lines.push(`\t\t${statement}`);
      pushElements(lines, set.elements, sources);
      lines.push('\t}');
    }
    for (const map of table.maps) {
      lines.push('', `\tmap ${map.name} {`, `\t\t${map.type}`);
      if (map.flags.length > 0) lines.push(`\t\tflags ${map.flags.join(', ')}`);
      for (const statement of map.statements ?? []) lines.push(`\t\t${statement}`);
      pushElements(lines, map.elements.map(([k, v]) => `${k} : ${v}`), sources);
      lines.push('\t}');
    }
    for (const chain of table.chains) {
      lines.push('');
      renderChain(chain, lines, sources);
    }
    lines.push('}');
  });
  return { text: `${lines.join('\n')}\n`, lineSources: sources };
}
