import type { IpAddress } from './address.js';

/**
 * The only place that turns values into nft syntax. Everything passed here was validated by the schema
 * and the model; these functions still refuse anything that could break out of its token.
 */
export class UnsafeTextError extends Error {
  constructor(what: string, value: string) {
    super(`${what} ${JSON.stringify(value)} cannot be written into nft text safely`);
    this.name = 'UnsafeTextError';
  }
}

const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_.-]{0,255}$/;
const COMMENT = /^[A-Za-z0-9 _.,:/+=@()[\]-]{1,128}$/;

export function identifier(name: string): string {
  if (!IDENTIFIER.test(name)) throw new UnsafeTextError('name', name);
  return name;
}

export function comment(text: string): string {
  if (!COMMENT.test(text) || Buffer.byteLength(text) > 128) throw new UnsafeTextError('comment', text);
  return `comment "${text}"`;
}

/** A 32-bit constant as nft lists it. */
export function hex32(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
}

export function familyKeyword(address: { family: 4 | 6 }): 'ip' | 'ip6' {
  return address.family === 4 ? 'ip' : 'ip6';
}

/** The nft type of an address of that family. */
export function addressType(address: { family: 4 | 6 }): 'ipv4_addr' | 'ipv6_addr' {
  return address.family === 4 ? 'ipv4_addr' : 'ipv6_addr';
}

export function addressPort(address: IpAddress, port: number): string {
  return address.family === 4 ? `${address.text}:${port}` : `[${address.text}]:${port}`;
}

/** `x` for one element, `{ a, b }` for several. */
export function setOf(elements: readonly string[]): string {
  if (elements.length === 0) throw new Error('an anonymous set needs at least one element');
  return elements.length === 1 ? elements[0]! : `{ ${elements.join(', ')} }`;
}

/** A chain name derived from an address: IPv6 colons become dashes, since nft names cannot hold them. */
export function addressName(address: IpAddress): string {
  return address.text.replace(/:/g, '-');
}
