import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

/** An IP address in canonical text form (RFC 5952 for IPv6), with its bytes for ordering and masks. */
export interface IpAddress {
  readonly family: Family;
  readonly text: string;
  /** The bytes as a string of one character per byte: compared with `<`, it orders addresses byte by byte. */
  readonly key: string;
  readonly bytes: readonly number[];
}

/**
 * The bytes live in a short string and the array is made only when asked for: a model at 50 000 services holds
 * 300 000 addresses, and a 16-number array per address was a fifth of its memory.
 */
class Address implements IpAddress {
  constructor(
    readonly family: Family,
    readonly text: string,
    readonly key: string,
  ) {}

  get bytes(): number[] {
    const bytes = new Array<number>(this.key.length);
    for (let i = 0; i < bytes.length; i++) bytes[i] = this.key.charCodeAt(i);
    return bytes;
  }
}

function addressOf(family: Family, text: string, bytes: readonly number[]): IpAddress {
  return new Address(family, text, String.fromCharCode(...bytes));
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
    return addressOf(4, addr.toString(), addr.toByteArray());
  }
  const v6 = addr as ipaddr.IPv6;
  return addressOf(6, v6.toRFC5952String(), v6.toByteArray());
}

const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseAddress(text: string): Parsed<IpAddress> {
  if (text.includes('%')) return { ok: false, reason: 'zone identifiers (%...) are not allowed' };
  // Strict dotted quad, decimal, no leading zeros: the one IPv4 form nft and people read the same way.
  const quad = DOTTED_QUAD.exec(text);
  if (quad) {
    const bytes = [Number(quad[1]), Number(quad[2]), Number(quad[3]), Number(quad[4])];
    return { ok: true, value: addressOf(4, bytes.join('.'), bytes) };
  }
  const fast = parseHexIPv6(text);
  if (fast) return { ok: true, value: fast };
  if (!text.includes(':') || !ipaddr.IPv6.isValid(text)) {
    return { ok: false, reason: 'expected an IPv4 address in dotted-quad form or an IPv6 address' };
  }
  return { ok: true, value: fromParsed(ipaddr.IPv6.parse(text)) };
}

/**
 * The common case, IPv6 in plain hex groups (no embedded IPv4, no zone), parsed in one pass without the
 * general parser: at 50 000 services this was most of the model's time. Anything else goes to ipaddr.js.
 * A property test checks both paths agree.
 */
export function parseHexIPv6(text: string): IpAddress | undefined {
  const length = text.length;
  if (length < 2 || length > 39) return undefined;
  const groups = [0, 0, 0, 0, 0, 0, 0, 0];
  let count = 0;
  let gap = -1; // index in groups where `::` stands
  let i = 0;
  if (text.charCodeAt(0) === 58 /* : */) {
    if (text.charCodeAt(1) !== 58) return undefined;
    gap = 0;
    i = 2;
    if (i === length) return finishIPv6(groups, count, gap);
  }
  for (;;) {
    let value = 0;
    let digits = 0;
    while (i < length) {
      const c = text.charCodeAt(i);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      value = value * 16 + d;
      digits++;
      i++;
    }
    if (digits === 0 || digits > 4 || count === 8) return undefined;
    groups[count++] = value;
    if (i === length) break;
    if (text.charCodeAt(i) !== 58) return undefined;
    i++;
    if (text.charCodeAt(i) === 58) {
      if (gap >= 0) return undefined;
      gap = count;
      i++;
      if (i === length) break;
    } else if (i === length) return undefined;
  }
  return finishIPv6(groups, count, gap);
}

function finishIPv6(parsed: number[], count: number, gap: number): IpAddress | undefined {
  if (gap < 0 ? count !== 8 : count > 7) return undefined;
  let groups = parsed;
  if (gap >= 0) {
    // Shift the groups after `::` to the end; the ones in between are zero.
    const tail = count - gap;
    groups = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let k = 0; k < gap; k++) groups[k] = parsed[k]!;
    for (let k = 0; k < tail; k++) groups[8 - tail + k] = parsed[gap + k]!;
  }
  const g = groups as [number, number, number, number, number, number, number, number];
  // One call, so the key is one flat string rather than a rope of sixteen.
  const key = String.fromCharCode(
    g[0] >> 8, g[0] & 0xff, g[1] >> 8, g[1] & 0xff, g[2] >> 8, g[2] & 0xff, g[3] >> 8, g[3] & 0xff,
    g[4] >> 8, g[4] & 0xff, g[5] >> 8, g[5] & 0xff, g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff,
  );
  return new Address(6, rfc5952(groups), key);
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
  // Joined, not concatenated: a joined string is flat, where `+=` leaves a rope of a dozen nodes per address
  // (the model holds 300 000 addresses at 50 000 services).
  const parts: string[] = [];
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      // One empty part between two groups gives `::`; at either end it needs a second one.
      parts.push('');
      if (i === 0) parts.push('');
      if (i + bestLength === 8) parts.push('');
      i += bestLength - 1;
    } else parts.push(groups[i]!.toString(16));
  }
  return parts.join(':');
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
  return a.key.length - b.key.length || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

export function compareCidrs(a: Cidr, b: Cidr): number {
  return compareAddresses(a.network, b.network) || a.prefix - b.prefix;
}

/** True when INNER lies entirely inside OUTER (same family). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  return compareBytes(maskBytes(inner.network.bytes, outer.prefix), outer.network.bytes) === 0;
}
