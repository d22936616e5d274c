#!/usr/bin/env node
/**
 * The long property run: the properties of packages/compiler/tests/arbitraries.ts (the ones tests/property.test.ts
 * runs in CI with few runs), with many runs and a seed of your choice.
 *
 *   node tools/fuzz/property-long.mjs --runs 5000 --seed 42
 *   node tools/fuzz/property-long.mjs --time 600                 # stop each property when its share of 10 min is used
 *   node tools/fuzz/property-long.mjs --only mutation --seed 42 --path "17:3:0"   # replay a counterexample
 *
 * The sources are bundled on the fly (rolldown, from vite), so no build is needed and the run always tests the
 * current tree. Prints one line per property and a summary line; exits 1 on a counterexample, after printing it
 * shrunk together with the command that replays it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

const USAGE = `usage: node tools/fuzz/property-long.mjs [options]

  --runs N          runs per pure property (default 1000)
  --kernel-runs N   runs per kernel property (default runs / 20, at least 1; 0 skips them)
  --seed N          fast-check seed (default: random, printed)
  --time SECONDS    overall time budget, shared equally by the properties; a property stops early, without
                    failing, when its share is used up (default: no limit)
  --only NAMES      comma-separated property names (default: all)
  --path PATH       replay the counterexample at PATH (printed on failure; use with --only and --seed)
  --list            list the properties and exit
  --help            this text`;

function fail(message) {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function integer(name, text, min) {
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text) || Number(text) < min) fail(`--${name} needs an integer >= ${min}, got ${JSON.stringify(text)}`);
  return Number(text);
}

let args;
try {
  args = parseArgs({
    options: {
      runs: { type: 'string' },
      'kernel-runs': { type: 'string' },
      seed: { type: 'string' },
      time: { type: 'string' },
      only: { type: 'string' },
      path: { type: 'string' },
      list: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  }).values;
} catch (error) {
  fail(error.message);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const runs = integer('runs', args.runs, 1) ?? 1000;
const kernelRuns = integer('kernel-runs', args['kernel-runs'], 0) ?? Math.max(1, Math.round(runs / 20));
const seed = integer('seed', args.seed, -(2 ** 31)) ?? (Math.random() * 2 ** 31) | 0;
const timeSeconds = integer('time', args.time, 1);

/** Bundles the arbitraries (and everything they import: compiler, nft driver, testkit, fast-check) into one file. */
async function bundle(dir) {
  const { rolldown } = await import(pathToFileURL(join(REPO, 'node_modules/rolldown/dist/index.mjs')).href);
  const alias = Object.fromEntries(
    ['artifact', 'nft-driver', 'compiler', 'cli', 'watcher', 'testkit'].map((name) => [`@nftops/${name}`, join(REPO, `packages/${name}/src/index.ts`)]),
  );
  const build = await rolldown({
    input: join(REPO, 'packages/compiler/tests/arbitraries.ts'),
    platform: 'node',
    resolve: { alias },
    logLevel: 'silent',
  });
  const file = join(dir, 'arbitraries.mjs');
  await build.write({ file, format: 'esm', codeSplitting: false });
  await build.close();
  return file;
}

const dir = mkdtempSync(join(tmpdir(), 'nftops-fuzz-'));
let exitCode = 0;
try {
  const started = Date.now();
  const { PROPERTIES, fastCheck: fc, kernelAvailable } = await import(pathToFileURL(await bundle(dir)).href);
  if (args.list) {
    for (const p of PROPERTIES) process.stdout.write(`${p.name}${p.kernel ? ' (kernel)' : ''}: ${p.description}\n`);
    process.exit(0);
  }
  const only = args.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = (only ?? []).filter((name) => !PROPERTIES.some((p) => p.name === name));
  if (unknown.length > 0) fail(`unknown property ${unknown.join(', ')}; known: ${PROPERTIES.map((p) => p.name).join(', ')}`);
  const selected = PROPERTIES.filter((p) => !only || only.includes(p.name));
  const budgetMs = timeSeconds === undefined ? undefined : (timeSeconds * 1000) / Math.max(1, selected.length);
  process.stdout.write(`property-long: seed ${seed}, ${runs} runs per property, ${kernelRuns} per kernel property${budgetMs ? `, ${Math.round(budgetMs / 1000)} s each at most` : ''}\n`);
  let total = 0;
  let failures = 0;
  let skipped = 0;
  for (const spec of selected) {
    const numRuns = spec.kernel ? kernelRuns : runs;
    if (numRuns === 0 || (spec.kernel && !safeKernel(kernelAvailable))) {
      process.stdout.write(`  ${spec.name}: skipped${spec.kernel && numRuns > 0 ? ' (needs root, nft and ip netns)' : ''}\n`);
      skipped++;
      continue;
    }
    const t0 = Date.now();
    const details = await fc.check(spec.property(), {
      seed,
      numRuns,
      ...(args.path ? { path: args.path } : {}),
      ...(budgetMs ? { interruptAfterTimeLimit: budgetMs, markInterruptAsFailure: false } : {}),
    });
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    total += details.numRuns;
    if (details.failed) {
      failures++;
      exitCode = 1;
      process.stdout.write(`  ${spec.name}: COUNTEREXAMPLE after ${details.numRuns} runs (${seconds} s)\n`);
      process.stdout.write(`${fc.defaultReportMessage(details)}\n`);
      const error = details.errorInstance;
      if (error !== undefined) process.stdout.write(`the shrunk counterexample fails with:\n${error instanceof Error ? error.message : String(error)}\n`);
      process.stdout.write(`  replay: node tools/fuzz/property-long.mjs --only ${spec.name} --seed ${details.seed} --path "${details.counterexamplePath}" --runs 1 --kernel-runs 1\n`);
    } else {
      process.stdout.write(`  ${spec.name}: ${details.numRuns} runs ok${details.interrupted ? ' (time budget reached)' : ''} (${seconds} s)\n`);
    }
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `property-long: seed ${seed}: ${selected.length - skipped} properties, ${total} runs, ${failures} counterexample${failures === 1 ? '' : 's'}${skipped ? `, ${skipped} skipped` : ''} in ${seconds} s\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);

function safeKernel(check) {
  try {
    return check();
  } catch {
    return false;
  }
}
