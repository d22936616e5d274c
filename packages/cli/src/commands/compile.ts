import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic, type CliIo } from '../io.js';
import { compilePaths, EXIT, outputPath, printDiagnostics, printJson, UsageError } from '../shared.js';

export const compileHelp = `Usage: nftops compile [PATH...] [options]

Compiles the YAML objects under PATH (files or directories; default ".") into .nft artifacts.
Each Artifact object is written to its spec.output (relative to the file declaring it). Sources
without Artifact objects make one artifact, written to --output or printed to stdout.
Nothing is written unless every artifact compiles; each file is replaced atomically.

Options:
  -o, --output FILE   where the artifact goes when the sources declare no Artifact
      --stdout        print the artifacts instead of writing them
      --json          machine-readable result on stdout
  -h, --help          this help

Exit codes: 0 compiled, 2 errors (all of them are reported, with file:line:column and a code).
`;

export function runCompile(args: string[], io: CliIo): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      stdout: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(compileHelp);
    return EXIT.ok;
  }
  const { result, diagnostics } = compilePaths(io, positionals);
  const declared = result.artifacts.some((a) => a.output !== undefined);
  if (declared && values.output !== undefined) {
    throw new UsageError('--output cannot be used when the sources declare Artifact objects (each has its own spec.output)');
  }
  const written: { name: string; output: string | null; bytes: number }[] = [];
  if (result.ok) {
    for (const artifact of result.artifacts) {
      const target = values.stdout ? undefined : outputPath(io, artifact.output, values.output);
      if (target === undefined) {
        if (!values.json) io.stdout.write(artifact.text);
      } else {
        mkdirSync(dirname(target), { recursive: true });
        writeFileAtomic(target, artifact.text);
      }
      written.push({
        name: artifact.name,
        output: target === undefined ? null : (artifact.output ?? values.output ?? null),
        bytes: Buffer.byteLength(artifact.text),
      });
    }
  }
  if (values.json) {
    printJson(io, {
      ok: result.ok,
      diagnostics,
      artifacts: result.ok
        ? result.artifacts.map((a, i) => ({ ...written[i], tables: a.tables, text: values.stdout ? a.text : undefined }))
        : [],
    });
  } else {
    printDiagnostics(io, diagnostics);
    for (const w of written) if (w.output !== null) io.stderr.write(`wrote ${w.output} (${w.bytes} bytes, artifact ${w.name})\n`);
  }
  return result.ok ? EXIT.ok : EXIT.error;
}
