/**
 * IP addresses and CIDR blocks as the importers need them: strict parsing (the forms Go's net.ParseIP and
 * nft read alike), canonical text (RFC 5952 for IPv6, as the compiler writes it), bytes for ordering.
 */

export type Family = 4 | 6;

export interface Address {
  readonly family: Family;
  readonly text: string;
  readonly bytes: readonly number[];
}

export interface Block {
  readonly family: Family;
  readonly network: Address;
  readonly prefix: number;
  /** `network/prefix`; a host block is written as the bare address. */
  readonly text: string;
  /** True when the input had host bits set (the network was masked). */
  readonly hadHostBits: boolean;
}

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const DOTTED_QUAD = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

function parseV4(text: string): number[] | undefined {
  const m = DOTTED_QUAD.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])] : undefined;
}

function parseV6(text: string): number[] | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || text.split('::').length > 2) return undefined;
  const [headText, tailText] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (i === items.length - 1 && item.includes('.')) {
        const v4 = parseV4(item);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(item)) return undefined;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const head = groups(headText);
  const tail = tailText === undefined ? [] : groups(tailText);
  if (!head || !tail) return undefined;
  // An embedded IPv4 address may only end the address.
  if (tailText !== undefined && headText.includes('.')) return undefined;
  let all: number[];
  if (tailText === undefined) {
    if (head.length !== 8) return undefined;
    all = head;
  } else {
    if (head.length + tail.length > 7) return undefined;
    all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/** RFC 5952: lower case, no leading zeros, the longest run (the first of equals) of two or more zero groups as `::`. */
function v6Text(bytes: readonly number[]): string {
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

export function addressFromBytes(family: Family, bytes: readonly number[]): Address {
  return { family, bytes: [...bytes], text: family === 4 ? bytes.join('.') : v6Text(bytes) };
}

export function parseAddress(text: string): Address | undefined {
  const v4 = parseV4(text);
  if (v4) return addressFromBytes(4, v4);
  if (!text.includes(':')) return undefined;
  const v6 = parseV6(text);
  return v6 ? addressFromBytes(6, v6) : undefined;
}

export function maskBytes(bytes: readonly number[], prefix: number): number[] {
  return bytes.map((byte, index) => {
    const bits = Math.max(0, Math.min(8, prefix - index * 8));
    return byte & ((0xff << (8 - bits)) & 0xff);
  });
}

/**
 * Parses `address/prefix` (REQUIRE_PREFIX: a bare address is refused, as Go's netip.ParsePrefix and
 * net.ParseCIDR refuse it; otherwise it is a host block). Host bits are masked and reported in hadHostBits.
 */
export function parseBlock(text: string, requirePrefix: boolean): Block | undefined {
  const slash = text.indexOf('/');
  if (slash < 0 && requirePrefix) return undefined;
  const address = parseAddress(slash < 0 ? text : text.slice(0, slash));
  if (!address) return undefined;
  const max = address.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > max) return undefined;
    prefix = Number(prefixText);
  }
  const networkBytes = maskBytes(address.bytes, prefix);
  const network = addressFromBytes(address.family, networkBytes);
  return {
    family: address.family,
    network,
    prefix,
    text: prefix === max ? network.text : `${network.text}/${prefix}`,
    hadHostBits: networkBytes.some((b, i) => b !== address.bytes[i]),
  };
}

export function compareBytes(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** True when INNER lies entirely inside OUTER (same family). */
export function blockContains(outer: Block, inner: Block): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  return compareBytes(maskBytes(inner.network.bytes, outer.prefix), outer.network.bytes) === 0;
}
