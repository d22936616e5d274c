import { createTwoFilesPatch } from 'diff';
import { parseArgs } from 'node:util';
import { stripSignature } from '@nftops/artifact';
import { readTextIfExists, type CliIo } from '../io.js';
import { formatSemanticDiff, semanticDiffArtifacts, type SemanticDiff } from '../semantic-diff/index.js';
import { compilePaths, EXIT, outputPath, printDiagnostics, printJson, UsageError } from '../shared.js';

export const diffHelp = `Usage: nftops diff [PATH...] [options]

Renders the sources again and compares each artifact with the committed file. This is what CI runs.

With --semantic, each differing artifact is also described per YAML object, for reviewers: which services,
ports, backends (slots, weights), schedulers, policies (pods, rules), mesh and Settings objects changed,
and which rules and map or set elements that adds, removes or changes, grouped by the \`Kind/name\` in
their comments; then the unified diff. --json always carries it as the "semantic" field of each artifact.

Options:
  -o, --output FILE   the committed artifact, when the sources declare no Artifact
      --semantic      print the per-object semantic diff before the unified diff
      --json          machine-readable result on stdout (with "semantic" per artifact)
  -h, --help          this help

Exit codes: 0 every artifact is current, 1 some differ or are missing (a unified diff is printed),
2 errors.
`;

export interface ArtifactComparison {
  readonly name: string;
  readonly output: string;
  readonly status: 'current' | 'stale' | 'missing';
  readonly diff: string;
  /** Present with --json or --semantic. */
  readonly semantic?: SemanticDiff;
}

export function runDiff(args: string[], io: CliIo): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      semantic: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(diffHelp);
    return EXIT.ok;
  }
  const { result, diagnostics } = compilePaths(io, positionals);
  if (!result.ok) {
    if (values.json) printJson(io, { ok: false, diagnostics, artifacts: [] });
    else printDiagnostics(io, diagnostics);
    return EXIT.error;
  }
  const comparisons: ArtifactComparison[] = [];
  for (const artifact of result.artifacts) {
    const target = outputPath(io, artifact.output, values.output);
    const shown = artifact.output ?? values.output;
    if (target === undefined || shown === undefined) {
      throw new UsageError('the sources declare no Artifact: pass --output FILE to name the committed artifact');
    }
    // A signature added by CI after compile is not staleness: compare what the compiler renders.
    const stored = readTextIfExists(target);
    const committed = stored === undefined ? undefined : stripSignature(stored);
    const status = committed === undefined ? 'missing' : committed === artifact.text ? 'current' : 'stale';
    const diff =
      status === 'current'
        ? ''
        : createTwoFilesPatch(`a/${shown}`, `b/${shown}`, committed ?? '', artifact.text, 'committed', 'rendered', { context: 3 });
    const semantic = values.json || values.semantic ? semanticDiffArtifacts(committed, artifact.text) : undefined;
    comparisons.push({ name: artifact.name, output: shown, status, diff, ...(semantic ? { semantic } : {}) });
  }
  const different = comparisons.some((c) => c.status !== 'current');
  if (values.json) {
    printJson(io, { ok: true, different, diagnostics, artifacts: comparisons });
  } else {
    printDiagnostics(io, diagnostics);
    for (const c of comparisons) {
      if (c.status === 'current') io.stderr.write(`${c.output}: current\n`);
      else {
        io.stderr.write(`${c.output}: ${c.status === 'missing' ? 'missing (never compiled)' : 'stale'}\n`);
        if (c.semantic) io.stdout.write(`${formatSemanticDiff(c.semantic, c.output)}\n`);
        io.stdout.write(c.diff);
      }
    }
    if (different) io.stderr.write('run `nftops compile` and commit the result\n');
  }
  return different ? EXIT.different : EXIT.ok;
}
