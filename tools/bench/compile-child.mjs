#!/usr/bin/env node
// One compile in a fresh process, so its wall time and peak RSS are its own:
//   node tools/bench/compile-child.mjs SERVICES POLICIES LAYOUT OUT [CHANGED]
// CHANGED=1 renders the "next version": service 0 gets another backend.
import { writeFileSync } from 'node:fs';
import { compile } from '../../packages/compiler/dist/index.js';
import { syntheticSources } from './synthetic.mjs';

const [services, policies, layout, out, changed] = process.argv.slice(2);
const sources = syntheticSources({
  services: Number(services),
  policies: Number(policies),
  layout,
  probe: process.env.NFTOPS_BENCH_PROBE ? JSON.parse(process.env.NFTOPS_BENCH_PROBE) : undefined,
  changed: changed === '1',
});
const start = performance.now();
const result = compile(sources);
const ms = performance.now() - start;
if (!result.ok) {
  console.error(JSON.stringify(result.diagnostics.slice(0, 5)));
  process.exit(2);
}
writeFileSync(out, result.artifacts[0].text);
process.stdout.write(
  `${JSON.stringify({ ms, maxRssMiB: process.resourceUsage().maxRSS / 1024, bytes: Buffer.byteLength(result.artifacts[0].text) })}\n`,
);
