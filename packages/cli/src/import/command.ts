import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Diagnostic } from '@nftops/compiler';
import { writeFileAtomic, type CliIo } from '../io.js';
import { EXIT, printDiagnostics, printJson, UsageError } from '../shared.js';
import type { ImportedFile, ImportResult } from './lbaas.js';

/** `nftops import <lbaas|istio>`: the command group. The subcommands live in commands/import-*.ts. */

export interface ImportSubcommand {
  readonly run: (args: string[], io: CliIo) => number | Promise<number>;
  readonly help: string;
}

export const importHelp = `Usage: nftops import <lbaas|istio> [options]

Converts another tool's configuration into nftops YAML, compiles the result, and writes it only if it
compiles. Warnings name everything that does not map one to one.

Subcommands:
  lbaas   a ch-k8s-lbaas model (load-balancer-config) and agent config ([nftables]) -> LoadBalancers,
          NetworkPolicies, Settings, Artifact
  istio   Istio sidecar capture settings (istio-iptables flags, or a pod's annotations) -> MeshRedirection

Run \`nftops import <subcommand> --help\` for its options; docs/migration.md explains the mapping.
Exit codes: 0 converted, 2 errors (nothing is written).
`;

/** Reads a file named on the command line; a failure is a diagnostic, not an exception. */
export function readInput(io: CliIo, path: string, diagnostics: Diagnostic[]): { path: string; text: string } | undefined {
  try {
    let text = readFileSync(resolve(io.cwd, path), 'utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return { path: displayPath(io, path), text };
  } catch (error) {
    diagnostics.push({
      code: 'IMPORT_READ',
      severity: 'error',
      message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      file: displayPath(io, path),
      line: 1,
      column: 1,
    });
    return undefined;
  }
}

export function displayPath(io: CliIo, path: string): string {
  const absolute = isAbsolute(path) ? path : join(io.cwd, path);
  const rel = relative(io.cwd, absolute);
  return (rel === '' ? '.' : rel).split(sep).join('/');
}

/** How files inside OUTPUT are shown in diagnostics ("" for the current directory). */
export function outputPrefix(io: CliIo, output: string | undefined): string {
  if (output === undefined) return '';
  const shown = displayPath(io, output);
  return shown === '.' ? '' : `${shown}/`;
}

export interface WriteOutcome {
  readonly written: { path: string; bytes: number }[];
  readonly removed: string[];
}

/**
 * Writes FILES into OUTPUT (created if missing), each atomically, and removes the files of KNOWN this run
 * did not produce (left over from an earlier import). Other YAML files there are reported: the Artifact
 * would compile them too.
 */
export function writeImport(io: CliIo, output: string, files: readonly ImportedFile[], known: readonly string[], warnings: Diagnostic[]): WriteOutcome {
  const dir = resolve(io.cwd, output);
  mkdirSync(dir, { recursive: true });
  const prefix = outputPrefix(io, output);
  const names = new Set(files.map((f) => f.name));
  const others = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && !names.has(f) && !known.includes(f)).sort();
  if (others.length > 0) {
    warnings.push({
      code: 'IMPORT_OUTPUT_NOT_EMPTY',
      severity: 'warning',
      message: `${prefix || './'} also holds ${others.join(', ')}; the converted Artifact compiles every object in its directory, those included`,
      hint: 'write the import into a directory of its own',
      file: `${prefix}${others[0]}`,
      line: 1,
      column: 1,
    });
  }
  const written = files.map((file) => {
    writeFileAtomic(join(dir, file.name), file.text);
    return { path: `${prefix}${file.name}`, bytes: Buffer.byteLength(file.text) };
  });
  const removed: string[] = [];
  for (const name of known) {
    if (names.has(name)) continue;
    try {
      rmSync(join(dir, name));
      removed.push(`${prefix}${name}`);
    } catch {
      // not there: nothing stale
    }
  }
  return { written, removed };
}

/** Prints RESULT (and writes it unless --stdout) the way both import subcommands do; returns the exit code. */
export function deliver(
  io: CliIo,
  result: ImportResult,
  options: { output: string | undefined; stdout: boolean; json: boolean; known: readonly string[]; extra?: Record<string, unknown> },
  readDiagnostics: readonly Diagnostic[] = [],
): number {
  const diagnostics = [...readDiagnostics, ...result.diagnostics];
  let outcome: WriteOutcome | undefined;
  if (result.ok && !options.stdout) {
    const warnings: Diagnostic[] = [];
    outcome = writeImport(io, options.output!, result.files, options.known, warnings);
    diagnostics.push(...warnings);
  }
  const prefix = outputPrefix(io, options.output);
  if (options.json) {
    printJson(io, {
      ok: result.ok,
      diagnostics,
      files: result.ok
        ? result.files.map((f) => ({
            path: `${options.stdout ? '' : prefix}${f.name}`,
            bytes: Buffer.byteLength(f.text),
            ...(options.stdout ? { text: f.text } : {}),
          }))
        : [],
      removed: outcome?.removed ?? [],
      artifact: result.ok && result.artifact ? { name: result.artifact.name, output: result.artifact.output } : null,
      ...options.extra,
    });
  } else {
    if (result.ok && options.stdout) io.stdout.write(result.files.map((f) => `# file: ${f.name}\n${f.text}`).join('---\n'));
    printDiagnostics(io, diagnostics);
    if (outcome) {
      for (const w of outcome.written) io.stderr.write(`wrote ${w.path} (${w.bytes} bytes)\n`);
      for (const r of outcome.removed) io.stderr.write(`removed ${r} (left over from an earlier import)\n`);
      io.stderr.write(`next: nftops compile ${options.output}${result.artifact?.output ? ` (writes ${result.artifact.output})` : ''}\n`);
    }
  }
  return result.ok ? EXIT.ok : EXIT.error;
}

/** Dispatches `nftops import SUB ...`; usage errors print the subcommand's help, never a stack trace. */
export async function runImportGroup(args: string[], io: CliIo, subcommands: Record<string, ImportSubcommand>): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(importHelp);
    return name === undefined ? EXIT.error : EXIT.ok;
  }
  const sub = subcommands[name];
  if (!sub) throw new UsageError(`unknown subcommand "${name}" (lbaas or istio)`);
  try {
    return await sub.run(rest, io);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      io.stderr.write(`nftops import ${name}: ${(error as Error).message}\n\n${sub.help}`);
      return EXIT.error;
    }
    throw error;
  }
}
