import { describe, expect, it } from 'vitest';
import { parseArtifact, parseBody, planIncremental } from '@nftops/artifact';
import { compile } from '@nftops/compiler';
import { createNftDriver, type NftTableJson } from '@nftops/nft-driver';
import { kernelAvailable, withNetns } from '@nftops/testkit';

interface Service {
  name: string;
  address: string;
  backends: { address: string; weight?: number }[];
  snat?: boolean;
  scheduler?: string;
}

function yamlOf(services: Service[], policies: { name: string; pods: string[]; ingress: string }[], layout: string): string {
  const docs = [`apiVersion: nftops.dev/v1alpha1\nkind: Settings\nmetadata: { name: s }\nspec: { layout: ${layout} }\n`];
  for (const s of services) {
    docs.push(
      `apiVersion: nftops.dev/v1alpha1\nkind: LoadBalancer\nmetadata: { name: ${s.name} }\nspec:\n  address: '${s.address}'\n` +
        `  scheduler: ${s.scheduler ?? 'round-robin'}\n` +
        (s.snat === undefined ? '' : `  snat: ${s.snat}\n`) +
        `  ports: [{ port: 80, targetPort: 8080 }, { protocol: UDP, port: 53 }]\n` +
        `  backends: [${s.backends.map((b) => `{ address: '${b.address}'${b.weight ? `, weight: ${b.weight}` : ''} }`).join(', ')}]\n`,
    );
  }
  for (const p of policies) {
    docs.push(`apiVersion: nftops.dev/v1alpha1\nkind: NetworkPolicy\nmetadata: { name: ${p.name} }\nspec:\n  podAddresses: [${p.pods.map((a) => `'${a}'`).join(', ')}]\n  ingress: ${p.ingress}\n`);
  }
  return docs.join('---\n');
}

function body(services: Service[], policies: { name: string; pods: string[]; ingress: string }[], layout: string): string {
  const result = compile([{ path: 'x.yaml', text: yamlOf(services, policies, layout) }]);
  expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const parsed = parseArtifact(result.artifacts[0]!.text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.artifact.body;
}

const base: Service[] = [
  { name: 'a', address: '192.0.2.1', backends: [{ address: '198.51.100.1' }, { address: '198.51.100.2' }] },
  { name: 'b', address: '2001:db8:f::1', backends: [{ address: '2001:db8:b::1' }, { address: '2001:db8:b::2' }, { address: '2001:db8:b::3' }] },
  { name: 'c', address: '192.0.2.3', backends: [] },
];
const basePolicies = [{ name: 'p', pods: ['198.51.100.1', '2001:db8:b::1'], ingress: "[{ from: [{ ipBlock: { cidr: 203.0.113.0/24 } }] }]" }];

/** Each step is a change a user makes to the previous state. */
const steps: [string, Service[], typeof basePolicies][] = [
  ['add a service', [...base, { name: 'd', address: '192.0.2.4', backends: [{ address: '198.51.100.9' }] }], basePolicies],
  ['change backends', base.map((s) => (s.name === 'a' ? { ...s, backends: [{ address: '198.51.100.1' }, { address: '198.51.100.3' }] } : s)), basePolicies],
  ['change weights (a new group)', base.map((s) => (s.name === 'a' ? { ...s, backends: [{ address: '198.51.100.1', weight: 3 }, { address: '198.51.100.2' }] } : s)), basePolicies],
  ['turn SNAT off and use source-hash', base.map((s) => (s.name === 'b' ? { ...s, snat: false, scheduler: 'source-hash' } : s)), basePolicies],
  ['empty a service and fill another', base.map((s) => (s.name === 'a' ? { ...s, backends: [] } : s.name === 'c' ? { ...s, backends: [{ address: '198.51.100.7' }] } : s)), basePolicies],
  ['remove a service', base.filter((s) => s.name !== 'b'), basePolicies],
  ['add a policy and a pod', base, [...basePolicies, { name: 'q', pods: ['198.51.100.2'], ingress: '[]' }]],
  ['change a policy rule', base, [{ ...basePolicies[0]!, ingress: "[{ ports: [{ port: 8080 }] }]" }]],
  ['remove every policy', base, []],
];

/**
 * A table as nft lists it, without what differs between equal states: handles, counter values, and the
 * order in which chains and sets were created. Rules keep their order within their chain.
 */
function normalize(tables: (NftTableJson | undefined)[]): string {
  const strip = (value: unknown) =>
    JSON.stringify(value, (key, inner: unknown) => {
      if (key === 'handle') return undefined;
      if (key === 'counter' && inner && typeof inner === 'object') return 'counter';
      return inner;
    })

  return JSON.stringify(
    tables.map((items) => {
      const objects: string[] = [];
      const rules = new Map<string, string[]>();
      for (const item of items ?? []) {
        if ('metainfo' in item) continue;
        if ('rule' in item) {
          const rule = item.rule as { chain: string };
          rules.set(rule.chain, [...(rules.get(rule.chain) ?? []), strip(item)]);
        } else if ('set' in item || 'map' in item) {
          const kind = 'set' in item ? 'set' : 'map';
          const set = item[kind] as { elem?: unknown[] };
          objects.push(strip({ [kind]: { ...set, elem: (set.elem ?? []).map(strip).sort() } }));
        } else objects.push(strip(item));
      }
      return { objects: objects.sort(), rules: [...rules.entries()].sort(([a], [b]) => (a < b ? -1 : 1)) };
    }),
  );
}

describe('planIncremental', () => {
  it('plans nothing when nothing changed', () => {
    const b = body(base, basePolicies, 'maps');
    expect(planIncremental(b, b)).toEqual({ ok: true, transaction: '', operations: 0 });
  });

  it('changes one service with element operations only', () => {
    const before = body(base, basePolicies, 'maps');
    const after = body(steps[1]![1], basePolicies, 'maps');
    const plan = planIncremental(before, after);
    expect(plan.ok).toBe(true);
    if (!plan.ok) return;
    expect(plan.transaction).toMatch(/^delete element inet nftops_nat backends4 \{/m);
    expect(plan.transaction).toMatch(/^add element inet nftops_nat backends4 \{/m);
    expect(plan.transaction).not.toMatch(/chain/);
    expect(plan.operations).toBe(4);
  });

  it('refuses what it cannot express, so the caller applies the artifact whole', () => {
    const maps = body(base, basePolicies, 'maps');
    const other = maps.replace(/nftops_filter/g, 'other_filter');
    expect(planIncremental(maps, other)).toMatchObject({ ok: false });
    expect(planIncremental(maps, 'flush ruleset\n')).toMatchObject({ ok: false });
    expect(planIncremental(maps, maps.replace('priority -100;', 'priority -99;'))).toMatchObject({ ok: false });
  });

  it('a service that gains a backend in a sharded family moves to a group chain that exists in its shard: element operations only', () => {
    // Enough services for several backend maps (2 048 elements each; two ports a service); one service of five
    // backends makes the five-slot group exist, and every shard gets that group's chain.
    const fillers: Service[] = Array.from({ length: 600 }, (_, i) => ({
      name: `f${i}`,
      address: `2001:db8:e::${i.toString(16)}`,
      backends: [0, 1, 2, 3].map((b) => ({ address: `2001:db8:e:1::${(i * 4 + b).toString(16)}` })),
    }));
    const five: Service = { name: 'five', address: '2001:db8:f::5', backends: [0, 1, 2, 3, 4].map((b) => ({ address: `2001:db8:b::5${b}` })) };
    const before = body([...fillers, five], [], 'maps');
    const shardOf = (name: string) => new RegExp(`comment "LoadBalancer/${name} TCP/80" : goto \\S+-s(\\d+),?$`, 'm').exec(before)?.[1];
    expect(before.match(/^\tmap backends6-s\d+ \{$/gm)!.length).toBeGreaterThan(1);
    const mover = fillers.find((f) => shardOf(f.name) !== shardOf('five'))!;
    expect(before).toContain(`chain lb6-round-robin-5-snat-s${shardOf(mover.name)} {`);
    const grown = fillers.map((f) => (f === mover ? { ...f, backends: [...f.backends, { address: '2001:db8:b::99' }] } : f));
    const plan = planIncremental(before, body([...grown, five], [], 'maps'));
    expect(plan).toMatchObject({ ok: true });
    if (plan.ok) expect(plan.transaction).not.toMatch(/chain/);
  });

  it('parses every layout the compiler renders', () => {
    for (const layout of ['maps', 'per-service']) expect(parseBody(body(base, basePolicies, layout))).toBeDefined();
  });

  describe.runIf(kernelAvailable())('in a real kernel', () => {
    it.each(['maps', 'per-service'])('%s: every incremental step leaves the same state as a full apply', async (layout) => {
      await withNetns(async (incremental) => {
        await withNetns(async (full) => {
          const nft = createNftDriver();
          const foreign = 'table inet foreign {\n chain input {\n  type filter hook input priority 0; policy accept;\n  counter\n }\n}\n';
          await nft.apply(foreign, { netns: incremental });
          const start = body(base, basePolicies, layout);
          const refused: string[] = [];
          for (const [name, services, policies] of steps) {
            // Every step starts from the same state in both namespaces.
            expect(await nft.apply(start, { netns: incremental })).toEqual({ ok: true });
            const next = body(services, policies, layout);
            const plan = planIncremental(start, next);
            // A refused plan is applied whole, as the watcher does.
            const transaction = plan.ok ? plan.transaction : next;
            if (!plan.ok) refused.push(name);
            const applied = await nft.apply(transaction, { netns: incremental });
            expect(applied, `${name}\n${transaction}`).toEqual({ ok: true });
            expect(await nft.apply(next, { netns: full })).toEqual({ ok: true });
            const tables = [['inet', 'nftops_nat'], ['inet', 'nftops_filter']] as const;
            const live = await Promise.all(tables.map(([f, n]) => nft.listTable(f, n, { netns: incremental })));
            const expected = await Promise.all(tables.map(([f, n]) => nft.listTable(f, n, { netns: full })));
            expect(normalize(live), name).toBe(normalize(expected));
          }
          // Only changes that need a new service-group chain (a new backend count, scheduler or SNAT choice)
          // go in whole in the maps layout; the per-service layout plans every step.
          expect(refused).toEqual(
            layout === 'maps' ? ['add a service', 'change weights (a new group)', 'turn SNAT off and use source-hash', 'empty a service and fill another'] : [],
          );
          expect((await nft.listTables({ netns: incremental })).map((t) => t.name).sort()).toEqual(['foreign', 'nftops_filter', 'nftops_nat']);
        });
      });
    });
  });
});
