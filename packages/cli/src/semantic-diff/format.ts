import type { LineChanges, SemanticDiff } from './diff.js';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `1 rule added, 1 removed`, `2 rules changed` */
function summary(l: LineChanges): string {
  const noun = l.kind === 'declaration' ? 'declaration line' : l.kind;
  const counts: [number, string][] = [
    [l.added.length, 'added'],
    [l.removed.length, 'removed'],
    [l.changed.length, 'changed'],
  ];
  return counts
    .filter(([n]) => n > 0)
    .map(([n, verb], i) => (i === 0 ? `${plural(n, noun)} ${verb}` : `${n} ${verb}`))
    .join(', ');
}

/**
 * The human semantic diff: a line per table change, then per object (sorted) what changed in words and the
 * rules and elements it adds (+), removes (-) or changes (- old / + new), per table and chain, set or map.
 */
export function formatSemanticDiff(diff: SemanticDiff, title: string): string {
  const out: string[] = [`semantic diff of ${title}:`];
  if (!diff.available) return `${out[0]} not available: ${diff.reason}\n`;
  const { added, removed, renamed } = diff.tables;
  if (added.length + removed.length + renamed.length > 0) {
    const parts = [
      ...added.map((t) => `+ ${t}`),
      ...removed.map((t) => `- ${t}`),
      ...renamed.map((t) => `${t.from} -> ${t.to}`),
    ];
    out.push(`  tables: ${parts.join(', ')}`);
  }
  if (diff.objects.length === 0) out.push('  no object changed');
  for (const object of diff.objects) {
    out.push(`  ${object.object} (${object.status})`);
    for (const change of object.changes) out.push(`    ${change}`);
    for (const l of object.lines) {
      out.push(`    ${l.table} ${l.location}: ${summary(l)}`);
      for (const line of l.removed) out.push(`      - ${line}`);
      for (const line of l.added) out.push(`      + ${line}`);
      for (const c of l.changed) out.push(`      - ${c.from}`, `      + ${c.to}`);
    }
  }
  return `${out.join('\n')}\n`;
}
