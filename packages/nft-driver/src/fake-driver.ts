import type { NftDriver, NftResult, NftTableJson, NftTarget } from './driver.js';

export interface FakeNftCall {
  readonly op: 'version' | 'check' | 'apply' | 'listTables' | 'listTable' | 'listObject' | 'listRuleset';
  readonly netns: string | undefined;
  readonly ruleset?: string;
}

type Rejecter = (ruleset: string, target: NftTarget | undefined) => string | undefined;

/**
 * An in-memory nft for unit tests. It understands the few top-level commands nftops artifacts use
 * (`table F N`, `delete table F N`, `table F N { ... }`) and keeps each table's body as text, per namespace.
 * Anything else in a ruleset is accepted verbatim. Faults are injected with `rejectWhen` and `hangNext`.
 */
export class FakeNftDriver implements NftDriver {
  readonly calls: FakeNftCall[] = [];
  private readonly namespaces = new Map<string, Map<string, string>>();
  private rejecters: Rejecter[] = [];
  private hangs = 0;

  constructor(private readonly nftVersion = '1.0.6') {}

  /** Make check and apply fail with MESSAGE whenever the predicate returns one. */
  rejectWhen(rejecter: Rejecter): void {
    this.rejecters.push(rejecter);
  }

  clearRejecters(): void {
    this.rejecters = [];
  }

  /** The next N check/apply calls never resolve (a hung nft). */
  hangNext(count = 1): void {
    this.hangs += count;
  }

  /** Replace a table's content behind the driver's back (drift); undefined deletes it. */
  tamper(family: string, name: string, body: string | undefined, target?: NftTarget): void {
    const tables = this.tables(target);
    if (body === undefined) tables.delete(`${family} ${name}`);
    else tables.set(`${family} ${name}`, body);
  }

  tableText(family: string, name: string, target?: NftTarget): string | undefined {
    return this.tables(target).get(`${family} ${name}`);
  }

  private tables(target: NftTarget | undefined): Map<string, string> {
    const key = target?.netns ?? '';
    let tables = this.namespaces.get(key);
    if (!tables) this.namespaces.set(key, (tables = new Map()));
    return tables;
  }

  async version(): Promise<string> {
    this.calls.push({ op: 'version', netns: undefined });
    return this.nftVersion;
  }

  check(ruleset: string, target?: NftTarget): Promise<NftResult> {
    this.calls.push({ op: 'check', netns: target?.netns, ruleset });
    return this.run(ruleset, target, false);
  }

  apply(ruleset: string, target?: NftTarget): Promise<NftResult> {
    this.calls.push({ op: 'apply', netns: target?.netns, ruleset });
    return this.run(ruleset, target, true);
  }

  private run(ruleset: string, target: NftTarget | undefined, commit: boolean): Promise<NftResult> {
    if (this.hangs > 0) {
      this.hangs--;
      return new Promise<NftResult>(() => {});
    }
    for (const rejecter of this.rejecters) {
      const message = rejecter(ruleset, target);
      if (message !== undefined) {
        return Promise.resolve({ ok: false, stderr: `Error: ${message}\n`, diagnostics: [] });
      }
    }
    const next = new Map(this.tables(target));
    const error = applyCommands(ruleset, next);
    if (error) return Promise.resolve({ ok: false, stderr: `Error: ${error}\n`, diagnostics: [] });
    if (commit) this.namespaces.set(target?.netns ?? '', next);
    return Promise.resolve({ ok: true });
  }

  async listTables(target?: NftTarget) {
    this.calls.push({ op: 'listTables', netns: target?.netns });
    return [...this.tables(target).keys()].sort().map((key) => {
      const [family, name] = key.split(' ') as [string, string];
      return { family, name };
    });
  }

  async listTable(family: string, name: string, target?: NftTarget): Promise<NftTableJson | undefined> {
    this.calls.push({ op: 'listTable', netns: target?.netns });
    const body = this.tables(target).get(`${family} ${name}`);
    return body === undefined ? undefined : [{ table: { family, name } }, { fake_body: body }];
  }

  /** The fake keeps tables as text, so it cannot list one object of a table that exists. */
  async listObject(kind: 'set' | 'map' | 'chain', family: string, table: string, name: string, target?: NftTarget): Promise<NftTableJson | undefined> {
    this.calls.push({ op: 'listObject', netns: target?.netns });
    if (!this.tables(target).has(`${family} ${table}`)) return undefined;
    throw new Error(`the fake nft driver lists whole tables only (asked for ${kind} ${family} ${table} ${name})`);
  }

  async listRuleset(target?: NftTarget): Promise<NftTableJson> {
    this.calls.push({ op: 'listRuleset', netns: target?.netns });
    return [...this.tables(target)].sort().flatMap(([key, body]) => {
      const [family, name] = key.split(' ') as [string, string];
      return [{ table: { family, name } }, { fake_body: body }];
    });
  }
}

/** Applies the top-level table commands of RULESET to TABLES; returns an error message or undefined. */
function applyCommands(ruleset: string, tables: Map<string, string>): string | undefined {
  const text = ruleset.replace(/#[^\n]*/g, '');
  let index = 0;
  const head = /\s*(delete\s+table|flush\s+ruleset|table|add\s+table)\s+(?:(\w+)\s+([\w-]+))?/y;
  while (index < text.length) {
    if (/^\s*$/.test(text.slice(index))) return undefined;
    head.lastIndex = index;
    const match = head.exec(text);
    if (!match) return `syntax error near ${JSON.stringify(text.slice(index, index + 40))}`;
    const [, verb, family, name] = match;
    if (verb!.startsWith('flush')) return 'the fake driver refuses flush ruleset';
    const key = `${family} ${name}`;
    index = head.lastIndex;
    if (verb!.startsWith('delete')) {
      if (!tables.has(key)) return `No such file or directory: table ${key}`;
      tables.delete(key);
      continue;
    }
    const rest = text.slice(index);
    const open = /^\s*\{/.exec(rest);
    if (!open) {
      if (!tables.has(key)) tables.set(key, '');
      continue;
    }
    let depth = 0;
    let end = index + open[0].length - 1;
    for (; end < text.length; end++) {
      if (text[end] === '{') depth++;
      else if (text[end] === '}' && --depth === 0) break;
    }
    if (depth !== 0) return `unbalanced braces in table ${key}`;
    const body = text.slice(index + open[0].length, end).trim();
    tables.set(key, [tables.get(key) ?? '', body].filter(Boolean).join('\n'));
    index = end + 1;
  }
  return undefined;
}
