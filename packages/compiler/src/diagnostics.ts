import type { Diagnostic, Severity } from './api.js';

/**
 * Every diagnostic code the compiler can emit. Codes are stable: tools and people match on them, so a code
 * is never renamed or reused; `_error_` fixtures in tests/fixtures exercise each one.
 */
export const DIAGNOSTIC_CODES = {
  YAML_SYNTAX: 'the file is not valid YAML',
  YAML_DUPLICATE_KEY: 'a mapping has the same key twice',
  YAML_ALIAS_LIMIT: 'anchors and aliases expand beyond the limit (a YAML bomb)',
  YAML_TOO_LARGE: 'the file is larger than the limit',
  YAML_TOO_DEEP: 'the document nests deeper than the limit',
  YAML_NOT_UTF8: 'the file is not UTF-8 text',
  SOURCE_NOT_FOUND: 'a path given on the command line cannot be read',
  DOCUMENT_NOT_OBJECT: 'a document is not a mapping',
  UNKNOWN_API_VERSION: 'apiVersion is not one this compiler supports',
  UNKNOWN_KIND: 'kind is not one this compiler supports',
  SCHEMA_REQUIRED: 'a required field is missing',
  SCHEMA_UNKNOWN_FIELD: 'a field is not part of the schema',
  SCHEMA_TYPE: 'a value has the wrong type',
  SCHEMA_ENUM: 'a value is not one of the allowed values',
  SCHEMA_PATTERN: 'a string does not have the required form',
  SCHEMA_RANGE: 'a number or length is out of range',
  /** Fallback for schema keywords the current schemas do not use; kept so a new keyword still gets a code. */
  SCHEMA_INVALID: 'a value does not match the schema',
  DUPLICATE_NAME: 'two objects of the same kind have the same name',
  INVALID_ADDRESS: 'a value is not an IP address',
  INVALID_CIDR: 'a value is not a CIDR block',
  CIDR_HOST_BITS: 'a CIDR block has host bits set',
  DUPLICATE_SERVICE_PORT: 'two services listen on the same address, protocol and port',
  BACKEND_FAMILY_MISMATCH: "a backend's address family differs from its service's",
  BACKEND_PORT_AMBIGUOUS: 'a backend sets its own port on a service with several ports',
  DUPLICATE_BACKEND: 'a service lists the same backend twice',
  EMPTY_BACKENDS: 'a service has no backends (warning): its traffic is rejected or dropped',
  PORT_RANGE_ORDER: 'a port range ends before it starts',
  EXCEPT_OUTSIDE_CIDR: 'an except block is not inside its cidr',
  EXCEPT_FAMILY_MISMATCH: "an except block's address family differs from its cidr's",
  POLICY_NO_PODS: 'a network policy selects no pods',
  MARK_OUTSIDE_MASK: 'a mark value has bits outside its mask',
  MARK_OVERLAP: 'the load-balancer mark and the SNAT mark share bits',
  TABLE_NAME_CLASH: 'two owned tables have the same name',
  UNSAFE_NAME: 'a name cannot be written into nft text safely',
  SETTINGS_NOT_FOUND: 'an Artifact names a Settings object that does not exist',
  SETTINGS_AMBIGUOUS: 'several Settings objects exist and an Artifact does not say which one it uses',
  ARTIFACT_OUTPUT_CONFLICT: 'two Artifacts write the same file',
  ARTIFACT_EMPTY: 'an Artifact selects no objects (warning)',
  NFT_REJECTED: 'the kernel refused the rendered ruleset',
  MESH_MODE_MISMATCH: 'a MeshRedirection carries settings of the other mode (sidecar vs ambient)',
  MESH_EXCLUDE_WILDCARD: '"*" in the outbound IP ranges exclude list (Istio refuses it)',
  MESH_INTERFACE_NAME: 'an interface name is not one Linux and nft accept',
  MESH_USER_NAME: 'a user name for skuid is not a valid POSIX-style name',
  MESH_GROUP_NAME: 'a group for skgid is neither a GID nor a valid POSIX-style name',
  MESH_LOOPBACK_CIDR: 'hostIPv4LoopbackCidr is not an IPv4 loopback CIDR with a /8 to /32 mask',
  MESH_DNS_NO_SERVERS: 'DNS capture is on without servers or captureAll, so Istio turns it off (warning)',
  MESH_IPV6_IGNORED: 'an IPv6 value is given while ipv6 is off, so no rule uses it (warning)',
  MESH_IPV6_DISABLED: 'an IPv6 pod address is enrolled on a node whose ipv6 is off',
  MESH_OWNER_GROUPS_LIMIT: 'more than 64 owner groups are included',
  MESH_KNOB_IGNORED: 'a mesh setting has no effect with the other settings given (warning)',
  MESH_ROUTE_TABLE: "the TPROXY routing table is one of the kernel's own tables",
  MESH_TABLE_CLASH: 'two mesh objects in one artifact render the same Istio tables',
  MESH_DUPLICATE_POD_ADDRESS: 'an address is enrolled in the probe set twice',
  MESH_ADDRESS_FAMILY: 'an address has the wrong family for its field',
} as const;

export type DiagnosticCode = keyof typeof DIAGNOSTIC_CODES;

export interface Position {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** C0 and C1 controls, and the format characters that reorder or hide text: bidi controls, zero-width, BOM. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]/g;

/**
 * TEXT with every unprintable character written as a \uXXXX escape. Messages quote what the input says
 * (unknown keys, label keys, interface names); a newline or a bidi override there must not forge another
 * diagnostic line or reorder the one printed.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export class DiagnosticBag {
  private readonly items: Diagnostic[] = [];

  add(
    code: DiagnosticCode,
    at: Position,
    message: string,
    extra: { hint?: string; object?: string; severity?: Severity } = {},
  ): void {
    const diagnostic: Diagnostic = {
      code,
      severity: extra.severity ?? 'error',
      message: printable(message),
      file: at.file,
      line: at.line,
      column: at.column,
      ...(extra.hint !== undefined ? { hint: printable(extra.hint) } : {}),
      ...(extra.object !== undefined ? { object: printable(extra.object) } : {}),
    };
    this.items.push(diagnostic);
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }

  sorted(): Diagnostic[] {
    return sortDiagnostics(this.items);
  }
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortDiagnostics(items: readonly Diagnostic[]): Diagnostic[] {
  const unique = new Map<string, Diagnostic>();
  for (const d of items) unique.set(`${d.file}\0${d.line}\0${d.column}\0${d.code}\0${d.message}`, d);
  return [...unique.values()].sort(
    (a, b) =>
      compareStrings(a.file, b.file) ||
      a.line - b.line ||
      a.column - b.column ||
      compareStrings(a.code, b.code) ||
      compareStrings(a.message, b.message),
  );
}

/** `file:line:column: error CODE: message` plus an indented hint: the format every CLI command prints. */
export function formatDiagnostic(d: Diagnostic): string {
  const head = `${printable(d.file)}:${d.line}:${d.column}: ${d.severity} ${d.code}: ${printable(d.message)}`;
  return d.hint ? `${head}\n  hint: ${printable(d.hint)}` : head;
}
