/**
 * IP addresses and CIDR blocks as the importers need them: the compiler's own parser (strict forms,
 * RFC 5952 text, bytes for ordering), plus what ch-k8s-lbaas's inputs allow and the compiler does not:
 * CIDRs with host bits set (Go keeps them; they are masked here and reported).
 */
import { cidrContains, compareBytes, parseAddress as parseIp, parseCidr, type Cidr, type IpAddress } from '@nftops/compiler';

export type Address = IpAddress;

export interface Block extends Cidr {
  /** True when the input had host bits set (the network was masked). */
  readonly hadHostBits: boolean;
}

export function parseAddress(text: string): Address | undefined {
  const parsed = parseIp(text);
  return parsed.ok ? parsed.value : undefined;
}

/**
 * Parses `address/prefix` (REQUIRE_PREFIX: a bare address is refused, as Go's netip.ParsePrefix and
 * net.ParseCIDR refuse it; otherwise it is a host block). Host bits are masked and reported in hadHostBits.
 */
export function parseBlock(text: string, requirePrefix: boolean): Block | undefined {
  if (requirePrefix && !text.includes('/')) return undefined;
  const parsed = parseCidr(text);
  if (parsed.ok) return { ...parsed.value, hadHostBits: false };
  if (parsed.hostBitsMeant === undefined) return undefined;
  const masked = parseCidr(parsed.hostBitsMeant);
  return masked.ok ? { ...masked.value, hadHostBits: true } : undefined;
}

export { compareBytes };

/** True when INNER lies entirely inside OUTER (same family). */
export function blockContains(outer: Block, inner: Block): boolean {
  return cidrContains(outer, inner);
}
