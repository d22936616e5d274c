#!/usr/bin/env node
// `npm start`: compile the bundled examples, prove the committed artifacts are current, and show them.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const nftops = (...args) => spawnSync(process.execPath, ['packages/cli/bin/nftops.js', ...args], { cwd: root, encoding: 'utf8' });

const compiled = nftops('compile', 'examples', '--json');
const result = JSON.parse(compiled.stdout);
for (const d of result.diagnostics) console.log(`${d.file}:${d.line}:${d.column}: ${d.severity} ${d.code}: ${d.message}`);
if (!result.ok) process.exit(compiled.status ?? 2);
for (const artifact of result.artifacts) {
  console.log(`\n===== ${artifact.output} (artifact ${artifact.name}, ${artifact.bytes} bytes, tables: ${artifact.tables.map((t) => `${t.family} ${t.name}`).join(', ')}) =====\n`);
  process.stdout.write(readFileSync(`${root}/${artifact.output}`, 'utf8'));
}
const diff = nftops('diff', 'examples');
process.stdout.write(`\n${diff.stderr}`);
process.exit(diff.status ?? 2);
