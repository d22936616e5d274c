import { createHash } from 'node:crypto';
import { open, readdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArtifact, type TableRef } from '@nftops/artifact';
import { guardBody } from './body-guard.js';
import { NETNS_NAME, type SourceSpec } from './config.js';
import type { WatchErrorCode } from './errors.js';

/** A network namespace an artifact is applied in. `key` is "host" or the namespace name (or path). */
export interface Target {
  readonly key: string;
  /** undefined for the host namespace; otherwise a name under /var/run/netns or an absolute path. */
  readonly netns: string | undefined;
}

export const HOST: Target = { key: 'host', netns: undefined };

export function targetFor(netns: string | undefined): Target {
  return netns === undefined || netns === 'host' ? HOST : { key: netns, netns };
}

export type Verdict =
  | { readonly ok: true; readonly tables: readonly TableRef[]; readonly body: string; readonly bodyDigest: string }
  | { readonly ok: false; readonly code: WatchErrorCode; readonly message: string };

/** One artifact file as read from disk (or restored from the last-good store). */
export interface DesiredArtifact {
  /** "<target key>/<file name>", unique across all sources. */
  readonly id: string;
  readonly sourcePath: string;
  readonly target: Target;
  readonly file: string;
  /** sha256 of the whole file: the identity of this version, valid or not. */
  readonly contentDigest: string;
  readonly text: string;
  readonly verdict: Verdict;
}

export interface ScannedSource {
  readonly spec: SourceSpec;
  /** false when the directory (or the symlink naming it) does not exist or cannot be read. */
  readonly available: boolean;
  readonly realPath: string | undefined;
  readonly error?: string;
  readonly artifacts: DesiredArtifact[];
}

export function sha256(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Parses and checks an artifact's text; never throws. */
export function judge(text: string): Verdict {
  const parsed = parseArtifact(text);
  if (!parsed.ok) {
    return { ok: false, code: parsed.code === 'ARTIFACT_DIGEST_MISMATCH' ? 'WATCH_DIGEST_MISMATCH' : 'WATCH_BAD_ARTIFACT', message: parsed.message };
  }
  const { header, body } = parsed.artifact;
  if (header.tables.length === 0) return { ok: false, code: 'WATCH_BAD_ARTIFACT', message: 'the header names no tables' };
  const guard = guardBody(body, header.tables);
  if (!guard.ok) return { ok: false, code: 'WATCH_UNSAFE_BODY', message: guard.message };
  return { ok: true, tables: header.tables, body, bodyDigest: header.bodyDigest };
}

export function desiredFromText(id: string, sourcePath: string, target: Target, file: string, text: string): DesiredArtifact {
  return { id, sourcePath, target, file, contentDigest: sha256(text), text, verdict: judge(text) };
}

const isArtifactName = (name: string) => name.endsWith('.nft') && !name.startsWith('.') && name.length > 4;

async function readLimited(file: string, maxBytes: number): Promise<{ text: string } | { tooLarge: number } | undefined> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return undefined;
    if (stat.size > maxBytes) return { tooLarge: stat.size };
    return { text: await handle.readFile('utf8') };
  } finally {
    await handle.close();
  }
}

interface Listing {
  readonly target: Target;
  readonly dir: string;
  readonly names: string[];
}

async function listSource(spec: SourceSpec, root: string): Promise<Listing[]> {
  const entries = await readdir(root, { withFileTypes: true });
  const listings: Listing[] = [];
  const top: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    if ((entry.isFile() || entry.isSymbolicLink()) && isArtifactName(entry.name)) top.push(entry.name);
  }
  listings.push({ target: targetFor(spec.netns), dir: root, names: top.sort() });
  if (spec.netns !== undefined) return listings;
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || !NETNS_NAME.test(entry.name)) continue;
    const dir = join(root, entry.name);
    let names: string[];
    try {
      names = (await readdir(dir, { withFileTypes: true }))
        .filter((e) => (e.isFile() || e.isSymbolicLink()) && isArtifactName(e.name))
        .map((e) => e.name)
        .sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    listings.push({ target: targetFor(entry.name === 'host' ? undefined : entry.name), dir, names });
  }
  return listings;
}

async function scanOnce(spec: SourceSpec, maxBytes: number): Promise<ScannedSource & { stable: boolean }> {
  let root: string;
  try {
    root = await realpath(spec.path);
  } catch (error) {
    return { spec, available: false, realPath: undefined, error: (error as Error).message, artifacts: [], stable: true };
  }
  const artifacts: DesiredArtifact[] = [];
  try {
    for (const listing of await listSource(spec, root)) {
      for (const name of listing.names) {
        const file = join(listing.dir, name);
        const id = `${listing.target.key}/${name}`;
        let read;
        try {
          read = await readLimited(file, maxBytes);
        } catch (error) {
          artifacts.push({
            id, sourcePath: spec.path, target: listing.target, file, contentDigest: `unreadable:${(error as NodeJS.ErrnoException).code ?? 'error'}`, text: '',
            verdict: { ok: false, code: 'WATCH_READ_FAILED', message: `cannot read ${file}: ${(error as Error).message}` },
          });
          continue;
        }
        if (read === undefined) continue; // deleted between readdir and open (or not a regular file)
        if ('tooLarge' in read) {
          artifacts.push({
            id, sourcePath: spec.path, target: listing.target, file, contentDigest: `size:${read.tooLarge}`, text: '',
            verdict: { ok: false, code: 'WATCH_TOO_LARGE', message: `${file} is ${read.tooLarge} bytes, over the ${maxBytes}-byte limit` },
          });
          continue;
        }
        artifacts.push(desiredFromText(id, spec.path, listing.target, file, read.text));
      }
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { spec, available: false, realPath: root, error: (error as Error).message, artifacts: [], stable: false };
    return { spec, available: false, realPath: root, error: (error as Error).message, artifacts: [], stable: true };
  }
  // A symlink swap (git-sync) during the scan could have mixed two trees, or made files vanish: compare.
  let after: string | undefined;
  try {
    after = await realpath(spec.path);
  } catch {
    after = undefined;
  }
  return { spec, available: true, realPath: root, artifacts, stable: after === root };
}

/**
 * Reads every source. A source whose directory is missing is reported as unavailable (its artifacts are then
 * neither applied nor pruned). A scan that raced with a symlink swap is repeated.
 */
export async function scanSource(spec: SourceSpec, maxBytes: number): Promise<ScannedSource> {
  let result = await scanOnce(spec, maxBytes);
  for (let attempt = 0; attempt < 5 && !result.stable; attempt++) result = await scanOnce(spec, maxBytes);
  const { stable, ...rest } = result;
  if (!stable) return { ...rest, available: false, error: 'the directory kept changing while it was read' };
  return rest;
}

export async function scanSources(specs: readonly SourceSpec[], maxBytes: number): Promise<ScannedSource[]> {
  return Promise.all(specs.map((spec) => scanSource(spec, maxBytes)));
}
