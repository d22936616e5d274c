import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNftDriver, type IpRoutingDriver, type NftDriver } from '@nftops/nft-driver';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import type { WatchConfig } from './config.js';
import { describeError, WatchError } from './errors.js';
import { startStatusServer } from './http.js';
import { createLogger, type Logger } from './log.js';
import { WatchMetrics } from './metrics.js';
import type { AgentInfo, StatusDocument, Trigger } from './model.js';
import { Reconciler, type ReconcileReport } from './reconciler.js';
import { StateStore } from './state-store.js';
import { SourceWatcher } from './watch.js';

/** Drift passes take at most 1/DRIFT_SHARE of the time (5 %), whatever the drift interval says. */
const DRIFT_SHARE = 20;

export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

export interface AgentOptions {
  readonly config: WatchConfig;
  readonly driver?: NftDriver;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Watch directories (default true). Tests of the scheduling logic turn it off and call `notify`. */
  readonly watch?: boolean;
  /** Add Node process metrics (memory, CPU, event loop) to /metrics (default true). */
  readonly processMetrics?: boolean;
  readonly netnsExists?: (netns: string) => Promise<boolean>;
  /** Applies artifacts' routing (default: `ip` in the target namespace). */
  readonly routing?: IpRoutingDriver;
  /** The state store (tests inject one with a failing writer). */
  readonly store?: StateStore;
}

const SPOOL_PREFIX = 'nftops-watch-spool-';

/** Where spool directories go: the temporary directory (systemd: PrivateTmp), or NFTOPS_WATCH_SPOOL_BASE. */
export function spoolBase(): string {
  return process.env.NFTOPS_WATCH_SPOOL_BASE || tmpdir();
}

/** Removes spool directories left by agents that died (their pid is in the name and no longer runs). */
function removeStaleSpools(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const match = new RegExp(`^${SPOOL_PREFIX}(\\d+)-`).exec(name);
    if (!match) continue;
    try {
      process.kill(Number(match[1]), 0);
      continue; // still running
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    rmSync(join(base, name), { recursive: true, force: true });
  }
}

interface Request {
  trigger: Trigger;
  drift: boolean;
  force: boolean;
}

/**
 * The long-running agent: watchers feed a debounce, passes of the reconciler run one at a time, a timer runs
 * drift checks, the state directory is updated after every pass that changed something.
 *
 * Scheduling: a file event starts (or extends) a quiet period of `debounceMs`; when it ends, or `maxDelayMs`
 * after the first event of a burst at the latest, one pass runs. Events during a pass queue exactly one more
 * pass. Every `driftIntervalMs` a full pass also checks the live tables. Passes that hit a transient error
 * (nft failed to run, namespace missing) are retried with backoff from 1 s up to the drift interval.
 */
export class Agent {
  readonly metrics: WatchMetrics;
  readonly reconciler: Reconciler;
  readonly logger: Logger;
  readonly clock: Clock;
  listenAddress: string | undefined;
  private readonly config: WatchConfig;
  private readonly store: StateStore | undefined;
  private readonly watchers: SourceWatcher[] = [];
  private server: Server | undefined;
  private pending: Request | undefined;
  private running: Promise<void> | undefined;
  private debounceTimer: TimerHandle | undefined;
  private burstStart: number | undefined;
  private intervalTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private retryDelay = 1000;
  private stopped = false;
  private lastSaveError: string | undefined;
  private saveDirty = false;
  /** The state directory is written in the background, one save at a time, so a pass never waits for fsyncs. */
  private saving: Promise<void> = Promise.resolve();
  private saveQueued = false;
  private readonly spoolDir: string | undefined;
  private readonly startedAt: string;
  private readonly idleWaiters: (() => void)[] = [];
  passes = 0;

  constructor(private readonly options: AgentOptions) {
    this.config = options.config;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? createLogger({ level: this.config.logLevel, format: this.config.logFormat });
    this.metrics = new WatchMetrics({ processMetrics: options.processMetrics ?? true });
    this.startedAt = new Date(this.clock.now()).toISOString();
    let driver = options.driver;
    if (!driver) {
      // Rulesets reach nft through a private spool file, never a pipe: killed mid-apply, the agent must not leave
      // nft reading a truncated (and possibly still valid) transaction.
      const base = spoolBase();
      removeStaleSpools(base);
      this.spoolDir = mkdtempSync(join(base, `${SPOOL_PREFIX}${process.pid}-`));
      const transactions = createNftDriver({ nftPath: this.config.nftPath, timeoutMs: this.config.nftTimeoutMs, spoolDir: this.spoolDir });
      // Reads get more time than transactions: `nft -j list table` of a 50 000-service table takes tens of
      // seconds on nft 1.0.6, and a read-back killed by the timeout would leave every later change unverified
      // (applied whole). A hung listing is still killed, after max(10 x --nft-timeout, 5 min).
      const reads = createNftDriver({ nftPath: this.config.nftPath, timeoutMs: Math.max(this.config.nftTimeoutMs * 10, 300_000) });
      driver = {
        version: () => transactions.version(),
        check: (ruleset, target) => transactions.check(ruleset, target),
        apply: (ruleset, target) => transactions.apply(ruleset, target),
        listTables: (target) => reads.listTables(target),
        listTable: (family, name, target) => reads.listTable(family, name, target),
        listObject: (kind, family, table, name, target) => reads.listObject(kind, family, table, name, target),
        listRuleset: (target) => reads.listRuleset(target),
      };
    }
    this.reconciler = new Reconciler({
      driver,
      clock: this.clock,
      logger: this.logger,
      metrics: this.metrics,
      sources: this.config.sources,
      prune: this.config.prune,
      dryRun: this.config.dryRun,
      maxArtifactBytes: this.config.maxArtifactBytes,
      publicKey: this.config.publicKey,
      owner: this.config.owner,
      allowWritable: this.config.allowWritable ?? false,
      incremental: this.config.incremental ?? true,
      ...(options.routing ? { routing: options.routing } : {}),
      ...(options.netnsExists ? { netnsExists: options.netnsExists } : {}),
    });
    // A dry run never writes the state directory, but it reads it when present.
    this.store = options.store ?? new StateStore(this.config.stateDir, { publicKey: this.config.publicKey });
  }

  get info(): AgentInfo {
    return {
      pid: process.pid,
      startedAt: this.startedAt,
      listen: this.listenAddress,
      dryRun: this.config.dryRun,
      prune: this.config.prune,
      sources: this.config.sources.map((s) => ({ ...s })),
    };
  }

  status(): StatusDocument {
    const doc = this.reconciler.status(this.clock.now(), this.info);
    return this.lastSaveError ? { ...doc, stateError: this.lastSaveError } : doc;
  }

  private removeSpool(): void {
    if (this.spoolDir) rmSync(this.spoolDir, { recursive: true, force: true });
  }

  private async loadState(): Promise<void> {
    if (!this.store) return;
    if (!this.config.dryRun) await this.store.init();
    const loaded = await this.store.load();
    for (const problem of loaded.problems) this.logger.warn('state.problem', problem, { stateDir: this.config.stateDir, code: 'WATCH_STATE' });
    this.reconciler.restore(loaded.records, loaded.recent, loaded.lastSuccessAt);
    const withCopies = loaded.records.filter((r) => r.applied).length;
    if (withCopies > 0) this.logger.info('state.loaded', 'last good artifacts loaded', { stateDir: this.config.stateDir, artifacts: withCopies });
  }

  private async save(): Promise<void> {
    if (!this.store || this.config.dryRun) return;
    try {
      const pending = this.lastSaveError;
      this.lastSaveError = undefined;
      try {
        await this.store.save(this.status(), this.reconciler.allRecords());
      } catch (error) {
        this.lastSaveError = pending;
        throw error;
      }
      if (pending) this.logger.info('state.saved', 'state directory writable again', { stateDir: this.config.stateDir });
      this.saveDirty = false;
    } catch (error) {
      const message = describeError(error);
      this.saveDirty = true;
      this.metrics.stateWriteFailures.inc();
      if (message !== this.lastSaveError) {
        this.logger.error('state.write_failed', 'cannot write the state directory; rules are applied but last good copies are not kept', {
          stateDir: this.config.stateDir,
          code: 'WATCH_STATE',
          error: message,
        });
      }
      this.lastSaveError = message;
      this.scheduleRetry();
    }
  }

  /** `--once`: load state, apply everything (retrying remembered failures), save, return the report. */
  async runOnce(): Promise<ReconcileReport> {
    await this.loadState();
    try {
      const report = await this.reconciler.reconcile({ trigger: 'once', drift: false, force: true });
      await this.save();
      if (this.lastSaveError) report.errors++;
      return report;
    } finally {
      this.removeSpool();
    }
  }

  /** Starts the status server, the watchers and the drift timer; resolves after the first pass. */
  async start(): Promise<ReconcileReport | undefined> {
    await this.loadState();
    if (this.config.listen) {
      try {
        const { server, address } = await startStatusServer(
          { ready: () => this.reconciler.ready, status: () => this.status(), metrics: this.metrics },
          this.config.listen.host,
          this.config.listen.port,
        );
        this.server = server;
        this.listenAddress = address;
      } catch (error) {
        throw new WatchError('WATCH_CONFIG', `cannot listen on ${this.config.listen.host}:${this.config.listen.port}: ${describeError(error)}`);
      }
    }
    this.logger.info('agent.start', `nftops-watch ${VERSION} starting`, {
      pid: process.pid,
      sources: this.config.sources.map((s) => (s.netns ? `${s.path} (netns ${s.netns})` : s.path)),
      stateDir: this.config.stateDir,
      listen: this.listenAddress,
      dryRun: this.config.dryRun || undefined,
      prune: this.config.prune,
    });
    if (this.options.watch ?? true) {
      for (const spec of this.config.sources) {
        if (this.stopped) break;
        const watcher = new SourceWatcher(spec, (reason) => this.notify(reason), this.logger);
        this.watchers.push(watcher);
        await watcher.start();
      }
    }
    let first: ReconcileReport | undefined;
    await this.run({ trigger: 'startup', drift: true, force: false }, (report) => {
      first = report;
    });
    this.scheduleInterval();
    this.logger.info('agent.ready', this.reconciler.ready ? 'first pass done; ready' : 'first pass done; not ready yet', {
      ready: this.reconciler.ready,
      applied: first?.applied,
      ms: first ? Math.round(first.durationMs) : undefined,
    });
    return first;
  }

  /** A hint that something changed on disk: debounce, then reconcile. */
  notify(reason: string): void {
    if (this.stopped) return;
    this.logger.debug('watch.event', reason);
    const now = this.clock.monotonic();
    this.burstStart ??= now;
    this.clock.clearTimeout(this.debounceTimer);
    const wait = Math.max(0, Math.min(this.config.debounceMs, this.burstStart + this.config.maxDelayMs - now));
    this.debounceTimer = this.clock.setTimeout(() => {
      this.debounceTimer = undefined;
      this.burstStart = undefined;
      this.enqueue({ trigger: 'event', drift: false, force: false });
    }, wait);
  }

  /** Reconcile now, with a drift check (SIGHUP; `force` also retries versions remembered as rejected). */
  reconcileNow(trigger: Trigger = 'signal', force = true): void {
    this.enqueue({ trigger, drift: true, force });
  }

  private enqueue(request: Request): void {
    if (this.stopped) return;
    this.pending = this.pending
      ? { trigger: this.pending.trigger, drift: this.pending.drift || request.drift, force: this.pending.force || request.force }
      : request;
    this.running ??= this.loop();
  }

  private async run(request: Request, onReport?: (report: ReconcileReport) => void): Promise<void> {
    this.pending = this.pending
      ? { trigger: request.trigger, drift: this.pending.drift || request.drift, force: this.pending.force || request.force }
      : request;
    this.running ??= this.loop(onReport);
    await this.running;
  }

  private async loop(onReport?: (report: ReconcileReport) => void): Promise<void> {
    try {
      while (this.pending) {
        const request = this.pending;
        this.pending = undefined;
        await Promise.all(this.watchers.map((w) => w.refresh()));
        let report: ReconcileReport;
        try {
          report = await this.reconciler.reconcile(request);
        } catch (error) {
          this.logger.error('reconcile.error', 'reconcile pass failed', { trigger: request.trigger, error: describeError(error) });
          this.scheduleRetry();
          continue;
        }
        this.passes++;
        onReport?.(report);
        onReport = undefined;
        if (report.changed || this.saveDirty) this.queueSave();
        this.logger.debug('reconcile.done', 'pass done', { trigger: request.trigger, ...report, durationMs: Math.round(report.durationMs) });
        if (report.errors > 0) this.scheduleRetry();
        else this.retryDelay = 1000;
        if (request.drift && request.trigger !== 'startup') this.scheduleInterval(report.durationMs);
      }
    } finally {
      this.running = undefined;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private queueSave(): void {
    if (this.saveQueued) return;
    this.saveQueued = true;
    this.saving = this.saving.then(() => {
      this.saveQueued = false;
      return this.save();
    });
  }

  /**
   * The next drift pass: after the drift interval, or later when the last drift pass took more than 1/DRIFT_SHARE
   * of it. A drift check lists the owned tables, and nft 1.0.6 takes ~15 s to list 50 000 services: every 30 s
   * that would keep half a core busy.
   */
  private scheduleInterval(lastPassMs = 0): void {
    this.clock.clearTimeout(this.intervalTimer);
    this.intervalTimer = undefined;
    if (this.stopped || this.config.driftIntervalMs <= 0) return;
    const delay = Math.max(this.config.driftIntervalMs, Math.round(DRIFT_SHARE * lastPassMs));
    if (delay > this.config.driftIntervalMs) {
      this.logger.debug('drift.stretched', 'the next drift check waits longer: the last one took a while', { lastPassMs: Math.round(lastPassMs), nextInMs: delay });
    }
    this.intervalTimer = this.clock.setTimeout(() => {
      this.intervalTimer = undefined;
      this.enqueue({ trigger: 'interval', drift: true, force: false });
    }, delay);
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = this.retryDelay;
    const cap = this.config.driftIntervalMs > 0 ? this.config.driftIntervalMs : 60_000;
    this.retryDelay = Math.min(this.retryDelay * 2, cap);
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.enqueue({ trigger: 'retry', drift: false, force: false });
    }, delay);
  }

  /** Resolves when no pass is running or queued (debounced events that have not fired yet do not count). */
  async idle(): Promise<void> {
    while (this.running || this.pending || this.saveQueued) {
      if (this.running || this.pending) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      await this.saving;
    }
    await this.saving;
  }

  /** Stops watching and serving; lets a running pass finish (never interrupts nft); leaves the rules in place. */
  async stop(reason = 'stop'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.pending = undefined;
    for (const timer of [this.debounceTimer, this.intervalTimer, this.retryTimer]) this.clock.clearTimeout(timer);
    await Promise.all(this.watchers.map((w) => w.close()));
    if (this.running) await this.running;
    await this.saving;
    await this.save();
    if (this.server) {
      const server = this.server;
      this.server = undefined;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    this.removeSpool();
    this.logger.info('agent.stop', 'stopped; rules stay in place', { reason });
  }
}
