import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics, in a registry owned by one agent (never prom-client's global registry). */
export class WatchMetrics {
  readonly registry = new Registry();
  readonly applies: Counter<'result'>;
  readonly applyDuration: Histogram;
  readonly lastSuccess: Gauge;
  readonly driftRepairs: Counter;
  readonly artifactInfo: Gauge<'artifact' | 'netns' | 'digest'>;
  readonly artifactFailing: Gauge<'artifact' | 'netns'>;
  readonly reconcileDuration: Histogram<'trigger'>;
  readonly ready: Gauge;
  readonly applyModes: Counter<'mode'>;
  readonly incrementalFallbacks: Counter<'reason'>;
  readonly refused: Counter<'code'>;
  readonly routingChanges: Counter<'op'>;
  readonly routingFailures: Counter;
  readonly stateWriteFailures: Counter;
  private readonly infoLabels = new Map<string, { artifact: string; netns: string; digest: string }>();

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.applies = new Counter({
      name: 'nftops_watch_applies_total',
      help: 'Artifact versions tried, by result: success, rejected (nft refused it or a table conflict), invalid (digest or header), error (nft or namespace unavailable), checked (dry run).',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['success', 'rejected', 'invalid', 'error']) this.applies.inc({ result }, 0);
    this.applyDuration = new Histogram({
      name: 'nftops_watch_apply_duration_seconds',
      help: 'Duration of one namespace transaction: its nft -f (nft --check in a dry run).',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.lastSuccess = new Gauge({
      name: 'nftops_watch_last_success_timestamp_seconds',
      help: 'Unix time of the last successful apply (0 before the first).',
      registers,
    });
    this.driftRepairs = new Counter({
      name: 'nftops_watch_drift_repairs_total',
      help: 'Artifacts re-applied because their live tables no longer matched what was applied.',
      registers,
    });
    this.artifactInfo = new Gauge({
      name: 'nftops_watch_artifact_info',
      help: 'Always 1: the body digest currently applied for each artifact.',
      labelNames: ['artifact', 'netns', 'digest'],
      registers,
    });
    this.artifactFailing = new Gauge({
      name: 'nftops_watch_artifact_failing',
      help: '1 when the newest version of an artifact could not be applied (the last good version stays), else 0.',
      labelNames: ['artifact', 'netns'],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'nftops_watch_reconcile_duration_seconds',
      help: 'Duration of a reconcile pass (scan, apply, drift check), by what triggered it.',
      labelNames: ['trigger'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.ready = new Gauge({ name: 'nftops_watch_ready', help: '1 once the first apply succeeded.', registers });
    this.applyModes = new Counter({
      name: 'nftops_watch_apply_mode_total',
      help: 'Artifact versions applied (including drift repairs), by how: full (the artifact whole) or incremental (element/chain-level transaction).',
      labelNames: ['mode'],
      registers,
    });
    for (const mode of ['full', 'incremental']) this.applyModes.inc({ mode }, 0);
    this.incrementalFallbacks = new Counter({
      name: 'nftops_watch_incremental_fallbacks_total',
      help: 'New versions of an applied artifact that went in whole instead of incrementally, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.refused = new Counter({
      name: 'nftops_watch_refused_total',
      help: 'Artifact versions refused before nft saw them (digest, signature, file checks, size, body guard), by error code.',
      labelNames: ['code'],
      registers,
    });
    this.routingChanges = new Counter({
      name: 'nftops_watch_routing_changes_total',
      help: 'Routing items (ip rules, routes, addresses) added or removed for artifacts.',
      labelNames: ['op'],
      registers,
    });
    for (const op of ['add', 'remove']) this.routingChanges.inc({ op }, 0);
    this.routingFailures = new Counter({ name: 'nftops_watch_routing_failures_total', help: 'Failed attempts to apply or remove an artifact\'s routing (retried).', registers });
    this.stateWriteFailures = new Counter({ name: 'nftops_watch_state_write_failures_total', help: 'Failed writes of the state directory (last good copies, status.json).', registers });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'nftops_watch_', eventLoopMonitoringPrecision: 100 });
  }

  setApplied(artifact: string, netns: string, digest: string | undefined): void {
    const previous = this.infoLabels.get(artifact);
    if (previous && previous.digest === digest && previous.netns === netns) return;
    if (previous) this.artifactInfo.remove(previous);
    if (digest === undefined) {
      this.infoLabels.delete(artifact);
      return;
    }
    const labels = { artifact, netns, digest };
    this.infoLabels.set(artifact, labels);
    this.artifactInfo.set(labels, 1);
  }

  setFailing(artifact: string, netns: string, failing: boolean | undefined): void {
    if (failing === undefined) this.artifactFailing.remove({ artifact, netns });
    else this.artifactFailing.set({ artifact, netns }, failing ? 1 : 0);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
