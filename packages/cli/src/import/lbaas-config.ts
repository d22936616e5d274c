import { parse as parseToml } from 'smol-toml';
import type { ImportReport, Position } from './report.js';

/**
 * The `[nftables]` section of a ch-k8s-lbaas agent config (lbaas.md §1.2), with the agent's defaults
 * (FillNftablesConfig) for absent keys, and where each key was written.
 */
export interface NftablesConfig {
  readonly filterTableName: string;
  readonly filterTableType: string;
  readonly filterForwardChain: string;
  readonly natTableName: string;
  readonly natPreroutingChain: string;
  readonly natPostroutingChain: string;
  readonly policyPrefix: string;
  readonly nftCommand: readonly string[];
  readonly partialReload: boolean;
  readonly enableSnat: boolean;
  readonly fwmarkBits: number;
  readonly fwmarkMask: number;
  /** Position of a key (by its TOML name), or of the section, or of the file's start. */
  at(key: string): Position;
  /** The TOML keys present in the file (for comments saying where a value came from). */
  readonly given: ReadonlySet<string>;
}

export const NFTABLES_DEFAULTS = {
  'filter-table-name': 'filter',
  'filter-table-type': 'inet',
  'filter-forward-chain': 'forward',
  'nat-table-name': 'nat',
  'nat-prerouting-chain': 'prerouting',
  'nat-postrouting-chain': 'postrouting',
  'policy-prefix': '',
  'nft-command': ['sudo', 'nft'],
  'partial-reload': false,
  'enable-snat': true,
  'fwmark-bits': 1,
  'fwmark-mask': 1,
} as const;

type Key = keyof typeof NFTABLES_DEFAULTS;

/** Where `key = ...` is written inside `[table]` (or as `table.key = ...` at the top); a best effort scan. */
function keyPosition(file: string, text: string, table: string, key: string): Position | undefined {
  const lines = text.split('\n');
  let current = '';
  const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const inTable = new RegExp(`^(\\s*)(["']?)${escaped}\\2\\s*=`);
  const dotted = new RegExp(`^(\\s*)(["']?)${table}\\2\\s*\\.\\s*(["']?)${escaped}\\3\\s*=`);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const header = /^\s*\[\s*([^\]]*?)\s*\]/.exec(line);
    if (header && !/^\s*\[\[/.test(line)) {
      current = header[1]!.replace(/["'\s]/g, '');
      continue;
    }
    const m = (current === table ? inTable : current === '' ? dotted : undefined)?.exec(line);
    if (m) return { file, line: i + 1, column: m[1]!.length + 1 };
  }
  return undefined;
}

function sectionPosition(file: string, text: string, table: string): Position {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = new RegExp(`^(\\s*)\\[\\s*${table.replace('.', '\\s*\\.\\s*')}\\s*\\]`).exec(lines[i]!);
    if (m) return { file, line: i + 1, column: m[1]!.length + 1 };
  }
  return { file, line: 1, column: 1 };
}

const isTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/**
 * Reads the agent config. Without a file the agent's defaults apply. Type errors are errors; keys that do
 * not map (partial-reload, nft-command, [nftables.service]) and unknown keys are warnings.
 */
export function readNftablesConfig(source: { path: string; text: string } | undefined, report: ImportReport): NftablesConfig | undefined {
  const values: Record<Key, unknown> = { ...NFTABLES_DEFAULTS };
  const file = source?.path ?? '(defaults)';
  const given = new Set<string>();
  let at = (_key: string): Position => ({ file, line: 1, column: 1 });
  if (source) {
    let parsed: Record<string, unknown>;
    try {
      parsed = parseToml(source.text) as Record<string, unknown>;
    } catch (error) {
      const e = error as { line?: number; column?: number; message: string };
      report.error('IMPORT_TOML_SYNTAX', { file, line: e.line ?? 1, column: e.column ?? 1 }, e.message.split('\n')[0]!.trim());
      return undefined;
    }
    const section = sectionPosition(file, source.text, 'nftables');
    at = (key) => keyPosition(file, source.text, 'nftables', key) ?? section;
    const nft = parsed.nftables;
    if (nft !== undefined && !isTable(nft)) {
      report.error('LBAAS_SETTING_TYPE', keyPosition(file, source.text, '', 'nftables') ?? section, 'nftables must be a table ([nftables])');
      return undefined;
    }
    let failed = false;
    for (const [key, value] of Object.entries(nft ?? {})) {
      if (key === 'service') {
        report.warn(
          'LBAAS_SETTING_IGNORED',
          sectionPosition(file, source.text, 'nftables.service'),
          '[nftables.service] (config-file, reload/status/start commands, check-delay) is not converted: nftops-watch applies artifacts itself, atomically, one nft transaction per change',
          'see docs/migration.md: the watcher replaces the file + reload-command cycle',
        );
        continue;
      }
      if (!(key in NFTABLES_DEFAULTS)) {
        report.warn('LBAAS_UNKNOWN_SETTING', at(key), `"${key}" is not a ch-k8s-lbaas [nftables] setting; ignored`);
        continue;
      }
      const expected = NFTABLES_DEFAULTS[key as Key];
      const ok =
        typeof expected === 'string'
          ? typeof value === 'string'
          : typeof expected === 'boolean'
            ? typeof value === 'boolean'
            : typeof expected === 'number'
              ? typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff
              : Array.isArray(value) && value.every((item) => typeof item === 'string');
      if (!ok) {
        const want =
          typeof expected === 'number' ? 'an integer from 0 to 4294967295 (uint32)' : Array.isArray(expected) ? 'a list of strings' : `a ${typeof expected}`;
        report.error('LBAAS_SETTING_TYPE', at(key), `${key} must be ${want}, not ${JSON.stringify(value)}`);
        failed = true;
        continue;
      }
      values[key as Key] = value;
      given.add(key);
    }
    if (failed) return undefined;
  }
  return {
    filterTableName: values['filter-table-name'] as string,
    filterTableType: values['filter-table-type'] as string,
    filterForwardChain: values['filter-forward-chain'] as string,
    natTableName: values['nat-table-name'] as string,
    natPreroutingChain: values['nat-prerouting-chain'] as string,
    natPostroutingChain: values['nat-postrouting-chain'] as string,
    policyPrefix: values['policy-prefix'] as string,
    nftCommand: values['nft-command'] as string[],
    partialReload: values['partial-reload'] as boolean,
    enableSnat: values['enable-snat'] as boolean,
    fwmarkBits: values['fwmark-bits'] as number,
    fwmarkMask: values['fwmark-mask'] as number,
    at,
    given,
  };
}
