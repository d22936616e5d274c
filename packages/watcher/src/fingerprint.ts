import { createHash } from 'node:crypto';
import type { NftTableJson } from '@nftops/nft-driver';

/**
 * The fingerprint of a set of live tables: sha256 over a canonical form of `nft -j list table` output (see
 * tablesModel), with everything that changes without anyone editing the rules removed:
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
 * One fingerprint for the given tables: a digest over the digests of their objects (see tablesModel), so the
 * fingerprint after an incremental apply follows from the objects it touched, read back alone.
 */
export function fingerprint(tables: readonly { family: string; name: string; json: NftTableJson | undefined }[]): string {
  return modelFingerprint(tablesModel(tables));
}

/** The fingerprint of a model: sha256 over its objects' keys and digests, in key order. */
export function modelFingerprint(model: TablesModel): string {
  const hash = createHash('sha256');
  for (const key of [...model.keys()].sort()) hash.update(`${key}\t${model.get(key)!.digest}\n`);
  return hash.digest('hex');
}

/**
 * A compact model of live tables, kept in memory after each read-back so the next incremental apply can be
 * checked: per object its canonical declaration, per set or map the multiset of its elements (as 53-bit hashes
 * of their canonical JSON), per chain its canonical rules; and per object a sha256 digest of all of it (the
 * elements in sorted order, since the kernel lists them in hash order).
 */
export interface ObjectModel {
  readonly decl: string;
  readonly elements?: ReadonlyMap<number, number>;
  readonly rules?: readonly string[];
  readonly digest: string;
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

function sha256Lines(lines: readonly string[]): string {
  const hash = createHash('sha256');
  for (const line of lines) hash.update(`${line}\n`);
  return hash.digest('hex');
}

/**
 * Builds the model of the given objects: whole tables as `nft -j list table` returns them, or single sets, maps
 * and chains as `nft -j list set|map|chain` does (the same objects, so a model patched with those equals the
 * model of a fresh table listing).
 */
export function tablesModel(tables: readonly { family: string; name: string; json: NftTableJson | undefined }[]): TablesModel {
  const model = new Map<string, { decl: string; elements?: Map<number, number>; rules?: string[]; digest: string }>();
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
        else model.set(key, { decl: chain?.decl ?? '', rules: [text], digest: '' });
        continue;
      }
      const kind = Object.keys(item)[0]!;
      const value = item[kind] as Record<string, unknown>;
      const key = kind === 'table' ? `table ${String(value.family)} ${String(value.name)}` : `${kind} ${String(value.family)} ${String(value.table)} ${String(value.name)}`;
      if (kind === 'set' || kind === 'map') {
        const { elem, ...rest } = value;
        const decl = JSON.stringify(normalise({ [kind]: rest }));
        const elements = new Map<number, number>();
        const texts: string[] = [];
        if (!isDynamicSet(value) && Array.isArray(elem)) {
          for (const element of elem) {
            const text = JSON.stringify(normalise(element));
            texts.push(text);
            const h = hash53(text);
            elements.set(h, (elements.get(h) ?? 0) + 1);
          }
        }
        texts.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        model.set(key, { decl, elements, digest: sha256Lines([decl, ...texts]) });
        continue;
      }
      const existing = model.get(key);
      model.set(key, { decl: JSON.stringify(normalise(item)), ...(kind === 'chain' ? { rules: existing?.rules ?? [] } : {}), digest: '' });
    }
  }
  for (const object of model.values()) {
    if (object.digest === '') object.digest = sha256Lines([object.decl, ...(object.rules ?? [])]);
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

/** One set, map or chain of a model: what `nft list set|map|chain` names. */
export interface ObjectRef {
  readonly kind: 'set' | 'map' | 'chain';
  readonly family: string;
  readonly table: string;
  readonly name: string;
}

/**
 * The objects an incremental apply with EFFECTS wrote, when all of them exist in BEFORE; undefined when it
 * created or removed an object (then only a listing of the whole tables shows the result, handles included).
 */
export function touchedObjects(before: TablesModel, effects: IncrementalEffects): ObjectRef[] | undefined {
  if (effects.removedChains.size > 0) return undefined;
  const found: ObjectRef[] = [];
  const find = (kinds: readonly ObjectRef['kind'][], ref: string): boolean => {
    const kind = kinds.find((k) => before.has(`${k} ${ref}`));
    const [family, table, name] = ref.split(' ');
    if (kind === undefined || name === undefined) return false;
    found.push({ kind, family: family!, table: table!, name });
    return true;
  };
  for (const ref of effects.elements.keys()) if (!find(['set', 'map'], ref)) return undefined;
  for (const ref of effects.chains.keys()) if (!find(['chain'], ref)) return undefined;
  return found;
}

/** BEFORE with the given objects replaced by their fresh listings (an undefined listing: the object is gone). */
export function patchModel(before: TablesModel, listed: readonly { object: ObjectRef; json: NftTableJson | undefined }[]): TablesModel {
  const patched = new Map(before);
  for (const { object, json } of listed) {
    const key = `${object.kind} ${object.family} ${object.table} ${object.name}`;
    patched.delete(key);
    const fresh = tablesModel([{ family: object.family, name: object.table, json }]).get(key);
    if (fresh) patched.set(key, fresh);
  }
  return patched;
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
