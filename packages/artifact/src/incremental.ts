import { elementKey, parseBody, type ChainStructure, type SetStructure, type TableStructure } from './structure.js';

export type IncrementalPlan =
  | { readonly ok: true; readonly transaction: string; readonly operations: number }
  | { readonly ok: false; readonly reason: string };

function byName<T extends { name: string }>(items: readonly T[]): Map<string, T> {
  return new Map(items.map((item) => [item.name, item]));
}

function sameLines(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((line, i) => line === b[i]);
}

/**
 * Plans the smallest transaction that turns the live state of PREVIOUS (an artifact body that was applied
 * whole) into the state NEXT would give: element adds and deletes, new chains, rewritten chains, removed
 * chains. Anything it cannot express exactly (a new table, a changed set type or base chain, an unknown
 * layout) makes it refuse, and the caller applies NEXT whole. The result is one transaction: all or nothing.
 */
export function planIncremental(previous: string, next: string): IncrementalPlan {
  const before = parseBody(previous);
  const after = parseBody(next);
  if (!before || !after) return { ok: false, reason: 'a body is not in the layout nftops renders' };
  const key = (t: TableStructure) => `${t.family} ${t.name}`;
  if (!sameLines(before.tables.map(key), after.tables.map(key))) return { ok: false, reason: 'the set of tables changed' };

  const chainsAdded: string[] = [];
  const rulesAdded: string[] = [];
  const elementsDeleted: string[] = [];
  const elementsAdded: string[] = [];
  const chainsRemoved: string[] = [];
  let operations = 0;

  for (let t = 0; t < after.tables.length; t++) {
    const old = before.tables[t]!;
    const now = after.tables[t]!;
    const ref = key(now);
    if (!sameLines(old.declaration, now.declaration)) return { ok: false, reason: `table ${ref} changed its declaration` };
    const oldSets = byName(old.objects.filter((o): o is SetStructure => o.kind !== 'chain'));
    const newSets = byName(now.objects.filter((o): o is SetStructure => o.kind !== 'chain'));
    if (!sameLines([...oldSets.keys()].sort(), [...newSets.keys()].sort())) return { ok: false, reason: `the sets and maps of ${ref} changed` };
    for (const [name, set] of newSets) {
      const was = oldSets.get(name)!;
      if (was.kind !== set.kind || !sameLines(was.declaration, set.declaration)) {
        return { ok: false, reason: `${set.kind} ${name} in ${ref} changed its declaration` };
      }
      const oldElements = new Set(was.elements);
      const newElements = new Set(set.elements);
      const removed = was.elements.filter((e) => !newElements.has(e)).map(elementKey);
      const added = set.elements.filter((e) => !oldElements.has(e));
      if (removed.length > 0) elementsDeleted.push(`delete element ${ref} ${name} {\n\t${removed.join(',\n\t')}\n}`);
      if (added.length > 0) elementsAdded.push(`add element ${ref} ${name} {\n\t${added.join(',\n\t')}\n}`);
      operations += removed.length + added.length;
    }
    // nft 1.0.6 misreads a `typeof` map's key from the kernel ("conflicting protocols"), so a rule that looks
    // one up can only be added together with the map: such a change goes in as a full apply.
    const typeofSets = [...newSets.values()].filter((set) => set.declaration[0]?.startsWith('typeof ')).map((set) => `@${set.name}`);
    const looksUpTypeof = (rule: string) => typeofSets.some((ref) => rule.includes(`${ref} `) || rule.endsWith(ref));
    const oldChains = byName(old.objects.filter((o): o is ChainStructure => o.kind === 'chain'));
    const newChains = byName(now.objects.filter((o): o is ChainStructure => o.kind === 'chain'));
    for (const [name, chain] of newChains) {
      const was = oldChains.get(name);
      if (!was) {
        if (chain.base !== undefined) return { ok: false, reason: `base chain ${name} is new in ${ref}` };
        if (chain.rules.some(looksUpTypeof)) return { ok: false, reason: `new chain ${name} looks up a typeof map` };
        chainsAdded.push(`add chain ${ref} ${name}`);
        for (const rule of chain.rules) rulesAdded.push(`add rule ${ref} ${name} ${rule}`);
        operations += 1 + chain.rules.length;
        continue;
      }
      if (was.base !== chain.base) return { ok: false, reason: `base chain ${name} in ${ref} changed its hook or priority` };
      if (sameLines(was.rules, chain.rules)) continue;
      if (chain.rules.some(looksUpTypeof)) return { ok: false, reason: `chain ${name} looks up a typeof map` };
      // A chain is rewritten whole inside the transaction, so packets never see it half-done.
      rulesAdded.push(`flush chain ${ref} ${name}`, ...chain.rules.map((rule) => `add rule ${ref} ${name} ${rule}`));
      operations += 1 + chain.rules.length;
    }
    for (const [name, chain] of oldChains) {
      if (newChains.has(name)) continue;
      if (chain.base !== undefined) return { ok: false, reason: `base chain ${name} was removed from ${ref}` };
      chainsRemoved.push(`flush chain ${ref} ${name}`, `delete chain ${ref} ${name}`);
      operations += 2;
    }
  }
  // New chains exist before elements point at them; elements stop pointing at old chains before they go.
  const transaction = [...chainsAdded, ...rulesAdded, ...elementsDeleted, ...elementsAdded, ...chainsRemoved];
  return { ok: true, transaction: transaction.length === 0 ? '' : `${transaction.join('\n')}\n`, operations };
}
