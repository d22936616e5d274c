import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Diagnostic, SourceFile } from '@nftops/compiler';

/** What a command needs from the outside world; tests pass their own. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown; isTTY?: boolean };
  readonly stderr: { write(text: string): unknown; isTTY?: boolean };
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
}

const SKIP_DIRS = new Set(['node_modules', '.git']);

function walk(path: string, out: string[]): void {
  const stats = statSync(path);
  if (stats.isFile()) {
    out.push(path);
    return;
  }
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || SKIP_DIRS.has(entry.name)) continue;
    const child = join(path, entry.name);
    if (entry.isDirectory()) walk(child, out);
    else if (entry.isFile() && /\.ya?ml$/.test(entry.name)) out.push(child);
  }
}

function displayPath(cwd: string, absolute: string): string {
  const rel = relative(cwd, absolute);
  return (rel === '' ? '.' : rel).split(sep).join('/');
}

/**
 * BYTES as text (a byte order mark kept), or where the first invalid UTF-8 byte is, as 1-based line and column.
 * One decoder both checks and decodes: a second decode of a large file costs as much as the check.
 */
function decodeUtf8(bytes: Uint8Array): { text: string } | { line: number; column: number } {
  try {
    return { text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes) };
  } catch {
    let line = 1;
    let column = 1;
    for (let i = 0; i < bytes.length; ) {
      const length = utf8SequenceLength(bytes, i);
      if (length === 0) return { line, column };
      if (bytes[i] === 0x0a) {
        line++;
        column = 1;
      } else column++;
      i += length;
    }
    return { line, column };
  }
}

function utf8SequenceLength(bytes: Uint8Array, i: number): number {
  const b = bytes[i]!;
  const need = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
  if (need === 0 || i + need > bytes.length) return 0;
  for (let k = 1; k < need; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return 0;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(i, i + need));
  } catch {
    return 0;
  }
  return need;
}

export interface ReadSourcesResult {
  readonly sources: SourceFile[];
  readonly diagnostics: Diagnostic[];
}

/** Reads every .yaml/.yml file under PATHS (sorted), as paths relative to CWD. */
export function readSources(cwd: string, paths: readonly string[]): ReadSourcesResult {
  const files: string[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const path of paths) {
    const absolute = resolve(cwd, path);
    try {
      walk(absolute, files);
    } catch (error) {
      diagnostics.push({
        code: 'SOURCE_NOT_FOUND',
        severity: 'error',
        message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        file: path,
        line: 1,
        column: 1,
      });
    }
  }
  const unique = [...new Set(files)].sort();
  const sources: SourceFile[] = [];
  for (const file of unique) {
    const path = displayPath(cwd, file);
    const decoded = decodeUtf8(readFileSync(file));
    if (!('text' in decoded)) {
      diagnostics.push({
        code: 'YAML_NOT_UTF8',
        severity: 'error',
        message: 'the file is not UTF-8 text',
        hint: 'save it as UTF-8',
        file: path,
        ...decoded,
      });
      continue;
    }
    let { text } = decoded;
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    sources.push({ path, text });
  }
  return { sources, diagnostics };
}

const WRITE_PIECE = 1 << 20;

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * Writes FILE so that readers see the old content or the new, never a mix: a temporary file in the same
 * directory, fsync, rename over the target.
 */
export function writeFileAtomic(file: string, text: string): void {
  const temp = join(dirname(file), `.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o644);
  try {
    // In pieces of about 1 MiB, never between the two halves of a surrogate pair: one UTF-8 copy of a 20 MiB
    // artifact is fresh memory, which on some machines costs more than the write.
    for (let start = 0; start < text.length; ) {
      let end = Math.min(text.length, start + WRITE_PIECE);
      if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end--;
      writeSync(fd, text.slice(start, end));
      start = end;
    }
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

export function readTextIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
