import { readFileSync } from 'node:fs';

/**
 * Test-only fault injection. When the environment variable NFTOPS_WATCH_FAULT names a step, the process kills
 * itself with SIGKILL when it reaches that step, so tests can check what a crash at that exact point leaves
 * behind. Unset (always, in production), every call is a no-op.
 *
 * Steps, in the order an apply goes through them:
 *   before-apply   the namespace transaction is built, nft -f has not started
 *   during-apply   nft -f has been started (it runs on, orphaned, and reads its whole input)
 *   after-apply    nft -f succeeded; nothing read back or saved yet
 *   during-save    the last good copy is written, status.json is not
 * (No `nft --check` runs before an apply: a transaction nft refuses changes nothing.)
 */
export type FaultStep = 'before-apply' | 'during-apply' | 'after-apply' | 'during-save';

export const FAULT_STEPS: readonly FaultStep[] = ['before-apply', 'during-apply', 'after-apply', 'during-save'];

const armed = process.env.NFTOPS_WATCH_FAULT;

export function faultPoint(step: FaultStep): void {
  if (armed === undefined || armed !== step) return;
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', event: 'fault.injected', msg: `NFTOPS_WATCH_FAULT=${step}: SIGKILL`, step })}\n`);
  process.kill(process.pid, 'SIGKILL');
}

function nftChildRunning(): boolean {
  let children: string[];
  try {
    children = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return false;
  }
  return children.some((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg === 'nft' || arg.endsWith('/nft'));
    } catch {
      return false;
    }
  });
}

/** For the `during-*` steps: once nft runs as a child of this process, SIGKILL (nft runs on, orphaned). */
export async function faultWhileChildRuns(step: FaultStep): Promise<void> {
  if (armed === undefined || armed !== step) return;
  const deadline = Date.now() + 5000;
  while (!nftChildRunning() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
  faultPoint(step);
}
