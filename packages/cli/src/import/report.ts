import { sortDiagnostics, type Diagnostic } from '@nftops/compiler';

/**
 * Every code the import commands can report. Codes are stable (tools match on them): never renamed or
 * reused. Severity is per use; the description says which.
 */
export const IMPORT_CODES = {
  IMPORT_READ: 'an input file cannot be read',
  IMPORT_YAML_SYNTAX: 'an input file is not valid YAML (or JSON)',
  IMPORT_TOML_SYNTAX: 'the ch-k8s-lbaas agent config is not valid TOML',
  IMPORT_COMPILE_FAILED: 'the converted YAML does not compile (the message carries the compiler diagnostic)',
  IMPORT_COMPILE_WARNING: 'the compiler warns about the converted YAML (warning)',
  IMPORT_OUTPUT_NOT_EMPTY: 'the output directory holds other YAML files the Artifact would also pick up (warning)',

  LBAAS_MODEL_FIELD: 'a field of the load-balancer-config model is missing or has the wrong type',
  LBAAS_UNKNOWN_FIELD: 'a field is not part of the ch-k8s-lbaas model; ch-k8s-lbaas ignores it, so does the import (warning)',
  LBAAS_INVALID_ADDRESS: 'a value is not an IP address',
  LBAAS_INVALID_CIDR: 'a value is not a CIDR block',
  LBAAS_PROTOCOL: 'a protocol is not TCP or UDP',
  LBAAS_PORT: 'a port is out of range, or a port range is not one ch-k8s-lbaas accepts',
  LBAAS_PORT_ZERO: 'port 0 cannot be expressed in nftops (error for services; warning where it can be dropped)',
  LBAAS_FAMILY_MISMATCH: "a destination address's family differs from its ingress address's",
  LBAAS_UNKNOWN_POLICY: 'a policy assignment names a policy that does not exist (ch-k8s-lbaas itself fails to load this)',
  LBAAS_EMPTY_FORWARD: 'a forward has no destination addresses: ch-k8s-lbaas skips it, nftops rejects its traffic (warning)',
  LBAAS_DUPLICATE_FORWARD: 'the same address, protocol and port is forwarded twice; the first one wins, as in ch-k8s-lbaas (warning)',
  LBAAS_DUPLICATE_DESTINATION: 'a destination is listed several times; it becomes one backend with a weight (warning)',
  LBAAS_DUPLICATE_POLICY: 'two network policies have the same name; the last one wins, as in ch-k8s-lbaas (warning)',
  LBAAS_DUPLICATE_ASSIGNMENT: 'a pod address is assigned twice; only the first assignment has an effect, as in ch-k8s-lbaas (warning)',
  LBAAS_UNUSED_POLICY: 'a network policy is assigned to no pod, so it has no effect and is not converted (warning)',
  LBAAS_POD_WITHOUT_POLICIES: 'a pod is assigned an empty policy list, so ch-k8s-lbaas drops all its load-balanced traffic (warning)',
  LBAAS_POLICIES_WITHOUT_FILTER: 'the filter table is off (filter-table-name = ""), so policies are not converted (warning)',
  LBAAS_CIDR_HOST_BITS: 'a CIDR has host bits set; nft masks them, the import writes the block (warning)',
  LBAAS_EXCEPT_NO_EFFECT: 'an except (block) entry can never match, or removes its whole allow block (warning)',
  LBAAS_RULE_DROPPED: 'an allowed-ingress can never match anything and is left out (warning)',
  LBAAS_IPV6: 'IPv6 here made ch-k8s-lbaas fail to load its file; nftops renders it correctly (warning)',
  LBAAS_RENAMED: 'a name is not valid for nftops (grammar or nft keyword) and was renamed (warning)',
  LBAAS_SETTING_IGNORED: 'an agent setting has no nftops equivalent (warning)',
  LBAAS_UNKNOWN_SETTING: 'a key in [nftables] is not a ch-k8s-lbaas setting (warning)',
  LBAAS_SETTING_TYPE: 'an agent setting has the wrong type or an impossible value',
  LBAAS_TABLE_SHARED: 'the filter table ch-k8s-lbaas shared with the host is given a name of its own, since nftops replaces its tables whole (warning)',
  LBAAS_MARK: 'fwmark-bits and fwmark-mask cannot be expressed (their AND is 0, or no bit is left for the SNAT mark)',

  ISTIO_ARGV_SYNTAX: 'the istio-iptables command line cannot be split into words (an unterminated quote)',
  ISTIO_UNKNOWN_FLAG: 'a flag is not an istio-iptables flag',
  ISTIO_FLAG_VALUE: 'a flag or variable has a missing or invalid value',
  ISTIO_FLAG_IGNORED: 'a flag or variable has no effect on the nftables rules (warning)',
  ISTIO_ANNOTATION_INVALID: 'a pod annotation has a value Istio refuses',
  ISTIO_ANNOTATION_IGNORED: 'a pod annotation has no effect on the nftables rules, or no nftops equivalent (warning)',
  ISTIO_POD: 'the pod manifest is not a Pod (or not exactly one)',
  ISTIO_VALUE_NORMALISED: 'a value was written the way nftops needs it (same rules) (warning)',
} as const;

export type ImportCode = keyof typeof IMPORT_CODES;

export interface Position {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** Collects the diagnostics of one import run, in the compiler's Diagnostic shape. */
export class ImportReport {
  private readonly items: Diagnostic[] = [];

  add(severity: 'error' | 'warning', code: ImportCode, at: Position, message: string, hint?: string): void {
    this.items.push({ code, severity, message, file: at.file, line: at.line, column: at.column, ...(hint !== undefined ? { hint } : {}) });
  }

  error(code: ImportCode, at: Position, message: string, hint?: string): void {
    this.add('error', code, at, message, hint);
  }

  warn(code: ImportCode, at: Position, message: string, hint?: string): void {
    this.add('warning', code, at, message, hint);
  }

  /** A diagnostic from elsewhere (the compiler), kept as it is. */
  push(diagnostic: Diagnostic): void {
    this.items.push(diagnostic);
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }

  sorted(): Diagnostic[] {
    return sortDiagnostics(this.items);
  }
}
