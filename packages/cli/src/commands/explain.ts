import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseArtifact, parseBody } from '@nftops/artifact';
import { createNftDriver, NftNotFoundError, type NftDriver, type NftTableJson } from '@nftops/nft-driver';
import { explainRuleset, formatExplain, readRuleset, type ExplainArtifact } from '../explain/index.js';
import type { CliIo } from '../io.js';
import { compilePaths, EXIT, printDiagnostics, printJson } from '../shared.js';

export const explainHelp = `Usage: nftops explain [PATH...] [options]

Reads the live counters (nft -j list ruleset) and maps every rule and map element back, through its
\`Kind/name\` comment, to the YAML object it came from: connections per service port and per backend,
packets each policy accepted, packets each pod's default deny dropped, packets rejected for services
without backends, and the counters of every mesh chain. Counters of nat chains count connections (the
first packet of each flow); all others count packets. Read-only: nothing in the kernel changes.

Per-backend counts come from the backend map's element counters (layout: maps). In the per-service
layout they are derived from the service port's counter for round robin (marked ~) and not available
for random or source-hash.

With PATH arguments the sources are compiled and their artifacts used as with --artifact.

Options:
      --netns NAME      read the ruleset of this network namespace (/var/run/netns/NAME, or a path to a
                        namespace file); default: the namespace nftops runs in
      --artifact FILE   only the tables FILE owns, and name the objects it holds that the live ruleset
                        lacks (repeatable)
      --nonzero         leave out rows whose counter is zero (text output)
      --json            machine-readable report on stdout
  -h, --help            this help

Error codes: EXPLAIN_ARTIFACT_UNREADABLE, EXPLAIN_ARTIFACT_INVALID, EXPLAIN_NETNS_NOT_FOUND,
EXPLAIN_NFT_FAILED, NFT_NOT_FOUND, and the compiler's codes for PATH arguments.

Exit codes: 0 the report was printed, 2 errors (nothing is printed but the errors).
`;

export interface ExplainError {
  readonly code: 'EXPLAIN_ARTIFACT_UNREADABLE' | 'EXPLAIN_ARTIFACT_INVALID' | 'EXPLAIN_NETNS_NOT_FOUND' | 'EXPLAIN_NFT_FAILED' | 'NFT_NOT_FOUND';
  readonly message: string;
}

export interface ExplainDeps {
  /** Whether a namespace given with --netns exists; the default looks in /var/run/netns. */
  readonly netnsExists?: (netns: string) => boolean;
}

const netnsPath = (netns: string) => (netns.includes('/') ? netns : `/var/run/netns/${netns}`);

function readArtifactFile(io: CliIo, file: string, errors: ExplainError[]): ExplainArtifact | undefined {
  let text: string;
  try {
    text = readFileSync(resolve(io.cwd, file), 'utf8');
  } catch (error) {
    errors.push({ code: 'EXPLAIN_ARTIFACT_UNREADABLE', message: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
    return undefined;
  }
  const parsed = parseArtifact(text);
  if (!parsed.ok) {
    errors.push({ code: 'EXPLAIN_ARTIFACT_INVALID', message: `${file}: ${parsed.code}: ${parsed.message}` });
    return undefined;
  }
  return { tables: parsed.artifact.header.tables, body: parseBody(parsed.artifact.body) };
}


export async function runExplain(args: string[], io: CliIo, nft?: NftDriver, deps: ExplainDeps = {}): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      netns: { type: 'string' },
      artifact: { type: 'string', multiple: true },
      nonzero: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(explainHelp);
    return EXIT.ok;
  }
  const errors: ExplainError[] = [];
  const fail = (): number => {
    if (values.json) printJson(io, { ok: false, errors });
    else for (const e of errors) io.stderr.write(`nftops explain: error ${e.code}: ${e.message}\n`);
    return EXIT.error;
  };

  let artifacts: ExplainArtifact[] | undefined;
  for (const file of values.artifact ?? []) {
    const artifact = readArtifactFile(io, file, errors);
    if (artifact) (artifacts ??= []).push(artifact);
  }
  if (positionals.length > 0) {
    const { result, diagnostics } = compilePaths(io, positionals);
    if (!result.ok) {
      if (values.json) printJson(io, { ok: false, diagnostics, errors });
      else {
        printDiagnostics(io, diagnostics);
        for (const e of errors) io.stderr.write(`nftops explain: error ${e.code}: ${e.message}\n`);
      }
      return EXIT.error;
    }
    for (const compiled of result.artifacts) {
      const parsed = parseArtifact(compiled.text);
      if (parsed.ok) (artifacts ??= []).push({ tables: parsed.artifact.header.tables, body: parseBody(parsed.artifact.body) });
    }
    artifacts ??= [];
  }
  if (errors.length > 0) return fail();

  const netns = values.netns;
  if (netns !== undefined) {
    const exists = deps.netnsExists ?? ((name: string) => existsSync(netnsPath(name)));
    if (netns === '' || !exists(netns)) {
      errors.push({ code: 'EXPLAIN_NETNS_NOT_FOUND', message: `network namespace ${JSON.stringify(netns)} does not exist (looked for ${netnsPath(netns)})` });
      return fail();
    }
  }

  let items: NftTableJson;
  try {
    items = await (nft ?? createNftDriver()).listRuleset(netns !== undefined ? { netns } : undefined);
  } catch (error) {
    const code = (error as { code?: string }).code;
    errors.push(
      error instanceof NftNotFoundError || code === 'NFT_NOT_FOUND'
        ? { code: 'NFT_NOT_FOUND', message: (error as Error).message }
        : { code: 'EXPLAIN_NFT_FAILED', message: `cannot list the ruleset${netns ? ` of netns ${netns}` : ''}: ${(error as Error).message.split('\n')[0]}` },
    );
    return fail();
  }

  const report = explainRuleset(readRuleset(items), artifacts ? { artifacts } : {});
  if (values.json) printJson(io, { ok: true, netns: netns ?? null, ...report });
  else io.stdout.write(formatExplain(report, { nonzero: values.nonzero }));
  return EXIT.ok;
}
