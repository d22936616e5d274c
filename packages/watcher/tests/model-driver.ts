import { elementKey, parseBody, type TableStructure } from '@nftops/artifact';
import type { NftDriver, NftResult, NftTableJson, NftTarget } from '@nftops/nft-driver';

interface Table {
  family: string;
  name: string;
  declaration: string[];
  sets: Map<string, { kind: 'set' | 'map'; declaration: string[]; elements: string[] }>;
  chains: Map<string, { base: string | undefined; rules: string[] }>;
}

function fromStructure(t: TableStructure): Table {
  const table: Table = { family: t.family, name: t.name, declaration: [...t.declaration], sets: new Map(), chains: new Map() };
  for (const o of t.objects) {
    if (o.kind === 'chain') table.chains.set(o.name, { base: o.base, rules: [...o.rules] });
    else table.sets.set(o.name, { kind: o.kind, declaration: [...o.declaration], elements: [...o.elements] });
  }
  return table;
}

const clone = (t: Table): Table => ({
  ...t,
  declaration: [...t.declaration],
  sets: new Map([...t.sets].map(([k, v]) => [k, { ...v, elements: [...v.elements] }])),
  chains: new Map([...t.chains].map(([k, v]) => [k, { ...v, rules: [...v.rules] }])),
});

/**
 * An in-memory nft that understands the rendered layout (whole tables, via parseBody) and the commands of
 * incremental plans (add/delete element, add/flush/delete chain, add rule), and lists tables as nft-like JSON
 * (objects, elements, rules as text). For the unit tests of the incremental decision logic.
 */
export class ModelNftDriver implements NftDriver {
  readonly calls: { op: string; netns: string | undefined; ruleset?: string }[] = [];
  private readonly namespaces = new Map<string, Map<string, Table>>();
  private rejecters: ((ruleset: string) => string | undefined)[] = [];

  rejectWhen(fn: (ruleset: string) => string | undefined): void {
    this.rejecters.push(fn);
  }

  clearRejecters(): void {
    this.rejecters = [];
  }

  private tables(target?: NftTarget): Map<string, Table> {
    const key = target?.netns ?? '';
    let tables = this.namespaces.get(key);
    if (!tables) this.namespaces.set(key, (tables = new Map()));
    return tables;
  }

  /** Drift: remove an element (by key) behind the agent's back. */
  tamperDeleteElement(family: string, table: string, set: string, key: string, target?: NftTarget): void {
    const s = this.tables(target).get(`${family} ${table}`)!.sets.get(set)!;
    s.elements = s.elements.filter((e) => elementKey(e) !== key);
  }

  /** Drift: replace a chain's rules behind the agent's back. */
  tamperRules(family: string, table: string, chain: string, rules: string[], target?: NftTarget): void {
    this.tables(target).get(`${family} ${table}`)!.chains.get(chain)!.rules = rules;
  }

  rules(family: string, table: string, chain: string, target?: NftTarget): string[] | undefined {
    return this.tables(target).get(`${family} ${table}`)?.chains.get(chain)?.rules;
  }

  elements(family: string, table: string, set: string, target?: NftTarget): string[] | undefined {
    return this.tables(target).get(`${family} ${table}`)?.sets.get(set)?.elements;
  }

  async version() {
    return '1.0.6';
  }

  async check(ruleset: string, target?: NftTarget): Promise<NftResult> {
    this.calls.push({ op: 'check', netns: target?.netns, ruleset });
    return this.run(ruleset, target, false);
  }

  async apply(ruleset: string, target?: NftTarget): Promise<NftResult> {
    this.calls.push({ op: 'apply', netns: target?.netns, ruleset });
    return this.run(ruleset, target, true);
  }

  private run(ruleset: string, target: NftTarget | undefined, commit: boolean): NftResult {
    for (const reject of this.rejecters) {
      const message = reject(ruleset);
      if (message !== undefined) return { ok: false, stderr: `Error: ${message}\n`, diagnostics: [] };
    }
    const next = new Map([...this.tables(target)].map(([k, v]) => [k, clone(v)]));
    const error = execute(ruleset, next);
    if (error) return { ok: false, stderr: `Error: ${error}\n`, diagnostics: [] };
    if (commit) this.namespaces.set(target?.netns ?? '', next);
    return { ok: true };
  }

  async listTables(target?: NftTarget) {
    return [...this.tables(target).values()].map((t) => ({ family: t.family, name: t.name }));
  }

  async listTable(family: string, name: string, target?: NftTarget): Promise<NftTableJson | undefined> {
    this.calls.push({ op: 'listTable', netns: target?.netns });
    const t = this.tables(target).get(`${family} ${name}`);
    if (!t) return undefined;
    const json: Record<string, unknown>[] = [{ metainfo: { version: '1.0.6' } }, { table: { family, name, handle: 1, comment: t.declaration.join(' ') } }];
    let handle = 2;
    for (const [setName, s] of t.sets) {
      json.push({ [s.kind]: { family, table: name, name: setName, handle: handle++, type: s.declaration.join(' '), elem: s.elements.map((e) => ({ elem: { val: e, counter: { packets: 0, bytes: 0 } } })) } });
    }
    for (const [chainName, c] of t.chains) json.push({ chain: { family, table: name, name: chainName, handle: handle++, ...(c.base ? { base: c.base } : {}) } });
    for (const [chainName, c] of t.chains) for (const rule of c.rules) json.push({ rule: { family, table: name, chain: chainName, handle: handle++, expr: rule } });
    return json;
  }

  /** One object as `nft -j list set|map|chain` shows it: the same items as in its table's listing. */
  async listObject(kind: 'set' | 'map' | 'chain', family: string, table: string, name: string, target?: NftTarget): Promise<NftTableJson | undefined> {
    this.calls.push({ op: 'listObject', netns: target?.netns });
    const items = await this.listTable(family, table, target);
    this.calls.pop(); // the listTable call above is not one the agent made
    const own = (items ?? []).filter((item) => {
      const object = item[kind] as { name?: string } | undefined;
      const rule = item.rule as { chain?: string } | undefined;
      return object?.name === name || (kind === 'chain' && rule?.chain === name);
    });
    return own.some((item) => kind in item) ? [{ metainfo: { version: '1.0.6' } }, ...own] : undefined;
  }

  async listRuleset(target?: NftTarget): Promise<NftTableJson> {
    return (await Promise.all([...this.tables(target).values()].map((t) => this.listTable(t.family, t.name, target)))).flatMap((j) => j ?? []);
  }
}

/** Executes RULESET against TABLES; returns an error or undefined. */
function execute(ruleset: string, tables: Map<string, Table>): string | undefined {
  const lines = ruleset.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) continue;
    let m: RegExpExecArray | null;
    if ((m = /^table (\S+) (\S+)$/.exec(line))) {
      if (!tables.has(`${m[1]} ${m[2]}`)) tables.set(`${m[1]} ${m[2]}`, { family: m[1]!, name: m[2]!, declaration: [], sets: new Map(), chains: new Map() });
      continue;
    }
    if ((m = /^delete table (\S+) (\S+)$/.exec(line))) {
      if (!tables.delete(`${m[1]} ${m[2]}`)) return `No such file or directory: table ${m[1]} ${m[2]}`;
      continue;
    }
    if ((m = /^table (\S+) (\S+) \{$/.exec(line))) {
      const start = i;
      while (i < lines.length && lines[i] !== '}') i++;
      const block = lines.slice(start, i + 1).join('\n');
      const parsed = parseBody(`table ${m[1]} ${m[2]}\ndelete table ${m[1]} ${m[2]}\n${block}\n`);
      if (!parsed) return `syntax error in table ${m[1]} ${m[2]}`;
      tables.set(`${m[1]} ${m[2]}`, fromStructure(parsed.tables[0]!));
      continue;
    }
    if ((m = /^(add|delete) element (\S+) (\S+) (\S+) \{$/.exec(line))) {
      const set = tables.get(`${m[2]} ${m[3]}`)?.sets.get(m[4]!);
      if (!set) return `No such file or directory: set ${m[4]}`;
      for (i++; lines[i] !== '}'; i++) {
        const element = lines[i]!.trim().replace(/,$/, '');
        const key = elementKey(element);
        const existing = set.elements.findIndex((e) => elementKey(e) === key);
        if (m[1] === 'delete') {
          if (existing < 0) return `No such file or directory: element ${key}`;
          set.elements.splice(existing, 1);
        } else if (existing < 0) set.elements.push(element);
        else if (set.elements[existing] !== element) return `File exists: element ${key}`;
      }
      continue;
    }
    if ((m = /^(add|flush|delete) chain (\S+) (\S+) (\S+)$/.exec(line))) {
      const table = tables.get(`${m[2]} ${m[3]}`);
      if (!table) return `No such file or directory: table ${m[2]} ${m[3]}`;
      const chain = table.chains.get(m[4]!);
      if (m[1] === 'add') {
        if (!chain) table.chains.set(m[4]!, { base: undefined, rules: [] });
      } else if (!chain) return `No such file or directory: chain ${m[4]}`;
      else if (m[1] === 'flush') chain.rules = [];
      else if (chain.rules.length > 0) return `Device or resource busy: chain ${m[4]}`;
      else table.chains.delete(m[4]!);
      continue;
    }
    if ((m = /^add rule (\S+) (\S+) (\S+) (.*)$/.exec(line))) {
      const chain = tables.get(`${m[1]} ${m[2]}`)?.chains.get(m[3]!);
      if (!chain) return `No such file or directory: chain ${m[3]}`;
      chain.rules.push(m[4]!);
      continue;
    }
    return `syntax error, unexpected ${JSON.stringify(line.slice(0, 40))}`;
  }
  return undefined;
}
