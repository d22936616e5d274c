import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { WatchError } from './errors.js';
import type { LogFormat, LogLevel } from './log.js';

/**
 * Where artifacts come from and which network namespace they go to.
 *
 * - `netns` absent ("tree" layout): `*.nft` files directly in PATH go to the host namespace; `*.nft` files in a
 *   subdirectory PATH/NAME/ go to the namespace /var/run/netns/NAME. The subdirectory name `host` is reserved
 *   and also means the host namespace. Names starting with a dot are ignored (git-sync's `.worktrees`, `.git`,
 *   editor and temp files).
 * - `netns` present ("flat" layout): every `*.nft` file directly in PATH goes to that namespace
 *   (`host`, a name under /var/run/netns, or an absolute path to a namespace file); subdirectories are ignored.
 */
export interface SourceSpec {
  readonly path: string;
  readonly netns?: string;
}

export interface WatchConfig {
  readonly sources: readonly SourceSpec[];
  readonly stateDir: string;
  /** `host:port` for the status server, or undefined when disabled. */
  readonly listen: { host: string; port: number } | undefined;
  readonly driftIntervalMs: number;
  readonly debounceMs: number;
  readonly maxDelayMs: number;
  readonly prune: boolean;
  readonly once: boolean;
  readonly dryRun: boolean;
  readonly nftPath: string | undefined;
  readonly nftTimeoutMs: number;
  readonly maxArtifactBytes: number;
  /** Only artifacts with a valid ed25519 signature for this key are applied (undefined: no signature needed). */
  readonly publicKey?: KeyObject | undefined;
  /** The uid artifact files must belong to; undefined: any owner. */
  readonly owner?: number | undefined;
  /** Accept artifact files writable by group or others. */
  readonly allowWritable?: boolean;
  /** Apply changes of an applied artifact as element/chain-level transactions when possible (default true). */
  readonly incremental?: boolean;
  readonly logFormat: LogFormat;
  readonly logLevel: LogLevel;
}

export const DEFAULTS = {
  stateDir: '/var/lib/nftops-watch',
  listen: '127.0.0.1:9780',
  driftInterval: '30s',
  debounce: '10ms',
  maxDelay: '500ms',
  nftTimeout: '30s',
  maxArtifactBytes: 64 * 1024 * 1024,
} as const;

/** Parses a byte size: 1048576, "512KiB", "64MiB", "1GiB" (K/M/G and KB/MB/GB are binary too). */
export function parseBytes(value: string | number, what: string): number {
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  const match = /^\s*(\d+)\s*(?:([KMG])(?:i?B)?|B)?\s*$/i.exec(String(value));
  const bytes = match ? Number(match[1]) * 1024 ** ({ K: 1, M: 2, G: 3 }[(match[2] ?? '').toUpperCase() as 'K' | 'M' | 'G'] ?? 0) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new WatchError('WATCH_CONFIG', `${what}: cannot read ${JSON.stringify(value)} as a positive size (examples: 1048576, 64MiB)`);
  return bytes;
}

/** Resolves an owner: a uid, a user name from /etc/passwd, or "any" (no owner check: undefined). */
export function parseOwner(value: string | number, what = '--owner', passwd = '/etc/passwd'): number | undefined {
  if (value === 'any') return undefined;
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const uid = Number(value);
    if (!Number.isSafeInteger(uid) || uid < 0 || uid > 0xfffffffe) throw new WatchError('WATCH_CONFIG', `${what}: ${JSON.stringify(value)} is not a uid`);
    return uid;
  }
  let text = '';
  try {
    text = readFileSync(passwd, 'utf8');
  } catch (error) {
    throw new WatchError('WATCH_CONFIG', `${what}: cannot look up user ${JSON.stringify(value)}: ${(error as Error).message}`);
  }
  for (const line of text.split('\n')) {
    const [name, , uid] = line.split(':');
    if (name === value && uid !== undefined && /^\d+$/.test(uid)) return Number(uid);
  }
  throw new WatchError('WATCH_CONFIG', `${what}: no user ${JSON.stringify(value)} in ${passwd} (give a uid, a user name or "any")`);
}

/** Reads an ed25519 public key (PEM). */
export function readPublicKey(path: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw new WatchError('WATCH_CONFIG', `cannot read the public key ${path}: ${(error as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new WatchError('WATCH_CONFIG', `${path} is not a public key in PEM form: ${(error as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new WatchError('WATCH_CONFIG', `${path} is an ${String(key.asymmetricKeyType)} key; nftops signs with ed25519`);
  return key;
}

export const NETNS_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/;

/** Parses "250ms", "30s", "5m", "1h" or a plain number of milliseconds. */
export function parseDuration(value: string | number, what: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(String(value));
  if (!match) throw new WatchError('WATCH_CONFIG', `${what}: cannot read ${JSON.stringify(value)} as a duration (examples: 250ms, 30s, 5m)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 'ms']!;
  return Math.round(Number(match[1]) * unit);
}

export function parseListen(value: string): { host: string; port: number } | undefined {
  if (value === 'none' || value === '') return undefined;
  const match = /^(?:\[([0-9a-fA-F:]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new WatchError('WATCH_CONFIG', `--listen: expected HOST:PORT or "none", got ${JSON.stringify(value)}`);
  return { host: match[1] ?? match[2]!, port };
}

function checkNetns(value: string, where: string): string {
  if (value === 'host' || NETNS_NAME.test(value) || (isAbsolute(value) && !value.includes('\0'))) return value;
  throw new WatchError('WATCH_CONFIG', `${where}: ${JSON.stringify(value)} is neither "host", a namespace name nor an absolute path`);
}

/** The optional JSON configuration file. Command-line flags override its values. */
export interface ConfigFile {
  sources?: (string | { path: string; netns?: string })[];
  stateDir?: string;
  listen?: string;
  driftInterval?: string | number;
  debounce?: string | number;
  maxDelay?: string | number;
  prune?: boolean;
  nft?: string;
  nftTimeout?: string | number;
  maxArtifactBytes?: number | string;
  publicKey?: string;
  owner?: number | string;
  allowWritable?: boolean;
  incremental?: boolean;
  logFormat?: LogFormat;
  logLevel?: LogLevel;
}

const FILE_KEYS = new Set([
  'sources', 'stateDir', 'listen', 'driftInterval', 'debounce', 'maxDelay', 'prune', 'nft', 'nftTimeout',
  'maxArtifactBytes', 'publicKey', 'owner', 'allowWritable', 'incremental', 'logFormat', 'logLevel',
]);

export function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new WatchError('WATCH_CONFIG', `cannot read the config file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new WatchError('WATCH_CONFIG', `${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new WatchError('WATCH_CONFIG', `${path} must hold a JSON object`);
  }
  for (const key of Object.keys(parsed)) {
    if (!FILE_KEYS.has(key) && !key.startsWith('$')) throw new WatchError('WATCH_CONFIG', `${path}: unknown key ${JSON.stringify(key)}`);
  }
  return parsed as ConfigFile;
}

export const RUN_OPTIONS = {
  dir: { type: 'string', multiple: true },
  config: { type: 'string', short: 'c' },
  'state-dir': { type: 'string' },
  listen: { type: 'string' },
  'drift-interval': { type: 'string' },
  debounce: { type: 'string' },
  'max-delay': { type: 'string' },
  'no-prune': { type: 'boolean' },
  once: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  nft: { type: 'string' },
  'nft-timeout': { type: 'string' },
  'max-artifact-bytes': { type: 'string' },
  'public-key': { type: 'string' },
  owner: { type: 'string' },
  'allow-writable': { type: 'boolean' },
  'no-incremental': { type: 'boolean' },
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

export type RunFlags = ReturnType<typeof parseArgs<{ options: typeof RUN_OPTIONS; allowPositionals: true; strict: true }>>['values'];

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], what: string, fallback: T): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new WatchError('WATCH_CONFIG', `${what}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
}

/** Builds the effective configuration from parsed flags (and the config file they name). */
export function buildConfig(flags: RunFlags, cwd = process.cwd()): WatchConfig {
  const file: ConfigFile = flags.config ? readConfigFile(resolve(cwd, flags.config)) : {};
  let sources: SourceSpec[];
  if (flags.dir && flags.dir.length > 0) {
    sources = flags.dir.map((path) => ({ path: resolve(cwd, path) }));
  } else {
    sources = (file.sources ?? []).map((entry, index) => {
      const spec = typeof entry === 'string' ? { path: entry } : entry;
      if (typeof spec?.path !== 'string' || spec.path === '') {
        throw new WatchError('WATCH_CONFIG', `sources[${index}]: expected a path or { "path": ..., "netns": ... }`);
      }
      const netns = spec.netns === undefined ? undefined : checkNetns(String(spec.netns), `sources[${index}].netns`);
      return netns === undefined ? { path: resolve(cwd, spec.path) } : { path: resolve(cwd, spec.path), netns };
    });
  }
  if (sources.length === 0) throw new WatchError('WATCH_CONFIG', 'no artifact directory: pass --dir PATH (repeatable) or "sources" in --config');
  const seen = new Set<string>();
  for (const source of sources) {
    if (seen.has(source.path)) throw new WatchError('WATCH_CONFIG', `the directory ${source.path} is listed twice`);
    seen.add(source.path);
  }
  const maxArtifactBytes = parseBytes(flags['max-artifact-bytes'] ?? file.maxArtifactBytes ?? DEFAULTS.maxArtifactBytes, 'max artifact bytes');
  const publicKeyPath = flags['public-key'] ?? file.publicKey;
  const publicKey = publicKeyPath === undefined ? undefined : readPublicKey(resolve(cwd, publicKeyPath));
  const owner = parseOwner(flags.owner ?? file.owner ?? process.geteuid?.() ?? 0);
  if (file.allowWritable !== undefined && typeof file.allowWritable !== 'boolean') throw new WatchError('WATCH_CONFIG', 'allowWritable must be true or false');
  return {
    sources,
    stateDir: resolve(cwd, flags['state-dir'] ?? file.stateDir ?? DEFAULTS.stateDir),
    listen: parseListen(flags.listen ?? file.listen ?? DEFAULTS.listen),
    driftIntervalMs: parseDuration(flags['drift-interval'] ?? file.driftInterval ?? DEFAULTS.driftInterval, 'drift interval'),
    debounceMs: parseDuration(flags.debounce ?? file.debounce ?? DEFAULTS.debounce, 'debounce'),
    maxDelayMs: parseDuration(flags['max-delay'] ?? file.maxDelay ?? DEFAULTS.maxDelay, 'max delay'),
    prune: flags['no-prune'] ? false : file.prune ?? true,
    once: flags.once ?? false,
    dryRun: flags['dry-run'] ?? false,
    nftPath: flags.nft ?? file.nft,
    nftTimeoutMs: parseDuration(flags['nft-timeout'] ?? file.nftTimeout ?? DEFAULTS.nftTimeout, 'nft timeout'),
    maxArtifactBytes,
    publicKey,
    owner,
    allowWritable: flags['allow-writable'] ?? file.allowWritable ?? false,
    incremental: flags['no-incremental'] ? false : file.incremental ?? true,
    logFormat: oneOf(flags['log-format'] ?? file.logFormat, ['json', 'text', 'auto'] as const, 'log format', 'auto'),
    logLevel: oneOf(flags['log-level'] ?? file.logLevel, ['debug', 'info', 'warn', 'error'] as const, 'log level', 'info'),
  };
}
