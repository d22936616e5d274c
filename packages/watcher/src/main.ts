import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, VERSION } from './agent.js';
import { buildConfig, DEFAULTS, RUN_OPTIONS } from './config.js';
import { describeError, WatchError } from './errors.js';
import { readStatusFile } from './state-store.js';
import { renderStatus } from './status-cmd.js';

const HELP = `nftops-watch ${VERSION}: applies nftops artifacts atomically when they change, verifies them, repairs drift.

Usage:
  nftops-watch [run] --dir PATH [--dir PATH ...] [options]   watch and apply (default command)
  nftops-watch [run] --config FILE [options]
  nftops-watch status [--state-dir DIR] [--json]              what is applied where, the last attempts

Artifact directories ("tree" layout): PATH/*.nft goes to the host network namespace, PATH/NAME/*.nft to the
namespace /var/run/netns/NAME (PATH/host/ is the host again). A --config file can map a whole directory to one
namespace instead: {"sources": [{"path": "/srv/pod-a", "netns": "cni-1234"}]}.

Options:
  --dir PATH             artifact directory (repeatable; may be a symlink, as git-sync's --link)
  -c, --config FILE      JSON config file (keys: sources, stateDir, listen, driftInterval, debounce, maxDelay,
                         prune, nft, nftTimeout, maxArtifactBytes, publicKey, owner, allowWritable,
                         incremental, logFormat, logLevel); flags win
  --state-dir DIR        last good copies and status (default ${DEFAULTS.stateDir})
  --listen HOST:PORT     status server: /healthz /readyz /metrics /status (default ${DEFAULTS.listen}; "none" = off)
  --drift-interval DUR   compare live tables with what was applied, repair drift (default ${DEFAULTS.driftInterval}; 0 = off)
  --debounce DUR         quiet period after a file event before applying (default ${DEFAULTS.debounce})
  --max-delay DUR        apply at most this long after the first event of a burst (default ${DEFAULTS.maxDelay})
  --no-prune             when an artifact file is deleted, leave its tables in place
  --once                 apply what is in the directories (or the last good copies) and exit: 0 ok, 1 failures
  --dry-run              only run nft --check; never change the kernel or the state directory
  --nft PATH             the nft binary (default: found on PATH, /usr/sbin, /sbin)
  --nft-timeout DUR      kill nft after this long (default ${DEFAULTS.nftTimeout})
  --max-artifact-bytes N refuse larger artifact files, checked before reading (default 64MiB; e.g. 16MiB)
  --public-key FILE      apply only artifacts with a valid ed25519 signature for this PEM public key
  --owner UID|NAME|any   artifact files must belong to this user (default: the agent's own uid)
  --allow-writable       accept artifact files writable by group or others (refused by default)
  --no-incremental       always apply artifacts whole (default: element/chain-level changes when possible)
  --log-format FMT       json | text | auto (default auto: text on a terminal, JSON lines otherwise)
  --log-level LEVEL      debug | info | warn | error (default info)
  -h, --help             this help
  --version              print the version

Signals: SIGTERM/SIGINT stop cleanly and leave the rules in place; SIGHUP reconciles now (drift check, and
retries artifact versions that failed before).
`;

function fail(error: unknown): number {
  if (error instanceof WatchError) {
    process.stderr.write(`nftops-watch: ${error.code}: ${error.message}\n`);
    return error.code === 'WATCH_CONFIG' ? 2 : 1;
  }
  const code = (error as { code?: string }).code;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    process.stderr.write(`nftops-watch: WATCH_CONFIG: ${(error as Error).message}\nRun "nftops-watch --help" for usage.\n`);
    return 2;
  }
  process.stderr.write(`nftops-watch: ${describeError(error)}\n`);
  if (process.env.NFTOPS_DEBUG) process.stderr.write(`${(error as Error).stack ?? ''}\n`);
  return 1;
}

async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { 'state-dir': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write('Usage: nftops-watch status [--state-dir DIR] [--json]\n');
    return 0;
  }
  const stateDir = resolve(values['state-dir'] ?? DEFAULTS.stateDir);
  const { records: _records, ...doc } = await readStatusFile(stateDir);
  process.stdout.write(values.json ? `${JSON.stringify(doc, null, 2)}\n` : renderStatus(doc, stateDir));
  return 0;
}

async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: RUN_OPTIONS, allowPositionals: false, strict: true });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const config = buildConfig(values);
  if (config.once) {
    const agent = new Agent({ config, watch: false, processMetrics: false });
    const report = await agent.runOnce();
    agent.logger.info('once.done', config.dryRun ? 'dry run finished' : 'applied; exiting', {
      applied: report.applied,
      removed: report.removed,
      rejected: report.rejected,
      errors: report.errors,
      ms: Math.round(report.durationMs),
    });
    return report.rejected > 0 || report.errors > 0 ? 1 : 0;
  }

  const agent = new Agent({ config });
  let stopping: Promise<void> | undefined;
  let signalled: (() => void) | undefined;
  const stopped = new Promise<void>((resolve) => (signalled = resolve));
  const onStop = (signal: NodeJS.Signals) => {
    if (stopping) {
      if (signal === 'SIGINT') process.exit(130);
      return;
    }
    stopping = agent.stop(signal).finally(() => signalled!());
  };
  const onHup = () => {
    agent.logger.info('signal.hup', 'SIGHUP: reconciling now');
    agent.reconcileNow('signal', true);
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);
  try {
    await agent.start();
  } catch (error) {
    await agent.stop('start failed').catch(() => {});
    throw error;
  }
  await stopped;
  process.off('SIGTERM', onStop);
  process.off('SIGINT', onStop);
  process.off('SIGHUP', onHup);
  // Everything is closed; if a stray handle kept the loop alive, do not hang a service manager.
  setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
  return 0;
}

/** The `nftops-watch` command line. Resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === 'status') return await statusCommand(rest);
    if (first === 'run') return await runCommand(rest);
    if (first !== undefined && !first.startsWith('-')) {
      throw new WatchError('WATCH_CONFIG', `unknown command ${JSON.stringify(first)} (commands: run, status; see --help)`);
    }
    return await runCommand(argv);
  } catch (error) {
    return fail(error);
  }
}
