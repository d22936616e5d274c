import type { CliIo } from '@nftops/cli';

/** A CliIo rooted at CWD whose stdout and stderr are collected, for tests that run `main`. */
export function captureIo(cwd: string): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    cwd,
    env: {},
    out: () => out,
    err: () => err,
  };
}
