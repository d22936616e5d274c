import { VERSION } from '@nftops/compiler';
import { NftNotFoundError } from '@nftops/nft-driver';
import { runCheck, checkHelp } from './commands/check.js';
import { runCompile, compileHelp } from './commands/compile.js';
import { runDiff, diffHelp } from './commands/diff.js';
import { runImport, importHelp } from './commands/import-lbaas.js';
import { runExplain, explainHelp } from './commands/explain.js';
import { runSign, signHelp } from './commands/sign.js';
import type { CliIo } from './io.js';
import { EXIT, UsageError } from './shared.js';

const help = `Usage: nftops <command> [options]

Compile versioned YAML policy into deterministic nftables artifacts.

Commands:
  compile   render the sources into .nft artifacts
  check     compile, then load each artifact into a throwaway network namespace with the real nft
  diff      render and compare with the committed artifacts (CI): exit 1 when stale; --semantic per object
  explain   map the live counters back to the YAML objects: connections per backend, policy drops
  sign      sign artifacts with an ed25519 key, verify them, or make a key pair
  import    convert ch-k8s-lbaas (import lbaas) or Istio capture settings (import istio) into nftops YAML
  version   print the version

Run \`nftops <command> --help\` for a command's options.
Exit codes: 0 success, 1 difference found (diff), 2 errors.
`;

const commands: Record<string, { run: (args: string[], io: CliIo) => number | Promise<number>; help: string }> = {
  compile: { run: runCompile, help: compileHelp },
  check: { run: runCheck, help: checkHelp },
  diff: { run: runDiff, help: diffHelp },
  import: { run: runImport, help: importHelp },
  explain: { run: (args, io) => runExplain(args, io), help: explainHelp },
  sign: { run: runSign, help: signHelp },
};

/** The CLI as a function: argv in, exit code out, all I/O through IO. Never throws for expected errors. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(help);
    return name === undefined ? EXIT.error : EXIT.ok;
  }
  if (name === 'version' || name === '--version') {
    io.stdout.write(`nftops ${VERSION}\n`);
    return EXIT.ok;
  }
  const command = commands[name];
  if (!command) {
    io.stderr.write(`nftops: unknown command "${name}"\n\n${help}`);
    return EXIT.error;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      io.stderr.write(`nftops ${name}: ${(error as Error).message}\n\n${command.help}`);
      return EXIT.error;
    }
    if (error instanceof NftNotFoundError || code === 'NFT_TIMEOUT') {
      io.stderr.write(`nftops ${name}: ${(error as Error).message}\n`);
      return EXIT.error;
    }
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
      io.stderr.write(`nftops ${name}: ${(error as Error).message}\n`);
      return EXIT.error;
    }
    io.stderr.write(
      `nftops ${name}: internal error: ${(error as Error).message}\nThis is a bug in nftops; please report it with the input that caused it.\n`,
    );
    if (io.env.NFTOPS_DEBUG) io.stderr.write(`${(error as Error).stack}\n`);
    return EXIT.error;
  }
}
