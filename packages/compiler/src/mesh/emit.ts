import type { IrBaseChain, IrChain, IrRule, IrTable } from '../ir.js';
import { identifier } from '../nft-text.js';

/**
 * Istio's transaction assembly (b.5, c.5), replayed in memory. Istio appends rules per table in emission
 * order and emits some with `insert rule ... index i`; nft then inserts before the rule at position i. Our
 * artifact states each table whole, so the emitter simulates the inserts and keeps the final per-chain order,
 * which is what the kernel holds after Istio's transaction.
 */

/** One rule in Istio's own words: the matches, statements before the counter, and what follows the counter. */
export interface MeshRule {
  readonly match: string;
  readonly statements?: readonly string[];
  readonly action: string;
  readonly detail: string;
}

export interface ChainSpec {
  readonly name: string;
  readonly base?: Omit<IrBaseChain, 'policy'>;
}

export interface TableSpec {
  readonly name: string;
  readonly comment: string;
  /** The fixed declaration order of the table's chains (b.3, c.3). */
  readonly chains: readonly ChainSpec[];
}

export class MeshEmitter {
  private readonly rules = new Map<string, MeshRule[]>();
  /** Rules emitted so far per chain: the `n` of b.5 step 4. */
  private readonly emitted = new Map<string, number>();

  constructor(
    private readonly source: string,
    /** Ambient: the insert index is dropped only when the chain is empty so far. */
    private readonly downgrade: 'sidecar' | 'ambient' = 'sidecar',
  ) {}

  private list(table: string, chain: string): MeshRule[] {
    const key = `${table} ${chain}`;
    let list = this.rules.get(key);
    if (!list) this.rules.set(key, (list = []));
    return list;
  }

  add(table: string, chain: string, rule: MeshRule): void {
    this.list(table, chain).push(rule);
    this.bump(table, chain);
  }

  /**
   * `insert rule ... index i`, with Istio's downgrade: emitted as a plain `add` when nothing was emitted for the
   * chain yet, or (sidecar) when i is not below the number of rules emitted so far (issue #58135, PR #58175).
   */
  insert(table: string, chain: string, index: number, rule: MeshRule): void {
    const n = this.emitted.get(`${table} ${chain}`) ?? 0;
    const list = this.list(table, chain);
    if (n === 0 || (this.downgrade === 'sidecar' && index >= n)) list.push(rule);
    else list.splice(index, 0, rule);
    this.bump(table, chain);
  }

  private bump(table: string, chain: string): void {
    const key = `${table} ${chain}`;
    this.emitted.set(key, (this.emitted.get(key) ?? 0) + 1);
  }

  /** The final rules of one chain, in order. */
  chain(table: string, chain: string): readonly MeshRule[] {
    return this.rules.get(`${table} ${chain}`) ?? [];
  }

  /**
   * The table as IR, or undefined when none of its chains has a rule (Istio then emits nothing for it).
   * Chains are declared in the fixed order when they hold a rule or are the target of a `jump` in the table
   * (so the table always loads, even where Istio would jump to a chain it never declared).
   */
  table(spec: TableSpec): IrTable | undefined {
    const hasRules = spec.chains.some((c) => this.chain(spec.name, c.name).length > 0);
    if (!hasRules) return undefined;
    const targets = new Set<string>();
    for (const c of spec.chains) {
      for (const rule of this.chain(spec.name, c.name)) {
        const jump = /^(?:jump|goto) (\S+)$/.exec(rule.action);
        if (jump) targets.add(jump[1]!);
      }
    }
    const chains: IrChain[] = spec.chains
      .filter((c) => this.chain(spec.name, c.name).length > 0 || targets.has(c.name))
      .map((c) => ({
        name: identifier(c.name),
        ...(c.base ? { base: { ...c.base, policy: 'accept' as const } } : {}),
        rules: this.chain(spec.name, c.name).map((rule) => this.toIr(rule)),
      }));
    return { family: 'inet', name: identifier(spec.name), comment: spec.comment, sets: [], maps: [], chains };
  }

  private toIr(rule: MeshRule): IrRule {
    return {
      match: rule.match === '' ? [] : [rule.match],
      ...(rule.statements && rule.statements.length > 0 ? { statements: rule.statements } : {}),
      actions: [rule.action],
      source: this.source,
      detail: rule.detail,
    };
  }
}

/** `match ... counter action`: the rule the way Istio writes it (without our comment). */
export function istioText(rule: MeshRule): string {
  return [rule.match, ...(rule.statements ?? []), 'counter', rule.action].filter((p) => p !== '').join(' ');
}
