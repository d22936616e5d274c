import { createHash } from 'node:crypto';
import type { NftTableJson } from '@nftops/nft-driver';

/**
 * The fingerprint of a set of live tables: sha256 over a canonical JSON form of `nft -j list table` output,
 * with everything that changes without anyone editing the rules removed:
 *
 *  - `metainfo` objects (nft version),
 *  - rule and object `handle`s (they change on every re-apply),
 *  - counter `packets`/`bytes`, quota `used`, element `expires`, `last` statement `used` (traffic),
 *  - the elements of sets and maps flagged `dynamic` (filled from the packet path),
 *  - the order of elements in a set or map (hash order depends on insertion history, e.g. incremental adds).
 */
const VOLATILE_KEYS = new Set(['handle', 'packets', 'bytes', 'used', 'used_unit', 'expires']);

function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalise);
  if (value === null || typeof value !== 'object') return value;
  const input = value as Record<string, unknown>;
  const output: Record<string, unknown> = {};
  for (const key of Object.keys(input).sort()) {
    if (VOLATILE_KEYS.has(key)) continue;
    output[key] = normalise(input[key]);
  }
  return output;
}

function isDynamicSet(object: Record<string, unknown>): boolean {
  const flags = object.flags;
  return Array.isArray(flags) ? flags.includes('dynamic') : flags === 'dynamic';
}

/**
 * The canonical form: objects sorted (their listing order follows creation order, which the keep-base-chains
 * apply changes), rules grouped by chain in their order within the chain (which matters).
 */
export function canonicalTable(json: NftTableJson | undefined): unknown {
  if (json === undefined) return null;
  const items = json
    .filter((item) => !('metainfo' in item))
    .map((item) => {
      for (const kind of ['set', 'map']) {
        const object = item[kind] as Record<string, unknown> | undefined;
        if (object && isDynamicSet(object)) {
          const { elem: _elem, ...rest } = object;
          return normalise({ [kind]: rest });
        }
        if (object && Array.isArray(object.elem)) {
          // Elements are a set: the kernel lists them in hash order, which depends on insertion history.
          const normalised = normalise({ [kind]: object }) as Record<string, Record<string, unknown>>;
          const elements = (normalised[kind]!.elem as unknown[]).map((e) => [JSON.stringify(e), e] as const);
          elements.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
          normalised[kind]!.elem = elements.map(([, e]) => e);
          return normalised;
        }
      }
      return normalise(item);
    }) as Record<string, Record<string, unknown>>[];
  const objects = items.filter((item) => !('rule' in item)).map((item) => JSON.stringify(item)).sort();
  const rules = items.filter((item) => 'rule' in item);
  const chains = [...new Set(rules.map((item) => String(item.rule!.chain)))].sort();
  return [...objects.map((text) => JSON.parse(text) as unknown), ...chains.flatMap((chain) => rules.filter((item) => String(item.rule!.chain) === chain))];
}

/** One fingerprint for the given tables, in the given order. */
export function fingerprint(tables: readonly { family: string; name: string; json: NftTableJson | undefined }[]): string {
  const canonical = tables.map((t) => [`${t.family} ${t.name}`, canonicalTable(t.json)]);
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/**
 * A compact model of live tables, kept in memory after each read-back so the next incremental apply can be
 * checked: per object its canonical declaration, per set or map the multiset of its elements (as 53-bit hashes
 * of their canonical JSON), per chain its canonical rules.
 */
export interface ObjectModel {
  readonly decl: string;
  readonly elements?: ReadonlyMap<number, number>;
  readonly rules?: readonly string[];
}

export type TablesModel = ReadonlyMap<string, ObjectModel>;

/** A 53-bit hash of a string (two 32-bit FNV-1a style lanes); only compared within one agent's memory. */
function hash53(text: string): number {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 16777619);
    h2 = Math.imul(h2 ^ c, 2246822519);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h2 >>> 0) * 2 ** 21 + ((h1 >>> 0) & 0x1fffff);
}

/** Builds the model of the given tables (as `nft -j list table` returned them). */
export function tablesModel(tables: readonly { family: string; name: string; json: NftTableJson | undefined }[]): TablesModel {
  const model = new Map<string, ObjectModel & { rules?: string[] }>();
  for (const table of tables) {
    if (table.json === undefined) continue;
    for (const item of table.json) {
      if ('metainfo' in item) continue;
      if ('rule' in item) {
        const rule = normalise(item.rule) as Record<string, unknown>;
        const key = `chain ${String(rule.family)} ${String(rule.table)} ${String(rule.chain)}`;
        const chain = model.get(key);
        const text = JSON.stringify(rule);
        if (chain?.rules) chain.rules.push(text);
        else model.set(key, { decl: chain?.decl ?? '', rules: [text] });
        continue;
      }
      const kind = Object.keys(item)[0]!;
      const value = item[kind] as Record<string, unknown>;
      const key = kind === 'table' ? `table ${String(value.family)} ${String(value.name)}` : `${kind} ${String(value.family)} ${String(value.table)} ${String(value.name)}`;
      if (kind === 'set' || kind === 'map') {
        const { elem, ...rest } = value;
        const elements = new Map<number, number>();
        if (!isDynamicSet(value) && Array.isArray(elem)) {
          for (const element of elem) {
            const h = hash53(JSON.stringify(normalise(element)));
            elements.set(h, (elements.get(h) ?? 0) + 1);
          }
        }
        model.set(key, { decl: JSON.stringify(normalise({ [kind]: rest })), elements });
        continue;
      }
      const existing = model.get(key);
      model.set(key, { decl: JSON.stringify(normalise(item)), ...(kind === 'chain' ? { rules: existing?.rules ?? [] } : {}) });
    }
  }
  return model;
}

/** Multiset difference size |A − B|. */
function missingFrom(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): number {
  let count = 0;
  for (const [h, n] of a) count += Math.max(0, n - (b.get(h) ?? 0));
  return count;
}

export interface IncrementalEffects {
  readonly elements: ReadonlyMap<string, { readonly deleted: number; readonly added: number }>;
  readonly chains: ReadonlyMap<string, number>;
  readonly removedChains: ReadonlySet<string>;
}

/**
 * Checks the tables read back after an incremental apply (AFTER) against the model read back after the previous
 * apply (BEFORE) and what the plan did. Objects the plan did not touch must be identical; a set the plan changed
 * must differ by exactly as many elements as were deleted and added; a chain the plan wrote must hold exactly
 * its rules. Anything else means the live state was not what the agent had recorded (drift since the last
 * check) or the plan did not do what it says: the caller then applies the artifact whole. Returns the first
 * discrepancy, or undefined.
 */
export function checkIncremental(before: TablesModel, after: TablesModel, effects: IncrementalEffects): string | undefined {
  for (const [key, object] of before) {
    const now = after.get(key);
    const ref = key.replace(/^\S+ /, '');
    if (key.startsWith('chain ') && effects.removedChains.has(ref)) {
      if (now) return `${key} should have been removed`;
      continue;
    }
    if (!now) return `${key} is missing`;
    if (object.decl !== now.decl) return `${key} changed its declaration`;
    if (key.startsWith('chain ')) {
      const expected = effects.chains.get(ref);
      if (expected !== undefined) {
        if ((now.rules?.length ?? 0) !== expected) return `${key} holds ${now.rules?.length ?? 0} rules, the plan wrote ${expected}`;
      } else if ((object.rules ?? []).length !== (now.rules ?? []).length || (object.rules ?? []).some((r, i) => r !== now.rules![i])) {
        return `${key} changed although the plan did not touch it`;
      }
      continue;
    }
    if (object.elements || now.elements) {
      const a = object.elements ?? new Map<number, number>();
      const b = now.elements ?? new Map<number, number>();
      const expected = effects.elements.get(ref) ?? { deleted: 0, added: 0 };
      const deleted = missingFrom(a, b);
      const added = missingFrom(b, a);
      if (deleted !== expected.deleted || added !== expected.added) {
        return `${key}: ${deleted} elements gone and ${added} new, the plan deleted ${expected.deleted} and added ${expected.added}`;
      }
    }
  }
  for (const [key, now] of after) {
    if (before.has(key)) continue;
    const expected = key.startsWith('chain ') ? effects.chains.get(key.replace(/^\S+ /, '')) : undefined;
    if (expected === undefined) return `${key} appeared although the plan did not create it`;
    if ((now.rules?.length ?? 0) !== expected) return `${key} holds ${now.rules?.length ?? 0} rules, the plan wrote ${expected}`;
  }
  return undefined;
}
