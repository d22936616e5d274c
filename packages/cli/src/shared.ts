import { resolve } from 'node:path';
import { compile, formatDiagnostic, sortDiagnostics, VERSION, type CompileResult, type Diagnostic } from '@nftops/compiler';
import { readSources, type CliIo } from './io.js';

export const EXIT = { ok: 0, different: 1, error: 2 } as const;

export class UsageError extends Error {}

export interface CompiledSources {
  readonly result: CompileResult;
  readonly diagnostics: Diagnostic[];
}

/** Reads and compiles PATHS; diagnostics from reading and compiling come back together, sorted. */
export function compilePaths(io: CliIo, paths: readonly string[]): CompiledSources {
  const read = readSources(io.cwd, paths.length > 0 ? paths : ['.']);
  const result = compile(read.sources, { generator: `nftops ${VERSION}` });
  const diagnostics = sortDiagnostics([...read.diagnostics, ...result.diagnostics]);
  const ok = result.ok && !diagnostics.some((d) => d.severity === 'error');
  return { result: { ...result, ok, artifacts: ok ? result.artifacts : [] }, diagnostics };
}

export function printDiagnostics(io: CliIo, diagnostics: readonly Diagnostic[]): void {
  for (const d of diagnostics) io.stderr.write(`${formatDiagnostic(d)}\n`);
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.length - errors;
  if (errors > 0) io.stderr.write(`${errors} error${errors === 1 ? '' : 's'}${warnings ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}\n`);
}

export function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The file an artifact is written to: its own output, or the --output flag for sources without Artifacts. */
export function outputPath(io: CliIo, artifactOutput: string | undefined, flag: string | undefined): string | undefined {
  const chosen = artifactOutput ?? flag;
  return chosen === undefined ? undefined : resolve(io.cwd, chosen);
}
