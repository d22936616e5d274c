/**
 * Property-based tests (fast-check): the properties of tests/arbitraries.ts with the run counts CI can afford.
 * The long run (tools/fuzz/property-long.mjs) runs the same properties with many more runs and random seeds.
 *
 * NFTOPS_FC_SEED=n replays a seed (the failure message prints it, with the path to the shrunk counterexample);
 * NFTOPS_FC_RUNS=n scales every property to n runs (kernel properties to n / 10).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '@nftops/compiler';
import { kernelAvailable } from '@nftops/testkit';
import { model, permute, PROPERTIES, renderModel, style } from './arbitraries.js';

const SEED = process.env.NFTOPS_FC_SEED !== undefined ? Number(process.env.NFTOPS_FC_SEED) : 20260412;
const RUNS = process.env.NFTOPS_FC_RUNS !== undefined ? Number(process.env.NFTOPS_FC_RUNS) : undefined;

function runsOf(spec: (typeof PROPERTIES)[number]): number {
  if (RUNS === undefined) return spec.ciRuns;
  return spec.kernel ? Math.max(1, Math.round(RUNS / 10)) : RUNS;
}

describe('properties', () => {
  for (const spec of PROPERTIES.filter((p) => !p.kernel)) {
    it(`${spec.name}: ${spec.description}`, async () => {
      await fc.assert(spec.property() as fc.IAsyncProperty<never>, { seed: SEED, numRuns: runsOf(spec) });
    });
  }
});

describe.runIf(kernelAvailable())('properties in a real kernel', () => {
  for (const spec of PROPERTIES.filter((p) => p.kernel)) {
    it(`${spec.name}: ${spec.description}`, { timeout: Math.max(120_000, runsOf(spec) * 3_000) }, async () => {
      await fc.assert(spec.property() as fc.IAsyncProperty<never>, { seed: SEED, numRuns: runsOf(spec) });
    });
  }
});

describe('the generators', () => {
  it('cover every kind, both layouts, both address families and several files', () => {
    const samples = fc.sample(model({ mesh: true }), { seed: SEED, numRuns: 300 });
    const docs = samples.flatMap((m) => m.files.flatMap((f) => f.docs));
    const kinds = new Set(docs.map((d) => d.kind));
    expect([...kinds].sort()).toEqual(['AmbientNode', 'Artifact', 'LoadBalancer', 'MeshRedirection', 'NetworkPolicy', 'Settings']);
    const text = JSON.stringify(samples);
    for (const needle of ['"layout":"per-service"', '"layout":"maps"', '2001:', '198.51.100.', '"endPort"', '"except"', '"weight"', '"mode":"ambient"', '"interceptionMode":"TPROXY"']) {
      expect(text, needle).toContain(needle);
    }
    expect(samples.some((m) => m.files.length >= 3)).toBe(true);
  });

  it('the permutation really reorders, and a style can send a file down the precise YAML path', () => {
    const [m] = fc.sample(model().filter((x) => x.files.flatMap((f) => f.docs).length >= 3), { seed: SEED, numRuns: 1 });
    const before = renderModel(m!).map((s) => s.text);
    const after = renderModel(permute(m!, [3, 1, 4, 1, 5, 9, 2, 6], 5), [{ flowFrom: 2, precisePath: true }]).map((s) => s.text);
    expect(after).not.toEqual(before);
    expect(after.every((t) => t.includes('*'))).toBe(true);
    expect(compile(renderModel(m!)).ok).toBe(true);
  });

  it('styles are generated in both YAML forms', () => {
    const styles = fc.sample(style, { seed: SEED, numRuns: 100 });
    expect(styles.some((s) => s.flowFrom === 0) && styles.some((s) => s.flowFrom > 0)).toBe(true);
  });
});
