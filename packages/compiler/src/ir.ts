/**
 * The intermediate representation: nftables objects with every value already validated and rendered to
 * its nft form, but not yet laid out as text. Lowering builds it from the model; render.ts prints it.
 * Tables are owned whole: an artifact replaces each of its tables in one transaction.
 */
export interface IrRuleset {
  readonly tables: readonly IrTable[];
}

export interface IrTable {
  readonly family: 'inet' | 'ip' | 'ip6';
  readonly name: string;
  readonly comment: string;
  readonly sets: readonly IrSet[];
  readonly maps: readonly IrMap[];
  readonly chains: readonly IrChain[];
}

export interface IrBaseChain {
  readonly type: 'filter' | 'nat' | 'route';
  readonly hook: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
  readonly priority: number;
  readonly policy: 'accept' | 'drop';
}

export interface IrChain {
  readonly name: string;
  readonly base?: IrBaseChain;
  readonly rules: readonly IrRule[];
}

/**
 * One rule: matches, then the statements that act. The renderer inserts `counter` between them and
 * appends the comment `source[ detail]`, so every rule counts and traces back to its YAML object.
 */
export interface IrRule {
  readonly match: readonly string[];
  readonly actions: readonly string[];
  /**
   * Statements placed after the match but before `counter` (rare: Istio's `tproxy ... meta mark set ...
   * counter accept` counts only packets that got past the tproxy statement). Absent for most rules.
   */
  readonly statements?: readonly string[];
  /** `Kind/name` of the object the rule comes from. */
  readonly source: string;
  readonly detail?: string;
}

export interface IrSet {
  readonly name: string;
  /** The full type line: `type ipv4_addr . inet_service` or `typeof ip daddr`. */
  readonly type: string;
  readonly flags: readonly string[];
  /** Per-element statements declared on the set, e.g. `counter`. */
  readonly statements?: readonly string[];
  /** Elements as nft text; an element may carry its own `comment "..."`. */
  readonly elements: readonly string[];
  /** The set's own comment, when it has one. */
  readonly comment?: string;
}

export interface IrMap {
  readonly name: string;
  /** The full type line: `type ipv4_addr : verdict` or `typeof ... : ...`. */
  readonly type: string;
  readonly flags: readonly string[];
  /** Per-element statements declared on the map, e.g. `counter`. */
  readonly statements?: readonly string[];
  /**
   * Elements as `[key, value]` nft text. Large maps give a sequence that makes them while they are rendered
   * (iterable again on every use), so 250 000 element strings never outlive their line.
   */
  readonly elements: Iterable<readonly [string, string]>;
}
