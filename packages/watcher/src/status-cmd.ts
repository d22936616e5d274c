import { join } from 'node:path';
import type { AttemptJson, StatusDocument } from './model.js';
import { STATUS_FILE } from './state-store.js';

const short = (digest: string | undefined) => {
  if (!digest) return '-';
  const match = /^((?:file-)?sha256:)([0-9a-f]{12})[0-9a-f]*$/.exec(digest);
  return match ? `${match[1]}${match[2]}` : digest;
};

function pad(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

function attemptText(a: AttemptJson): string {
  const times = a.count > 1 ? ` (x${a.count} since ${a.firstAt})` : '';
  const failure = a.code ? `  ${a.code}: ${a.message ?? ''}` : '';
  return `${a.at}  ${a.id}  ${a.result}  ${short(a.digest)}${times}${failure}`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The human-readable `nftops-watch status` report. */
export function renderStatus(doc: StatusDocument, stateDir: string, alive: (pid: number) => boolean = isAlive): string {
  const lines: string[] = [];
  lines.push(`state: ${join(stateDir, STATUS_FILE)} (updated ${doc.updatedAt})`);
  if (doc.agent) {
    const running = alive(doc.agent.pid) ? 'running' : 'not running';
    const listen = doc.agent.listen ? `, status http://${doc.agent.listen}/status` : '';
    const mode = doc.agent.dryRun ? ', dry run' : '';
    lines.push(`agent: pid ${doc.agent.pid} ${running}, started ${doc.agent.startedAt}${listen}${mode}; ${doc.ready ? 'ready' : 'not ready'}`);
    for (const source of doc.agent.sources) lines.push(`source: ${source.path}${source.netns ? ` -> netns ${source.netns}` : ' (top level -> host, NAME/ -> netns NAME)'}`);
  }
  if (doc.lastSuccessAt) lines.push(`last successful apply: ${doc.lastSuccessAt}`);
  if (doc.stateError) lines.push(`state directory: NOT WRITABLE (${doc.stateError}); rules are applied, last good copies are not kept`);
  lines.push('');
  if (doc.artifacts.length === 0) {
    lines.push('no artifacts');
  } else {
    const rows = [['ARTIFACT', 'NETNS', 'STATE', 'APPLIED', 'APPLIED AT', 'LAST ATTEMPTED', 'RESULT']];
    for (const a of doc.artifacts) {
      const attempt = a.lastAttempt;
      rows.push([
        a.id,
        a.netns,
        a.state,
        short(a.applied?.digest),
        a.applied?.at ?? '-',
        short(attempt?.digest),
        attempt ? `${attempt.result}${attempt.code ? ` ${attempt.code}` : ''}` : '-',
      ]);
    }
    lines.push(...pad(rows));
    const failing = doc.artifacts.filter((a) => a.state === 'Failing' && a.lastAttempt?.message);
    if (failing.length > 0) {
      lines.push('');
      for (const a of failing) lines.push(`${a.id}: ${a.lastAttempt!.code}: ${a.lastAttempt!.message}`);
    }
    const routing = doc.artifacts.filter((a) => a.routing?.state === 'Failing');
    if (routing.length > 0) {
      lines.push('');
      for (const a of routing) lines.push(`${a.id}: routing failing since ${a.routing!.since} (${a.routing!.failures}x): WATCH_ROUTING: ${a.routing!.error}`);
    }
  }
  lines.push('', 'last 5 attempts:');
  if (doc.recent.length === 0) lines.push('  none');
  for (const attempt of doc.recent) lines.push(`  ${attemptText(attempt)}`);
  return `${lines.join('\n')}\n`;
}
