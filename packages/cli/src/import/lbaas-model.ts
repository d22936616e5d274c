import { parseAddress, parseBlock, type Address, type Block } from './address.js';
import type { ImportReport, Position } from './report.js';
import type { PathSegment, YamlInput } from './yaml-input.js';

/**
 * ch-k8s-lbaas's `load-balancer-config` model (lbaas.md §2.1), read with the agent validator's rules
 * (ip and cidr syntax, TCP|UDP, ports 0-65535, end-port needs port and is greater) and every value's path.
 */

export type LbaasProtocol = 'TCP' | 'UDP';

export interface Destination {
  readonly text: string;
  readonly address: Address;
  readonly path: readonly PathSegment[];
}

export interface Forward {
  readonly path: readonly PathSegment[];
  /** The ingress address as written (ch-k8s-lbaas sorts forwards by this string). */
  readonly addressText: string;
  readonly address: Address;
  readonly protocol: LbaasProtocol;
  readonly inboundPort: number;
  readonly destinations: readonly Destination[];
  readonly destinationPort: number;
}

export interface IpBlockFilter {
  readonly path: readonly PathSegment[];
  readonly allowText: string;
  readonly allow: Block;
  readonly block: readonly { readonly text: string; readonly block: Block; readonly path: readonly PathSegment[] }[];
}

export interface PortFilter {
  readonly path: readonly PathSegment[];
  readonly protocol: LbaasProtocol;
  readonly port: number | undefined;
  readonly endPort: number | undefined;
}

export interface AllowedIngress {
  readonly path: readonly PathSegment[];
  readonly ipblocks: readonly IpBlockFilter[];
  readonly ports: readonly PortFilter[];
}

export interface LbaasPolicy {
  readonly path: readonly PathSegment[];
  readonly name: string;
  readonly allowed: readonly AllowedIngress[];
}

export interface Assignment {
  readonly path: readonly PathSegment[];
  readonly text: string;
  readonly address: Address;
  readonly policies: readonly { readonly name: string; readonly path: readonly PathSegment[] }[];
}

export interface LbaasModel {
  readonly forwards: readonly Forward[];
  readonly policies: readonly LbaasPolicy[];
  readonly assignments: readonly Assignment[];
  /** Whether the input carried network-policies / policy-assignments at all. */
  readonly at: (path: readonly PathSegment[]) => Position;
}

const CLAIM = 'load-balancer-config';

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class Reader {
  failed = false;

  constructor(
    readonly input: YamlInput,
    readonly report: ImportReport,
  ) {}

  at(path: readonly PathSegment[]): Position {
    return this.input.locate(path);
  }

  error(code: Parameters<ImportReport['error']>[0], path: readonly PathSegment[], message: string, hint?: string): void {
    this.report.error(code, this.at(path), message, hint);
    this.failed = true;
  }

  /** An object with KNOWN keys; unknown keys are warnings (Go's JSON decoding ignores them). */
  object(path: readonly PathSegment[], value: unknown, known: readonly string[], what: string): Obj | undefined {
    if (!isObject(value)) {
      this.error('LBAAS_MODEL_FIELD', path, `${what} must be a mapping, not ${describe(value)}`);
      return undefined;
    }
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) {
        this.report.warn('LBAAS_UNKNOWN_FIELD', this.input.locateKey([...path, key]), `"${key}" is not a field of ${what}; ignored (known: ${known.join(', ')})`);
      }
    }
    return value;
  }

  /** A list; absent or null is empty unless REQUIRED (go-playground `required` on a slice: not nil). */
  list(path: readonly PathSegment[], value: unknown, what: string, required = false): unknown[] {
    if (value === undefined || value === null) {
      if (required) this.error('LBAAS_MODEL_FIELD', path, `${what} is required`);
      return [];
    }
    if (!Array.isArray(value)) {
      this.error('LBAAS_MODEL_FIELD', path, `${what} must be a list, not ${describe(value)}`);
      return [];
    }
    return value;
  }

  string(path: readonly PathSegment[], value: unknown, what: string): string | undefined {
    if (typeof value !== 'string' || value === '') {
      this.error('LBAAS_MODEL_FIELD', path, value === undefined || value === '' ? `${what} is required` : `${what} must be a string, not ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  address(path: readonly PathSegment[], value: unknown, what: string): Address | undefined {
    const text = this.string(path, value, what);
    if (text === undefined) return undefined;
    const address = parseAddress(text);
    if (!address) this.error('LBAAS_INVALID_ADDRESS', path, `${what} ${JSON.stringify(text)} is not an IP address`);
    return address;
  }

  block(path: readonly PathSegment[], value: unknown, what: string): Block | undefined {
    const text = this.string(path, value, what);
    if (text === undefined) return undefined;
    const block = parseBlock(text, true);
    if (!block) this.error('LBAAS_INVALID_CIDR', path, `${what} ${JSON.stringify(text)} is not a CIDR block (address/prefix)`);
    return block;
  }

  protocol(path: readonly PathSegment[], value: unknown): LbaasProtocol | undefined {
    if (value === 'TCP' || value === 'UDP') return value;
    if (value === undefined) this.error('LBAAS_MODEL_FIELD', path, 'protocol is required');
    else this.error('LBAAS_PROTOCOL', path, `protocol ${JSON.stringify(value)} is not TCP or UDP`, 'ch-k8s-lbaas accepts exactly TCP and UDP (upper case)');
    return undefined;
  }

  port(path: readonly PathSegment[], value: unknown, what: string, required: boolean): number | undefined {
    if (value === undefined || value === null) {
      if (required) this.error('LBAAS_MODEL_FIELD', path, `${what} is required`);
      return undefined;
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
      this.error('LBAAS_PORT', path, `${what} must be an integer from 0 to 65535, not ${describe(value)}`);
      return undefined;
    }
    return value;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

/** Reads the model; undefined when it has errors (all of them are reported). */
export function readLbaasModel(input: YamlInput, report: ImportReport): LbaasModel | undefined {
  const r = new Reader(input, report);
  let base: PathSegment[] = [];
  let root = input.value;
  if (isObject(root) && CLAIM in root) {
    r.object([], root, [CLAIM], 'the request');
    base = [CLAIM];
    root = root[CLAIM];
  }
  const config = r.object(base, root ?? {}, ['ingress', 'network-policies', 'policy-assignments'], CLAIM);
  if (!config) return undefined;

  const forwards: Forward[] = [];
  r.list([...base, 'ingress'], config.ingress, 'ingress').forEach((raw, i) => {
    const path = [...base, 'ingress', i];
    const ingress = r.object(path, raw, ['address', 'ports'], 'an ingress entry');
    if (!ingress) return;
    const address = r.address([...path, 'address'], ingress.address, 'address');
    r.list([...path, 'ports'], ingress.ports, 'ports').forEach((rawPort, j) => {
      const p = [...path, 'ports', j];
      const port = r.object(p, rawPort, ['protocol', 'inbound-port', 'destination-addresses', 'destination-port', 'policy'], 'a port forward');
      if (!port) return;
      const protocol = r.protocol([...p, 'protocol'], port.protocol);
      const inboundPort = r.port([...p, 'inbound-port'], port['inbound-port'], 'inbound-port', true);
      const destinationPort = r.port([...p, 'destination-port'], port['destination-port'], 'destination-port', true);
      const destinations: Destination[] = [];
      r.list([...p, 'destination-addresses'], port['destination-addresses'], 'destination-addresses', true).forEach((d, k) => {
        const dp = [...p, 'destination-addresses', k];
        const destination = r.address(dp, d, 'destination address');
        if (destination) destinations.push({ text: d as string, address: destination, path: dp });
      });
      if (address && protocol && inboundPort !== undefined && destinationPort !== undefined) {
        forwards.push({ path: p, addressText: ingress.address as string, address, protocol, inboundPort, destinations, destinationPort });
      }
    });
  });

  const policies: LbaasPolicy[] = [];
  r.list([...base, 'network-policies'], config['network-policies'], 'network-policies').forEach((raw, i) => {
    const path = [...base, 'network-policies', i];
    const policy = r.object(path, raw, ['name', 'allowed-ingresses'], 'a network policy');
    if (!policy) return;
    const name = r.string([...path, 'name'], policy.name, 'name');
    const allowed: AllowedIngress[] = [];
    r.list([...path, 'allowed-ingresses'], policy['allowed-ingresses'], 'allowed-ingresses').forEach((rawIngress, j) => {
      const ip = [...path, 'allowed-ingresses', j];
      const ingress = r.object(ip, rawIngress ?? {}, ['ipblock-filters', 'port-filters'], 'an allowed ingress');
      if (!ingress) return;
      const ipblocks: IpBlockFilter[] = [];
      r.list([...ip, 'ipblock-filters'], ingress['ipblock-filters'], 'ipblock-filters').forEach((rawBlock, k) => {
        const bp = [...ip, 'ipblock-filters', k];
        const filter = r.object(bp, rawBlock, ['allow', 'block'], 'an ipblock filter');
        if (!filter) return;
        const allow = r.block([...bp, 'allow'], filter.allow, 'allow');
        const block: IpBlockFilter['block'][number][] = [];
        r.list([...bp, 'block'], filter.block, 'block').forEach((rawExcept, m) => {
          const ep = [...bp, 'block', m];
          const except = r.block(ep, rawExcept, 'block entry');
          if (except) block.push({ text: rawExcept as string, block: except, path: ep });
        });
        if (allow) ipblocks.push({ path: bp, allowText: filter.allow as string, allow, block });
      });
      const ports: PortFilter[] = [];
      r.list([...ip, 'port-filters'], ingress['port-filters'], 'port-filters').forEach((rawFilter, k) => {
        const fp = [...ip, 'port-filters', k];
        const filter = r.object(fp, rawFilter, ['protocol', 'port', 'end-port'], 'a port filter');
        if (!filter) return;
        const protocol = r.protocol([...fp, 'protocol'], filter.protocol);
        const port = r.port([...fp, 'port'], filter.port, 'port', false);
        const endPort = r.port([...fp, 'end-port'], filter['end-port'], 'end-port', false);
        if (endPort !== undefined && filter.port === undefined) {
          r.error('LBAAS_PORT', [...fp, 'end-port'], 'end-port needs port: a range starts at port');
          return;
        }
        if (endPort !== undefined && port !== undefined && endPort <= port) {
          r.error('LBAAS_PORT', [...fp, 'end-port'], `end-port ${endPort} must be greater than port ${port}`, 'ch-k8s-lbaas refuses end-port <= port; leave end-port out for a single port');
          return;
        }
        if (protocol) ports.push({ path: fp, protocol, port, endPort });
      });
      allowed.push({ path: ip, ipblocks, ports });
    });
    if (name !== undefined) policies.push({ path, name, allowed });
  });

  const assignments: Assignment[] = [];
  r.list([...base, 'policy-assignments'], config['policy-assignments'], 'policy-assignments').forEach((raw, i) => {
    const path = [...base, 'policy-assignments', i];
    const assignment = r.object(path, raw, ['address', 'network-policies'], 'a policy assignment');
    if (!assignment) return;
    const address = r.address([...path, 'address'], assignment.address, 'address');
    const names: Assignment['policies'][number][] = [];
    r.list([...path, 'network-policies'], assignment['network-policies'], 'network-policies').forEach((name, j) => {
      const np = [...path, 'network-policies', j];
      const text = r.string(np, name, 'policy name');
      if (text !== undefined) names.push({ name: text, path: np });
    });
    if (address) assignments.push({ path, text: assignment.address as string, address, policies: names });
  });

  if (r.failed) return undefined;
  return { forwards, policies, assignments, at: (path) => input.locate(path) };
}
