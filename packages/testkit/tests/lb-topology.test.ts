import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  createLbTopology,
  isDocumentationAddress,
  kernelAvailable,
  runClient,
  summarize,
  withLbTopology,
  type LbTopology,
} from '@nftops/testkit';

/** The hand-written LB ruleset from the brief: DNAT round robin with marks, masquerade on the snat bit. */
function lbRuleset(options: { vip4?: string; vip6?: string; port?: number; snat?: boolean; proto?: 'tcp' | 'udp' } = {}): string {
  const { vip4 = '192.0.2.10', vip6 = '2001:db8:f::10', port = 80, snat = true, proto = 'tcp' } = options;
  const mark = snat ? '0x00000003' : '0x00000001';
  const marks = `meta mark set meta mark & 0xfffffffc | ${mark} ct mark set ct mark & 0xfffffffc | ${mark}`;
  return `table inet nftops_lb
delete table inet nftops_lb
table inet nftops_lb {
  chain prerouting { type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${vip4} meta l4proto ${proto} th dport ${port} ${marks} counter dnat ip to numgen inc mod 3 map { 0 : 198.51.100.10 . 8080, 1 : 198.51.100.11 . 8080, 2 : 198.51.100.12 . 8080 }
    ip6 daddr ${vip6} meta l4proto ${proto} th dport ${port} ${marks} counter dnat ip6 to numgen inc mod 3 map { 0 : [2001:db8:b::10] . 8080, 1 : [2001:db8:b::11] . 8080, 2 : [2001:db8:b::12] . 8080 }
  }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    meta mark & 0x00000002 == 0x00000002 counter masquerade
  }
}
`;
}

const nsExists = (name: string) => execFileSync('ip', ['netns', 'list']).toString().split('\n').some((line) => line.split(' ')[0] === name);

describe('address guard', () => {
  it('accepts documentation ranges and loopback only', () => {
    for (const ok of ['192.0.2.1', '198.51.100.255', '203.0.113.7', '127.0.0.1', '2001:db8:f::10', '::1']) {
      expect(isDocumentationAddress(ok), ok).toBe(true);
    }
    for (const bad of ['10.0.0.1', '8.8.8.8', '192.0.3.1', '2001:db9::1', 'fe80::1', 'example.com', '']) {
      expect(isDocumentationAddress(bad), bad).toBe(false);
    }
  });

  it('refuses to build a topology with a non-documentation address, before creating anything', async () => {
    await expect(createLbTopology({ clientAddresses: ['10.1.2.3'] })).rejects.toThrow(/refusing/);
    await expect(createLbTopology({ backendAddresses: ['203.0.113.10'] })).rejects.toThrow(/outside its range/);
    await expect(createLbTopology({ vips: ['198.51.100.1'] })).rejects.toThrow(/outside its range/);
  });
});

describe.runIf(kernelAvailable())('LB topology with hand-written rules', () => {
  it('spreads 3000 TCP connections exactly evenly with numgen inc, and masquerades', async () => {
    await withLbTopology({}, async (t) => {
      await t.applyRulesetOrThrow(lbRuleset());
      const v4 = await t.traffic({ vip: '192.0.2.10', port: 80, count: 3000, concurrency: 16 });
      expect(v4.failures).toEqual({});
      expect(v4.byBackend).toEqual({ '198.51.100.10:8080': 1000, '198.51.100.11:8080': 1000, '198.51.100.12:8080': 1000 });
      expect(v4.bySawSource).toEqual({ [t.lbBackendSide.v4]: 3000 });

      const v6 = await t.traffic({ vip: '2001:db8:f::10', port: 80, count: 300, concurrency: 16 });
      expect(v6.failures).toEqual({});
      expect(v6.byBackend).toEqual({ '[2001:db8:b::10]:8080': 100, '[2001:db8:b::11]:8080': 100, '[2001:db8:b::12]:8080': 100 });
      expect(v6.bySawSource).toEqual({ [t.lbBackendSide.v6]: 300 });
      expect(await t.listRuleset()).toMatch(/counter packets [1-9]/);
    });
  });

  it('without the snat bit the backend sees the client address (backends route via the LB)', async () => {
    await withLbTopology({ clientAddresses: ['203.0.113.2', '203.0.113.77', '2001:db8:c::2'] }, async (t) => {
      await t.applyRulesetOrThrow(lbRuleset({ snat: false }));
      const a = await t.traffic({ vip: '192.0.2.10', port: 80, count: 30, source: '203.0.113.77' });
      expect(a.bySawSource).toEqual({ '203.0.113.77': 30 });
      expect(Object.values(a.byBackend)).toEqual([10, 10, 10]);
      const b = await t.traffic({ vip: '2001:db8:f::10', port: 80, count: 30 });
      expect(b.bySawSource).toEqual({ '2001:db8:c::2': 30 });
      // Several sources in one client run, used in turn.
      const c = await t.traffic({ vip: '192.0.2.10', port: 80, count: 30, sources: ['203.0.113.2', '203.0.113.77'] });
      expect(c.bySawSource).toEqual({ '203.0.113.2': 15, '203.0.113.77': 15 });
      expect(c.bySource['203.0.113.77']!.ok).toBe(15);
      await expect(t.traffic({ vip: '192.0.2.10', port: 80, count: 1, source: '203.0.113.99' })).rejects.toThrow(/not a client address/);
      // The one-shot client (its own process) works the same way as the topology's long-lived one.
      const once = await runClient({ netns: t.clientNetns, vip: '192.0.2.10', port: 80, count: 3, source: '203.0.113.2', firstSourcePort: 60_000 });
      expect(summarize(once).bySawSource).toEqual({ '203.0.113.2': 3 });
    });
  });

  it('without a backend default route, only SNAT makes replies come back', async () => {
    await withLbTopology({ backendDefaultRoute: false }, async (t) => {
      await t.applyRulesetOrThrow(lbRuleset({ snat: false }));
      const noSnat = await t.traffic({ vip: '192.0.2.10', port: 80, count: 3, timeoutMs: 500, concurrency: 3 });
      expect(noSnat.ok).toBe(0);
      await t.applyRulesetOrThrow(lbRuleset({ snat: true }));
      const snat = await t.traffic({ vip: '192.0.2.10', port: 80, count: 30 });
      expect(snat.ok).toBe(30);
    });
  });

  it('balances UDP datagrams, one flow per fresh socket', async () => {
    await withLbTopology({}, async (t) => {
      await t.applyRulesetOrThrow(lbRuleset({ proto: 'udp', port: 53 }));
      const v4 = await t.traffic({ vip: '192.0.2.10', port: 53, protocol: 'udp', count: 90 });
      expect(v4.byBackend).toEqual({ '198.51.100.10:8080': 30, '198.51.100.11:8080': 30, '198.51.100.12:8080': 30 });
      expect(v4.bySawSource).toEqual({ '198.51.100.1': 90 });
      const v6 = await t.traffic({ vip: '2001:db8:f::10', port: 53, protocol: 'udp', count: 90 });
      expect(Object.values(v6.byBackend)).toEqual([30, 30, 30]);
    });
  });

  it.each(['local', 'routed'] as const)('DNAT works with the VIP %s on the LB', async (vipMode) => {
    await withLbTopology({ vipMode }, async (t) => {
      await t.applyRulesetOrThrow(lbRuleset());
      expect((await t.traffic({ vip: '192.0.2.10', port: 80, count: 9 })).ok).toBe(9);
      expect((await t.traffic({ vip: '2001:db8:f::10', port: 80, count: 9 })).ok).toBe(9);
      // A port without a DNAT rule: a local VIP answers with a reset, a routed one is unreachable (no route on the LB).
      const other = await t.connectMany({ vip: '192.0.2.10', port: 81, count: 1 });
      expect(other[0]).toMatchObject({ ok: false, error: vipMode === 'local' ? 'refused' : 'unreachable' });
    });
  });

  it('tells drops (timeout) from rejects (refused), and a sentinel in the LB shows traffic that escaped DNAT', async () => {
    await withLbTopology({}, async (t) => {
      await t.startServer('lb', ['192.0.2.10', '2001:db8:f::10'], [80, 81]);
      await t.applyRulesetOrThrow(`table inet nftops_lb
delete table inet nftops_lb
table inet nftops_lb {
  chain input { type filter hook input priority filter; policy accept;
    tcp dport 80 drop
    udp dport 80 reject
  }
}
`);
      const started = Date.now();
      const dropped = await t.traffic({ vip: '192.0.2.10', port: 80, count: 4, timeoutMs: 500, concurrency: 4 });
      expect(dropped.failures).toEqual({ timeout: 4 });
      const rejected = await t.traffic({ vip: '2001:db8:f::10', port: 80, protocol: 'udp', count: 4 });
      expect(rejected.failures).toEqual({ refused: 4 });
      expect(Date.now() - started).toBeLessThan(5_000);
      const sentinel = await t.traffic({ vip: '192.0.2.10', port: 81, count: 2 });
      expect(sentinel.byBackend).toEqual({ '192.0.2.10:81': 2 });
    });
  });

  it('destroy stops the servers and deletes every namespace', async () => {
    const t: LbTopology = await createLbTopology({});
    const names = [t.clientNetns, t.lbNetns, t.backendNetns];
    expect(names.every(nsExists)).toBe(true);
    const server = await t.startServer('backend', ['198.51.100.10'], [9000], ['tcp']);
    expect((await t.traffic({ vip: '192.0.2.10', port: 80, count: 1 })).failures).toEqual({ refused: 1 });
    await t.destroy();
    await t.destroy();
    expect(names.some(nsExists)).toBe(false);
    await expect(t.traffic({ vip: '192.0.2.10', port: 80, count: 1 })).rejects.toThrow(/destroyed/);
    expect(() => process.kill(server.pid!, 0)).toThrow();
  });

  it('summarize counts outcomes', () => {
    expect(
      summarize([
        { ok: true, sourcePort: 1, backend: 'a:1', backendAddress: 'a', backendPort: 1, sawSource: 's', sawPort: 2 },
        { ok: false, sourcePort: 2, error: 'timeout', message: '' },
      ]),
    ).toEqual({
      total: 2,
      ok: 1,
      byBackend: { 'a:1': 1 },
      byBackendAddress: { a: 1 },
      bySawSource: { s: 1 },
      failures: { timeout: 1 },
      bySource: { default: { ok: 1, byBackend: { 'a:1': 1 }, failures: { timeout: 1 } } },
    });
  });
});
