import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { parseAddress, parseHexIPv6 } from '../src/address.js';

/** Groups biased towards zero, so compression runs of every length show up. */
const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));

describe('IPv6 fast path', () => {
  it('agrees with ipaddr.js on bytes and RFC 5952 text, in every spelling', () => {
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), fc.boolean(), fc.boolean(), (groups, upper, padded) => {
        const reference = new ipaddr.IPv6(groups);
        const spelled = [
          groups.map((g) => g.toString(16)).join(':'),
          reference.toRFC5952String(),
          reference.toNormalizedString(),
        ].map((t) => (upper ? t.toUpperCase() : t))
          .map((t) => (padded ? t.split(':').map((p) => (p === '' ? p : p.padStart(4, '0'))).join(':') : t));
        for (const text of spelled) {
          const fast = parseHexIPv6(text);
          expect(fast, text).toBeDefined();
          expect(fast!.text, text).toBe(reference.toRFC5952String());
          expect(fast!.bytes, text).toEqual(reference.toByteArray());
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves everything unusual to the general parser', () => {
    for (const text of ['::ffff:192.0.2.1', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', ':1::', '1::%eth0']) {
      expect(parseHexIPv6(text), text).toBeUndefined();
    }
    expect(parseAddress('::ffff:192.0.2.1')).toMatchObject({ ok: true, value: { family: 6 } });
    expect(parseAddress('1::2::3')).toMatchObject({ ok: false });
  });
});
