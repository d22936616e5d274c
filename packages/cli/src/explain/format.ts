import type { ExplainReport, ExplainRow } from './map.js';

/** Columns padded to their widest cell; the last column is left ragged. */
export function alignColumns(rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number> = new Set()): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : rightAligned.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

export interface FormatOptions {
  /** Leave out rows whose count is zero. */
  readonly nonzero?: boolean;
}

const cellCount = (row: ExplainRow) => (row.count === null ? '-' : `${row.counted ? '' : '~'}${row.count}`);

/** The human report: one aligned table of every counter, grouped per object, then what is missing and notes. */
export function formatExplain(report: ExplainReport, options: FormatOptions = {}): string {
  const lines: string[] = [];
  const rows = report.rows.filter((row) => !options.nonzero || row.count !== 0);
  if (report.tables.length === 0) lines.push('no tables to explain');
  else lines.push(`tables: ${report.tables.join(', ')}`);
  if (rows.length > 0) {
    lines.push('');
    const table = [['OBJECT', 'WHAT', 'COUNT', 'UNIT', 'BYTES', 'WHERE', 'DETAIL']];
    for (const row of rows) {
      table.push([row.object, row.what, cellCount(row), row.unit, row.bytes === null ? '-' : String(row.bytes), `${row.table} ${row.where}`, row.detail]);
    }
    lines.push(...alignColumns(table, new Set([2, 4])));
  } else if (report.rows.length > 0) lines.push('', 'every counter is zero');
  if (report.rows.some((row) => !row.counted && row.count !== null)) {
    lines.push('', '~ derived: per-service layout, computed from the service port counter and round robin (numgen inc)');
  }
  if (report.idle.length > 0) lines.push('', `no traffic yet: ${report.idle.join(', ')}`);
  if (report.tablesNotLoaded.length > 0) lines.push('', `not loaded: table ${report.tablesNotLoaded.join(', table ')}`);
  if (report.notLoaded.length > 0) lines.push(`${report.tablesNotLoaded.length > 0 ? '' : '\n'}in the artifact but not in the live ruleset: ${report.notLoaded.join(', ')}`);
  if (report.notes.length > 0) {
    lines.push('', 'notes:');
    for (const note of report.notes) lines.push(`  ${note}`);
  }
  return `${lines.join('\n')}\n`;
}
