import { parseAddress, parseBlock } from './address.js';
import { renderYamlFile, type OutputDocument } from './emit.js';
import { applyEnv, applyFlags, splitCommandLine, type Ignored, type Knob, type Setting, type Settings, type Token } from './istio-input.js';
import { finish, type ImportedFile, type ImportResult } from './lbaas.js';
import { objectNameFor, OBJECT_NAME } from './names.js';
import { ImportReport, type Position } from './report.js';
import { parseYamlInput, type PathSegment, type YamlInput } from './yaml-input.js';

/**
 * `nftops import istio`: Istio's sidecar capture settings (istio-iptables flags and environment, or a
 * pod's annotations and proxy environment as the istio-cni plugin reads them) become one
 * MeshRedirection (mode sidecar) whose knobs render the same rules (istio-nftables.md b.2).
 */

export type Profile = 'istio-init' | 'istio-cni';

export interface IstioImportOptions {
  /** istio-iptables arguments: a command line (a string, or a file holding one) or a JSON/YAML list. */
  readonly flags?: { readonly path: string; readonly text: string; readonly inline: boolean } | undefined;
  /** A Pod manifest (YAML or JSON). */
  readonly pod?: { readonly path: string; readonly text: string } | undefined;
  /** Environment variables, applied before flags (`--env NAME=VALUE`). */
  readonly env?: readonly { readonly name: string; readonly value: string; readonly at: Position }[] | undefined;
  /** Istio detects IPv6 from the pod's addresses; here it is stated. */
  readonly ipv6?: boolean | undefined;
  /** The pod's resolvers (Istio reads /etc/resolv.conf). */
  readonly dnsServers?: readonly { readonly address: string; readonly at: Position }[] | undefined;
  /** Which path's defaults apply: istio-init for flags, istio-cni for annotations, unless given. */
  readonly defaults?: Profile | undefined;
  readonly name?: string | undefined;
  readonly schemaBase: string;
  readonly outputPrefix?: string | undefined;
}

export interface IstioImportResult extends ImportResult {
  readonly ignored: readonly Ignored[];
  /** Where the settings came from: 'flags', 'istio-init args' (of a pod), or 'annotations'. */
  readonly source: string;
}

export const ISTIO_FILES = ['artifact.yaml', 'meshredirection.yaml'] as const;

const API = 'nftops.dev/v1alpha1';
const CNI_INBOUND_EXCLUDE = ['15020', '15021', '15090'];

/** The istio-cni annotations (cni/pkg/plugin/redirect.go) and the knob each sets. */
const ANNOTATIONS: Readonly<Record<string, Knob>> = {
  'sidecar.istio.io/interceptionMode': 'InboundInterceptionMode',
  'traffic.sidecar.istio.io/includeInboundPorts': 'InboundPortsInclude',
  'traffic.sidecar.istio.io/excludeInboundPorts': 'InboundPortsExclude',
  'traffic.sidecar.istio.io/includeOutboundIPRanges': 'OutboundIPRangesInclude',
  'traffic.sidecar.istio.io/excludeOutboundIPRanges': 'OutboundIPRangesExclude',
  'traffic.sidecar.istio.io/includeOutboundPorts': 'OutboundPortsInclude',
  'traffic.sidecar.istio.io/excludeOutboundPorts': 'OutboundPortsExclude',
  'traffic.sidecar.istio.io/excludeInterfaces': 'ExcludeInterfaces',
  'istio.io/reroute-virtual-interfaces': 'RerouteVirtualInterfaces',
  'traffic.sidecar.istio.io/kubevirtInterfaces': 'RerouteVirtualInterfaces',
};
/** Proxy environment the CNI plugin honours (from the istio-proxy container or proxyMetadata). */
const PROXY_ENV = new Set(['ISTIO_META_DNS_CAPTURE', 'INVALID_DROP', 'ISTIO_DUAL_STACK']);

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function tokensFromList(input: YamlInput, path: readonly PathSegment[], list: unknown[], report: ImportReport): Token[] | undefined {
  const tokens: Token[] = [];
  let failed = false;
  list.forEach((item, index) => {
    if (typeof item === 'string' || typeof item === 'number') tokens.push({ text: String(item), at: input.locate([...path, index]) });
    else {
      report.error('ISTIO_FLAG_VALUE', input.locate([...path, index]), `argument ${index} is not a string`);
      failed = true;
    }
  });
  return failed ? undefined : tokens;
}

/** istio-iptables arguments from a command line or from a JSON/YAML list (e.g. a container's args). */
function readFlags(flags: NonNullable<IstioImportOptions['flags']>, report: ImportReport): Token[] | undefined {
  const trimmed = flags.text.trim();
  if (trimmed.startsWith('[')) {
    const input = parseYamlInput(flags.path, flags.text, report, 'the argument list');
    if (!input) return undefined;
    if (!Array.isArray(input.value)) {
      report.error('ISTIO_FLAG_VALUE', input.locate([]), 'the argument list must be a list of strings');
      return undefined;
    }
    return tokensFromList(input, [], input.value, report);
  }
  return splitCommandLine(flags.path, flags.text, { file: flags.path, line: 1, column: 1 }, report);
}

function envEntries(input: YamlInput, path: readonly PathSegment[], env: unknown): { name: string; value: string; at: Position }[] {
  if (!Array.isArray(env)) return [];
  return env.flatMap((item, index) =>
    isObject(item) && typeof item.name === 'string' && (typeof item.value === 'string' || typeof item.value === 'number' || typeof item.value === 'boolean')
      ? [{ name: item.name, value: String(item.value), at: input.locate([...path, index, 'value']) }]
      : [],
  );
}

interface PodReading {
  readonly source: string;
  readonly profile: Profile;
  readonly name: string | undefined;
}

/**
 * A pod: with an istio-init container, its args and env are istio-iptables' input (the istio-init path);
 * otherwise the annotations and proxy environment are read as the istio-cni plugin reads them.
 */
function readPod(pod: NonNullable<IstioImportOptions['pod']>, settings: Settings, ignored: Ignored[], report: ImportReport): PodReading | undefined {
  const input = parseYamlInput(pod.path, pod.text, report, 'the pod manifest');
  if (!input) return undefined;
  let root = input.value;
  let base: PathSegment[] = [];
  if (isObject(root) && root.kind === 'List' && Array.isArray(root.items)) {
    const pods = root.items.map((item, index) => ({ item, index })).filter(({ item }) => isObject(item) && item.kind === 'Pod');
    if (pods.length !== 1) {
      report.error('ISTIO_POD', input.locate(['items']), `the list holds ${pods.length} pods; give exactly one`);
      return undefined;
    }
    base = ['items', pods[0]!.index];
    root = pods[0]!.item;
  }
  if (!isObject(root) || root.kind !== 'Pod') {
    report.error('ISTIO_POD', input.locate([...base, 'kind']), `expected a Pod manifest (kind: Pod), not ${isObject(root) ? `kind: ${String(root.kind)}` : 'this'}`);
    return undefined;
  }
  const metadata = isObject(root.metadata) ? root.metadata : {};
  const spec = isObject(root.spec) ? root.spec : {};
  const name = typeof metadata.name === 'string' ? metadata.name : undefined;
  const containers = (key: string) => (Array.isArray(spec[key]) ? (spec[key] as unknown[]) : []);

  const initIndex = containers('initContainers').findIndex((c) => isObject(c) && c.name === 'istio-init');
  if (initIndex >= 0) {
    const init = containers('initContainers')[initIndex] as Obj;
    const path = [...base, 'spec', 'initContainers', initIndex];
    applyEnv(envEntries(input, [...path, 'env'], init.env), settings, ignored, report);
    const argv = [...(Array.isArray(init.command) ? init.command : []), ...(Array.isArray(init.args) ? init.args : [])];
    const tokens = tokensFromList(input, [...path, Array.isArray(init.args) ? 'args' : 'command'], argv, report);
    if (tokens) {
      // Positions: command items first, then args.
      const commandLength = Array.isArray(init.command) ? init.command.length : 0;
      const located = tokens.map((t, i) => ({
        text: t.text,
        at: i < commandLength ? input.locate([...path, 'command', i]) : input.locate([...path, 'args', i - commandLength]),
      }));
      applyFlags(located, settings, ignored, report);
    }
    return { source: 'istio-init args', profile: 'istio-init', name };
  }

  // istio-cni: annotations, then the proxy's environment.
  const annotations = isObject(metadata.annotations) ? metadata.annotations : {};
  const annotationPath = [...base, 'metadata', 'annotations'];
  const unused: string[] = [];
  for (const [key, raw] of Object.entries(annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const knob = ANNOTATIONS[key];
    const at = input.locate([...annotationPath, key]);
    if (!knob) {
      if (/(^|\.)istio\.io\//.test(key) && key !== 'proxy.istio.io/config') unused.push(key);
      continue;
    }
    if (typeof raw !== 'string') {
      report.error('ISTIO_ANNOTATION_INVALID', at, `annotation ${key} must be a string (quote it), not ${JSON.stringify(raw)}`);
      continue;
    }
    if (key === 'traffic.sidecar.istio.io/kubevirtInterfaces' && 'istio.io/reroute-virtual-interfaces' in annotations) {
      report.warn('ISTIO_ANNOTATION_IGNORED', at, `${key} is ignored: istio.io/reroute-virtual-interfaces takes precedence (the old name is deprecated)`);
      continue;
    }
    let value = raw;
    if (knob === 'InboundPortsExclude') {
      // The CNI plugin appends its own ports: annotation + 15020,15021,15090, de-duplicated, first seen first.
      const ports: string[] = [];
      for (const item of [...raw.split(','), ...CNI_INBOUND_EXCLUDE]) if (item !== '' && !ports.includes(item)) ports.push(item);
      value = ports.join(',');
    }
    settings.set(knob, { value, source: `annotation ${key}: ${JSON.stringify(raw)}`, label: key, at });
  }
  if (unused.length > 0) {
    for (const key of unused) ignored.push({ what: `annotation ${key}`, reason: 'no effect on the capture rules' });
    report.warn(
      'ISTIO_ANNOTATION_IGNORED',
      input.locate(annotationPath),
      `${unused.length} Istio annotation${unused.length === 1 ? '' : 's'} with no effect on the capture rules: ${unused.join(', ')}`,
    );
  }
  const proxyIndex = containers('containers').findIndex((c) => isObject(c) && c.name === 'istio-proxy');
  const env: { name: string; value: string; at: Position }[] = [];
  const proxyConfig = annotations['proxy.istio.io/config'];
  if (typeof proxyConfig === 'string') {
    const nested = new ImportReport();
    const parsed = parseYamlInput(pod.path, proxyConfig, nested, 'proxy.istio.io/config');
    const metadataEnv = parsed && isObject(parsed.value) && isObject(parsed.value.proxyMetadata) ? parsed.value.proxyMetadata : {};
    const at = input.locate([...annotationPath, 'proxy.istio.io/config']);
    for (const [name, value] of Object.entries(metadataEnv)) if (PROXY_ENV.has(name)) env.push({ name, value: String(value), at });
  }
  if (proxyIndex >= 0) {
    const proxy = containers('containers')[proxyIndex] as Obj;
    const path = [...base, 'spec', 'containers', proxyIndex];
    env.push(...envEntries(input, [...path, 'env'], proxy.env).filter((e) => PROXY_ENV.has(e.name)));
    const security = isObject(proxy.securityContext) ? proxy.securityContext : {};
    if (typeof security.runAsUser === 'number' && !settings.has('ProxyUID')) {
      settings.set('ProxyUID', {
        value: String(security.runAsUser),
        source: `istio-proxy securityContext.runAsUser: ${security.runAsUser}`,
        label: 'istio-proxy securityContext.runAsUser',
        at: input.locate([...path, 'securityContext', 'runAsUser']),
      });
    }
  }
  applyEnv(env, settings, ignored, report);
  return { source: 'annotations', profile: 'istio-cni', name };
}

// ---------------------------------------------------------------------------------------------------------------
// Knob values -> MeshRedirection spec

/** Istio's list split: on ",", empty items dropped, no trimming. */
function split(text: string): string[] {
  return text.split(',').filter((item) => item !== '');
}

interface Converted {
  readonly spec: Record<string, unknown>;
  readonly inline: { path: PathSegment[]; text: string }[];
  readonly flow: PathSegment[][];
  readonly asDefault: string[];
}

function convert(settings: Settings, profile: Profile, options: IstioImportOptions, report: ImportReport): Converted | undefined {
  const sidecar: Record<string, unknown> = {};
  const inline: { path: PathSegment[]; text: string }[] = [];
  const flow: PathSegment[][] = [];
  const asDefault: string[] = [];
  let failed = false;
  const fail = (at: Position, message: string, hint?: string) => {
    report.error('ISTIO_FLAG_VALUE', at, message, hint);
    failed = true;
  };
  const put = (key: string | string[], value: unknown, setting: Setting | undefined, isDefault: boolean, list = false) => {
    if (isDefault) {
      if (setting) asDefault.push(setting.source);
      return;
    }
    const path = Array.isArray(key) ? key : [key];
    let target = sidecar;
    for (const segment of path.slice(0, -1)) target = (target[segment] ??= {}) as Record<string, unknown>;
    target[path[path.length - 1]!] = value;
    if (setting) inline.push({ path: ['spec', 'sidecar', ...path], text: setting.source });
    if (list && Array.isArray(value)) flow.push(['spec', 'sidecar', ...path]);
  };
  const integer = (setting: Setting, text: string, min: number, max: number, what: string): number | undefined => {
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
      fail(setting.at, `${setting.label}: ${what} ${JSON.stringify(text)} is not an integer from ${min} to ${max}`);
      return undefined;
    }
    return Number(text);
  };
  const portList = (setting: Setting): number[] | undefined => {
    const ports = split(setting.value).map((item) => integer(setting, item, 1, 65535, 'port'));
    return ports.every((p) => p !== undefined) ? (ports as number[]) : undefined;
  };
  const cidrList = (setting: Setting, wildcard: boolean): '*' | string[] | undefined => {
    if (setting.value === '*' && wildcard) return '*';
    const out: string[] = [];
    for (const item of split(setting.value)) {
      if (item === '*') {
        fail(
          setting.at,
          wildcard ? `${setting.label}: "*" must stand alone` : 'invalid value for OUTBOUND_IP_RANGES_EXCLUDE: "*" cannot be excluded (Istio refuses it)',
          wildcard ? undefined : 'to capture no outbound traffic, set the include list to ""',
        );
        continue;
      }
      const block = parseBlock(item, true);
      if (!block) {
        fail(setting.at, `${setting.label}: ${JSON.stringify(item)} is not a CIDR (address/prefix); Istio refuses it (netip.ParsePrefix)`);
        continue;
      }
      const text = `${block.network.text}/${block.prefix}`;
      if (block.hadHostBits) {
        report.warn('ISTIO_VALUE_NORMALISED', setting.at, `${item} has host bits set; Istio writes it as given and the kernel keeps ${text}: written as ${text}`);
      }
      out.push(text);
    }
    return out;
  };
  const same = (a: readonly unknown[], b: readonly unknown[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  const get = (knob: Knob) => settings.get(knob);

  // Ports and IDs.
  for (const [knob, key, fallback] of [
    ['ProxyPort', 'proxyPort', 15001],
    ['InboundCapturePort', 'inboundCapturePort', 15006],
    ['InboundTunnelPort', 'inboundTunnelPort', 15008],
  ] as const) {
    const setting = get(knob);
    if (!setting) continue;
    const port = integer(setting, setting.value, 1, 65535, 'port');
    if (port !== undefined) put(key, port, setting, port === fallback);
  }
  const uidSetting = get('ProxyUID');
  let uids = [1337];
  if (uidSetting) {
    const list = split(uidSetting.value).map((u) => integer(uidSetting, u, 0, 4294967294, 'UID'));
    if (list.length === 0) fail(uidSetting.at, `${uidSetting.label}: no UID given`);
    else if (list.every((u) => u !== undefined)) {
      uids = list as number[];
      put('proxyUIDs', uids, uidSetting, same(uids, [1337]), true);
    }
  }
  const gidSetting = get('ProxyGID');
  if (gidSetting) {
    const list = split(gidSetting.value).map((g) => integer(gidSetting, g, 0, 4294967294, 'GID'));
    if (list.length === 0) fail(gidSetting.at, `${gidSetting.label}: no GID given`);
    else if (list.every((g) => g !== undefined)) put('proxyGIDs', list, gidSetting, same(list, uids), true);
  }

  const mode = get('InboundInterceptionMode');
  let tproxy = false;
  if (mode) {
    tproxy = mode.value === 'TPROXY';
    if (!tproxy && mode.value !== 'REDIRECT') {
      report.warn('ISTIO_VALUE_NORMALISED', mode.at, `interception mode ${JSON.stringify(mode.value)} is not TPROXY, so Istio renders REDIRECT rules; written as REDIRECT`);
    }
    put('interceptionMode', tproxy ? 'TPROXY' : 'REDIRECT', mode, !tproxy);
  }
  const mark = get('InboundTProxyMark');
  if (mark) {
    const value = integer(mark, mark.value, 1, 4294967295, 'mark');
    if (value !== undefined) {
      if (!tproxy && value !== 1337) {
        report.warn('ISTIO_FLAG_IGNORED', mark.at, `${mark.label} only matters with interception mode TPROXY; left out`);
        asDefault.push(mark.source);
      } else put('tproxyMark', value, mark, value === 1337);
    }
  }
  const table = get('InboundTProxyRouteTable');
  if (table) {
    const value = integer(table, table.value, 1, 4294967295, 'routing table');
    if (value !== undefined) put('tproxyRouteTable', value, table, value === 133);
  }

  // Inbound ports.
  const profileInboundExclude = profile === 'istio-cni' ? [15020, 15021, 15090] : [15090, 15021, 15020];
  const include = get('InboundPortsInclude');
  let inboundWildcard = true;
  if (include) {
    if (include.value === '*') put(['inboundPorts', 'include'], '*', include, true);
    else {
      const ports = portList(include);
      inboundWildcard = false;
      if (ports) put(['inboundPorts', 'include'], ports, include, false, true);
    }
  }
  const exclude = get('InboundPortsExclude');
  if (exclude) {
    const ports = portList(exclude);
    if (ports) {
      if (!inboundWildcard && ports.length > 0 && !same(ports, profileInboundExclude)) {
        report.warn('ISTIO_FLAG_IGNORED', exclude.at, `${exclude.label} only applies when the inbound ports are "*"; Istio ignores it here, and so is it left out`);
        asDefault.push(exclude.source);
      } else put(['inboundPorts', 'exclude'], ports, exclude, !inboundWildcard || same(ports, profileInboundExclude), true);
    }
  }

  // Outbound CIDRs and ports.
  const cidrInclude = get('OutboundIPRangesInclude');
  if (cidrInclude) {
    const list = cidrList(cidrInclude, true);
    if (list !== undefined) put(['outboundIPRanges', 'include'], list, cidrInclude, list === '*', true);
  }
  const cidrExclude = get('OutboundIPRangesExclude');
  if (cidrExclude) {
    const list = cidrList(cidrExclude, false);
    if (Array.isArray(list)) put(['outboundIPRanges', 'exclude'], list, cidrExclude, list.length === 0, true);
  }
  const outInclude = get('OutboundPortsInclude');
  if (outInclude) {
    const ports = portList(outInclude);
    if (ports) put(['outboundPorts', 'include'], ports, outInclude, ports.length === 0, true);
  }
  const outExclude = get('OutboundPortsExclude');
  if (outExclude) {
    const ports = portList(outExclude);
    if (ports) put(['outboundPorts', 'exclude'], ports, outExclude, same(ports, profile === 'istio-cni' ? [15020] : []), true);
  }

  // Interfaces (the compiler checks the names).
  for (const [knob, key] of [
    ['ExcludeInterfaces', 'excludeInterfaces'],
    ['RerouteVirtualInterfaces', 'virtualInterfaces'],
  ] as const) {
    const setting = get(knob);
    if (setting) put(key, split(setting.value), setting, split(setting.value).length === 0, true);
  }

  // DNS.
  const redirect = get('RedirectDNS');
  const captureAll = get('CaptureAllDNS');
  const capture = redirect?.value === 'true';
  if (redirect) put(['dns', 'capture'], capture, redirect, !capture);
  if (captureAll) {
    const all = captureAll.value === 'true';
    const implied = profile === 'istio-cni' ? capture : false;
    put(['dns', 'captureAll'], all, captureAll, all === implied);
  }
  if (options.dnsServers && options.dnsServers.length > 0) {
    const servers: string[] = [];
    for (const server of options.dnsServers) {
      const address = parseAddress(server.address);
      if (!address) fail(server.at, `DNS server ${JSON.stringify(server.address)} is not an IP address`);
      else servers.push(address.text);
    }
    sidecar.dns = { ...((sidecar.dns as object | undefined) ?? {}), servers };
    inline.push({ path: ['spec', 'sidecar', 'dns', 'servers'], text: "the pod's resolvers (Istio reads /etc/resolv.conf)" });
    flow.push(['spec', 'sidecar', 'dns', 'servers']);
  }
  const drop = get('DropInvalid');
  if (drop) put('dropInvalid', drop.value === 'true', drop, drop.value !== 'true');
  if (options.ipv6) {
    sidecar.ipv6 = true;
    inline.push({ path: ['spec', 'sidecar', 'ipv6'], text: 'Istio detects this from the pod\'s addresses; stated here (--ipv6)' });
  }

  // Env-only knobs.
  const loopback = get('HostIPv4LoopbackCidr');
  if (loopback) put('hostIPv4LoopbackCidr', loopback.value, loopback, loopback.value === '127.0.0.1/32');
  const group = (text: string) => (/^\d+$/.test(text) ? Number(text) : text);
  const groupsInclude = get('OwnerGroupsInclude');
  if (groupsInclude) {
    const list = groupsInclude.value === '*' ? '*' : split(groupsInclude.value).map(group);
    put(['ownerGroups', 'include'], list, groupsInclude, list === '*', true);
  }
  const groupsExclude = get('OwnerGroupsExclude');
  if (groupsExclude) {
    const list = split(groupsExclude.value).map(group);
    put(['ownerGroups', 'exclude'], list, groupsExclude, list.length === 0, true);
  }

  if (failed) return undefined;
  const spec: Record<string, unknown> = { mode: 'sidecar' };
  const ordered: Record<string, unknown> = {};
  if (profile !== 'istio-init' || Object.keys(sidecar).length > 0) ordered.defaults = profile;
  const ORDER = [
    'proxyUIDs', 'proxyGIDs', 'proxyPort', 'inboundCapturePort', 'inboundTunnelPort', 'interceptionMode', 'tproxyMark',
    'tproxyRouteTable', 'inboundPorts', 'outboundIPRanges', 'outboundPorts', 'excludeInterfaces', 'virtualInterfaces',
    'dns', 'dropInvalid', 'ipv6', 'hostIPv4LoopbackCidr', 'ownerGroups',
  ];
  for (const key of ORDER) if (key in sidecar) ordered[key] = sidecar[key];
  if (Object.keys(ordered).length > 0) spec.sidecar = ordered;
  if (ordered.defaults !== undefined) {
    inline.push({ path: ['spec', 'sidecar', 'defaults'], text: profile === 'istio-cni' ? 'the istio-cni plugin\'s defaults (it read the annotations)' : "istio-iptables' defaults (the istio-init container)" });
  }
  return { spec, inline, flow, asDefault };
}

export function importIstio(options: IstioImportOptions): IstioImportResult {
  const report = new ImportReport();
  const settings: Settings = new Map();
  const ignored: Ignored[] = [];
  let source = 'flags';
  let profile: Profile = 'istio-init';
  let podName: string | undefined;
  applyEnv(options.env ?? [], settings, ignored, report);
  if (options.pod) {
    const pod = readPod(options.pod, settings, ignored, report);
    if (pod) {
      source = pod.source;
      profile = pod.profile;
      podName = pod.name;
    }
  }
  if (options.flags) {
    const tokens = readFlags(options.flags, report);
    if (tokens) applyFlags(tokens, settings, ignored, report);
  }
  if (options.defaults) profile = options.defaults;
  const done = (result: ImportResult): IstioImportResult => ({ ...result, ignored, source });
  // Values are checked even after input errors, so that every error is reported at once.
  const converted = convert(settings, profile, options, report);
  if (!converted || report.hasErrors) return done({ ok: false, diagnostics: report.sorted(), files: [] });

  const name = options.name ?? (podName ? objectNameFor(podName) : 'sidecar');
  if (!OBJECT_NAME.test(name)) {
    report.error('ISTIO_POD', { file: options.pod?.path ?? '--name', line: 1, column: 1 }, `${JSON.stringify(name)} is not a valid object name`);
    return done({ ok: false, diagnostics: report.sorted(), files: [] });
  }
  const inputs = [options.flags && !options.flags.inline ? baseName(options.flags.path) : options.flags ? 'the --flags command line' : undefined, options.pod ? baseName(options.pod.path) : undefined]
    .filter((x): x is string => x !== undefined)
    .join(' and ');
  const header = `Converted by "nftops import istio" from ${inputs || 'the defaults'} (${source === 'flags' ? 'istio-iptables flags' : source === 'annotations' ? 'pod annotations, read as the istio-cni plugin reads them' : "the pod's istio-init container arguments"}).`;
  const comments = [header];
  if (converted.asDefault.length > 0) comments.push(`Given, equal to the defaults: ${converted.asDefault.join(', ')}.`);
  if (ignored.length > 0) comments.push(`Ignored (no effect on the rules): ${ignored.map((i) => i.what).join(', ')}.`);
  const mesh: OutputDocument = {
    kind: 'MeshRedirection',
    comments,
    value: { apiVersion: API, kind: 'MeshRedirection', metadata: { name }, spec: converted.spec },
    inline: converted.inline,
    flow: converted.flow,
  };
  const artifact: OutputDocument = {
    kind: 'Artifact',
    comments: [header, "One artifact per pod network namespace: the watcher applies it inside the pod's netns."],
    value: { apiVersion: API, kind: 'Artifact', metadata: { name }, spec: { output: `${name}.nft` } },
  };
  const files: ImportedFile[] = [
    { name: 'artifact.yaml', text: renderYamlFile([artifact], options.schemaBase) },
    { name: 'meshredirection.yaml', text: renderYamlFile([mesh], options.schemaBase) },
  ];
  return done(finish(files, report, options.outputPrefix ?? '', new Set()));
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}
