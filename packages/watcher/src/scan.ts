import { constants } from 'node:fs';
import { createHash, type KeyObject } from 'node:crypto';
import { open, readdir, realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { routingOfHeader, verifyArtifactBytes, verifyArtifactSignatureBytes, type Routing, type TableRef } from '@nftops/artifact';
import { guardBodyBytes } from './body-guard.js';
import { NETNS_NAME, type SourceSpec } from './config.js';
import type { WatchErrorCode } from './errors.js';

/** How files are read and which artifacts are acceptable. */
export interface ScanOptions {
  readonly maxBytes: number;
  /** Only artifacts with a valid ed25519 signature for this key are accepted. */
  readonly publicKey?: KeyObject | undefined;
  /** The uid artifact files must belong to; undefined: any. */
  readonly owner?: number | undefined;
  /** Accept files writable by group or others. */
  readonly allowWritable?: boolean;
  /** Where large files are read into (default: fresh buffers). */
  readonly buffers?: ReadBuffers;
}

export type JudgeOptions = Pick<ScanOptions, 'publicKey'>;

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

/**
 * An artifact body as verified: its bytes (a view into the file), decoded only when something needs the text (a
 * whole apply, the keep-base-chains rewrite). An incremental apply never decodes it: planning works on bytes.
 */
export class ArtifactBody {
  constructor(
    readonly bytes: Buffer,
    private decoded?: string,
  ) {}

  get text(): string {
    return (this.decoded ??= this.bytes.toString('utf8'));
  }

  /** The same body held in BYTES (a copy of `bytes`), with the text if it was decoded. */
  movedTo(bytes: Buffer): ArtifactBody {
    return new ArtifactBody(bytes, this.decoded);
  }
}

/**
 * Buffers for reading large artifact files, reused from pass to pass. On VMs that give freed memory back to the
 * host, the first touch of freshly allocated memory is expensive (measured here: 90-100 ms to read 23 MiB into a
 * new buffer, 2 ms into one used before), more than hashing the file. A buffer is lent to one read until
 * `release()`, which the reconciler calls at the end of the pass that read it; so nothing that outlives a pass may
 * refer to one: an applied version keeps a copy of its file (`ownedCopy`). Spares not lent in the last pass are
 * dropped, so the pool holds at most the large files of one pass.
 */
export class ReadBuffers {
  /** Smaller reads allocate: the pool is for the files whose first-touch cost matters. */
  static readonly MIN_BYTES = 1 << 20;
  private spare: Buffer[] = [];
  private lent: Buffer[] = [];

  /** A buffer of exactly SIZE bytes, backed by a spare when one is large enough. */
  take(size: number): Buffer {
    if (size < ReadBuffers.MIN_BYTES) return Buffer.allocUnsafe(size);
    let best = -1;
    for (let i = 0; i < this.spare.length; i++) {
      if (this.spare[i]!.length >= size && (best < 0 || this.spare[i]!.length < this.spare[best]!.length)) best = i;
    }
    const buffer = best >= 0 ? this.spare.splice(best, 1)[0]! : Buffer.allocUnsafeSlow(size);
    this.lent.push(buffer);
    return buffer.subarray(0, size);
  }

  /** Takes back every buffer lent since the last release: nothing may refer to them any more. */
  release(): void {
    this.spare = this.lent;
    this.lent = [];
  }
}

/** A copy of an artifact file and its body that owns its memory (for what outlives the pass that read it). */
export function ownedCopy(bytes: Buffer, body: ArtifactBody): { bytes: Buffer; body: ArtifactBody } {
  const copy = Buffer.from(bytes);
  return { bytes: copy, body: body.movedTo(copy.subarray(copy.length - body.bytes.length)) };
}

export type Verdict =
  | { readonly ok: true; readonly tables: readonly TableRef[]; readonly body: ArtifactBody; readonly bodyDigest: string; readonly routing: Routing; readonly signed: boolean }
  | { readonly ok: false; readonly code: WatchErrorCode; readonly message: string };

/** One artifact file as read from disk (or restored from the last-good store). */
export interface DesiredArtifact {
  /** "<target key>/<file name>", unique across all sources. */
  readonly id: string;
  readonly sourcePath: string;
  readonly target: Target;
  readonly file: string;
  /** The identity of this version, valid or not (`versionDigest`). */
  readonly contentDigest: string;
  readonly bytes: Buffer;
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

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The identity of a file's version. For a valid artifact it is the sha256 of its header (with the blank line): the
 * header carries the body digest, which was verified, so it names the whole file while the body is hashed only
 * once. Any other file is named by the sha256 of all its bytes (shown as `file-sha256:`).
 */
export function versionDigest(bytes: Buffer, verdict: Verdict): string {
  return verdict.ok ? sha256(bytes.subarray(0, bytes.length - verdict.body.bytes.length)) : sha256(bytes);
}

/**
 * Parses and checks an artifact file's bytes; never throws. The order is part of the contract: the header and
 * its body digest first (a partial or altered file is refused before anything else looks at it), then the
 * signature (when a key is configured), then the header's tables and routing, then the body guard. Nothing is
 * decoded but the header (and the heads of top-level statements).
 */
export function judge(bytes: Buffer, options: JudgeOptions = {}): Verdict {
  const parsed = verifyArtifactBytes(bytes);
  if (!parsed.ok) {
    return { ok: false, code: parsed.code === 'ARTIFACT_DIGEST_MISMATCH' ? 'WATCH_DIGEST_MISMATCH' : 'WATCH_BAD_ARTIFACT', message: parsed.message };
  }
  let signed = false;
  if (options.publicKey) {
    let check;
    try {
      check = verifyArtifactSignatureBytes(bytes, options.publicKey);
    } catch (error) {
      return { ok: false, code: 'WATCH_SIGNATURE_INVALID', message: `the signature cannot be checked: ${(error as Error).message}` };
    }
    if (!check.ok) return { ok: false, code: check.code === 'SIGNATURE_MISSING' ? 'WATCH_SIGNATURE_MISSING' : 'WATCH_SIGNATURE_INVALID', message: check.message };
    signed = true;
  }
  const { header, bodyStart } = parsed.artifact;
  if (header.tables.length === 0) return { ok: false, code: 'WATCH_BAD_ARTIFACT', message: 'the header names no tables' };
  const routing = routingOfHeader(header.extra);
  if (!routing.ok) return { ok: false, code: 'WATCH_BAD_ARTIFACT', message: `routing header: ${routing.message}` };
  const body = bytes.subarray(bodyStart);
  const guard = guardBodyBytes(body, header.tables);
  if (!guard.ok) return { ok: false, code: 'WATCH_UNSAFE_BODY', message: guard.message };
  return { ok: true, tables: header.tables, body: new ArtifactBody(body), bodyDigest: header.bodyDigest, routing: routing.routing, signed };
}

/** A desired artifact from a file's bytes (as read, or a last good copy). */
export function desiredFromBytes(id: string, sourcePath: string, target: Target, file: string, bytes: Buffer, options: JudgeOptions = {}): DesiredArtifact {
  const verdict = judge(bytes, options);
  return { id, sourcePath, target, file, contentDigest: versionDigest(bytes, verdict), bytes, verdict };
}

const EMPTY = Buffer.alloc(0);

const isArtifactName = (name: string) => name.endsWith('.nft') && !name.startsWith('.') && name.length > 4;

type FileRead =
  | { readonly kind: 'ok'; readonly bytes: Buffer }
  | { readonly kind: 'refused'; readonly code: 'WATCH_TOO_LARGE' | 'WATCH_UNSAFE_FILE'; readonly message: string; readonly key: string }
  | undefined;

const inside = (root: string, path: string) => path === root || path.startsWith(root.endsWith(sep) ? root : `${root}${sep}`);

/**
 * Opens an artifact file and checks it on the open descriptor (fstat: no window between check and read): a
 * regular file, not writable by group or others, owned by the expected user, no larger than the limit (checked
 * before reading, and again while reading in case it grows). A symlink is followed only to a file inside the
 * source's directory. Undefined when the file vanished or is not a regular file.
 */
async function readArtifactFile(file: string, root: string, isLink: boolean, options: ScanOptions): Promise<FileRead> {
  let path = file;
  if (isLink) {
    let target: string;
    try {
      target = await realpath(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    if (!inside(root, target)) {
      return { kind: 'refused', code: 'WATCH_UNSAFE_FILE', message: `${file} is a symlink to ${target}, outside the artifact directory ${root}`, key: `symlink:${target}` };
    }
    path = target;
  }
  let handle;
  try {
    // O_NOFOLLOW: a file swapped for a symlink after the directory was listed (or resolved) is not followed.
    // O_NONBLOCK: opening a FIFO named *.nft must not hang the agent.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') return { kind: 'refused', code: 'WATCH_UNSAFE_FILE', message: `${file} became a symlink while it was read`, key: `symlink-race:${file}` };
    throw error;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return undefined;
    const key = `${stat.dev}:${stat.ino}:${stat.mode}:${stat.uid}:${stat.size}:${stat.mtimeMs}`;
    if (!options.allowWritable && (stat.mode & 0o022) !== 0) {
      return { kind: 'refused', code: 'WATCH_UNSAFE_FILE', message: `${file} is writable by ${(stat.mode & 0o020) !== 0 ? 'its group' : 'others'} (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')})`, key: `mode:${key}` };
    }
    if (options.owner !== undefined && stat.uid !== options.owner) {
      return { kind: 'refused', code: 'WATCH_UNSAFE_FILE', message: `${file} belongs to uid ${stat.uid}, not to the expected owner uid ${options.owner}`, key: `owner:${key}` };
    }
    const tooLarge = (size: number) => ({ kind: 'refused' as const, code: 'WATCH_TOO_LARGE' as const, message: `${file} is ${size} bytes, over the ${options.maxBytes}-byte limit`, key: `size:${key}` });
    if (stat.size > options.maxBytes) return tooLarge(stat.size);
    const size = Math.min(stat.size, options.maxBytes) + 1;
    const buffer = options.buffers ? options.buffers.take(size) : Buffer.allocUnsafe(size);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) {
        if (length > options.maxBytes) return tooLarge(length);
        break;
      }
    }
    return { kind: 'ok', bytes: buffer.subarray(0, length) };
  } finally {
    await handle.close();
  }
}

interface Listing {
  readonly target: Target;
  readonly dir: string;
  readonly names: string[];
  /** Names that are symlinks. */
  readonly links: ReadonlySet<string>;
}

async function listSource(spec: SourceSpec, root: string): Promise<Listing[]> {
  const entries = await readdir(root, { withFileTypes: true });
  const listings: Listing[] = [];
  const top: string[] = [];
  const topLinks = new Set<string>();
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    if ((entry.isFile() || entry.isSymbolicLink()) && isArtifactName(entry.name)) top.push(entry.name);
    if (entry.isSymbolicLink()) topLinks.add(entry.name);
  }
  listings.push({ target: targetFor(spec.netns), dir: root, names: top.sort(), links: topLinks });
  if (spec.netns !== undefined) return listings;
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || !NETNS_NAME.test(entry.name)) continue;
    const dir = join(root, entry.name);
    let found;
    try {
      found = (await readdir(dir, { withFileTypes: true })).filter((e) => (e.isFile() || e.isSymbolicLink()) && isArtifactName(e.name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const names = found.map((e) => e.name).sort();
    const links = new Set(found.filter((e) => e.isSymbolicLink()).map((e) => e.name));
    listings.push({ target: targetFor(entry.name === 'host' ? undefined : entry.name), dir, names, links });
  }
  return listings;
}

async function scanOnce(spec: SourceSpec, options: ScanOptions): Promise<ScannedSource & { stable: boolean }> {
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
        let read: FileRead;
        try {
          read = await readArtifactFile(file, root, listing.links.has(name), options);
        } catch (error) {
          artifacts.push({
            id, sourcePath: spec.path, target: listing.target, file, contentDigest: `unreadable:${(error as NodeJS.ErrnoException).code ?? 'error'}`, bytes: EMPTY,
            verdict: { ok: false, code: 'WATCH_READ_FAILED', message: `cannot read ${file}: ${(error as Error).message}` },
          });
          continue;
        }
        if (read === undefined) continue; // deleted between readdir and open (or not a regular file)
        if (read.kind === 'refused') {
          artifacts.push({ id, sourcePath: spec.path, target: listing.target, file, contentDigest: read.key, bytes: EMPTY, verdict: { ok: false, code: read.code, message: read.message } });
          continue;
        }
        artifacts.push(desiredFromBytes(id, spec.path, listing.target, file, read.bytes, options));
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
export async function scanSource(spec: SourceSpec, options: ScanOptions): Promise<ScannedSource> {
  let result = await scanOnce(spec, options);
  for (let attempt = 0; attempt < 5 && !result.stable; attempt++) result = await scanOnce(spec, options);
  const { stable, ...rest } = result;
  if (!stable) return { ...rest, available: false, error: 'the directory kept changing while it was read' };
  return rest;
}

export async function scanSources(specs: readonly SourceSpec[], options: ScanOptions): Promise<ScannedSource[]> {
  return Promise.all(specs.map((spec) => scanSource(spec, options)));
}
