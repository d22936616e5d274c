/** Where a command runs: the current network namespace, or one named under /var/run/netns (or any path to a netns file). */
export interface NftTarget {
  readonly netns?: string;
  /** Run in a brand-new, empty network namespace that vanishes when nft exits (`unshare --net`). */
  readonly isolated?: boolean;
}

/** One error location as nft reports it: `<input>:LINE:COLSTART-COLEND: Error: MESSAGE`. */
export interface NftDiagnostic {
  readonly line: number;
  readonly columnStart: number;
  readonly columnEnd: number;
  readonly message: string;
}

export type NftResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly stderr: string; readonly diagnostics: readonly NftDiagnostic[] };

/** A table as `nft -j list table` returns it: the raw `nftables` array. */
export type NftTableJson = readonly Record<string, unknown>[];

/**
 * Everything nftops asks of nft. The real implementation runs the binary; FakeNftDriver keeps state in memory.
 * Rulesets always travel on stdin, so nothing is ever written to a temporary file.
 */
export interface NftDriver {
  /** The nft version, for example "1.0.6". */
  version(): Promise<string>;
  /** `nft --check -f -`: parses and validates in the kernel, changes nothing. */
  check(ruleset: string, target?: NftTarget): Promise<NftResult>;
  /** `nft -f -`: one transaction, all or nothing. */
  apply(ruleset: string, target?: NftTarget): Promise<NftResult>;
  /** `nft -j list tables`: family and name of every table. */
  listTables(target?: NftTarget): Promise<{ family: string; name: string }[]>;
  /** `nft -j list table FAMILY NAME`, or undefined when the table does not exist. */
  listTable(family: string, name: string, target?: NftTarget): Promise<NftTableJson | undefined>;
  /**
   * `nft -j list set|map|chain FAMILY TABLE NAME`: one object (a chain with its rules), or undefined when it does
   * not exist. Much cheaper than listing its table when the table is large (nft fetches only what it names).
   */
  listObject(kind: 'set' | 'map' | 'chain', family: string, table: string, name: string, target?: NftTarget): Promise<NftTableJson | undefined>;
  /** `nft -j list ruleset`. */
  listRuleset(target?: NftTarget): Promise<NftTableJson>;
}

export class NftNotFoundError extends Error {
  readonly code = 'NFT_NOT_FOUND';
  constructor(searched: readonly string[]) {
    super(`nft was not found (searched ${searched.join(', ')}); install nftables (Debian: apt-get install nftables)`);
    this.name = 'NftNotFoundError';
  }
}

export class NftTimeoutError extends Error {
  readonly code = 'NFT_TIMEOUT';
  constructor(command: string, timeoutMs: number) {
    super(`nft did not finish within ${timeoutMs} ms (${command})`);
    this.name = 'NftTimeoutError';
  }
}

const DIAGNOSTIC = /^(?:[^:\n]*):(\d+):(\d+)-(\d+): Error: (.*)$/gm;

export function parseNftDiagnostics(stderr: string): NftDiagnostic[] {
  const result: NftDiagnostic[] = [];
  for (const match of stderr.matchAll(DIAGNOSTIC)) {
    result.push({
      line: Number(match[1]),
      columnStart: Number(match[2]),
      columnEnd: Number(match[3]),
      message: match[4]!,
    });
  }
  return result;
}
