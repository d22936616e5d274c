import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArtifact } from '@nftops/artifact';
import { createNftDriver } from '@nftops/nft-driver';
import { kernelAvailable, withNetns } from '@nftops/testkit';
import { FIXTURES, REPO } from './helpers.js';

function goldenArtifacts(): [string, string][] {
  const found: [string, string][] = [];
  for (const name of readdirSync(FIXTURES).filter((n) => !n.startsWith('_') && n !== 'traffic')) {
    const dir = join(FIXTURES, name, 'expected');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.nft')).sort()) found.push([`${name}/${file}`, join(dir, file)]);
  }
  for (const name of readdirSync(join(REPO, 'examples')).sort()) {
    const dir = join(REPO, 'examples', name);
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.nft')).sort()) found.push([`examples/${name}/${file}`, join(dir, file)]);
  }
  return found;
}

/** The owned tables as nft lists them, without counters and handles (which change with traffic and loads). */
async function liveTables(netns: string, tables: readonly { family: string; name: string }[]) {
  const nft = createNftDriver();
  const listed = await Promise.all(tables.map((t) => nft.listTable(t.family, t.name, { netns })));
  return JSON.stringify(listed, (key, value: unknown) => (key === 'handle' ? undefined : value));
}

describe.runIf(kernelAvailable())('golden artifacts in a real kernel', () => {
  it.each(goldenArtifacts())('%s loads, and loading it again changes nothing', async (_name, file) => {
    const text = readFileSync(file, 'utf8');
    const parsed = parseArtifact(text);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const tables = parsed.artifact.header.tables;
    await withNetns(async (netns) => {
      const nft = createNftDriver();
      const foreign = 'table inet foreign {\n chain input {\n  type filter hook input priority 0; policy accept;\n  counter\n }\n}\n';
      expect(await nft.apply(foreign, { netns })).toEqual({ ok: true });
      expect(await nft.apply(text, { netns })).toEqual({ ok: true });
      const first = await liveTables(netns, tables);
      expect(await nft.apply(text, { netns })).toEqual({ ok: true });
      expect(await liveTables(netns, tables)).toBe(first);
      const names = (await nft.listTables({ netns })).map((t) => `${t.family} ${t.name}`).sort();
      expect(names).toEqual(['inet foreign', ...tables.map((t) => `${t.family} ${t.name}`)].sort());
      // Every rule carries a counter and a comment naming its source object.
      const rules = (await nft.listRuleset({ netns })).filter((item) => 'rule' in item).map((item) => item.rule as { table: string; comment?: string; expr: unknown[] });
      for (const rule of rules.filter((r) => r.table !== 'foreign')) {
        expect(rule.comment).toMatch(/^(LoadBalancer|NetworkPolicy|Settings|MeshRedirection|AmbientNode)\/[a-z0-9.-]+/);
        expect(JSON.stringify(rule.expr)).toContain('"counter"');
      }
    });
  });
});
