import { accessSync, constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { unlink, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { execa, type ExecaError } from 'execa';
import {
  NftNotFoundError,
  NftTimeoutError,
  parseNftDiagnostics,
  type NftDriver,
  type NftResult,
  type NftTableJson,
  type NftTarget,
} from './driver.js';

export interface NftDriverOptions {
  /** Path to nft; found on PATH, /usr/sbin and /sbin when absent. */
  readonly nftPath?: string;
  /** Kill nft after this long (default 30 s): a hung nft must never hang the caller. */
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  /**
   * A private directory (mode 0700) where `check` and `apply` first write the ruleset to a 0600 file, which nft
   * then reads itself (`-f FILE`; removed afterwards). nft so always reads the complete transaction, even when
   * the caller dies while nft runs: through a pipe it would read a truncated ruleset, and a prefix that ends at
   * a statement boundary is a valid, smaller transaction. Default: the ruleset goes through a pipe on stdin.
   */
  readonly spoolDir?: string;
}

export function findNft(env: NodeJS.ProcessEnv = process.env): string {
  const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'nft');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  throw new NftNotFoundError(dirs);
}

/**
 * nft runs with glibc's default malloc, whatever GLIBC_TUNABLES the agent itself runs with (deploy/ gives the
 * agent transparent huge pages for malloc, which keeps reading a large artifact cheap). For nft, huge pages made
 * a 50 000-service load a third faster on one day and a quarter slower on another on the same kind of VM
 * (BENCHMARKS.md), so the default is glibc's own and NFTOPS_NFT_GLIBC_TUNABLES, when set, is what nft gets.
 */
export const NFT_ENV: NodeJS.ProcessEnv = { LC_ALL: 'C', GLIBC_TUNABLES: process.env.NFTOPS_NFT_GLIBC_TUNABLES };

function netnsPath(netns: string): string {
  return netns.includes('/') ? netns : `/var/run/netns/${netns}`;
}

export function createNftDriver(options: NftDriverOptions = {}): NftDriver {
  const timeoutMs = options.timeoutMs ?? 30_000;
  let nftPath = options.nftPath;
  const resolveNft = (): string => (nftPath ??= findNft(options.env));

  async function run(args: readonly string[], target: NftTarget | undefined, input?: string) {
    const nft = resolveNft();
    const [file, argv] = target?.isolated
      ? ['unshare', ['--net', '--', nft, ...args]]
      : target?.netns
        ? ['nsenter', [`--net=${netnsPath(target.netns)}`, '--', nft, ...args]]
        : [nft, [...args]];
    try {
      return await execa(file, argv, {
        input: input ?? '',
        reject: false,
        timeout: timeoutMs,
        stripFinalNewline: false,
        env: NFT_ENV,
        extendEnv: true,
      });
    } catch (error) {
      if ((error as ExecaError).code === 'ENOENT') throw new NftNotFoundError([String(file)]);
      throw error;
    }
  }

  async function runChecked(args: readonly string[], target: NftTarget | undefined, input?: string) {
    const result = await run(args, target, input);
    if (result.timedOut) throw new NftTimeoutError(`nft ${args.join(' ')}`, timeoutMs);
    if ((result as { code?: string }).code === 'ENOENT') throw new NftNotFoundError([resolveNft()]);
    return result;
  }

  async function spooled<T>(args: readonly string[], ruleset: string, fn: (args: readonly string[], input: string) => Promise<T>): Promise<T> {
    if (options.spoolDir === undefined) return fn(args, ruleset);
    const path = join(options.spoolDir, `nft-${process.pid}-${randomBytes(6).toString('hex')}.nft`);
    await writeFile(path, ruleset, { mode: 0o600, flag: 'wx' });
    try {
      return await fn(args.map((arg) => (arg === '-' ? path : arg)), '');
    } finally {
      await unlink(path).catch(() => {});
    }
  }

  async function transaction(args: readonly string[], ruleset: string, target?: NftTarget): Promise<NftResult> {
    const result = await spooled(args, ruleset, (argv, input) => runChecked(argv, target, input));
    if (result.exitCode === 0) return { ok: true };
    const stderr = String(result.stderr ?? '');
    return { ok: false, stderr, diagnostics: parseNftDiagnostics(stderr) };
  }

  async function listJson(args: readonly string[], target?: NftTarget): Promise<NftTableJson | undefined> {
    const result = await runChecked(['-j', ...args], target);
    if (result.exitCode !== 0) {
      const stderr = String(result.stderr ?? '');
      if (/No such file or directory/.test(stderr)) return undefined;
      throw new Error(`nft ${args.join(' ')} failed: ${stderr.trim()}`);
    }
    const parsed = JSON.parse(String(result.stdout)) as { nftables?: Record<string, unknown>[] };
    return parsed.nftables ?? [];
  }

  return {
    async version() {
      const result = await runChecked(['--version'], undefined);
      const match = /v(\d+\.\d+\.\d+)/.exec(String(result.stdout));
      if (!match) throw new Error(`cannot read the nft version from ${JSON.stringify(String(result.stdout))}`);
      return match[1]!;
    },
    check: (ruleset, target) => transaction(['--check', '-f', '-'], ruleset, target),
    apply: (ruleset, target) => transaction(['-f', '-'], ruleset, target),
    async listTables(target) {
      const items = (await listJson(['list', 'tables'], target)) ?? [];
      return items.flatMap((item) => {
        const table = item.table as { family: string; name: string } | undefined;
        return table ? [{ family: table.family, name: table.name }] : [];
      });
    },
    listTable: (family, name, target) => listJson(['list', 'table', family, name], target),
    listObject: (kind, family, table, name, target) => listJson(['list', kind, family, table, name], target),
    async listRuleset(target) {
      return (await listJson(['list', 'ruleset'], target)) ?? [];
    },
  };
}
