import { diffArrays } from 'diff';
import { elementKey, parseArtifact, parseBody, type BodyStructure, type ObjectStructure, type TableStructure } from '@nftops/artifact';
import { compareRefs, compareText, tableOwner } from '../explain/object-ref.js';
import { bodyFacts, lineOwner, type BodyFacts, type PortFacts } from './facts.js';

/**
 * The semantic diff of two artifacts: which YAML objects changed and how (services, backends, policies, mesh
 * settings), and which rules and elements that adds, removes or changes, grouped by the `Kind/name` in their
 * comments. Pure: text in, data out.
 */
export interface LineChanges {
  /** `inet nftops_nat` (the new name when the table was renamed) */
  readonly table: string;
  /** `chain istio-output`, `map backends4`, `table` (the table's own declaration) */
  readonly location: string;
  readonly kind: 'rule' | 'element' | 'declaration';
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly { readonly from: string; readonly to: string }[];
}

export interface ObjectChange {
  /** `LoadBalancer/web`, or `table inet x` for lines of a table whose owner is unknown */
  readonly object: string;
  readonly status: 'added' | 'removed' | 'changed';
  /** What changed, in words: ports, backends, weights, schedulers, pods, tables. */
  readonly changes: readonly string[];
  readonly rules: Count;
  readonly elements: Count;
  readonly lines: readonly LineChanges[];
}

interface Count {
  readonly added: number;
  readonly removed: number;
  readonly changed: number;
}

export interface SemanticDiff {
  /** False when one side cannot be read as an nftops body (then only the text diff applies). */
  readonly available: boolean;
  readonly reason?: string;
  readonly tables: {
    readonly added: readonly string[];
    readonly removed: readonly string[];
    readonly renamed: readonly { readonly from: string; readonly to: string }[];
  };
  readonly objects: readonly ObjectChange[];
}

const EMPTY: BodyStructure = { tables: [] };

/** Reads an artifact's body structure; a body whose digest does not match is still read (it is what is committed). */
function readBody(text: string | undefined, side: string): { body?: BodyStructure; reason?: string } {
  if (text === undefined) return { body: EMPTY };
  const parsed = parseArtifact(text);
  let bodyText: string | undefined;
  if (parsed.ok) bodyText = parsed.artifact.body;
  else if (parsed.code === 'ARTIFACT_DIGEST_MISMATCH') bodyText = text.slice(text.indexOf('\n\n') + 2);
  else return { reason: `the ${side} file is not an nftops artifact (${parsed.code}: ${parsed.message})` };
  const body = parseBody(bodyText);
  return body ? { body } : { reason: `the ${side} body is not in the layout nftops renders` };
}

/** The semantic diff of the committed artifact (undefined: missing) and the freshly rendered one. */
export function semanticDiffArtifacts(committed: string | undefined, rendered: string): SemanticDiff {
  if (committed === rendered) return { available: true, tables: { added: [], removed: [], renamed: [] }, objects: [] };
  const before = readBody(committed, 'committed');
  const after = readBody(rendered, 'rendered');
  if (!before.body || !after.body) {
    return { available: false, reason: before.reason ?? after.reason, tables: { added: [], removed: [], renamed: [] }, objects: [] };
  }
  return semanticDiff(before.body, after.body);
}

// ---------------------------------------------------------------------------------------------------------------

const tname = (t: TableStructure) => `${t.family} ${t.name}`;

interface Builder {
  changes: string[];
  /** Tables, chains, sets and maps added or removed: listed after the changes in words. */
  structure: string[];
  lines: Map<string, { table: string; location: string; kind: LineChanges['kind']; added: string[]; removed: string[]; changed: { from: string; to: string }[] }>;
}

/** A table's content with its own name taken out: two tables that differ only in name pair as a rename. */
function tableSignature(table: TableStructure): string {
  return JSON.stringify([table.family, table.declaration, table.objects]);
}

export function semanticDiff(before: BodyStructure, after: BodyStructure): SemanticDiff {
  const builders = new Map<string, Builder>();
  const builder = (ref: string): Builder => {
    let b = builders.get(ref);
    if (!b) builders.set(ref, (b = { changes: [], structure: [], lines: new Map() }));
    return b;
  };
  const record = (ref: string, table: string, location: string, kind: LineChanges['kind'], change: 'added' | 'removed', line: string) => {
    const lines = builder(ref).lines;
    const key = `${table}\u0000${location}\u0000${kind}`;
    let entry = lines.get(key);
    if (!entry) lines.set(key, (entry = { table, location, kind, added: [], removed: [], changed: [] }));
    entry[change].push(line);
  };
  const recordChanged = (ref: string, table: string, location: string, kind: LineChanges['kind'], from: string, to: string) => {
    const lines = builder(ref).lines;
    const key = `${table}\u0000${location}\u0000${kind}`;
    let entry = lines.get(key);
    if (!entry) lines.set(key, (entry = { table, location, kind, added: [], removed: [], changed: [] }));
    entry.changed.push({ from, to });
  };

  // Pair tables: same family and name; then leftovers with identical content as renames, then by owner.
  const oldTables = new Map(before.tables.map((t) => [tname(t), t]));
  const newTables = new Map(after.tables.map((t) => [tname(t), t]));
  const pairs: [TableStructure | undefined, TableStructure | undefined][] = [];
  const renamed: { from: string; to: string }[] = [];
  const leftOld = before.tables.filter((t) => !newTables.has(tname(t)));
  const leftNew = after.tables.filter((t) => !oldTables.has(tname(t)));
  for (const t of after.tables) if (oldTables.has(tname(t))) pairs.push([oldTables.get(tname(t)), t]);
  for (const match of [
    (a: TableStructure, b: TableStructure) => tableSignature(a) === tableSignature(b),
    (a: TableStructure, b: TableStructure) => a.family === b.family && tableOwner(a.declaration) !== undefined && tableOwner(a.declaration) === tableOwner(b.declaration),
  ]) {
    for (const t of [...leftNew]) {
      const partner = leftOld.find((o) => match(o, t));
      if (!partner) continue;
      leftOld.splice(leftOld.indexOf(partner), 1);
      leftNew.splice(leftNew.indexOf(t), 1);
      pairs.push([partner, t]);
      renamed.push({ from: tname(partner), to: tname(t) });
      const owner = tableOwner(t.declaration) ?? `table ${tname(t)}`;
      builder(owner).structure.push(`table ${tname(partner)} renamed to ${tname(t)}`);
    }
  }
  for (const t of leftOld) {
    pairs.push([t, undefined]);
    builder(tableOwner(t.declaration) ?? `table ${tname(t)}`).structure.push(`table ${tname(t)} removed`);
  }
  for (const t of leftNew) {
    pairs.push([undefined, t]);
    builder(tableOwner(t.declaration) ?? `table ${tname(t)}`).structure.push(`table ${tname(t)} added`);
  }

  for (const [oldTable, newTable] of pairs) diffTable(oldTable, newTable, { record, recordChanged, builder });

  // Objects: services and policies in words.
  const oldFacts = bodyFacts(before);
  const newFacts = bodyFacts(after);
  diffServices(oldFacts, newFacts, builder);
  diffPolicies(oldFacts, newFacts, builder);

  const present = (body: BodyStructure) => {
    const refs = new Set<string>();
    for (const table of body.tables) {
      const owner = tableOwner(table.declaration);
      if (owner) refs.add(owner);
      for (const object of table.objects) for (const line of object.kind === 'chain' ? object.rules : object.elements) refs.add(lineOwner(line, table));
    }
    return refs;
  };
  const inOld = present(before);
  const inNew = present(after);

  const objects: ObjectChange[] = [];
  for (const [ref, b] of [...builders].sort(([a], [c]) => compareRefs(a, c))) {
    const lines = [...b.lines.values()]
      .map((l) => ({ ...l, added: l.added, removed: l.removed, changed: l.changed }))
      .sort((x, y) => compareText(x.table, y.table) || locationRank(x.location) - locationRank(y.location) || compareText(x.location, y.location) || compareText(x.kind, y.kind));
    const changes = [...b.changes, ...b.structure];
    if (changes.length === 0 && lines.length === 0) continue;
    const count = (kind: LineChanges['kind']) => {
      const of = lines.filter((l) => l.kind === kind);
      return { added: of.reduce((n, l) => n + l.added.length, 0), removed: of.reduce((n, l) => n + l.removed.length, 0), changed: of.reduce((n, l) => n + l.changed.length, 0) };
    };
    const status = !inOld.has(ref) && inNew.has(ref) ? 'added' : inOld.has(ref) && !inNew.has(ref) ? 'removed' : 'changed';
    objects.push({ object: ref, status, changes, rules: count('rule'), elements: count('element'), lines });
  }
  return {
    available: true,
    tables: {
      added: leftNew.map(tname).sort(compareText),
      removed: leftOld.map(tname).sort(compareText),
      renamed: renamed.sort((a, b) => compareText(a.from, b.from)),
    },
    objects,
  };
}

/** Table declaration first, then sets and maps, then chains. */
function locationRank(location: string): number {
  return location === 'table' ? 0 : location.startsWith('chain ') ? 2 : 1;
}

interface Recorder {
  record(ref: string, table: string, location: string, kind: LineChanges['kind'], change: 'added' | 'removed', line: string): void;
  recordChanged(ref: string, table: string, location: string, kind: LineChanges['kind'], from: string, to: string): void;
  builder(ref: string): Builder;
}

function diffTable(oldTable: TableStructure | undefined, newTable: TableStructure | undefined, r: Recorder): void {
  const table = (newTable ?? oldTable)!;
  const name = tname(table);
  const owner = (t: TableStructure) => tableOwner(t.declaration) ?? `table ${tname(t)}`;
  // The table's own declaration (its comment).
  const oldDecl = oldTable?.declaration ?? [];
  const newDecl = newTable?.declaration ?? [];
  if (oldTable && newTable) {
    diffUnordered(oldDecl, newDecl, (line) => line, (change, line) => r.record(owner(change === 'added' ? newTable : oldTable), name, 'table', 'declaration', change, line), (from, to) => r.recordChanged(owner(newTable), name, 'table', 'declaration', from, to));
  }
  const oldObjects = new Map((oldTable?.objects ?? []).map((o) => [`${o.kind} ${o.name}`, o]));
  const newObjects = new Map((newTable?.objects ?? []).map((o) => [`${o.kind} ${o.name}`, o]));
  const keys = [...new Set([...newObjects.keys(), ...oldObjects.keys()])];
  for (const key of keys) {
    const o = oldObjects.get(key);
    const n = newObjects.get(key);
    const location = key;
    const lineOf = (t: TableStructure | undefined) => (line: string) => lineOwner(line, t ?? table);
    if (o && n) diffObject(o, n, location, name, lineOf(oldTable), lineOf(newTable), owner(newTable ?? table), r);
    else {
      const object = (o ?? n)!;
      const t = o ? oldTable! : newTable!;
      const change = o ? 'removed' : 'added';
      const items = object.kind === 'chain' ? object.rules : object.elements;
      // A chain whose rules all belong to one object is that object's; sets, maps and shared chains are the table's.
      const owners = new Set(items.map((line) => lineOwner(line, t)));
      const principal = object.kind === 'chain' && owners.size === 1 ? [...owners][0]! : owner(t);
      if (oldTable && newTable) r.builder(principal).structure.push(`${name} ${location} ${change}`);
      for (const line of items) r.record(lineOwner(line, t), name, location, object.kind === 'chain' ? 'rule' : 'element', change, line);
    }
  }
}

function diffObject(o: ObjectStructure, n: ObjectStructure, location: string, table: string, oldOwner: (line: string) => string, newOwner: (line: string) => string, tableOwnerRef: string, r: Recorder): void {
  if (o.kind === 'chain' && n.kind === 'chain') {
    if (o.base !== n.base) {
      if (o.base && n.base) r.recordChanged(tableOwnerRef, table, location, 'declaration', o.base, n.base);
      else if (o.base) r.record(tableOwnerRef, table, location, 'declaration', 'removed', o.base);
      else if (n.base) r.record(tableOwnerRef, table, location, 'declaration', 'added', n.base);
    }
    // Order matters in a chain: an ordered diff; a removed run followed by an added run pairs up as changes
    // when the rules belong to the same object.
    let removedRun: string[] = [];
    const flush = (added: string[]) => {
      const pairs = Math.min(removedRun.length, added.length);
      let paired = 0;
      for (let i = 0; i < pairs; i++) {
        if (oldOwner(removedRun[i]!) !== newOwner(added[i]!)) break;
        r.recordChanged(newOwner(added[i]!), table, location, 'rule', removedRun[i]!, added[i]!);
        paired++;
      }
      for (const line of removedRun.slice(paired)) r.record(oldOwner(line), table, location, 'rule', 'removed', line);
      for (const line of added.slice(paired)) r.record(newOwner(line), table, location, 'rule', 'added', line);
      removedRun = [];
    };
    for (const part of diffArrays([...o.rules], [...n.rules])) {
      if (part.removed) removedRun.push(...part.value);
      else if (part.added) flush(part.value);
      else flush([]);
    }
    flush([]);
    return;
  }
  if (o.kind !== 'chain' && n.kind !== 'chain') {
    diffUnordered(o.declaration, n.declaration, (line) => line, (change, line) => r.record(tableOwnerRef, table, location, 'declaration', change, line), (from, to) => r.recordChanged(tableOwnerRef, table, location, 'declaration', from, to));
    diffUnordered(
      o.elements,
      n.elements,
      elementKey,
      (change, line) => r.record(change === 'added' ? newOwner(line) : oldOwner(line), table, location, 'element', change, line),
      (from, to) => r.recordChanged(newOwner(to), table, location, 'element', from, to),
    );
    return;
  }
  // A set turned into a chain or the other way round cannot happen with one name and kind in the key.
}

/** Lines compared as a set, keyed by KEY: same key and different text is a change. */
function diffUnordered(
  before: readonly string[],
  after: readonly string[],
  key: (line: string) => string,
  onLine: (change: 'added' | 'removed', line: string) => void,
  onChanged: (from: string, to: string) => void,
): void {
  const oldByKey = new Map(before.map((line) => [key(line), line]));
  const newByKey = new Map(after.map((line) => [key(line), line]));
  for (const line of before) {
    const partner = newByKey.get(key(line));
    if (partner === undefined) onLine('removed', line);
    else if (partner !== line) onChanged(line, partner);
  }
  for (const line of after) if (!oldByKey.has(key(line))) onLine('added', line);
}

// ---------------------------------------------------------------------------------------------------------------
// Services and policies in words.

const PROTOCOL_RANK: Record<string, number> = { TCP: 0, UDP: 1, SCTP: 2 };
function comparePorts(a: string, b: string): number {
  const [pa, na] = a.split('/');
  const [pb, nb] = b.split('/');
  return (PROTOCOL_RANK[pa!] ?? 9) - (PROTOCOL_RANK[pb!] ?? 9) || Number(na) - Number(nb) || compareText(a, b);
}

/** Backend `address . port` → its slots, in order of the first slot. */
function backendSlots(slots: readonly string[]): Map<string, number[]> {
  const result = new Map<string, number[]>();
  slots.forEach((backend, slot) => {
    if (backend === undefined) return;
    const list = result.get(backend) ?? [];
    list.push(slot);
    result.set(backend, list);
  });
  return result;
}

function slotsText(slots: readonly number[]): string {
  if (slots.length === 1) return `slot ${slots[0]}`;
  const contiguous = slots.every((s, i) => i === 0 || s === slots[i - 1]! + 1);
  return contiguous ? `slots ${slots[0]}-${slots[slots.length - 1]}` : `slots ${slots.join(',')}`;
}

function portLabel(port: string, facts: PortFacts): string {
  return `${port}${facts.name ? ` ${facts.name}` : ''}`;
}

function describePort(facts: PortFacts): string {
  if (facts.noBackends) return 'no backends (traffic rejected or dropped)';
  const backends = [...backendSlots(facts.slots)].map(([backend, slots]) => (slots.length > 1 ? `${backend} (weight ${slots.length})` : backend));
  const scheduler = facts.scheduler && backends.length > 1 ? `${facts.scheduler} over ` : 'to ';
  return `${scheduler}${backends.join(', ')}${facts.snat === true ? ', snat' : facts.snat === false ? ', no snat' : ''}`;
}

function diffServices(before: BodyFacts, after: BodyFacts, builder: (ref: string) => Builder): void {
  const refs = [...new Set([...before.services.keys(), ...after.services.keys()])].sort(compareRefs);
  for (const ref of refs) {
    const o = before.services.get(ref) ?? new Map<string, PortFacts>();
    const n = after.services.get(ref) ?? new Map<string, PortFacts>();
    const changes: string[] = [];
    const addresses = (ports: ReadonlyMap<string, PortFacts>) => [...new Set([...ports.values()].map((p) => p.address))].sort(compareText).join(', ');
    if (o.size > 0 && n.size > 0 && addresses(o) !== addresses(n)) changes.push(`address ${addresses(o)} -> ${addresses(n)}`);
    for (const port of [...new Set([...o.keys(), ...n.keys()])].sort(comparePorts)) {
      const a = o.get(port);
      const b = n.get(port);
      if (!a && b) {
        changes.push(`port ${portLabel(port, b)} added${o.size > 0 ? '' : ` on ${b.address}`}: ${describePort(b)}`);
        continue;
      }
      if (a && !b) {
        changes.push(`port ${portLabel(port, a)} removed`);
        continue;
      }
      if (!a || !b) continue;
      const label = portLabel(port, b);
      if (a.name !== b.name) changes.push(`${port}: name ${a.name || '(none)'} -> ${b.name || '(none)'}`);
      if (a.noBackends !== b.noBackends) {
        changes.push(b.noBackends ? `${label}: no backends left (traffic rejected or dropped)` : `${label}: backends again: ${describePort(b)}`);
        continue;
      }
      if (a.scheduler !== undefined && b.scheduler !== undefined && a.scheduler !== b.scheduler) changes.push(`${label}: scheduler ${a.scheduler} -> ${b.scheduler}`);
      if (a.snat !== undefined && b.snat !== undefined && a.snat !== b.snat) changes.push(`${label}: snat ${a.snat ? 'on' : 'off'} -> ${b.snat ? 'on' : 'off'}`);
      const was = backendSlots(a.slots);
      const now = backendSlots(b.slots);
      for (const [backend, slots] of now) {
        const old = was.get(backend);
        if (!old) changes.push(`${label}: backend ${backend} added (${slotsText(slots)})`);
        else if (old.length !== slots.length) {
          changes.push(`${label}: backend ${backend} weight ${old.length} -> ${slots.length} (${old.length}/${a.slots.length} -> ${slots.length}/${b.slots.length} of the slots, now ${slotsText(slots)})`);
        }
      }
      for (const [backend, slots] of was) if (!now.has(backend)) changes.push(`${label}: backend ${backend} removed (was ${slotsText(slots)})`);
    }
    builder(ref).changes.push(...changes);
  }
}

function diffPolicies(before: BodyFacts, after: BodyFacts, builder: (ref: string) => Builder): void {
  const refs = [...new Set([...before.policies.keys(), ...after.policies.keys()])].sort(compareRefs);
  for (const ref of refs) {
    const o = before.policies.get(ref);
    const n = after.policies.get(ref);
    const changes: string[] = [];
    const sortPods = (pods: Iterable<string>) => [...pods].sort(compareText);
    if (!o && n) changes.push(`policy added: selects ${sortPods(n.pods).join(', ')}; ${n.rules.length} rule${n.rules.length === 1 ? '' : 's'}${n.rules.length === 0 ? ' (denies all)' : ''}`);
    else if (o && !n) changes.push(`policy removed (selected ${sortPods(o.pods).join(', ')})`);
    else if (o && n) {
      for (const pod of sortPods(n.pods)) if (!o.pods.has(pod)) changes.push(`now selects pod ${pod}`);
      for (const pod of sortPods(o.pods)) if (!n.pods.has(pod)) changes.push(`no longer selects pod ${pod}`);
      const added = n.rules.filter((rule) => !o.rules.includes(rule)).length;
      const removed = o.rules.filter((rule) => !n.rules.includes(rule)).length;
      if (added > 0 || removed > 0) changes.push(`rules: ${added} added, ${removed} removed (${o.rules.length} -> ${n.rules.length})`);
      else if (o.rules.join('\n') !== n.rules.join('\n')) changes.push('rules reordered');
    }
    builder(ref).changes.push(...changes);
  }
}
