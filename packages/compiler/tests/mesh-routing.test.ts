import { describe, expect, it } from 'vitest';
import { formatRouting, formatRoutingItem, parseArtifact, parseRouting, routingOfHeader, routingRemoved, type Routing } from '@nftops/artifact';
import { compile } from '@nftops/compiler';
import { createIpRouting, FakeIpRouting } from '@nftops/nft-driver';
import { kernelAvailable, netnsExec, withNetns } from '@nftops/testkit';

/** The routing companion: its header format, the compiler's output, and the ip applier (real and fake). */

const TPROXY: Routing = {
  items: [
    { kind: 'address', family: 6, address: '::6/128', dev: 'lo' },
    { kind: 'rule', family: 4, fwmark: 1337, mask: 0xffffffff, table: 133, priority: 32765 },
    { kind: 'rule', family: 6, fwmark: 1337, mask: 0xffffffff, table: 133, priority: 32765 },
    { kind: 'route', family: 4, type: 'local', prefix: '0.0.0.0/0', dev: 'lo', table: 133 },
    { kind: 'route', family: 6, type: 'local', prefix: '::/0', dev: 'lo', table: 133 },
  ],
};
const TPROXY_TEXT =
  'addr6 ::6/128 dev lo; rule4 fwmark 0x539/0xffffffff table 133 priority 32765; rule6 fwmark 0x539/0xffffffff table 133 priority 32765; ' +
  'route4 local 0.0.0.0/0 dev lo table 133; route6 local ::/0 dev lo table 133';

describe('routing header format', () => {
  it('formats and parses back', () => {
    expect(formatRouting(TPROXY)).toBe(TPROXY_TEXT);
    expect(parseRouting(TPROXY_TEXT)).toEqual({ ok: true, routing: TPROXY });
    expect(parseRouting('')).toEqual({ ok: true, routing: { items: [] } });
  });

  it.each([
    ['rule4 fwmark 0x539/0xffffffff table 254 priority 32765', 'reserved'],
    ['rule4 fwmark 0x539/0xffffffff table 133 priority 32766', 'priority'],
    ['rule4 fwmark 0x1539/0xfff table 100 priority 32764', 'outside mask'],
    ['rule4 fwmark 1337 table 133 priority 32765', 'malformed'],
    ['route4 local 0.0.0.0/0 dev lo table 255', 'reserved'],
    ['route4 unicast 0.0.0.0/0 dev lo table 100', 'malformed'],
    ['route6 local 0.0.0.0/0 dev lo table 100', 'not an IPv6'],
    ['addr6 ::6/129 dev lo', 'prefix'],
    ['addr6 ::6/128 dev "lo"', 'interface'],
    ['addr4 127.0.0.6/32 dev lo; addr4 127.0.0.6/32 dev lo', 'twice'],
    ['link set lo down', 'unknown'],
    ['addr6 ::6/128 dev lo\t', 'non-printable'],
  ])('refuses %j', (text, why) => {
    const parsed = parseRouting(text);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.message).toContain(why);
  });

  it('routingRemoved lists what an updated artifact no longer needs', () => {
    const next: Routing = { items: TPROXY.items.slice(0, 1) };
    expect(routingRemoved(TPROXY, next).items.map(formatRoutingItem)).toEqual(TPROXY.items.slice(1).map(formatRoutingItem));
  });

  it('the compiler writes it into the header only when there is routing', () => {
    const header = (yaml: string) => {
      const result = compile([{ path: 'm.yaml', text: `apiVersion: nftops.dev/v1alpha1\nkind: MeshRedirection\nmetadata: { name: m }\nspec:\n${yaml}` }]);
      const parsed = parseArtifact(result.artifacts[0]!.text);
      if (!parsed.ok) throw new Error(parsed.message);
      return routingOfHeader(parsed.artifact.header.extra);
    };
    expect(header('  mode: sidecar\n')).toEqual({ ok: true, routing: { items: [] } });
    expect(header('  mode: sidecar\n  sidecar: { interceptionMode: TPROXY, ipv6: true }\n')).toEqual({ ok: true, routing: TPROXY });
    expect(header('  mode: sidecar\n  sidecar: { ipv6: true }\n')).toEqual({ ok: true, routing: { items: TPROXY.items.slice(0, 1) } });
    const ambient = header('  mode: ambient\n  ambient: { ipv6: false }\n');
    expect(ambient.ok && formatRouting(ambient.routing)).toBe('route4 local 0.0.0.0/0 dev lo table 100; rule4 fwmark 0x111/0xfff table 100 priority 32764');
  });
});

describe('FakeIpRouting', () => {
  it('adds only what is missing and removes only what is there', async () => {
    const fake = new FakeIpRouting();
    expect((await fake.apply(TPROXY, { netns: 'a' })).changed).toHaveLength(5);
    expect((await fake.apply(TPROXY, { netns: 'a' })).changed).toEqual([]);
    expect(fake.items({ netns: 'b' })).toEqual([]);
    expect((await fake.remove({ items: TPROXY.items.slice(0, 2) }, { netns: 'a' })).changed).toHaveLength(2);
    expect(fake.items({ netns: 'a' })).toHaveLength(3);
    fake.failNext('boom');
    await expect(fake.apply(TPROXY, { netns: 'a' })).rejects.toThrow('boom');
    expect(fake.items({ netns: 'a' })).toHaveLength(3);
  });
});

describe.runIf(kernelAvailable())('ip routing in a network namespace', () => {
  it('applies idempotently, keeps what already exists, and removes', async () => {
    await withNetns(async (netns) => {
      const ip = createIpRouting();
      // One item exists before (as if Istio or a person had added it).
      expect((await netnsExec(netns, 'ip', ['-6', 'addr', 'add', '::6/128', 'dev', 'lo'])).exitCode).toBe(0);
      const first = await ip.apply(TPROXY, { netns });
      expect(first.unchanged.map(formatRoutingItem)).toEqual([formatRoutingItem(TPROXY.items[0]!)]);
      expect(first.changed).toHaveLength(4);
      expect((await ip.apply(TPROXY, { netns })).changed).toEqual([]);
      expect(await ip.present(TPROXY, { netns })).toHaveLength(5);

      const rules = String((await netnsExec(netns, 'ip', ['rule', 'show'])).stdout);
      expect(rules).toContain('32765:\tfrom all fwmark 0x539 lookup 133');
      const routes = String((await netnsExec(netns, 'ip', ['-6', 'route', 'show', 'table', '133'])).stdout);
      expect(routes).toContain('local default dev lo');

      // A rule that differs only in its mask is another rule.
      const ambient: Routing = { items: [{ kind: 'rule', family: 4, fwmark: 0x111, mask: 0xfff, table: 100, priority: 32764 }] };
      expect((await ip.apply(ambient, { netns })).changed).toHaveLength(1);
      expect((await ip.apply(ambient, { netns })).changed).toEqual([]);

      expect((await ip.remove(TPROXY, { netns })).changed).toHaveLength(5);
      expect((await ip.remove(TPROXY, { netns })).changed).toEqual([]);
      expect(await ip.present(TPROXY, { netns })).toEqual([]);
      expect(await ip.present(ambient, { netns })).toHaveLength(1);
    });
  });
});
