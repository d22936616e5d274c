import { constants } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { WatchError } from './errors.js';
import { faultPoint } from './fault.js';
import {
  attemptFromJson,
  type AgentInfo,
  type ArtifactRecord,
  type Attempt,
  type AttemptJson,
  type StatusDocument,
} from './model.js';
import { judge, sha256, targetFor, versionDigest } from './scan.js';

/**
 * The state directory:
 *
 *   <state dir>/status.json            status document (what is applied where, attempts), also read by `status`
 *   <state dir>/last-good/<digest>.nft  a copy of every applied artifact, named by its version digest (scan.ts)
 *
 * Every file is written atomically (temp file in the same directory, fsync, rename, fsync of the directory),
 * copies before the status that names them, so a crash at any point leaves a consistent pair.
 */
export const STATUS_FILE = 'status.json';
const LAST_GOOD = 'last-good';

export interface LoadedState {
  readonly records: ArtifactRecord[];
  readonly recent: Attempt[];
  readonly lastSuccessAt: number | undefined;
  /** Problems found while loading (a missing or corrupt copy); the affected records are dropped. */
  readonly problems: string[];
}

async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    await handle.sync();
  } catch {
    // some filesystems refuse fsync on directories; the rename is still atomic
  } finally {
    await handle?.close();
  }
}

/** Writes DATA to PATH atomically: temp file, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = join(path, '..');
  const temp = join(dir, `.${path.slice(dir.length + 1)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`);
  const handle = await open(temp, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temp).catch(() => {});
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  await fsyncDir(dir);
}

interface StoredArtifact {
  readonly id: string;
  readonly netns: string;
  readonly sourcePath: string;
  readonly applied?: {
    readonly contentDigest: string;
    readonly file: string;
    readonly appliedAt: string;
    readonly fingerprint?: string;
  };
  readonly rejectedDigest?: string;
  readonly lastAttempt?: AttemptJson;
  readonly history: readonly AttemptJson[];
  /** Routing items this agent added for the artifact (removed with it). */
  readonly routingOwned?: readonly string[];
}

/** status.json: the public status document plus what the agent needs to restart. */
export interface StoredState extends StatusDocument {
  readonly records: readonly StoredArtifact[];
}

export function readStatusFile(stateDir: string): Promise<StoredState> {
  return readFile(join(stateDir, STATUS_FILE), 'utf8').then(
    (text) => JSON.parse(text) as StoredState,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new WatchError('WATCH_STATE', `no status in ${stateDir} (has nftops-watch run with --state-dir ${stateDir}?)`);
      throw new WatchError('WATCH_STATE', `cannot read ${join(stateDir, STATUS_FILE)}: ${error.message}`);
    },
  );
}

export interface StateStoreOptions {
  /** Artifacts must be signed for this key to be restored (as to be applied). */
  readonly publicKey?: KeyObject | undefined;
  /** The atomic file writer (tests inject a failing one). */
  readonly write?: typeof writeFileAtomic;
}

export class StateStore {
  private readonly written = new Set<string>();
  private readonly write: typeof writeFileAtomic;

  constructor(
    readonly dir: string,
    private readonly options: StateStoreOptions = {},
  ) {
    this.write = options.write ?? writeFileAtomic;
  }

  async init(): Promise<void> {
    try {
      await mkdir(join(this.dir, LAST_GOOD), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new WatchError('WATCH_STATE', `cannot create the state directory ${this.dir}: ${(error as Error).message}`);
    }
  }

  async load(): Promise<LoadedState> {
    let stored: StoredState;
    try {
      stored = JSON.parse(await readFile(join(this.dir, STATUS_FILE), 'utf8')) as StoredState;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], recent: [], lastSuccessAt: undefined, problems: [] };
      return { records: [], recent: [], lastSuccessAt: undefined, problems: [`${STATUS_FILE} unreadable, starting without last good copies: ${(error as Error).message}`] };
    }
    const problems: string[] = [];
    const records: ArtifactRecord[] = [];
    for (const item of stored.records ?? []) {
      let applied: ArtifactRecord['applied'];
      if (item.applied) {
        const path = join(this.dir, LAST_GOOD, `${item.applied.contentDigest}.nft`);
        try {
          const bytes = await readFile(path);
          const verdict = judge(bytes, { publicKey: this.options.publicKey });
          // Copies written before version digests were header digests are named by the sha256 of the whole file.
          if (!verdict.ok || (versionDigest(bytes, verdict) !== item.applied.contentDigest && sha256(bytes) !== item.applied.contentDigest)) {
            throw new Error('the copy does not match its digest');
          }
          applied = {
            contentDigest: item.applied.contentDigest,
            bodyDigest: verdict.bodyDigest,
            tables: verdict.tables,
            file: item.applied.file,
            appliedAt: Date.parse(item.applied.appliedAt),
            fingerprint: item.applied.fingerprint,
            bytes,
            body: verdict.body,
            routing: verdict.routing,
          };
          this.written.add(item.applied.contentDigest);
        } catch (error) {
          problems.push(`last good copy of ${item.id} (${path}) unusable: ${(error as Error).message}`);
        }
      }
      const history = (item.history ?? []).map(attemptFromJson);
      const lastAttempt = item.lastAttempt ? attemptFromJson(item.lastAttempt) : undefined;
      records.push({
        id: item.id,
        target: targetFor(item.netns === 'host' ? undefined : item.netns),
        sourcePath: item.sourcePath,
        applied,
        live: false,
        rejectedDigest: item.rejectedDigest,
        lastAttempt: lastAttempt && history[0] && history[0].at === lastAttempt.at && history[0].digest === lastAttempt.digest ? history[0] : lastAttempt,
        history,
        routingOwned: new Set(item.routingOwned ?? []),
        routingPending: false,
      });
    }
    return {
      records,
      recent: (stored.recent ?? []).map(attemptFromJson),
      lastSuccessAt: stored.lastSuccessAt ? Date.parse(stored.lastSuccessAt) : undefined,
      problems,
    };
  }

  /** Writes the copies of applied artifacts, then the status document, then removes copies nobody names. */
  async save(status: StatusDocument, records: readonly ArtifactRecord[]): Promise<void> {
    // Everything is taken from the records before the first write: the agent goes on reconciling while the
    // files are written, and the status document must name exactly the copies written before it.
    const keep = new Set<string>();
    const copies: [string, Buffer][] = [];
    for (const record of records) {
      if (!record.applied) continue;
      keep.add(record.applied.contentDigest);
      if (!this.written.has(record.applied.contentDigest)) copies.push([record.applied.contentDigest, record.applied.bytes]);
    }
    const stored: StoredState = {
      ...status,
      records: records.map((r) => ({
        id: r.id,
        netns: r.target.key,
        sourcePath: r.sourcePath,
        ...(r.applied
          ? {
              applied: {
                contentDigest: r.applied.contentDigest,
                file: r.applied.file,
                appliedAt: new Date(r.applied.appliedAt).toISOString(),
                ...(r.applied.fingerprint ? { fingerprint: r.applied.fingerprint } : {}),
              },
            }
          : {}),
        ...(r.rejectedDigest ? { rejectedDigest: r.rejectedDigest } : {}),
        ...(r.lastAttempt ? { lastAttempt: { ...r.lastAttempt, at: new Date(r.lastAttempt.at).toISOString(), firstAt: new Date(r.lastAttempt.firstAt).toISOString() } } : {}),
        history: r.history.map((a) => ({ ...a, at: new Date(a.at).toISOString(), firstAt: new Date(a.firstAt).toISOString() })),
        ...(r.routingOwned.size > 0 ? { routingOwned: [...r.routingOwned].sort() } : {}),
      })),
    };
    const statusText = `${JSON.stringify(stored, null, 2)}\n`;
    for (const [digest, bytes] of copies) {
      if (this.written.has(digest)) continue;
      await this.write(join(this.dir, LAST_GOOD, `${digest}.nft`), bytes);
      this.written.add(digest);
    }
    faultPoint('during-save');
    await this.write(join(this.dir, STATUS_FILE), statusText, 0o644);
    for (const name of await readdir(join(this.dir, LAST_GOOD))) {
      const digest = name.replace(/\.nft$/, '');
      if (keep.has(digest)) continue;
      if (name.endsWith('.tmp') || name.endsWith('.nft')) {
        await unlink(join(this.dir, LAST_GOOD, name)).catch(() => {});
        this.written.delete(digest);
      }
    }
  }
}

export type { AgentInfo };
