import { parseAddress, parseCidr, type Family } from '../address.js';
import type { DiagnosticBag } from '../diagnostics.js';
import type { ExtensionObject } from '../extension.js';
import type { PathSegment } from '../load.js';
import { makeOrigin, type Origin } from '../model.js';
import type { ValidatedObject } from '../validate.js';

/**
 * The mesh model: one MeshRedirection (sidecar or ambient pod) or AmbientNode object, with every knob
 * resolved to the value Istio would use (defaults applied, lists split by family, names validated).
 * Values are kept in Istio's input order, duplicates included: Istio pastes each list item into a rule, and
 * the rule order is what its debugging guide refers to.
 */

/** A CIDR as Istio prints it: `address/prefix`, always with the prefix (Go netip `Prefix.String()`). */
export interface MeshCidr {
  readonly family: Family;
  readonly text: string;
  /** The address part is a loopback address (127.0.0.0/8 or ::1). */
  readonly loopback: boolean;
}

export type Wildcard = '*';

export interface SidecarConfig {
  readonly proxyUids: readonly string[];
  readonly proxyGids: readonly string[];
  readonly proxyPort: number;
  readonly inboundCapturePort: number;
  readonly inboundTunnelPort: number;
  readonly tproxy: boolean;
  readonly tproxyMark: number;
  readonly tproxyRouteTable: number;
  readonly tproxyRulePriority: number;
  /** `*`: every port but the excluded ones; a list: only those; empty: no inbound capture. */
  readonly inboundInclude: Wildcard | readonly number[];
  readonly inboundExclude: readonly number[];
  readonly outboundCidrInclude: Wildcard | readonly MeshCidr[];
  readonly outboundCidrExclude: readonly MeshCidr[];
  readonly outboundPortsInclude: readonly number[];
  readonly outboundPortsExclude: readonly number[];
  readonly excludeInterfaces: readonly string[];
  readonly virtualInterfaces: readonly string[];
  /** RedirectDNS after Istio's "no servers ⇒ off" rule. */
  readonly dns: boolean;
  readonly captureAllDns: boolean;
  readonly dnsServers4: readonly string[];
  readonly dnsServers6: readonly string[];
  readonly dropInvalid: boolean;
  readonly ipv6: boolean;
  readonly loopbackCidr: string;
  /** Group names are already quoted for nft; GIDs are plain numbers. */
  readonly ownerGroupsInclude: Wildcard | readonly string[];
  readonly ownerGroupsExclude: readonly string[];
}

export interface AmbientPodConfig {
  readonly dns: boolean;
  readonly ipv6: boolean;
  readonly snat4: string;
  readonly snat6: string;
  /** ambient.istio.io/bypass-inbound-capture: Istio's "ingress mode". */
  readonly bypassInboundCapture: boolean;
  readonly virtualInterfaces: readonly string[];
}

export interface ProbeElement {
  readonly address: string;
  readonly bytes: readonly number[];
  readonly podUid: string;
}

export interface AmbientNodeConfig {
  readonly ipv6: boolean;
  readonly snat4: string;
  readonly snat6: string;
  /** `0`, or a quoted user name. */
  readonly kubelet: string;
  readonly probes4: readonly ProbeElement[];
  readonly probes6: readonly ProbeElement[];
}

interface MeshBase extends ExtensionObject {
  readonly origin: Origin;
}

export interface SidecarMesh extends MeshBase {
  readonly kind: 'MeshRedirection';
  readonly mode: 'sidecar';
  readonly sidecar: SidecarConfig;
}

export interface AmbientPodMesh extends MeshBase {
  readonly kind: 'MeshRedirection';
  readonly mode: 'ambient';
  readonly ambient: AmbientPodConfig;
}

export interface AmbientNodeMesh extends MeshBase {
  readonly kind: 'AmbientNode';
  readonly node: AmbientNodeConfig;
}

export type MeshObject = SidecarMesh | AmbientPodMesh | AmbientNodeMesh;

// ---------------------------------------------------------------------------------------------------------------
// Istio's defaults and constants

export const DEFAULT_PROXY_UID = 1337;
export const DEFAULT_SNAT4 = '169.254.7.127';
export const DEFAULT_SNAT6 = 'fd16:9254:7127:1337:ffff:ffff:ffff:ffff';
/** Defaults of the knobs whose value depends on how Istio programs the pod (b.2). */
export const PROFILES = {
  'istio-init': { inboundExclude: [15090, 15021, 15020], outboundPortsExclude: [] as number[] },
  'istio-cni': { inboundExclude: [15020, 15021, 15090], outboundPortsExclude: [15020] },
} as const;
export const MAX_OWNER_GROUPS = 64;
/** `ip rule` priority for TPROXY: what the kernel picks for Istio's `ip rule add` without `pref` in a fresh netns. */
export const SIDECAR_RULE_PRIORITY = 32765;

// ---------------------------------------------------------------------------------------------------------------
// Grammars of names that reach nft text

/** Linux interface names (dev_valid_name): 1–15 bytes, no "/", ":" or whitespace; kept to a safe charset. */
const INTERFACE = /^[A-Za-z0-9_.-]{1,15}$/;
/** The largest UID or GID (2^32 - 2; 2^32 - 1 means "no id"), as the schemas bound integer ids. */
const MAX_ID = 4294967294;
/** POSIX-ish user and group names. */
const ACCOUNT = /^[a-z_][a-z0-9_-]{0,31}$/;

export function interfaceProblem(name: string): string | undefined {
  if (name === '.' || name === '..') return `"${name}" is not a valid interface name`;
  if (!INTERFACE.test(name)) {
    return name.length > 15
      ? `interface name ${JSON.stringify(name)} is longer than 15 characters`
      : `interface name ${JSON.stringify(name)} may only hold letters, digits, "_", "." and "-"`;
  }
  return undefined;
}

type Spec = Record<string, unknown>;

class Reader {
  constructor(
    readonly bag: DiagnosticBag,
    readonly origin: Origin,
  ) {}

  at(path: readonly PathSegment[]) {
    return this.origin.at(path);
  }

  error(code: Parameters<DiagnosticBag['add']>[0], path: readonly PathSegment[], message: string, hint?: string): void {
    this.bag.add(code, this.at(path), message, { object: this.origin.ref, ...(hint !== undefined ? { hint } : {}) });
  }

  warn(code: Parameters<DiagnosticBag['add']>[0], path: readonly PathSegment[], message: string, hint?: string): void {
    this.bag.add(code, this.at(path), message, { severity: 'warning', object: this.origin.ref, ...(hint !== undefined ? { hint } : {}) });
  }

  interfaces(path: readonly PathSegment[], names: readonly string[] | undefined): string[] {
    const result: string[] = [];
    (names ?? []).forEach((name, index) => {
      const problem = interfaceProblem(name);
      if (problem !== undefined) this.error('MESH_INTERFACE_NAME', [...path, index], problem, 'Linux interface names are 1-15 letters, digits, "_", "." or "-"');
      else result.push(`"${name}"`);
    });
    return result;
  }

  /** A group as nft text: a GID, or a quoted name. */
  group(path: readonly PathSegment[], value: number | string): string | undefined {
    if (typeof value === 'number') return `${value}`;
    if (/^\d+$/.test(value)) {
      // As the schema bounds integer GIDs: a longer digit string would reach nft as 1e+23 or overflow.
      if (Number(value) <= MAX_ID) return `${Number(value)}`;
      this.error('MESH_GROUP_NAME', path, `GID ${value} is larger than ${MAX_ID}`, 'GIDs are 32-bit numbers below 4294967295');
      return undefined;
    }
    if (!ACCOUNT.test(value)) {
      this.error('MESH_GROUP_NAME', path, `${JSON.stringify(value)} is not a group name or GID`, 'group names match ^[a-z_][a-z0-9_-]{0,31}$; nft resolves them on the node when it loads the artifact');
      return undefined;
    }
    return `"${value}"`;
  }

  cidr(path: readonly PathSegment[], text: string): MeshCidr | undefined {
    const parsed = parseCidr(text);
    if (!parsed.ok) {
      if (parsed.hostBitsMeant !== undefined) {
        this.error('CIDR_HOST_BITS', path, `${text} has host bits set`, `write ${parsed.hostBitsMeant} if the whole block is meant`);
      } else {
        this.error('INVALID_CIDR', path, `${JSON.stringify(text)} is not a CIDR block: ${parsed.reason}`);
      }
      return undefined;
    }
    const { network, prefix, family } = parsed.value;
    const loopback = family === 4 ? network.bytes[0] === 127 : network.text === '::1';
    return { family, text: `${network.text}/${prefix}`, loopback };
  }

  address(path: readonly PathSegment[], text: string, family?: Family): { text: string; bytes: readonly number[]; family: Family } | undefined {
    const parsed = parseAddress(text);
    if (!parsed.ok) {
      this.error('INVALID_ADDRESS', path, `${JSON.stringify(text)} is not an IP address: ${parsed.reason}`);
      return undefined;
    }
    const value = parsed.value;
    if (family !== undefined && value.family !== family) {
      this.error('MESH_ADDRESS_FAMILY', path, `${value.text} is IPv${value.family}, but an IPv${family} address is needed here`);
      return undefined;
    }
    return value;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sidecar

interface RawSidecar {
  defaults?: keyof typeof PROFILES;
  proxyUIDs?: number[];
  proxyGIDs?: number[];
  proxyPort?: number;
  inboundCapturePort?: number;
  inboundTunnelPort?: number;
  interceptionMode?: 'REDIRECT' | 'TPROXY';
  tproxyMark?: number;
  tproxyRouteTable?: number;
  inboundPorts?: { include?: Wildcard | number[]; exclude?: number[] };
  outboundIPRanges?: { include?: Wildcard | string[]; exclude?: Wildcard | string[] };
  outboundPorts?: { include?: number[]; exclude?: number[] };
  excludeInterfaces?: string[];
  virtualInterfaces?: string[];
  dns?: { capture?: boolean; captureAll?: boolean; servers?: string[] };
  dropInvalid?: boolean;
  ipv6?: boolean;
  hostIPv4LoopbackCidr?: string;
  ownerGroups?: { include?: Wildcard | (number | string)[]; exclude?: (number | string)[] };
}

const RESERVED_TABLES = new Set([253, 254, 255]);

function buildSidecar(r: Reader, raw: RawSidecar): SidecarConfig | undefined {
  const base = ['sidecar'];
  const profile = PROFILES[raw.defaults ?? 'istio-init'];
  const ipv6 = raw.ipv6 ?? false;
  const proxyUids = (raw.proxyUIDs ?? [DEFAULT_PROXY_UID]).map(String);
  const proxyGids = raw.proxyGIDs ? raw.proxyGIDs.map(String) : proxyUids;
  const tproxy = raw.interceptionMode === 'TPROXY';
  const tproxyRouteTable = raw.tproxyRouteTable ?? 133;
  if (RESERVED_TABLES.has(tproxyRouteTable)) {
    r.error('MESH_ROUTE_TABLE', [...base, 'tproxyRouteTable'], `routing table ${tproxyRouteTable} is one of the kernel's own tables (default 253, main 254, local 255)`, 'pick a free table number, for example Istio\'s default 133');
  }
  if (!tproxy && raw.tproxyMark !== undefined) {
    r.warn('MESH_KNOB_IGNORED', [...base, 'tproxyMark'], 'tproxyMark only matters with interceptionMode TPROXY');
  }

  const inboundInclude = raw.inboundPorts?.include ?? '*';
  const inboundExclude = raw.inboundPorts?.exclude ?? [...profile.inboundExclude];
  if (inboundInclude !== '*' && (raw.inboundPorts?.exclude?.length ?? 0) > 0) {
    r.warn('MESH_KNOB_IGNORED', [...base, 'inboundPorts', 'exclude'], 'inboundPorts.exclude only applies when inboundPorts.include is "*"; Istio ignores it here', 'drop the exclude list, or set include to "*"');
  }

  const ignoredV6 = (path: readonly PathSegment[], what: string) =>
    r.warn('MESH_IPV6_IGNORED', path, `${what} is IPv6, but ipv6 is off, so Istio emits no rule for it`, 'set ipv6: true for dual-stack pods');

  const cidrs = (path: readonly PathSegment[], list: readonly string[]) => {
    const result: MeshCidr[] = [];
    list.forEach((text, index) => {
      if (text === '*') return;
      const cidr = r.cidr([...path, index], text);
      if (!cidr) return;
      if (cidr.family === 6 && !ipv6) ignoredV6([...path, index], cidr.text);
      result.push(cidr);
    });
    return result;
  };

  const rawCidrInclude = raw.outboundIPRanges?.include ?? '*';
  const outboundCidrInclude: Wildcard | MeshCidr[] =
    rawCidrInclude === '*' ? '*' : rawCidrInclude.length === 1 && rawCidrInclude[0] === '*' ? '*' : cidrs([...base, 'outboundIPRanges', 'include'], rawCidrInclude);
  if (rawCidrInclude !== '*' && rawCidrInclude.length > 1 && rawCidrInclude.includes('*')) {
    r.error('INVALID_CIDR', [...base, 'outboundIPRanges', 'include', rawCidrInclude.indexOf('*')], '"*" must stand alone: write include: "*"');
  }
  const rawCidrExclude = raw.outboundIPRanges?.exclude ?? [];
  let outboundCidrExclude: MeshCidr[] = [];
  if (rawCidrExclude === '*' || rawCidrExclude.includes('*')) {
    const path = rawCidrExclude === '*' ? [...base, 'outboundIPRanges', 'exclude'] : [...base, 'outboundIPRanges', 'exclude', rawCidrExclude.indexOf('*')];
    r.error('MESH_EXCLUDE_WILDCARD', path, 'invalid value for OUTBOUND_IP_RANGES_EXCLUDE: "*" cannot be excluded', 'to capture no outbound traffic, set outboundIPRanges.include to []');
  } else {
    outboundCidrExclude = cidrs([...base, 'outboundIPRanges', 'exclude'], rawCidrExclude);
  }

  const dnsCapture = raw.dns?.capture ?? false;
  const captureAllDns = raw.dns?.captureAll ?? (raw.defaults === 'istio-cni' ? dnsCapture : false);
  const dnsServers4: string[] = [];
  const dnsServers6: string[] = [];
  (raw.dns?.servers ?? []).forEach((text, index) => {
    const address = r.address([...base, 'dns', 'servers', index], text);
    if (!address) return;
    if (address.family === 4) dnsServers4.push(address.text);
    else {
      if (!ipv6) ignoredV6([...base, 'dns', 'servers', index], `DNS server ${address.text}`);
      dnsServers6.push(address.text);
    }
  });
  let dns = dnsCapture;
  if (dnsCapture && !captureAllDns && dnsServers4.length + dnsServers6.length === 0) {
    r.warn('MESH_DNS_NO_SERVERS', [...base, 'dns'], 'DNS capture is on, but captureAll is off and no DNS servers are listed, so Istio turns DNS capture off', 'list the pod\'s resolvers in dns.servers, or set dns.captureAll: true');
    dns = false;
  }
  if (!dnsCapture && (raw.dns?.captureAll || (raw.dns?.servers?.length ?? 0) > 0)) {
    r.warn('MESH_KNOB_IGNORED', [...base, 'dns'], 'dns.captureAll and dns.servers only matter with dns.capture: true');
  }

  const loopbackText = raw.hostIPv4LoopbackCidr ?? '127.0.0.1/32';
  const loopbackCidr = loopback(r, [...base, 'hostIPv4LoopbackCidr'], loopbackText);

  const groups = (path: readonly PathSegment[], list: readonly (number | string)[]) =>
    list.flatMap((g, index) => r.group([...path, index], g) ?? []);
  const rawGroupsInclude = raw.ownerGroups?.include ?? '*';
  let ownerGroupsInclude: Wildcard | string[] = '*';
  if (rawGroupsInclude !== '*') {
    if (rawGroupsInclude.length > MAX_OWNER_GROUPS) {
      r.error('MESH_OWNER_GROUPS_LIMIT', [...base, 'ownerGroups', 'include'], `number of owner groups whose outgoing traffic should be redirected to Envoy cannot exceed ${MAX_OWNER_GROUPS}, got ${rawGroupsInclude.length}`);
    }
    ownerGroupsInclude = groups([...base, 'ownerGroups', 'include'], rawGroupsInclude);
    if ((raw.ownerGroups?.exclude?.length ?? 0) > 0) {
      r.warn('MESH_KNOB_IGNORED', [...base, 'ownerGroups', 'exclude'], 'ownerGroups.exclude only applies when ownerGroups.include is "*"; Istio ignores it here');
    }
  }
  const ownerGroupsExclude = groups([...base, 'ownerGroups', 'exclude'], raw.ownerGroups?.exclude ?? []);

  if (loopbackCidr === undefined) return undefined;
  return {
    proxyUids,
    proxyGids,
    proxyPort: raw.proxyPort ?? 15001,
    inboundCapturePort: raw.inboundCapturePort ?? 15006,
    inboundTunnelPort: raw.inboundTunnelPort ?? 15008,
    tproxy,
    tproxyMark: raw.tproxyMark ?? 1337,
    tproxyRouteTable,
    tproxyRulePriority: SIDECAR_RULE_PRIORITY,
    inboundInclude,
    inboundExclude,
    outboundCidrInclude,
    outboundCidrExclude,
    outboundPortsInclude: raw.outboundPorts?.include ?? [],
    outboundPortsExclude: raw.outboundPorts?.exclude ?? [...profile.outboundPortsExclude],
    excludeInterfaces: r.interfaces([...base, 'excludeInterfaces'], raw.excludeInterfaces),
    virtualInterfaces: r.interfaces([...base, 'virtualInterfaces'], raw.virtualInterfaces),
    dns,
    captureAllDns,
    dnsServers4,
    dnsServers6,
    dropInvalid: raw.dropInvalid ?? false,
    ipv6,
    loopbackCidr,
    ownerGroupsInclude,
    ownerGroupsExclude,
  };
}

/** HostIPv4LoopbackCidr: an IPv4 loopback address with a /8 to /32 mask, printed as given (host bits kept). */
function loopback(r: Reader, path: readonly PathSegment[], text: string): string | undefined {
  const [addressText = '', prefixText, ...rest] = text.split('/');
  const address = parseAddress(addressText);
  const prefix = Number(prefixText);
  if (rest.length > 0 || prefixText === undefined || !/^\d{1,2}$/.test(prefixText) || !address.ok || address.value.family !== 4 || address.value.bytes[0] !== 127 || prefix < 8 || prefix > 32) {
    r.error('MESH_LOOPBACK_CIDR', path, `${JSON.stringify(text)} is not an IPv4 loopback CIDR with a mask from /8 to /32`, 'for example 127.0.0.1/32 (the default)');
    return undefined;
  }
  return `${address.value.text}/${prefix}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Ambient pod and node

interface RawAmbient {
  dnsCapture?: boolean;
  ipv6?: boolean;
  hostProbeSNATAddress?: string;
  hostProbeV6SNATAddress?: string;
  pod?: { bypassInboundCapture?: boolean; dnsCapture?: boolean; virtualInterfaces?: string[] };
}

function snatAddresses(r: Reader, path: readonly PathSegment[], raw: { hostProbeSNATAddress?: string; hostProbeV6SNATAddress?: string }) {
  const snat4 = r.address([...path, 'hostProbeSNATAddress'], raw.hostProbeSNATAddress ?? DEFAULT_SNAT4, 4);
  const snat6 = r.address([...path, 'hostProbeV6SNATAddress'], raw.hostProbeV6SNATAddress ?? DEFAULT_SNAT6, 6);
  return snat4 && snat6 ? { snat4: snat4.text, snat6: snat6.text } : undefined;
}

function buildAmbientPod(r: Reader, raw: RawAmbient): AmbientPodConfig | undefined {
  const snat = snatAddresses(r, ['ambient'], raw);
  const virtualInterfaces = r.interfaces(['ambient', 'pod', 'virtualInterfaces'], raw.pod?.virtualInterfaces);
  if (!snat) return undefined;
  return {
    dns: raw.pod?.dnsCapture ?? raw.dnsCapture ?? true,
    ipv6: raw.ipv6 ?? true,
    ...snat,
    bypassInboundCapture: raw.pod?.bypassInboundCapture ?? false,
    virtualInterfaces,
  };
}

interface RawNode {
  ipv6?: boolean;
  hostProbeSNATAddress?: string;
  hostProbeV6SNATAddress?: string;
  kubelet?: { uid?: number; user?: string };
  pods?: { uid: string; addresses: string[] }[];
}

/** IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) become IPv4, as Istio unmaps pod addresses for the probe set. */
function unmapped(address: { text: string; bytes: readonly number[]; family: Family }) {
  const b = address.bytes;
  if (address.family !== 6 || !b.slice(0, 10).every((x) => x === 0) || b[10] !== 0xff || b[11] !== 0xff) return address;
  const v4 = parseAddress(b.slice(12).join('.'));
  return v4.ok ? v4.value : address;
}

function buildAmbientNode(r: Reader, raw: RawNode): AmbientNodeConfig | undefined {
  const snat = snatAddresses(r, [], raw);
  const ipv6 = raw.ipv6 ?? true;
  let kubelet = `${raw.kubelet?.uid ?? 0}`;
  if (raw.kubelet?.user !== undefined) {
    if (!ACCOUNT.test(raw.kubelet.user)) {
      r.error('MESH_USER_NAME', ['kubelet', 'user'], `${JSON.stringify(raw.kubelet.user)} is not a user name`, 'user names match ^[a-z_][a-z0-9_-]{0,31}$; nft resolves them on the node when it loads the artifact');
    }
    kubelet = `"${raw.kubelet.user}"`;
  }
  const probes4: ProbeElement[] = [];
  const probes6: ProbeElement[] = [];
  const seen = new Map<string, string>();
  (raw.pods ?? []).forEach((pod, podIndex) => {
    pod.addresses.forEach((text, index) => {
      const path = ['pods', podIndex, 'addresses', index];
      const parsed = r.address(path, text);
      if (!parsed) return;
      const address = unmapped(parsed);
      const other = seen.get(address.text);
      if (other !== undefined) {
        r.error('MESH_DUPLICATE_POD_ADDRESS', path, `${address.text} is already enrolled for pod ${other}`, 'a probe address belongs to one pod');
        return;
      }
      seen.set(address.text, pod.uid);
      if (address.family === 6 && !ipv6) {
        r.error('MESH_IPV6_DISABLED', path, `${address.text} is IPv6, but ipv6 is off, so there is no IPv6 probe set`, 'set ipv6: true, or leave the IPv6 address out');
        return;
      }
      (address.family === 4 ? probes4 : probes6).push({ address: address.text, bytes: address.bytes, podUid: pod.uid });
    });
  });
  const byAddress = (a: ProbeElement, b: ProbeElement) => {
    for (let i = 0; i < a.bytes.length; i++) if (a.bytes[i] !== b.bytes[i]) return a.bytes[i]! - b.bytes[i]!;
    return 0;
  };
  if (!snat) return undefined;
  return { ipv6, ...snat, kubelet, probes4: probes4.sort(byAddress), probes6: probes6.sort(byAddress) };
}

// ---------------------------------------------------------------------------------------------------------------

export function buildMeshObject(object: ValidatedObject, bag: DiagnosticBag): MeshObject | undefined {
  const origin = makeOrigin(object);
  const r = new Reader(bag, origin);
  const spec = object.spec as Spec;
  const common = { name: object.name, labels: object.labels, origin };
  if (object.kind === 'AmbientNode') {
    const node = buildAmbientNode(r, spec as RawNode);
    return node && { ...common, kind: 'AmbientNode', node };
  }
  const mode = spec.mode as 'sidecar' | 'ambient';
  const other = mode === 'sidecar' ? 'ambient' : 'sidecar';
  if (spec[other] !== undefined) {
    r.error('MESH_MODE_MISMATCH', [other], `spec.${other} has no effect with mode: ${mode}`, `remove spec.${other}, or set mode: ${other}`);
    return undefined;
  }
  if (mode === 'sidecar') {
    const sidecar = buildSidecar(r, (spec.sidecar ?? {}) as RawSidecar);
    return sidecar && { ...common, kind: 'MeshRedirection', mode, sidecar };
  }
  const ambient = buildAmbientPod(r, (spec.ambient ?? {}) as RawAmbient);
  return ambient && { ...common, kind: 'MeshRedirection', mode, ambient };
}
