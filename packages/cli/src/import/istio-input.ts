import type { ImportReport, Position } from './report.js';

/**
 * Reading Istio's sidecar capture settings the way istio-iptables reads them (istio-nftables.md b.1-b.2):
 * pflag-style flags (`-p 15001`, `-p15001`, `-p=15001`, `--envoy-port 15001`, `--envoy-port=15001`, bool
 * flags `--redirect-dns` / `--redirect-dns=false`), environment variables (CLI > env > default), and the
 * knobs' names in Istio's Config.
 */

export type Knob =
  | 'ProxyPort'
  | 'InboundCapturePort'
  | 'InboundTunnelPort'
  | 'ProxyUID'
  | 'ProxyGID'
  | 'InboundInterceptionMode'
  | 'InboundTProxyMark'
  | 'InboundTProxyRouteTable'
  | 'InboundPortsInclude'
  | 'InboundPortsExclude'
  | 'ExcludeInterfaces'
  | 'OutboundIPRangesInclude'
  | 'OutboundIPRangesExclude'
  | 'OutboundPortsInclude'
  | 'OutboundPortsExclude'
  | 'RerouteVirtualInterfaces'
  | 'RedirectDNS'
  | 'CaptureAllDNS'
  | 'DropInvalid'
  | 'HostIPv4LoopbackCidr'
  | 'OwnerGroupsInclude'
  | 'OwnerGroupsExclude';

/** A knob's value as Istio holds it (a string; bools as "true"/"false"), and where it was set. */
export interface Setting {
  readonly value: string;
  /** How the user wrote it: `-p`, `--envoy-port`, `env PROXY_UID`, `annotation traffic.sidecar.istio.io/...`. */
  readonly source: string;
  /** The flag, variable or annotation name, for messages. */
  readonly label: string;
  readonly at: Position;
}

export type Settings = Map<Knob, Setting>;

export interface Ignored {
  readonly what: string;
  readonly reason: string;
}

interface FlagSpec {
  readonly long: string;
  readonly short?: string;
  /** The knob it sets; undefined for flags without effect on the rules. */
  readonly knob?: Knob;
  readonly bool?: boolean;
  readonly env?: readonly string[];
  /** Why the flag does not change the rules (reported as ignored). */
  readonly ignored?: string;
  /** Why the flag cannot be converted at all (an error). */
  readonly unsupported?: string;
}

const NO_RULES = 'no effect on the nftables rules';

/** Every istio-iptables flag (tools/istio-iptables/pkg/cmd/root.go): those of b.2 and the ones with no rule effect. */
export const ISTIO_FLAGS: readonly FlagSpec[] = [
  { long: 'envoy-port', short: 'p', knob: 'ProxyPort' },
  { long: 'inbound-capture-port', short: 'z', knob: 'InboundCapturePort', env: ['INBOUND_CAPTURE_PORT'] },
  { long: 'inbound-tunnel-port', short: 'e', knob: 'InboundTunnelPort', env: ['INBOUND_TUNNEL_PORT'] },
  { long: 'proxy-uid', short: 'u', knob: 'ProxyUID', env: ['PROXY_UID'] },
  { long: 'proxy-gid', short: 'g', knob: 'ProxyGID', env: ['PROXY_GID'] },
  { long: 'istio-inbound-interception-mode', short: 'm', knob: 'InboundInterceptionMode', env: ['ISTIO_INBOUND_INTERCEPTION_MODE'] },
  { long: 'istio-inbound-tproxy-mark', short: 't', knob: 'InboundTProxyMark', env: ['ISTIO_INBOUND_TPROXY_MARK'] },
  { long: 'istio-inbound-tproxy-route-table', short: 'r', knob: 'InboundTProxyRouteTable', env: ['ISTIO_INBOUND_TPROXY_ROUTE_TABLE'] },
  { long: 'istio-inbound-ports', short: 'b', knob: 'InboundPortsInclude', env: ['ISTIO_INBOUND_PORTS'] },
  { long: 'istio-local-exclude-ports', short: 'd', knob: 'InboundPortsExclude', env: ['ISTIO_LOCAL_EXCLUDE_PORTS'] },
  { long: 'istio-exclude-interfaces', short: 'c', knob: 'ExcludeInterfaces', env: ['ISTIO_EXCLUDE_INTERFACES'] },
  { long: 'istio-service-cidr', short: 'i', knob: 'OutboundIPRangesInclude', env: ['ISTIO_SERVICE_CIDR'] },
  { long: 'istio-service-exclude-cidr', short: 'x', knob: 'OutboundIPRangesExclude', env: ['ISTIO_SERVICE_EXCLUDE_CIDR'] },
  { long: 'istio-outbound-ports', short: 'q', knob: 'OutboundPortsInclude', env: ['ISTIO_OUTBOUND_PORTS'] },
  { long: 'istio-local-outbound-ports-exclude', short: 'o', knob: 'OutboundPortsExclude', env: ['ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE'] },
  { long: 'kube-virt-interfaces', short: 'k', knob: 'RerouteVirtualInterfaces', env: ['KUBE_VIRT_INTERFACES'] },
  { long: 'redirect-dns', knob: 'RedirectDNS', bool: true, env: ['REDIRECT_DNS', 'ISTIO_META_DNS_CAPTURE'] },
  { long: 'capture-all-dns', knob: 'CaptureAllDNS', bool: true, env: ['CAPTURE_ALL_DNS'] },
  { long: 'drop-invalid', knob: 'DropInvalid', bool: true, env: ['DROP_INVALID', 'INVALID_DROP'] },
  {
    long: 'dual-stack',
    bool: true,
    env: ['DUAL_STACK', 'ISTIO_DUAL_STACK'],
    ignored: 'it only changes how Istio detects IPv6 from the pod\'s addresses; nftops states it: pass --ipv6 for a pod with IPv6 addresses',
  },
  { long: 'native-nftables', bool: true, env: ['NATIVE_NFTABLES'], ignored: `it selects Istio's nftables backend, which is what nftops renders; ${NO_RULES}` },
  { long: 'dry-run', short: 'n', bool: true, env: ['DRY_RUN'], ignored: NO_RULES },
  { long: 'reconcile', bool: true, env: ['RECONCILE'], ignored: `${NO_RULES} (nftops replaces its tables whole anyway)` },
  { long: 'force-apply', bool: true, env: ['FORCE_APPLY'], ignored: NO_RULES },
  { long: 'force-iptables-binary', env: ['FORCE_IPTABLES_BINARY'], ignored: NO_RULES },
  { long: 'network-namespace', env: ['NETWORK_NAMESPACE'], ignored: `${NO_RULES} (the watcher applies an artifact in the namespace it is told)` },
  { long: 'iptables-probe-port', env: ['IPTABLES_PROBE_PORT'], ignored: NO_RULES },
  { long: 'probe-timeout', env: ['PROBE_TIMEOUT'], ignored: NO_RULES },
  { long: 'run-validation', bool: true, env: ['RUN_VALIDATION'], ignored: NO_RULES },
  { long: 'restore-format', short: 'f', bool: true, env: ['RESTORE_FORMAT'], ignored: `${NO_RULES} (an iptables option)` },
  { long: 'cni-mode', bool: true, env: ['CNI_MODE'], ignored: NO_RULES },
  { long: 'log_output_level', ignored: NO_RULES },
  { long: 'log_stacktrace_level', ignored: NO_RULES },
  { long: 'log_caller', ignored: NO_RULES },
  { long: 'log_as_json', bool: true, ignored: NO_RULES },
  { long: 'log_target', ignored: NO_RULES },
  { long: 'log_rotate', ignored: NO_RULES },
  { long: 'log_rotate_max_age', ignored: NO_RULES },
  { long: 'log_rotate_max_backups', ignored: NO_RULES },
  { long: 'log_rotate_max_size', ignored: NO_RULES },
  {
    long: 'cleanup-only',
    bool: true,
    env: ['CLEANUP_ONLY'],
    unsupported: 'it makes istio-iptables delete its tables instead of programming capture; there is nothing to convert (removing an nftops artifact deletes its tables)',
  },
  {
    long: 'skip-rule-apply',
    bool: true,
    unsupported: 'it makes istio-iptables program no rules at all (the CNI validation container); there is nothing to convert',
  },
];

/** Environment variables that only exist as variables (b.1-b.2). */
export const ENV_ONLY: Readonly<Record<string, Knob | { ignored: string }>> = {
  ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: 'HostIPv4LoopbackCidr',
  ISTIO_OUTBOUND_OWNER_GROUPS: 'OwnerGroupsInclude',
  ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: 'OwnerGroupsExclude',
  ENVOY_USER: { ignored: 'Istio looks the user up to find the default proxy UID; nftops cannot look up users at conversion time: give -u / PROXY_UID' },
};

const BOOL_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const BOOL_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Go's strconv.ParseBool, as pflag and Istio's env package use it. */
export function parseGoBool(text: string): boolean | undefined {
  return BOOL_TRUE.has(text) ? true : BOOL_FALSE.has(text) ? false : undefined;
}

export interface Token {
  readonly text: string;
  readonly at: Position;
}

/**
 * Splits a command line the way a POSIX shell would for plain words: whitespace separates, '...' is
 * literal, "..." keeps \\ \" \$ \` escapes, a backslash outside quotes escapes the next character (and
 * joins lines), `#` at the start of a word comments to the end of the line. Each word keeps its position.
 */
export function splitCommandLine(file: string, text: string, start: Position, report: ImportReport): Token[] | undefined {
  const tokens: Token[] = [];
  let line = start.line;
  let column = start.column;
  let i = 0;
  const advance = () => {
    if (text[i] === '\n') {
      line++;
      column = 1;
    } else column++;
    i++;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      advance();
      continue;
    }
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') advance();
      continue;
    }
    const at = { file, line, column };
    let word = '';
    let quoted = false;
    while (i < text.length && !/\s/.test(text[i]!)) {
      const ch = text[i]!;
      if (ch === "'") {
        quoted = true;
        const open = { file, line, column };
        advance();
        while (i < text.length && text[i] !== "'") {
          word += text[i];
          advance();
        }
        if (i >= text.length) {
          report.error('ISTIO_ARGV_SYNTAX', open, 'unterminated single quote');
          return undefined;
        }
        advance();
      } else if (ch === '"') {
        quoted = true;
        const open = { file, line, column };
        advance();
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length && '\\"$`\n'.includes(text[i + 1]!)) {
            advance();
            if (text[i] !== '\n') word += text[i];
            advance();
            continue;
          }
          word += text[i];
          advance();
        }
        if (i >= text.length) {
          report.error('ISTIO_ARGV_SYNTAX', open, 'unterminated double quote');
          return undefined;
        }
        advance();
      } else if (ch === '\\') {
        advance();
        if (i < text.length) {
          if (text[i] !== '\n') word += text[i];
          advance();
        }
      } else {
        word += ch;
        advance();
      }
    }
    if (word !== '' || quoted) tokens.push({ text: word, at });
  }
  return tokens;
}

function lookup(name: string): FlagSpec | undefined {
  return ISTIO_FLAGS.find((f) => f.long === name);
}

function lookupShort(name: string): FlagSpec | undefined {
  return ISTIO_FLAGS.find((f) => f.short === name);
}

/** Drops a leading `istio-iptables` (or `pilot-agent istio-iptables`, a path to either). */
function skipCommand(tokens: Token[]): Token[] {
  let rest = tokens;
  const base = (t: Token | undefined) => t?.text.split('/').pop();
  if (base(rest[0]) === 'pilot-agent') rest = rest.slice(1);
  if (base(rest[0]) === 'istio-iptables') rest = rest.slice(1);
  return rest;
}

/** Applies istio-iptables flags (after any environment: CLI > env > default). */
export function applyFlags(argv: Token[], settings: Settings, ignored: Ignored[], report: ImportReport): void {
  const tokens = skipCommand(argv);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const text = token.text;
    let spec: FlagSpec | undefined;
    let written: string;
    let inline: string | undefined;
    if (text.startsWith('--') && text.length > 2) {
      const eq = text.indexOf('=');
      const name = eq < 0 ? text.slice(2) : text.slice(2, eq);
      inline = eq < 0 ? undefined : text.slice(eq + 1);
      written = `--${name}`;
      spec = lookup(name);
    } else if (text.startsWith('-') && text.length > 1 && text !== '--') {
      const name = text[1]!;
      written = `-${name}`;
      spec = lookupShort(name);
      if (text.length > 2) inline = text[2] === '=' ? text.slice(3) : text.slice(2);
      if (spec?.bool && text.length > 2 && text[2] !== '=') {
        report.error('ISTIO_UNKNOWN_FLAG', token.at, `unknown shorthand flag combination ${JSON.stringify(text)} (istio-iptables' boolean short flags do not combine with values)`);
        continue;
      }
    } else {
      report.error('ISTIO_UNKNOWN_FLAG', token.at, `unexpected argument ${JSON.stringify(text)}: istio-iptables takes only flags`, 'quote values that contain spaces, and give each flag its value');
      continue;
    }
    if (!spec) {
      report.error('ISTIO_UNKNOWN_FLAG', token.at, `unknown flag ${written}${inline === undefined ? '' : `=${inline}`}: not an istio-iptables flag`, 'see docs/migration.md for the flags nftops converts');
      if (inline === undefined && tokens[i + 1] && !tokens[i + 1]!.text.startsWith('-')) i++;
      continue;
    }
    let value: string;
    if (spec.bool) {
      if (inline === undefined) value = 'true';
      else {
        const parsed = parseGoBool(inline);
        if (parsed === undefined) {
          report.error('ISTIO_FLAG_VALUE', token.at, `${written} needs true or false, not ${JSON.stringify(inline)}`);
          continue;
        }
        value = String(parsed);
      }
    } else if (inline !== undefined) value = inline;
    else {
      const next = tokens[i + 1];
      if (!next) {
        report.error('ISTIO_FLAG_VALUE', token.at, `flag needs an argument: ${written}`);
        continue;
      }
      value = next.text;
      i++;
    }
    const source = spec.short && written === `-${spec.short}` ? `-${spec.short}` : `--${spec.long}`;
    if (spec.unsupported) {
      if (value !== 'false') report.error('ISTIO_FLAG_VALUE', token.at, `${written} cannot be converted: ${spec.unsupported}`);
      continue;
    }
    if (!spec.knob) {
      ignored.push({ what: written, reason: spec.ignored ?? NO_RULES });
      report.warn('ISTIO_FLAG_IGNORED', token.at, `${written} is ignored: ${spec.ignored ?? NO_RULES}`);
      continue;
    }
    const shown = spec.bool ? (inline === undefined ? source : `${source}=${inline}`) : `${source} ${value === '' ? "''" : value}`;
    settings.set(spec.knob, { value, source: shown, label: source, at: token.at });
  }
}

/** Applies environment variables (before flags). Unknown names are warnings: a container has many. */
export function applyEnv(entries: readonly { name: string; value: string; at: Position }[], settings: Settings, ignored: Ignored[], report: ImportReport): void {
  for (const { name, value, at } of entries) {
    const only = ENV_ONLY[name];
    if (only !== undefined) {
      if (typeof only === 'string') settings.set(only, { value, source: `env ${name}=${value}`, label: name, at });
      else {
        ignored.push({ what: `env ${name}`, reason: only.ignored });
        report.warn('ISTIO_FLAG_IGNORED', at, `${name} is ignored: ${only.ignored}`);
      }
      continue;
    }
    const spec = ISTIO_FLAGS.find((f) => f.env?.includes(name));
    if (!spec) {
      ignored.push({ what: `env ${name}`, reason: 'not a variable of Istio\'s capture configuration' });
      report.warn('ISTIO_FLAG_IGNORED', at, `${name} is ignored: not a variable of Istio's capture configuration`);
      continue;
    }
    let stored = value;
    if (spec.bool) {
      const parsed = parseGoBool(value);
      if (parsed === undefined) {
        report.error('ISTIO_FLAG_VALUE', at, `${name} needs a boolean (true, false, 1, 0, ...), not ${JSON.stringify(value)}`);
        continue;
      }
      stored = String(parsed);
    }
    if (spec.unsupported) {
      if (stored !== 'false') report.error('ISTIO_FLAG_VALUE', at, `${name} cannot be converted: ${spec.unsupported}`);
      continue;
    }
    if (!spec.knob) {
      ignored.push({ what: `env ${name}`, reason: spec.ignored ?? NO_RULES });
      report.warn('ISTIO_FLAG_IGNORED', at, `${name} is ignored: ${spec.ignored ?? NO_RULES}`);
      continue;
    }
    // REDIRECT_DNS and ISTIO_META_DNS_CAPTURE both set RedirectDNS: either being true turns it on.
    const previous = settings.get(spec.knob);
    if (spec.bool && previous && previous.source.startsWith('env ') && previous.value === 'true') continue;
    settings.set(spec.knob, { value: stored, source: `env ${name}=${value}`, label: name, at });
  }
}
