import type { Routing, TableRef } from '@nftops/artifact';
import type { WatchErrorCode } from './errors.js';
import type { TablesModel } from './fingerprint.js';
import type { LiveState } from './hitless.js';
import type { BodyIndex } from './plan.js';
import type { ArtifactBody, Target } from './scan.js';

export type Trigger = 'startup' | 'event' | 'interval' | 'signal' | 'retry' | 'once' | 'manual';

/**
 * What happened to one artifact version:
 * applied (new version live), repaired (drift undone), removed (tables deleted), released (no longer managed,
 * tables left: pruning off), checked (dry run: nft --check passed), rejected (nft refused it, or a table
 * conflict), invalid (digest mismatch, bad header, unsafe body), error (nft failed to run, namespace missing).
 */
export type AttemptResult = 'applied' | 'repaired' | 'removed' | 'released' | 'checked' | 'rejected' | 'invalid' | 'error';

export const FAILED_RESULTS: ReadonlySet<AttemptResult> = new Set(['rejected', 'invalid', 'error']);

export interface Attempt {
  readonly id: string;
  readonly netns: string;
  /** `sha256:<hex>` of the body for a readable artifact; `file-sha256:<hex>` of the whole file otherwise. */
  readonly digest: string;
  readonly result: AttemptResult;
  readonly code?: WatchErrorCode;
  readonly message?: string;
  readonly trigger: Trigger;
  /** When this result was first and last seen for this digest (ms since the epoch), and how often. */
  readonly firstAt: number;
  readonly at: number;
  readonly count: number;
}

export interface AppliedVersion {
  readonly contentDigest: string;
  readonly bodyDigest: string;
  readonly tables: readonly TableRef[];
  readonly file: string;
  readonly appliedAt: number;
  /** Fingerprint of the owned tables as read back after the apply; undefined if the read-back failed. */
  readonly fingerprint: string | undefined;
  /** The whole artifact file (kept on disk under last-good/). */
  readonly bytes: Buffer;
  readonly body: ArtifactBody;
  /** In memory only: the owned tables as last read back, for the keep-base-chains rewrite of the next version. */
  readonly liveTables?: ReadonlyMap<string, LiveState>;
  /** The routing the artifact carries (`# routing:` header). */
  readonly routing: Routing;
  /** How this version went in: the artifact whole (`full`) or as an incremental transaction. */
  readonly mode?: 'full' | 'incremental';
  /** In memory only: the model of the tables as last read back, to check the next incremental apply. */
  readonly model?: TablesModel;
  /** In memory only: the body cut into objects, computed once for planning the next version. */
  index?: BodyIndex | null;
}

export interface ArtifactRecord {
  readonly id: string;
  target: Target;
  sourcePath: string;
  applied: AppliedVersion | undefined;
  /** True when `applied` is known to be in the kernel (false after a restart until re-applied). */
  live: boolean;
  /** A content digest that failed for a reason a retry cannot fix; not tried again until it changes (or SIGHUP). */
  rejectedDigest: string | undefined;
  lastAttempt: Attempt | undefined;
  /** Newest first, at most five, deduplicated by digest and result. */
  history: Attempt[];
  /** Routing items (formatRoutingItem lines) this agent added for the artifact and will remove with it. */
  routingOwned: Set<string>;
  /** The routing still has to be applied (or removed) in the namespace: a failure to retry. */
  routingPending: boolean;
  routingError?: { message: string; at: number; count: number } | undefined;
  /** The live tables were found different from the recorded fingerprint: the next change goes in whole. */
  driftSuspect?: boolean;
  /** Why the newest version was not applied incrementally, if it was not. */
  lastFallback?: string | undefined;
}

export interface AgentInfo {
  readonly pid: number;
  readonly startedAt: string;
  readonly listen: string | undefined;
  readonly dryRun: boolean;
  readonly prune: boolean;
  readonly sources: readonly { path: string; netns?: string }[];
}

export interface ArtifactStatus {
  readonly id: string;
  readonly netns: string;
  readonly sourcePath: string;
  readonly state: 'Ready' | 'Failing' | 'Pending';
  readonly live: boolean;
  readonly applied?: {
    readonly digest: string;
    readonly file: string;
    readonly at: string;
    readonly tables: readonly string[];
    readonly fingerprint?: string;
    readonly mode?: 'full' | 'incremental';
  };
  /** The artifact's routing companion, when it carries one. */
  readonly routing?: {
    readonly items: readonly string[];
    readonly state: 'Ready' | 'Failing';
    readonly error?: string;
    readonly failures?: number;
    readonly since?: string;
  };
  /** Why the newest version went in whole although an earlier version was applied. */
  readonly incrementalFallback?: string;
  readonly lastAttempt?: AttemptJson;
  readonly history: readonly AttemptJson[];
}

export type AttemptJson = Omit<Attempt, 'at' | 'firstAt'> & { readonly at: string; readonly firstAt: string };

/** The document written to <state dir>/status.json, served on /status and printed by `nftops-watch status`. */
export interface StatusDocument {
  readonly version: 1;
  readonly updatedAt: string;
  readonly agent?: AgentInfo;
  readonly ready: boolean;
  readonly lastSuccessAt?: string;
  readonly artifacts: readonly ArtifactStatus[];
  /** The last five attempts across all artifacts, newest first. */
  readonly recent: readonly AttemptJson[];
  /** Set while the state directory cannot be written (rules are applied, last good copies are not kept). */
  readonly stateError?: string;
}

export const iso = (ms: number) => new Date(ms).toISOString();

export function attemptJson(attempt: Attempt): AttemptJson {
  return { ...attempt, at: iso(attempt.at), firstAt: iso(attempt.firstAt) };
}

export function attemptFromJson(json: AttemptJson): Attempt {
  return { ...json, at: Date.parse(json.at), firstAt: Date.parse(json.firstAt) };
}
