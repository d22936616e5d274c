import { createHash } from 'node:crypto';
import type { NftTableJson } from '@nftops/nft-driver';

/**
 * The fingerprint of a set of live tables: sha256 over a canonical JSON form of `nft -j list table` output,
 * with everything that changes without anyone editing the rules removed:
 *
 *  - `metainfo` objects (nft version),
 *  - rule and object `handle`s (they change on every re-apply),
 *  - counter `packets`/`bytes`, quota `used`, element `expires`, `last` statement `used` (traffic),
 *  - the elements of sets and maps flagged `dynamic` (filled from the packet path).
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
