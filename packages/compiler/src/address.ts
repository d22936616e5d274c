import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

/** An IP address in canonical text form (RFC 5952 for IPv6), with its bytes for ordering and masks. */
export interface IpAddress {
  readonly family: Family;
  readonly text: string;
  readonly bytes: readonly number[];
}

export interface Cidr {
  readonly family: Family;
  readonly network: IpAddress;
  readonly prefix: number;
  /** `network/prefix`, or the bare address for a host block (/32, /128), the way nft lists it. */
  readonly text: string;
}

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

function fromParsed(addr: ipaddr.IPv4 | ipaddr.IPv6): IpAddress {
  if (addr.kind() === 'ipv4') {
    return { family: 4, text: addr.toString(), bytes: addr.toByteArray() };
  }
  const v6 = addr as ipaddr.IPv6;
  return { family: 6, text: v6.toRFC5952String(), bytes: v6.toByteArray() };
}

const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseAddress(text: string): Parsed<IpAddress> {
  if (text.includes('%')) return { ok: false, reason: 'zone identifiers (%...) are not allowed' };
  // Strict dotted quad, decimal, no leading zeros: the one IPv4 form nft and people read the same way.
  const quad = DOTTED_QUAD.exec(text);
  if (quad) {
    const bytes = [Number(quad[1]), Number(quad[2]), Number(quad[3]), Number(quad[4])];
    return { ok: true, value: { family: 4, text: bytes.join('.'), bytes } };
  }
  const fast = parseHexIPv6(text);
  if (fast) return { ok: true, value: fast };
  if (!text.includes(':') || !ipaddr.IPv6.isValid(text)) {
    return { ok: false, reason: 'expected an IPv4 address in dotted-quad form or an IPv6 address' };
  }
  return { ok: true, value: fromParsed(ipaddr.IPv6.parse(text)) };
}

const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;

/**
 * The common case, IPv6 in plain hex groups (no embedded IPv4, no zone), parsed without the general
 * parser: at 50 000 services this is most of the model's time. Anything else goes to ipaddr.js. A property
 * test checks both paths agree.
 */
export function parseHexIPv6(text: string): IpAddress | undefined {
  if (text.length > 39 || text.includes('.')) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups: number[] = [];
  for (const part of [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail]) {
    if (!HEX_GROUP.test(part)) return undefined;
    groups.push(parseInt(part, 16));
  }
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  return { family: 6, text: rfc5952(groups), bytes };
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (two or more, leftmost) of zero groups as `::`. */
function rfc5952(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export function maskBytes(bytes: readonly number[], prefix: number): number[] {
  return bytes.map((byte, index) => {
    const bits = Math.max(0, Math.min(8, prefix - index * 8));
    return byte & ((0xff << (8 - bits)) & 0xff);
  });
}

function addressFromBytes(family: Family, bytes: readonly number[]): IpAddress {
  return fromParsed(family === 4 ? new ipaddr.IPv4([...bytes]) : ipaddr.fromByteArray([...bytes]));
}

function cidrText(network: IpAddress, prefix: number): string {
  return prefix === network.bytes.length * 8 ? network.text : `${network.text}/${prefix}`;
}

/**
 * Parses `address/prefix` (a bare address is a host block). Host bits set are an error whose reason names
 * the canonical block that was probably meant.
 */
export function parseCidr(text: string): Parsed<Cidr> & { readonly hostBitsMeant?: string } {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const address = parseAddress(addressText);
  if (!address.ok) return address;
  const max = address.value.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > max) {
      return { ok: false, reason: `the prefix length must be a number from 0 to ${max}` };
    }
    prefix = Number(prefixText);
  }
  const networkBytes = maskBytes(address.value.bytes, prefix);
  const network = addressFromBytes(address.value.family, networkBytes);
  if (networkBytes.some((byte, i) => byte !== address.value.bytes[i])) {
    const meant = `${network.text}/${prefix}`;
    return { ok: false, reason: `host bits are set; the block is ${meant}`, hostBitsMeant: meant };
  }
  return { ok: true, value: { family: address.value.family, network, prefix, text: cidrText(network, prefix) } };
}

export function compareBytes(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return 0;
}

export function compareAddresses(a: IpAddress, b: IpAddress): number {
  return compareBytes(a.bytes, b.bytes);
}

export function compareCidrs(a: Cidr, b: Cidr): number {
  return compareBytes(a.network.bytes, b.network.bytes) || a.prefix - b.prefix;
}

/** True when INNER lies entirely inside OUTER (same family). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  return compareBytes(maskBytes(inner.network.bytes, outer.prefix), outer.network.bytes) === 0;
}
