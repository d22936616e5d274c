import { access } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { formatRoutingItem, parseRouting, type Routing, type RoutingItem, type TableRef } from '@nftops/artifact';
import { createIpRouting, type IpRoutingDriver, type NftDriver, type NftTableJson, type NftTarget } from '@nftops/nft-driver';
import type { Clock } from './clock.js';
import type { SourceSpec } from './config.js';
import { describeError, type WatchErrorCode } from './errors.js';
import { faultPoint, faultWhileChildRuns } from './fault.js';
import { checkIncremental, modelFingerprint, patchModel, tablesModel, touchedObjects, type ObjectRef, type TablesModel } from './fingerprint.js';
import { keepBaseChains, leftovers, liveState, type LiveState } from './hitless.js';
import type { Logger } from './log.js';
import type { WatchMetrics } from './metrics.js';
import {
  FAILED_RESULTS,
  attemptJson,
  iso,
  type AppliedVersion,
  type ArtifactRecord,
  type ArtifactStatus,
  type Attempt,
  type AttemptResult,
  type StatusDocument,
  type Trigger,
} from './model.js';
import { indexBody, planChange, type BodyIndex, type ChangePlan } from './plan.js';
import { desiredFromBytes, ownedCopy, ReadBuffers, scanSources, type ArtifactBody, type DesiredArtifact, type ScanOptions, type ScannedSource, type Target } from './scan.js';

export interface ReconcilerOptions {
  readonly driver: NftDriver;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics?: WatchMetrics;
  readonly sources: readonly SourceSpec[];
  readonly prune: boolean;
  readonly dryRun: boolean;
  readonly maxArtifactBytes: number;
  /** Only artifacts signed for this ed25519 key are applied. */
  readonly publicKey?: KeyObject | undefined;
  /** The uid artifact files must belong to (undefined: any). */
  readonly owner?: number | undefined;
  readonly allowWritable?: boolean;
  /** Apply changes of an applied artifact as element/chain-level transactions when possible (default true). */
  readonly incremental?: boolean;
  /** Applies the routing artifacts carry; default: `ip` in the target namespace. */
  readonly routing?: IpRoutingDriver;
  /** Whether a named namespace exists; default: /var/run/netns/NAME (or the absolute path) is accessible. */
  readonly netnsExists?: (netns: string) => Promise<boolean>;
  readonly scan?: (sources: readonly SourceSpec[], options: ScanOptions) => Promise<ScannedSource[]>;
}

export interface ReconcileOptions {
  readonly trigger: Trigger;
  /** Compare live tables with their fingerprints and repair drift. */
  readonly drift: boolean;
  /** Retry versions remembered as rejected. */
  readonly force?: boolean;
}

export interface ReconcileReport {
  /** Anything in the records changed (worth persisting). */
  changed: boolean;
  applied: number;
  repaired: number;
  removed: number;
  /** Versions refused for good (rejected, invalid). */
  rejected: number;
  /** Failures a later retry may fix (nft error, missing namespace). */
  errors: number;
  durationMs: number;
  /** Time spent reading and verifying the directories. */
  scanMs?: number;
}

interface Item {
  readonly record: ArtifactRecord;
  readonly kind: 'change' | 'repair';
  readonly artifact: DesiredArtifact;
  readonly tables: readonly TableRef[];
  readonly body: ArtifactBody;
  readonly bodyDigest: string;
  readonly routing: Routing;
  /** The incremental transaction from the applied version, when one is planned. */
  plan?: Extract<ChangePlan, { ok: true }> | undefined;
  /** The body cut into objects (computed while planning), kept for planning the next version. */
  index?: BodyIndex | null;
  planMs?: number;
}

type TxResult = { ok: true } | { ok: false; stderr: string; phase: 'check' | 'apply' };

/**
 * nft failures that say nothing about the ruleset (permissions, memory, a busy kernel): retried like a failure to
 * run nft, never remembered as a bad artifact.
 */
const TRANSIENT = /(?:nsenter|unshare): failed to execute|Operation not permitted|Permission denied|Cannot allocate memory|No buffer space available|Resource temporarily unavailable|Interrupted system call|Device or resource busy|Connection refused|Could not receive|Netlink error|Broken pipe|Killed/i;

export function transientFailure(stderr: string): boolean {
  return TRANSIENT.test(stderr);
}

const tableKey = (t: TableRef) => `${t.family} ${t.name}`;

async function defaultNetnsExists(netns: string): Promise<boolean> {
  try {
    await access(netns.includes('/') ? netns : `/var/run/netns/${netns}`);
    return true;
  } catch {
    return false;
  }
}

/** The transaction text: guarded deletes first (add + delete never fails on nft 1.0.6), then each body. */
export function composeTransaction(deletes: readonly TableRef[], bodies: readonly string[]): string {
  let text = '';
  for (const t of deletes) text += `table ${t.family} ${t.name}\ndelete table ${t.family} ${t.name}\n`;
  for (const body of bodies) text += body.endsWith('\n') ? body : `${body}\n`;
  return text;
}

function firstLines(text: string, max = 3): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, max)
    .join(' | ');
}

function digestOf(artifact: DesiredArtifact): string {
  return artifact.verdict.ok ? `sha256:${artifact.verdict.bodyDigest}` : `file-sha256:${artifact.contentDigest}`;
}

/**
 * The state machine: desired artifacts (from the directories) against applied ones (what this agent put into
 * the kernel). One pass scans, then per namespace builds one transaction of everything that changed, checks
 * it, applies it, reads the owned tables back and records a fingerprint. Passes must not overlap; the agent
 * serialises them.
 */
export class Reconciler {
  private readonly records = new Map<string, ArtifactRecord>();
  private recent: Attempt[] = [];
  private readonly warned = new Set<string>();
  private readyFlag = false;
  private lastSuccessAt: number | undefined;
  private readonly netnsExists: (netns: string) => Promise<boolean>;
  private readonly scan: (sources: readonly SourceSpec[], options: ScanOptions) => Promise<ScannedSource[]>;
  private routingDriver: IpRoutingDriver | undefined;
  /** Routing items of artifacts that are gone, still to be removed (per namespace; retried). */
  private readonly orphanRouting = new Map<string, Set<string>>();
  private readonly scanOptions: ScanOptions;

  constructor(private readonly options: ReconcilerOptions) {
    this.netnsExists = options.netnsExists ?? defaultNetnsExists;
    this.scan = options.scan ?? scanSources;
    this.routingDriver = options.routing;
    this.scanOptions = {
      maxBytes: options.maxArtifactBytes,
      publicKey: options.publicKey,
      owner: options.owner,
      allowWritable: options.allowWritable ?? false,
      buffers: new ReadBuffers(),
    };
  }

  private get routing(): IpRoutingDriver {
    return (this.routingDriver ??= createIpRouting());
  }

  get ready(): boolean {
    return this.readyFlag;
  }

  /** Loads records from the state store. Their versions are not assumed live until applied again. */
  restore(records: readonly ArtifactRecord[], recent: readonly Attempt[], lastSuccessAt?: number): void {
    for (const record of records) {
      this.records.set(record.id, { ...record, live: false, history: [...record.history], routingOwned: new Set(record.routingOwned ?? []), routingPending: false });
    }
    this.recent = [...recent].slice(0, 5);
    this.lastSuccessAt = lastSuccessAt;
  }

  /** Forget the versions remembered as rejected, so the next pass tries them again (SIGHUP). */
  forgetRejected(): void {
    for (const record of this.records.values()) record.rejectedDigest = undefined;
  }

  allRecords(): ArtifactRecord[] {
    return [...this.records.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  recentAttempts(): readonly Attempt[] {
    return this.recent;
  }

  status(now: number, agent?: StatusDocument['agent']): StatusDocument {
    const artifacts: ArtifactStatus[] = this.allRecords().map((r) => {
      const failing = r.lastAttempt !== undefined && FAILED_RESULTS.has(r.lastAttempt.result);
      return {
        id: r.id,
        netns: r.target.key,
        sourcePath: r.sourcePath,
        state: failing ? 'Failing' : r.applied && r.live ? 'Ready' : 'Pending',
        live: r.live,
        ...(r.applied
          ? {
              applied: {
                digest: `sha256:${r.applied.bodyDigest}`,
                file: r.applied.file,
                at: iso(r.applied.appliedAt),
                tables: r.applied.tables.map(tableKey),
                ...(r.applied.fingerprint ? { fingerprint: `sha256:${r.applied.fingerprint}` } : {}),
                ...(r.applied.mode ? { mode: r.applied.mode } : {}),
              },
            }
          : {}),
        ...(r.applied && r.applied.routing.items.length > 0
          ? {
              routing: {
                items: r.applied.routing.items.map(formatRoutingItem),
                state: r.routingError ? ('Failing' as const) : ('Ready' as const),
                ...(r.routingError ? { error: r.routingError.message, failures: r.routingError.count, since: iso(r.routingError.at) } : {}),
              },
            }
          : {}),
        ...(r.lastFallback ? { incrementalFallback: r.lastFallback } : {}),
        ...(r.lastAttempt ? { lastAttempt: attemptJson(r.lastAttempt) } : {}),
        history: r.history.map(attemptJson),
      };
    });
    return {
      version: 1,
      updatedAt: iso(now),
      ...(agent ? { agent } : {}),
      ready: this.readyFlag,
      ...(this.lastSuccessAt !== undefined ? { lastSuccessAt: iso(this.lastSuccessAt) } : {}),
      artifacts,
      recent: this.recent.map(attemptJson),
    };
  }

  async reconcile(opts: ReconcileOptions): Promise<ReconcileReport> {
    const { clock, metrics } = this.options;
    const started = clock.monotonic();
    const report: ReconcileReport = { changed: false, applied: 0, repaired: 0, removed: 0, rejected: 0, errors: 0, durationMs: 0 };
    if (opts.force) this.forgetRejected();
    let anyWanted: boolean;
    try {
      anyWanted = await this.pass(opts, report, started);
    } finally {
      // What this pass keeps was copied (ownedCopy): the buffers its files were read into are free again.
      this.scanOptions.buffers?.release();
    }
    if (!this.readyFlag && (report.applied > 0 || (!anyWanted && report.errors === 0 && report.rejected === 0) || (this.options.dryRun && report.rejected === 0 && report.errors === 0))) {
      this.readyFlag = true;
      report.changed = true;
      metrics?.ready.set(1);
    }
    report.durationMs = clock.monotonic() - started;
    metrics?.reconcileDuration.observe({ trigger: opts.trigger }, report.durationMs / 1000);
    return report;
  }

  /** Scans and brings every namespace in line; returns whether any artifact is wanted. */
  private async pass(opts: ReconcileOptions, report: ReconcileReport, started: number): Promise<boolean> {
    const scanned = await this.scan(this.options.sources, this.scanOptions);
    report.scanMs = Math.round(this.options.clock.monotonic() - started);
    const desired = this.collectDesired(scanned);

    const targets = new Map<string, Target>();
    for (const artifact of desired.values()) targets.set(artifact.target.key, artifact.target);
    for (const record of this.records.values()) if (!targets.has(record.target.key)) targets.set(record.target.key, record.target);
    const wantedByTarget = new Map<string, DesiredArtifact[]>();
    for (const artifact of desired.values()) {
      const list = wantedByTarget.get(artifact.target.key) ?? [];
      list.push(artifact);
      wantedByTarget.set(artifact.target.key, list);
    }
    let anyWanted = false;
    for (const key of [...targets.keys()].sort()) {
      const wanted = (wantedByTarget.get(key) ?? []).sort((a, b) => (a.id < b.id ? -1 : 1));
      if (wanted.length > 0) anyWanted = true;
      await this.syncTarget(targets.get(key)!, wanted, opts, report);
    }
    return anyWanted;
  }

  /** Desired artifacts: what the directories hold, plus the last good versions of unavailable directories. */
  private collectDesired(scanned: readonly ScannedSource[]): Map<string, DesiredArtifact> {
    const desired = new Map<string, DesiredArtifact>();
    for (const source of scanned) {
      const warnKey = `unavailable:${source.spec.path}`;
      if (!source.available) {
        if (!this.warned.has(warnKey)) {
          this.warned.add(warnKey);
          this.options.logger.warn('source.unavailable', 'artifact directory unavailable; keeping its last good artifacts', {
            path: source.spec.path,
            reason: source.error,
          });
        }
        for (const record of this.records.values()) {
          if (record.sourcePath !== source.spec.path || !record.applied || desired.has(record.id)) continue;
          desired.set(record.id, desiredFromBytes(record.id, record.sourcePath, record.target, record.applied.file, record.applied.bytes, this.scanOptions));
        }
        continue;
      }
      if (this.warned.delete(warnKey)) {
        this.options.logger.info('source.available', 'artifact directory available', { path: source.spec.path, realPath: source.realPath });
      }
      for (const artifact of source.artifacts) {
        const existing = desired.get(artifact.id);
        if (existing) {
          const key = `duplicate:${artifact.file}`;
          if (!this.warned.has(key)) {
            this.warned.add(key);
            this.options.logger.warn('artifact.duplicate', `two files map to artifact ${artifact.id}; ignoring the second`, {
              code: 'WATCH_DUPLICATE_ARTIFACT',
              kept: existing.file,
              ignored: artifact.file,
            });
          }
          continue;
        }
        desired.set(artifact.id, artifact);
      }
    }
    return desired;
  }

  private recordFor(artifact: DesiredArtifact): ArtifactRecord {
    let record = this.records.get(artifact.id);
    if (!record) {
      record = {
        id: artifact.id,
        target: artifact.target,
        sourcePath: artifact.sourcePath,
        applied: undefined,
        live: false,
        rejectedDigest: undefined,
        lastAttempt: undefined,
        history: [],
        routingOwned: new Set(),
        routingPending: false,
      };
      this.records.set(artifact.id, record);
    }
    record.sourcePath = artifact.sourcePath;
    return record;
  }

  /** Records an attempt; repeated identical results update the newest entry. Returns true when new. */
  private attempt(
    record: ArtifactRecord,
    digest: string,
    result: AttemptResult,
    trigger: Trigger,
    failure?: { code: WatchErrorCode; message: string },
  ): boolean {
    const now = this.options.clock.now();
    const last = record.lastAttempt;
    // A drift repair puts the last good version back; it does not make a refused newer version good. Such a
    // repair goes into the history but the refusal stays the "last attempted" version.
    const behindRefusal = result === 'repaired' && last !== undefined && FAILED_RESULTS.has(last.result);
    this.options.metrics?.setFailing(record.id, record.target.key, FAILED_RESULTS.has(result) || behindRefusal);
    if (!behindRefusal && last && last.digest === digest && last.result === result && last.code === failure?.code) {
      const updated: Attempt = { ...last, at: now, count: last.count + 1, trigger, ...(failure ? { message: failure.message } : {}) };
      record.lastAttempt = updated;
      if (record.history[0] === last) record.history[0] = updated;
      const index = this.recent.indexOf(last);
      if (index >= 0) this.recent[index] = updated;
      return false;
    }
    const attempt: Attempt = {
      id: record.id,
      netns: record.target.key,
      digest,
      result,
      ...(failure ? { code: failure.code, message: failure.message } : {}),
      trigger,
      firstAt: now,
      at: now,
      count: 1,
    };
    if (!behindRefusal) record.lastAttempt = attempt;
    record.history = [attempt, ...record.history].slice(0, 5);
    this.recent = [attempt, ...this.recent].slice(0, 5);
    return true;
  }

  private fail(
    record: ArtifactRecord,
    artifact: DesiredArtifact,
    result: 'rejected' | 'invalid' | 'error',
    code: WatchErrorCode,
    message: string,
    opts: ReconcileOptions,
    report: ReconcileReport,
    remember: boolean,
  ): void {
    if (remember) record.rejectedDigest = artifact.contentDigest;
    if (result === 'error') report.errors++;
    else report.rejected++;
    const fresh = this.attempt(record, digestOf(artifact), result, opts.trigger, { code, message });
    report.changed = true;
    if (!fresh) return; // the same failure again: counted in the history entry, not logged or metered again
    this.options.metrics?.applies.inc({ result });
    if (result === 'invalid') this.options.metrics?.refused.inc({ code });
    const event = result === 'invalid' ? 'artifact.invalid' : result === 'rejected' ? 'apply.rejected' : 'apply.error';
    const verb = result === 'invalid' ? 'artifact refused' : result === 'rejected' ? 'nft refused the artifact' : 'could not apply the artifact';
    this.options.logger.log(result === 'error' ? 'error' : 'warn', event, `${verb}; the last good rules stay`, {
      artifact: record.id,
      netns: record.target.key,
      file: artifact.file,
      digest: digestOf(artifact),
      code,
      error: message,
      lastGood: record.applied ? `sha256:${record.applied.bodyDigest}` : undefined,
    });
  }

  private async syncTarget(target: Target, wanted: readonly DesiredArtifact[], opts: ReconcileOptions, report: ReconcileReport): Promise<void> {
    const { logger } = this.options;
    const wantedIds = new Set(wanted.map((a) => a.id));
    const recordsHere = [...this.records.values()].filter((r) => r.target.key === target.key);

    // 1. Classify the desired artifacts.
    let changed: { record: ArtifactRecord; artifact: DesiredArtifact }[] = [];
    const present: ArtifactRecord[] = [];
    for (const artifact of wanted) {
      const record = this.recordFor(artifact);
      present.push(record);
      if (record.target.key !== target.key) record.target = target;
      if (!opts.force && record.rejectedDigest === artifact.contentDigest) continue;
      if (!artifact.verdict.ok) {
        this.fail(record, artifact, 'invalid', artifact.verdict.code, artifact.verdict.message, opts, report, true);
        continue;
      }
      if (record.applied && record.live && record.applied.contentDigest === artifact.contentDigest) continue;
      if (this.options.dryRun && !opts.force && record.lastAttempt?.result === 'checked' && record.lastAttempt.digest === digestOf(artifact)) continue;
      changed.push({ record, artifact });
    }
    const removed = recordsHere.filter((r) => !wantedIds.has(r.id));
    const routingWork = !this.options.dryRun && (recordsHere.some((r) => r.routingPending) || (this.orphanRouting.get(target.key)?.size ?? 0) > 0);
    if (changed.length === 0 && removed.length === 0 && !opts.drift && !routingWork) return;

    // 2. The namespace must exist.
    if (target.netns !== undefined && !(await this.netnsExists(target.netns))) {
      for (const record of recordsHere) record.live = false;
      for (const { record, artifact } of changed) {
        this.fail(record, artifact, 'error', 'WATCH_NETNS_MISSING', `network namespace ${target.netns} does not exist`, opts, report, false);
      }
      for (const record of removed) {
        this.records.delete(record.id);
        this.options.metrics?.setApplied(record.id, record.target.key, undefined);
        this.options.metrics?.setFailing(record.id, record.target.key, undefined);
        report.changed = true;
        logger.info('artifact.forgotten', 'artifact removed while its namespace is gone; nothing to delete', { artifact: record.id, netns: target.key });
      }
      return;
    }
    const nftTarget: NftTarget | undefined = target.netns === undefined ? undefined : { netns: target.netns };

    // 3. Table ownership: the tables each present artifact will own after this pass.
    const holders = new Map<string, ArtifactRecord>();
    for (const record of present) for (const t of record.applied?.tables ?? []) holders.set(tableKey(t), record);
    const claims = new Map<string, ArtifactRecord[]>();
    const changedIds = new Set(changed.map((c) => c.record.id));
    const claim = (record: ArtifactRecord, tables: readonly TableRef[]) => {
      for (const t of tables) claims.set(tableKey(t), [...(claims.get(tableKey(t)) ?? []), record]);
    };
    for (const { record, artifact } of changed) if (artifact.verdict.ok) claim(record, artifact.verdict.tables);
    for (const record of present) if (!changedIds.has(record.id) && record.applied) claim(record, record.applied.tables);
    const conflicted = new Set<string>();
    for (const [key, claimants] of claims) {
      if (claimants.length < 2) continue;
      const holder = holders.get(key);
      for (const record of claimants) if (record !== holder) conflicted.add(record.id);
    }
    if (conflicted.size > 0) {
      changed = changed.filter(({ record, artifact }) => {
        if (!conflicted.has(record.id)) return true;
        const others = artifact.verdict.ok
          ? artifact.verdict.tables.flatMap((t) => (claims.get(tableKey(t)) ?? []).filter((r) => r !== record).map((r) => `${tableKey(t)} (${r.id})`))
          : [];
        this.fail(record, artifact, 'rejected', 'WATCH_TABLE_CONFLICT', `tables already claimed by other artifacts: ${[...new Set(others)].join(', ')}`, opts, report, false);
        return false;
      });
    }
    const applying = new Set(changed.map((c) => c.record.id));
    const claimedAfter = new Set<string>();
    for (const { artifact } of changed) if (artifact.verdict.ok) for (const t of artifact.verdict.tables) claimedAfter.add(tableKey(t));
    for (const record of present) if (!applying.has(record.id)) for (const t of record.applied?.tables ?? []) claimedAfter.add(tableKey(t));

    // 4. Tables to delete: those of removed artifacts, and those a changed artifact no longer owns.
    const deletes = new Map<string, TableRef>();
    const pruned: ArtifactRecord[] = [];
    for (const record of removed) {
      if (!record.applied) {
        this.records.delete(record.id);
        this.options.metrics?.setFailing(record.id, record.target.key, undefined);
        report.changed = true;
        continue;
      }
      if (!this.options.prune || this.options.dryRun) {
        if (this.options.dryRun) continue;
        this.attempt(record, `sha256:${record.applied.bodyDigest}`, 'released', opts.trigger);
        this.records.delete(record.id);
        this.options.metrics?.setApplied(record.id, record.target.key, undefined);
        this.options.metrics?.setFailing(record.id, record.target.key, undefined);
        report.changed = true;
        logger.info('artifact.released', 'artifact file removed; pruning is off, so its tables stay and are no longer managed', {
          artifact: record.id,
          netns: target.key,
          tables: record.applied.tables.map(tableKey),
        });
        continue;
      }
      pruned.push(record);
      for (const t of record.applied.tables) if (!claimedAfter.has(tableKey(t))) deletes.set(tableKey(t), t);
    }
    for (const { record, artifact } of changed) {
      if (!record.applied || !artifact.verdict.ok) continue;
      const now = new Set(artifact.verdict.tables.map(tableKey));
      for (const t of record.applied.tables) if (!now.has(tableKey(t)) && !claimedAfter.has(tableKey(t))) deletes.set(tableKey(t), t);
    }

    // 5. One transaction for the changes and deletions; then, on a drift check, repair what drifted.
    const changes: Item[] = [];
    for (const { record, artifact } of changed) {
      if (!artifact.verdict.ok) continue;
      const item: Item = {
        record,
        kind: 'change',
        artifact,
        tables: artifact.verdict.tables,
        body: artifact.verdict.body,
        bodyDigest: artifact.verdict.bodyDigest,
        routing: artifact.verdict.routing,
      };
      this.planIncremental(item, target);
      changes.push(item);
    }
    // Routing of the versions replaced or removed in this pass, to take away what the new state no longer wants.
    const routingBefore = new Map<string, { record: ArtifactRecord; routing: Routing }>();
    for (const record of recordsHere) if (record.applied) routingBefore.set(record.id, { record, routing: record.applied.routing });
    let inFlight: Item[] = changes;
    const done = new Set<string>();
    try {
      if (changes.length > 0 || deletes.size > 0 || pruned.length > 0) {
        for (const id of await this.execute(target, nftTarget, changes, [...deletes.values()], pruned, opts, report)) done.add(id);
      }
      if (opts.drift) {
        const repairs: Item[] = [];
        for (const record of present) {
          if (done.has(record.id) || !record.applied || !record.live) continue;
          const read = await this.readTables(record.applied.tables, nftTarget);
          const live = read.fingerprint;
          if (record.applied.fingerprint === undefined) {
            record.applied = { ...record.applied, fingerprint: live, liveTables: read.liveTables, model: read.model };
            report.changed = true;
            continue;
          }
          if (live === record.applied.fingerprint) {
            record.applied = { ...record.applied, liveTables: read.liveTables, model: read.model };
            continue;
          }
          record.driftSuspect = true;
          logger.warn('drift.detected', 'live tables differ from what was applied', {
            artifact: record.id,
            netns: target.key,
            expected: `sha256:${record.applied.fingerprint}`,
            found: `sha256:${live}`,
          });
          if (this.options.dryRun) continue;
          const artifact = desiredFromBytes(record.id, record.sourcePath, record.target, record.applied.file, record.applied.bytes);
          repairs.push({
            record,
            kind: 'repair',
            artifact,
            tables: record.applied.tables,
            body: record.applied.body,
            bodyDigest: record.applied.bodyDigest,
            routing: record.applied.routing,
          });
        }
        inFlight = repairs;
        if (repairs.length > 0) for (const id of await this.execute(target, nftTarget, repairs, [], [], opts, report)) done.add(id);
      }
    } catch (error) {
      // nft could not run (missing, timed out, namespace vanished): the kernel state is unknown, so nothing in
      // this namespace is considered live; the next pass re-applies.
      const message = describeError(error);
      for (const record of recordsHere) record.live = false;
      for (const record of present) record.live = false;
      const changesHit = inFlight.filter((item) => item.kind === 'change');
      for (const item of changesHit) this.fail(item.record, item.artifact, 'error', 'WATCH_NFT_ERROR', message, opts, report, false);
      if (changesHit.length === 0) {
        report.errors++;
        logger.error('apply.error', 'nft failed', { netns: target.key, code: 'WATCH_NFT_ERROR', error: message });
      }
    }
    if (!this.options.dryRun) await this.syncRouting(target, routingBefore, done, opts, report);
  }

  /**
   * Decides whether ITEM (a new version of an applied artifact) can go in as an incremental transaction and
   * plans it; otherwise records why not. Full apply whenever there is doubt: the applied version is not known to
   * be live (start-up, after an nft failure), its tables were never read back or drifted, or the planner refuses.
   */
  private planIncremental(item: Item, target: Target): void {
    const { record } = item;
    const previous = record.applied;
    if (!previous || this.options.dryRun || this.options.incremental === false) return;
    let reason: string;
    let detail: string | undefined;
    if (!record.live) reason = 'not-live';
    else if (record.driftSuspect) reason = 'drift';
    else if (previous.fingerprint === undefined || previous.model === undefined) reason = 'unverified';
    else {
      if (previous.index === undefined) previous.index = indexBody(previous.body.bytes) ?? null;
      item.index = indexBody(item.body.bytes) ?? null;
      const started = this.options.clock.monotonic();
      const plan = planChange(previous.body.bytes, item.body.bytes, previous.index ?? undefined, item.index ?? undefined);
      item.planMs = Math.round(this.options.clock.monotonic() - started);
      if (plan.ok) {
        item.plan = plan;
        return;
      }
      reason = 'plan-refused';
      detail = plan.reason;
    }
    this.fallback(item, reason, detail, target);
  }

  private fallback(item: Item, reason: string, detail: string | undefined, target: Target): void {
    item.plan = undefined;
    item.record.lastFallback = detail ? `${reason}: ${detail}` : reason;
    this.options.metrics?.incrementalFallbacks.inc({ reason });
    this.options.logger.log(reason === 'plan-refused' || reason === 'not-live' ? 'debug' : 'info', 'incremental.fallback', 'applying the artifact whole', {
      artifact: item.record.id,
      netns: target.key,
      reason,
      ...(detail ? { detail: firstLines(detail) } : {}),
    });
  }

  /**
   * Brings the routing of one namespace in line: removes items that artifacts no longer carry (only those this
   * agent added, and none another artifact here still wants), then applies the routing of every artifact applied
   * in this pass, of those whose routing failed before, and on drift passes of all live ones (idempotent: only
   * missing items are added). Failures are logged, counted, shown in status and retried; nft state stays.
   */
  private async syncRouting(
    target: Target,
    before: ReadonlyMap<string, { record: ArtifactRecord; routing: Routing }>,
    done: ReadonlySet<string>,
    opts: ReconcileOptions,
    report: ReconcileReport,
  ): Promise<void> {
    const here = [...this.records.values()].filter((r) => r.target.key === target.key && r.applied);
    const wanted = new Map<string, ArtifactRecord>();
    for (const record of here) for (const item of record.applied!.routing.items) if (!wanted.has(formatRoutingItem(item))) wanted.set(formatRoutingItem(item), record);
    const orphans = this.orphanRouting.get(target.key) ?? new Set<string>();
    for (const [id, { record, routing }] of before) {
      const current = this.records.get(id);
      if (!current && !this.options.prune) {
        record.routingOwned.clear(); // released (pruning off): its routing stays, like its tables
        continue;
      }
      const now = new Set(current?.applied ? current.applied.routing.items.map(formatRoutingItem) : []);
      for (const item of routing.items) {
        const key = formatRoutingItem(item);
        if (now.has(key) || !record.routingOwned.has(key)) continue;
        record.routingOwned.delete(key);
        const heir = wanted.get(key);
        if (heir) heir.routingOwned.add(key); // another artifact still wants it: it owns it now
        else orphans.add(key);
      }
    }
    for (const key of [...orphans]) if (wanted.has(key)) orphans.delete(key);
    const nsTarget = target.netns === undefined ? undefined : { netns: target.netns };
    if (orphans.size > 0) {
      const items = itemsOf([...orphans]);
      try {
        const result = await this.routing.remove({ items }, nsTarget);
        for (const item of items) orphans.delete(formatRoutingItem(item));
        if (result.changed.length > 0) {
          this.options.metrics?.routingChanges.inc({ op: 'remove' }, result.changed.length);
          this.options.logger.info('routing.removed', 'routing no artifact wants any more was removed', { netns: target.key, items: result.changed.map(formatRoutingItem) });
        }
        report.changed = true;
      } catch (error) {
        report.errors++;
        this.options.metrics?.routingFailures.inc();
        this.options.logger.error('routing.failed', 'could not remove routing; retrying', { netns: target.key, code: 'WATCH_ROUTING', items: [...orphans], error: describeError(error) });
      }
    }
    if (orphans.size > 0) this.orphanRouting.set(target.key, orphans);
    else this.orphanRouting.delete(target.key);

    for (const record of here) {
      const routing = record.applied!.routing;
      if (routing.items.length === 0) {
        if (record.routingPending || record.routingError) {
          record.routingPending = false;
          record.routingError = undefined;
          report.changed = true;
        }
        continue;
      }
      if (!record.live || !(done.has(record.id) || record.routingPending || opts.drift)) continue;
      try {
        const result = await this.routing.apply(routing, nsTarget);
        for (const item of result.changed) record.routingOwned.add(formatRoutingItem(item));
        if (result.changed.length > 0) {
          this.options.metrics?.routingChanges.inc({ op: 'add' }, result.changed.length);
          this.options.logger.info(done.has(record.id) ? 'routing.applied' : 'routing.repaired', 'routing added', {
            artifact: record.id,
            netns: target.key,
            items: result.changed.map(formatRoutingItem),
          });
          report.changed = true;
        }
        if (record.routingError) {
          this.options.logger.info('routing.recovered', 'routing applied after earlier failures', { artifact: record.id, netns: target.key, failures: record.routingError.count });
          report.changed = true;
        }
        record.routingPending = false;
        record.routingError = undefined;
      } catch (error) {
        const message = describeError(error);
        report.errors++;
        report.changed = true;
        record.routingPending = true;
        this.options.metrics?.routingFailures.inc();
        const previous = record.routingError;
        record.routingError = { message, at: previous?.at ?? this.options.clock.now(), count: (previous?.count ?? 0) + 1 };
        if (previous?.message !== message) {
          this.options.logger.error('routing.failed', 'could not apply the artifact\'s routing; nft rules stay, retrying', {
            artifact: record.id,
            netns: target.key,
            code: 'WATCH_ROUTING',
            error: message,
          });
        }
      }
    }
  }

  private async readTables(tables: readonly TableRef[], nftTarget: NftTarget | undefined) {
    const listed = await Promise.all(
      tables.map(async (t) => ({ family: t.family, name: t.name, json: await this.options.driver.listTable(t.family, t.name, nftTarget) })),
    );
    const liveTables = new Map(listed.map((t) => [`${t.family} ${t.name}`, liveState(t.json)] as const));
    const model = tablesModel(listed);
    return { fingerprint: modelFingerprint(model), listed, liveTables, model };
  }

  /**
   * The read-back after an incremental apply that only wrote existing objects: lists those objects alone and
   * patches the model of the previous read-back with them (a 50 000-service table takes nft 1.0.6 10-25 s to
   * list, one of its backend maps 0.2 s). The objects it did not write are as that read-back found them unless
   * something else changed them since; the periodic drift check lists everything and finds that.
   */
  private async readWritten(objects: readonly ObjectRef[], model: TablesModel, liveTables: ReadonlyMap<string, LiveState>, nftTarget: NftTarget | undefined) {
    const listed = await Promise.all(
      objects.map(async (object) => ({ object, json: await this.options.driver.listObject(object.kind, object.family, object.table, object.name, nftTarget) })),
    );
    const patched = patchModel(model, listed);
    return { fingerprint: modelFingerprint(patched), listed: [] as { family: TableRef['family']; name: string; json: NftTableJson | undefined }[], liveTables, model: patched };
  }

  /**
   * `nft -f` of TEXT, without a separate `nft --check` first: the file is one transaction, and a transaction nft
   * or the kernel refuses changes nothing, so checking first would only start nft twice on every change (at 50 000
   * services each start costs as much as the transaction). A failed apply reports phase 'apply'; callers that
   * must tell a bad ruleset from a failure of the moment run the check then (see `classify`). When HITLESS is
   * given and yields an equivalent text that keeps base chains, that text is applied instead; should nft refuse
   * it, TEXT itself is applied. In a dry run only `nft --check` runs, and a refusal reports phase 'check'.
   */
  private async runTx(text: string, nftTarget: NftTarget | undefined, hitless?: () => Promise<string | undefined>): Promise<TxResult & { hitless?: boolean }> {
    const { driver, clock, metrics } = this.options;
    const started = clock.monotonic();
    try {
      if (this.options.dryRun) {
        const check = await driver.check(text, nftTarget);
        return check.ok ? { ok: true } : { ok: false, stderr: check.stderr, phase: 'check' };
      }
      const alternative = hitless ? await hitless().catch(() => undefined) : undefined;
      faultPoint('before-apply');
      if (alternative !== undefined && alternative !== text) {
        const applying = driver.apply(alternative, nftTarget);
        await faultWhileChildRuns('during-apply');
        const kept = await applying;
        if (kept.ok) {
          faultPoint('after-apply');
          return { ok: true, hitless: true };
        }
        this.options.logger.debug('hitless.fallback', 'nft refused the keep-base-chains form; applying the artifact as written', {
          netns: nftTarget?.netns ?? 'host',
          error: firstLines(kept.stderr),
        });
      }
      const applying = driver.apply(text, nftTarget);
      await faultWhileChildRuns('during-apply');
      const apply = await applying;
      if (apply.ok) faultPoint('after-apply');
      return apply.ok ? { ok: true } : { ok: false, stderr: apply.stderr, phase: 'apply' };
    } finally {
      metrics?.applyDuration.observe((clock.monotonic() - started) / 1000);
    }
  }

  /**
   * Why a transaction failed: 'check' when `nft --check` refuses TEXT too (the ruleset is bad: remembered and
   * not retried), else 'apply' (nft failed for a reason of the moment: retried). Runs only after a failure.
   */
  private async classify(text: string, failed: Extract<TxResult, { ok: false }>, nftTarget: NftTarget | undefined): Promise<Extract<TxResult, { ok: false }>> {
    if (failed.phase === 'check') return failed;
    const check = await this.options.driver.check(text, nftTarget);
    return check.ok ? failed : { ok: false, stderr: check.stderr, phase: 'check' };
  }

  /**
   * Builds the keep-base-chains text for DELETES + ITEMS: from the tables as read back after the previous apply
   * when this agent applied them and they are live, else from a fresh listing (start-up, new artifacts).
   */
  private hitlessFor(deletes: readonly TableRef[], items: readonly Item[], nftTarget: NftTarget | undefined): () => Promise<string | undefined> {
    return async () => {
      let changed = false;
      const bodies: string[] = [];
      for (const item of items) {
        if (item.plan) {
          bodies.push(item.plan.transaction);
          continue;
        }
        const cached = item.record.live ? item.record.applied?.liveTables : undefined;
        const live: ReadonlyMap<string, LiveState> = cached ?? (await this.readTables(item.tables, nftTarget)).liveTables;
        const rewritten = keepBaseChains(item.body.text, item.tables, live);
        if (rewritten !== undefined) changed = true;
        bodies.push(rewritten ?? item.body.text);
      }
      return changed ? composeTransaction(deletes, bodies) : undefined;
    };
  }

  private async execute(
    target: Target,
    nftTarget: NftTarget | undefined,
    items: readonly Item[],
    deletes: readonly TableRef[],
    pruned: readonly ArtifactRecord[],
    opts: ReconcileOptions,
    report: ReconcileReport,
  ): Promise<string[]> {
    const { logger } = this.options;
    const started = this.options.clock.monotonic();
    let good: Item[] = [...items];
    let deletesDone = deletes.length === 0;
    let hitless = false;
    const planned = this.options.dryRun ? [] : items.filter((i) => i.plan);
    let incremental = false;
    if (planned.length > 0) {
      // Changes that have a plan go in as their incremental transactions, together with everything else of the
      // namespace in one transaction; on any failure, every item goes the full way below.
      const full = items.filter((i) => !i.plan);
      const text = composeTransaction(deletes, items.map((i) => (i.plan ? i.plan.transaction : i.body.text)));
      const result = await this.runTx(text, nftTarget, full.length > 0 ? this.hitlessFor(deletes, items, nftTarget) : undefined);
      if (result.ok) {
        incremental = true;
        hitless = result.hitless === true;
      } else {
        for (const item of planned) this.fallback(item, 'apply-failed', result.stderr, target);
      }
    }
    const combined: TxResult & { hitless?: boolean } = incremental
      ? { ok: true, hitless }
      : await this.runTx(composeTransaction(deletes, items.map((i) => i.body.text)), nftTarget, this.hitlessFor(deletes, items, nftTarget));
    if (combined.ok) {
      deletesDone = true;
      hitless = combined.hitless === true;
    } else {
      // Find the culprits: check each artifact on its own, so only the bad ones are refused.
      good = [];
      for (const item of items) {
        const alone = await this.options.driver.check(composeTransaction([], [item.body.text]), nftTarget);
        if (alone.ok) good.push(item);
        else this.refuse(item, alone.stderr, 'check', opts, report);
      }
      const deletesOk = deletes.length === 0 || (await this.options.driver.check(composeTransaction(deletes, []), nftTarget)).ok;
      if (good.length > 0 || (deletesOk && deletes.length > 0)) {
        const retryDeletes = deletesOk ? deletes : [];
        const retry = await this.runTx(composeTransaction(retryDeletes, good.map((i) => i.body.text)), nftTarget, this.hitlessFor(retryDeletes, good, nftTarget));
        if (retry.ok) {
          deletesDone = deletesOk;
          hitless = retry.hitless === true;
        } else {
          // The good ones interfere with each other (for example the same `define`): apply them one at a time.
          const alone = good;
          good = [];
          for (const item of alone) {
            const text = composeTransaction([], [item.body.text]);
            const result = await this.runTx(text, nftTarget);
            if (result.ok) good.push(item);
            else {
              const why = await this.classify(text, result, nftTarget);
              this.refuse(item, why.stderr, why.phase, opts, report);
            }
          }
          if (deletesOk && deletes.length > 0) deletesDone = (await this.runTx(composeTransaction(deletes, []), nftTarget)).ok;
        }
      }
      if (!deletesDone && deletes.length > 0) {
        report.errors++;
        logger.error('prune.failed', 'nft refused to delete the tables of removed artifacts', {
          netns: target.key,
          code: 'WATCH_NFT_REJECTED',
          tables: deletes.map(tableKey),
          error: (combined.ok ? '' : combined.stderr).trim().slice(0, 500),
        });
      }
    }
    const ms = Math.round(this.options.clock.monotonic() - started);

    if (this.options.dryRun) {
      for (const item of good) {
        if (this.attempt(item.record, `sha256:${item.bodyDigest}`, 'checked', opts.trigger)) {
          this.options.metrics?.applies.inc({ result: 'checked' });
          logger.info('check.ok', 'dry run: nft --check accepts the artifact', { artifact: item.record.id, netns: target.key, digest: `sha256:${item.bodyDigest}` });
        }
        report.changed = true;
      }
      return [];
    }

    const now = this.options.clock.now();
    for (const item of good) {
      const { record } = item;
      let fp: string | undefined;
      let liveTables: ReadonlyMap<string, LiveState> | undefined;
      let model: TablesModel | undefined;
      let mode: 'incremental' | 'keep-base-chains' | 'replace' = incremental && item.plan ? 'incremental' : hitless ? 'keep-base-chains' : 'replace';
      let live = true;
      const readStarted = this.options.clock.monotonic();
      let readScope: 'objects' | 'tables' = 'tables';
      try {
        const previous = record.applied;
        const written = mode === 'incremental' && previous?.model && previous.liveTables ? touchedObjects(previous.model, item.plan!.summary) : undefined;
        if (written) readScope = 'objects';
        let read = written ? await this.readWritten(written, previous!.model!, previous!.liveTables!, nftTarget) : await this.readTables(item.tables, nftTarget);
        const extra = mode === 'keep-base-chains' ? read.listed.flatMap((t) => leftovers(t.json, item.body.text, t)) : [];
        if (extra.length > 0) {
          // Someone added objects to the table between the listing and the apply; the idiom would have removed them.
          logger.warn('hitless.leftovers', 'objects outside the artifact survived; applying the artifact as written', { artifact: record.id, objects: extra });
          const plain = await this.runTx(composeTransaction([], [item.body.text]), nftTarget);
          if (plain.ok) read = await this.readTables(item.tables, nftTarget);
        }
        if (mode === 'incremental') {
          // The tables must differ from the previous read-back exactly by what the plan did; anything else is
          // drift since that read-back (or a plan that did not do what it says): apply the artifact whole.
          const problem = record.applied?.model ? checkIncremental(record.applied.model, read.model, item.plan!.summary) : 'no model of the previous state';
          if (problem !== undefined) {
            logger.warn('incremental.mismatch', 'the tables after the incremental apply are not what the plan gives; applying the artifact whole', {
              artifact: record.id,
              netns: target.key,
              problem,
            });
            this.fallback(item, 'drift', problem, target);
            const plain = await this.runTx(composeTransaction([], [item.body.text]), nftTarget);
            if (plain.ok) {
              mode = 'replace';
              readScope = 'tables';
              read = await this.readTables(item.tables, nftTarget);
            } else {
              live = false; // the kernel holds the incremental result: the next pass re-applies whole
            }
          }
        }
        fp = read.fingerprint;
        liveTables = read.liveTables;
        model = read.model;
      } catch (error) {
        logger.warn('readback.failed', 'could not read the applied tables back; the fingerprint is taken at the next drift check', {
          artifact: record.id,
          error: describeError(error),
        });
      }
      const readMs = this.options.clock.monotonic() - readStarted;
      // The file may sit in a read buffer that the next pass reuses: the applied version keeps its own copy.
      const owned = ownedCopy(item.artifact.bytes, item.body);
      const applied: AppliedVersion = {
        contentDigest: item.artifact.contentDigest,
        bodyDigest: item.bodyDigest,
        tables: item.tables,
        file: item.artifact.file,
        appliedAt: now,
        fingerprint: fp,
        bytes: owned.bytes,
        body: owned.body,
        ...(liveTables ? { liveTables } : {}),
        routing: item.routing,
        mode: mode === 'incremental' ? 'incremental' : 'full',
        ...(model ? { model } : {}),
        // Cut into objects now (after the rules are live), not when the next version is planned.
        ...(item.index !== undefined ? { index: indexBody(owned.body.bytes) ?? null } : {}),
      };
      record.applied = applied;
      record.live = live;
      record.rejectedDigest = undefined;
      if (mode === 'incremental') record.lastFallback = undefined;
      else record.driftSuspect = false;
      this.options.metrics?.applyModes.inc({ mode: mode === 'incremental' ? 'incremental' : 'full' });
      report.changed = true;
      const digest = `sha256:${item.bodyDigest}`;
      this.options.metrics?.setApplied(record.id, target.key, digest);
      if (item.kind === 'repair') {
        report.repaired++;
        this.options.metrics?.driftRepairs.inc();
        this.attempt(record, digest, 'repaired', opts.trigger);
        logger.warn('drift.repaired', 'live tables had drifted; the applied version was put back', {
          artifact: record.id,
          netns: target.key,
          digest,
          mode,
          ms,
        });
      } else {
        report.applied++;
        this.options.metrics?.applies.inc({ result: 'success' });
        this.attempt(record, digest, 'applied', opts.trigger);
        logger.info('apply.ok', 'artifact applied', {
          artifact: record.id,
          netns: target.key,
          digest,
          file: item.artifact.file,
          tables: item.tables.map(tableKey),
          batch: items.length,
          mode,
          ...(mode === 'incremental' ? { operations: item.plan!.operations, planMs: item.planMs } : {}),
          ms,
          readMs: Math.round(readMs),
          readScope,
        });
      }
    }
    if (good.length > 0) {
      this.lastSuccessAt = now;
      this.options.metrics?.lastSuccess.set(now / 1000);
    }
    if (deletesDone) {
      for (const record of pruned) {
        this.attempt(record, `sha256:${record.applied!.bodyDigest}`, 'removed', opts.trigger);
        this.records.delete(record.id);
        this.options.metrics?.setApplied(record.id, target.key, undefined);
        this.options.metrics?.setFailing(record.id, target.key, undefined);
        report.removed++;
        report.changed = true;
        logger.info('artifact.removed', 'artifact file removed; its tables were deleted', {
          artifact: record.id,
          netns: target.key,
          tables: record.applied!.tables.filter((t) => deletes.some((d) => tableKey(d) === tableKey(t))).map(tableKey),
        });
      }
    }
    return good.map((item) => item.record.id);
  }

  private refuse(item: Item, stderr: string, phase: 'check' | 'apply', opts: ReconcileOptions, report: ReconcileReport): void {
    const message = firstLines(stderr) || 'nft refused the ruleset';
    if (item.kind === 'change' && (phase === 'apply' || transientFailure(stderr))) {
      // nft --check accepted it (or nft failed for a reason unrelated to the ruleset): retry later, do not remember.
      item.record.live = false;
      this.fail(item.record, item.artifact, 'error', 'WATCH_NFT_ERROR', message, opts, report, false);
      return;
    }
    if (item.kind === 'repair') {
      report.errors++;
      this.options.logger.error('drift.repair_failed', 'nft refused to re-apply the last good version', {
        artifact: item.record.id,
        code: 'WATCH_NFT_REJECTED',
        error: message,
      });
      item.record.live = false;
      return;
    }
    this.fail(item.record, item.artifact, 'rejected', 'WATCH_NFT_REJECTED', message, opts, report, true);
  }
}

/** Routing items back from their key lines (the same format as the artifact header). */
function itemsOf(keys: readonly string[]): RoutingItem[] {
  const parsed = parseRouting(keys.join('; '));
  return parsed.ok ? [...parsed.routing.items] : [];
}
