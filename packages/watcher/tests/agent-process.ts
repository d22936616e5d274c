import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../bin/nftops-watch.js', import.meta.url));

export interface LogEvent {
  readonly event: string;
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly events: LogEvent[];
  readonly stderr: () => string;
  readonly stdout: () => string;
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>;
  waitEvent(predicate: (e: LogEvent) => boolean, what: string, timeoutMs?: number): Promise<LogEvent>;
  /** SIGKILL to the whole process group (the agent and any nft it is running). */
  killGroup(signal?: NodeJS.Signals): void;
}

/**
 * Runs the real `nftops-watch` bin (built dist) with JSON logs, in its own process group, optionally inside a
 * network namespace via `ip netns exec` (which execs, so the pid is the agent's).
 */
export function spawnAgent(args: readonly string[], options: { netns?: string } = {}): AgentProcess {
  const argv = [BIN, ...args, ...(args[0] === 'status' ? [] : ['--log-format', 'json'])];
  const child = options.netns
    ? spawn('ip', ['netns', 'exec', options.netns, process.execPath, ...argv], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const events: LogEvent[] = [];
  let stderr = '';
  let stdout = '';
  let partial = '';
  const waiters: { predicate: (e: LogEvent) => boolean; resolve: (e: LogEvent) => void }[] = [];
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    stderr += text;
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const event = JSON.parse(line) as LogEvent;
      events.push(event);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(event)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(event);
        }
      }
    }
  });
  const exited = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    pid: child.pid!,
    events,
    stderr: () => stderr,
    stdout: () => stdout,
    exited,
    waitEvent(predicate, what, timeoutMs = 15_000) {
      const found = events.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; stderr:\n${stderr.slice(-3000)}`)), timeoutMs);
        const waiter = {
          predicate,
          resolve: (e: LogEvent) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        waiters.push(waiter);
        void exited.then((code) => {
          if (waiters.includes(waiter)) {
            clearTimeout(timer);
            reject(new Error(`agent exited (${code}) while waiting for ${what}; stderr:\n${stderr.slice(-3000)}`));
          }
        });
      });
    },
    killGroup(signal = 'SIGKILL') {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    },
  };
}

/** Runs the bin to completion (for --once, status). */
export async function runAgent(args: readonly string[], options: { netns?: string; timeoutMs?: number } = {}): Promise<{ code: number | string; stdout: string; stderr: string; events: LogEvent[] }> {
  const agent = spawnAgent(args, options);
  const timer = setTimeout(() => agent.killGroup(), options.timeoutMs ?? 30_000);
  const code = await agent.exited;
  clearTimeout(timer);
  return { code, stdout: agent.stdout(), stderr: agent.stderr(), events: agent.events };
}
