import { parseArgs } from 'node:util';
import type { Diagnostic } from '@nftops/compiler';
import { createNftDriver, type NftDriver } from '@nftops/nft-driver';
import type { CliIo } from '../io.js';
import { compilePaths, EXIT, printDiagnostics, printJson } from '../shared.js';

export const checkHelp = `Usage: nftops check [PATH...] [options]

Compiles the sources, then loads every artifact with the real nft into a throwaway, empty network
namespace (unshare --net), so the kernel itself validates it. Nothing touches the host's ruleset.
When the kernel refuses a rule, the error is mapped back to the YAML object the rule came from.
Needs root (CAP_SYS_ADMIN for the namespace, CAP_NET_ADMIN for nft) and nft.

Options:
      --json          machine-readable result on stdout
  -h, --help          this help

Exit codes: 0 every artifact loads, 2 errors (in the sources, or refused by the kernel).
`;

export async function runCheck(args: string[], io: CliIo, nft: NftDriver = createNftDriver()): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(checkHelp);
    return EXIT.ok;
  }
  const { result, diagnostics } = compilePaths(io, positionals);
  const kernel: Diagnostic[] = [];
  const checked: { name: string; ok: boolean }[] = [];
  if (result.ok) {
    for (const artifact of result.artifacts) {
      const outcome = await nft.apply(artifact.text, { isolated: true });
      checked.push({ name: artifact.name, ok: outcome.ok });
      if (outcome.ok) continue;
      const where = artifact.output ?? `artifact ${artifact.name}`;
      if (outcome.diagnostics.length === 0) {
        kernel.push({ code: 'NFT_REJECTED', severity: 'error', message: `nft refused ${where}: ${outcome.stderr.trim()}`, file: where, line: 1, column: 1 });
      }
      for (const d of outcome.diagnostics) {
        const source = artifact.ruleSource(d.line);
        const line = artifact.text.split('\n')[d.line - 1] ?? '';
        kernel.push({
          code: 'NFT_REJECTED',
          severity: 'error',
          message: `nft refused line ${d.line} of ${where}: ${d.message}${source ? ` (rule of ${source.object})` : ''}`,
          hint: line.trim().slice(0, 200),
          file: source?.file || where,
          line: source?.line || d.line,
          column: source?.column || d.columnStart,
          ...(source ? { object: source.object } : {}),
        });
      }
    }
  }
  const all = [...diagnostics, ...kernel];
  const ok = result.ok && kernel.length === 0;
  if (values.json) printJson(io, { ok, diagnostics: all, artifacts: checked });
  else {
    printDiagnostics(io, all);
    for (const c of checked) io.stderr.write(`${c.name}: ${c.ok ? 'loads in the kernel' : 'refused by the kernel'}\n`);
  }
  return ok ? EXIT.ok : EXIT.error;
}
