import { it } from 'vitest';
import { withLbTopology } from '@nftops/testkit';

const VIP = '192.0.2.10';
function rs(backends: string[], mode: string) {
  const map = backends.map((b, i) => `${i} : ${b} . 8080`).join(', ');
  const table = `table inet nftops_lb {\n  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    ip daddr ${VIP} tcp dport 80 counter dnat ip to numgen inc mod ${backends.length} map { ${map} }\n  }\n}\n`;
  if (mode === 'delete') return `table inet nftops_lb\ndelete table inet nftops_lb\n${table}`;
  return `table inet nftops_lb\nflush table inet nftops_lb\n${table}`;
}
it('exp', async () => {
  for (const mode of [process.env.XMODE ?? 'delete']) {
    await withLbTopology({ backendAddresses: ['198.51.100.10', '198.51.100.11', '198.51.100.12', '198.51.100.13', '2001:db8:b::10'], vips: [VIP], serverPorts: [8080], serverProtocols: ['tcp'], prefix: 'nftops-x' }, async (t) => {
      await t.applyRulesetOrThrow(rs(['198.51.100.10', '198.51.100.11'], mode));
      let changing = true;
      const fails: unknown[] = [];
      let total = 0;
      const client = (async () => {
        while (changing) {
          const r = await t.connectMany({ vip: VIP, port: 80, count: 300, concurrency: 4, timeoutMs: 3000 });
          total += r.length;
          for (const x of r) if (!x.ok) fails.push({ ...x, at: Date.now() });
        }
      })();
      const sets = [['198.51.100.10', '198.51.100.11', '198.51.100.12'], ['198.51.100.10', '198.51.100.11', '198.51.100.12', '198.51.100.13'], ['198.51.100.10', '198.51.100.11', '198.51.100.13'], ['198.51.100.10', '198.51.100.11']];
      for (let i = 0; i < 150; i++) {
        await t.applyRulesetOrThrow(rs(sets[i % 4]!, mode));
        await new Promise((r) => setTimeout(r, 30));
      }
      changing = false;
      await client;
      console.log(mode, 'total', total, 'fails', JSON.stringify(fails));
    });
  }
}, 300000);
