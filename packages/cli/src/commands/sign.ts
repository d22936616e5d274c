import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseArtifact, signArtifact, verifyArtifactSignature } from '@nftops/artifact';
import { writeFileAtomic, type CliIo } from '../io.js';
import { EXIT, printJson, UsageError } from '../shared.js';

export const signHelp = `Usage: nftops sign --key PRIVATE.pem ARTIFACT...
       nftops sign --verify PUBLIC.pem ARTIFACT...
       nftops sign --generate-key NAME

Signs artifacts with an ed25519 key (CI does this after compile), verifies them, or makes a key pair
(NAME.pem, private, mode 0600; NAME.pub, public: give it to the watcher with --public-key).
A signature is one header line; signing again replaces it. Each file is replaced atomically.

Options:
      --key FILE            the private key (PEM, PKCS#8) to sign with
      --verify FILE         the public key (PEM, SPKI) to verify against
      --generate-key NAME   write NAME.pem and NAME.pub
      --json                machine-readable result on stdout
  -h, --help                this help

Exit codes: 0 done (every signature valid, with --verify), 1 a signature is missing or invalid, 2 errors.
`;

export function runSign(args: string[], io: CliIo): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      key: { type: 'string' },
      verify: { type: 'string' },
      'generate-key': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(signHelp);
    return EXIT.ok;
  }
  const modes = [values.key, values.verify, values['generate-key']].filter((v) => v !== undefined).length;
  if (modes !== 1) throw new UsageError('give exactly one of --key, --verify, --generate-key');
  if (values['generate-key'] !== undefined) {
    const base = resolve(io.cwd, values['generate-key']);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(`${base}.pem`, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    writeFileSync(`${base}.pub`, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644, flag: 'wx' });
    io.stderr.write(`wrote ${values['generate-key']}.pem (private) and ${values['generate-key']}.pub (public)\n`);
    return EXIT.ok;
  }
  if (positionals.length === 0) throw new UsageError('name at least one artifact');
  const key = readFileSync(resolve(io.cwd, (values.key ?? values.verify)!), 'utf8');
  const results: { file: string; ok: boolean; message?: string }[] = [];
  for (const file of positionals) {
    const path = resolve(io.cwd, file);
    const text = readFileSync(path, 'utf8');
    const parsed = parseArtifact(text);
    if (!parsed.ok) {
      results.push({ file, ok: false, message: `${parsed.code}: ${parsed.message}` });
      continue;
    }
    if (values.key !== undefined) {
      writeFileAtomic(path, signArtifact(text, key));
      results.push({ file, ok: true });
    } else {
      const check = verifyArtifactSignature(text, key);
      results.push(check.ok ? { file, ok: true } : { file, ok: false, message: `${check.code}: ${check.message}` });
    }
  }
  if (values.json) printJson(io, { ok: results.every((r) => r.ok), artifacts: results });
  else for (const r of results) io.stderr.write(`${r.file}: ${r.ok ? (values.key ? 'signed' : 'signature valid') : r.message}\n`);
  return results.every((r) => r.ok) ? EXIT.ok : results.some((r) => r.message?.startsWith('ARTIFACT_')) ? EXIT.error : EXIT.different;
}
