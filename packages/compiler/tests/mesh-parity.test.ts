import { describe, expect, it } from 'vitest';
import { compile, formatDiagnostic } from '@nftops/compiler';
import { createNftDriver } from '@nftops/nft-driver';
import { kernelAvailable, netnsExec, withNetns } from '@nftops/testkit';

/**
 * Parity with Istio's nftables backend, chain by chain. The reference transactions below are copied from the
 * specification (istio-nftables.md, b.6.2 and b.6.4 verbatim; the ambient ones written out from c.4 and c.7,
 * including Istio's double spaces). A small simulator replays `add rule` / `insert rule ... index i` the way
 * nft does, and the result must equal our artifact's chains: same tables in the same order, same chains in
 * the same order with the same type/hook/priority, same rules in the same order. Our rules add a comment, and
 * a counter on the five ambient base-chain jumps where Istio has none; nothing else may differ.
 */

const B62 = `add table inet istio-proxy-nat
flush table inet istio-proxy-nat
add chain inet istio-proxy-nat prerouting { type nat hook prerouting priority -100 ; }
add chain inet istio-proxy-nat output { type nat hook output priority -100 ; }
add chain inet istio-proxy-nat istio-inbound
add chain inet istio-proxy-nat istio-redirect
add chain inet istio-proxy-nat istio-in-redirect
add chain inet istio-proxy-nat istio-output
add rule inet istio-proxy-nat istio-inbound meta l4proto tcp tcp dport 15008 counter return
add rule inet istio-proxy-nat istio-redirect meta l4proto tcp counter redirect to :15001
add rule inet istio-proxy-nat istio-in-redirect meta l4proto tcp counter redirect to :15006
add rule inet istio-proxy-nat prerouting meta l4proto tcp counter jump istio-inbound
add rule inet istio-proxy-nat istio-inbound meta l4proto tcp tcp dport 15090 counter return
add rule inet istio-proxy-nat istio-inbound meta l4proto tcp tcp dport 15021 counter return
add rule inet istio-proxy-nat istio-inbound meta l4proto tcp tcp dport 15020 counter return
add rule inet istio-proxy-nat istio-inbound meta l4proto tcp counter jump istio-in-redirect
add rule inet istio-proxy-nat output counter jump istio-output
add rule inet istio-proxy-nat istio-output oifname lo ip saddr 127.0.0.6/32 counter return
add rule inet istio-proxy-nat istio-output oifname lo meta l4proto tcp ip daddr != 127.0.0.1/32 tcp dport != 15008 skuid 1337 counter jump istio-in-redirect
add rule inet istio-proxy-nat istio-output oifname lo skuid != 1337 counter return
add rule inet istio-proxy-nat istio-output skuid 1337 counter return
add rule inet istio-proxy-nat istio-output oifname lo meta l4proto tcp ip daddr != 127.0.0.1/32 tcp dport != 15008 skgid 1337 counter jump istio-in-redirect
add rule inet istio-proxy-nat istio-output oifname lo skgid != 1337 counter return
add rule inet istio-proxy-nat istio-output skgid 1337 counter return
add rule inet istio-proxy-nat istio-output ip daddr 127.0.0.1/32 counter return
add rule inet istio-proxy-nat istio-output counter jump istio-redirect
`;

/** The kernel listing of B62 that the specification shows (nft 1.0.6). */
const B62_LISTING = `table inet istio-proxy-nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		meta l4proto tcp counter packets 0 bytes 0 jump istio-inbound
	}

	chain output {
		type nat hook output priority -100; policy accept;
		counter packets 0 bytes 0 jump istio-output
	}

	chain istio-inbound {
		tcp dport 15008 counter packets 0 bytes 0 return
		tcp dport 15090 counter packets 0 bytes 0 return
		tcp dport 15021 counter packets 0 bytes 0 return
		tcp dport 15020 counter packets 0 bytes 0 return
		meta l4proto tcp counter packets 0 bytes 0 jump istio-in-redirect
	}

	chain istio-redirect {
		meta l4proto tcp counter packets 0 bytes 0 redirect to :15001
	}

	chain istio-in-redirect {
		meta l4proto tcp counter packets 0 bytes 0 redirect to :15006
	}

	chain istio-output {
		oifname "lo" ip saddr 127.0.0.6 counter packets 0 bytes 0 return
		oifname "lo" ip daddr != 127.0.0.1 tcp dport != 15008 meta skuid 1337 counter packets 0 bytes 0 jump istio-in-redirect
		oifname "lo" meta skuid != 1337 counter packets 0 bytes 0 return
		meta skuid 1337 counter packets 0 bytes 0 return
		oifname "lo" ip daddr != 127.0.0.1 tcp dport != 15008 meta skgid 1337 counter packets 0 bytes 0 jump istio-in-redirect
		oifname "lo" meta skgid != 1337 counter packets 0 bytes 0 return
		meta skgid 1337 counter packets 0 bytes 0 return
		ip daddr 127.0.0.1 counter packets 0 bytes 0 return
		counter packets 0 bytes 0 jump istio-redirect
	}
}
`;

const B64 = `add table inet istio-proxy-nat
flush table inet istio-proxy-nat
add chain inet istio-proxy-nat prerouting { type nat hook prerouting priority -100 ; }
add chain inet istio-proxy-nat output { type nat hook output priority -100 ; }
add chain inet istio-proxy-nat istio-inbound
add chain inet istio-proxy-nat istio-redirect
add chain inet istio-proxy-nat istio-in-redirect
add chain inet istio-proxy-nat istio-output
add chain inet istio-proxy-nat istio-output-dns
add rule inet istio-proxy-nat istio-inbound meta l4proto tcp tcp dport 15008 counter return
add rule inet istio-proxy-nat istio-redirect meta l4proto tcp counter redirect to :15001
add rule inet istio-proxy-nat istio-in-redirect meta l4proto tcp counter redirect to :15006
add rule inet istio-proxy-nat prerouting meta l4proto tcp counter jump istio-inbound
add rule inet istio-proxy-nat istio-inbound meta l4proto tcp tcp dport 15020 counter return
add rule inet istio-proxy-nat istio-inbound meta l4proto tcp tcp dport 15021 counter return
add rule inet istio-proxy-nat istio-inbound meta l4proto tcp tcp dport 15090 counter return
add rule inet istio-proxy-nat istio-inbound meta l4proto tcp counter jump istio-in-redirect
add rule inet istio-proxy-nat output counter jump istio-output
add rule inet istio-proxy-nat istio-output tcp dport 15020 counter return
add rule inet istio-proxy-nat istio-output udp dport 15020 counter return
add rule inet istio-proxy-nat istio-output oifname lo ip saddr 127.0.0.6/32 counter return
add rule inet istio-proxy-nat istio-output oifname lo meta l4proto tcp ip daddr != 127.0.0.1/32 tcp dport != { 53, 15008 } skuid 1337 counter jump istio-in-redirect
add rule inet istio-proxy-nat istio-output oifname lo meta l4proto tcp tcp dport != 53 skuid != 1337 counter return
add rule inet istio-proxy-nat istio-output skuid 1337 counter return
add rule inet istio-proxy-nat istio-output oifname lo meta l4proto tcp ip daddr != 127.0.0.1/32 tcp dport != 15008 skgid 1337 counter jump istio-in-redirect
add rule inet istio-proxy-nat istio-output oifname lo meta l4proto tcp tcp dport != 53 skgid != 1337 counter return
add rule inet istio-proxy-nat istio-output skgid 1337 counter return
add rule inet istio-proxy-nat istio-output counter jump istio-output-dns
add rule inet istio-proxy-nat istio-output-dns meta l4proto tcp tcp dport 53 counter redirect to :15053
add rule inet istio-proxy-nat istio-output-dns udp dport 53 counter redirect to :15053
add rule inet istio-proxy-nat istio-output ip daddr 127.0.0.1/32 counter return
add rule inet istio-proxy-nat istio-output counter jump istio-redirect
add table inet istio-proxy-raw
flush table inet istio-proxy-raw
add chain inet istio-proxy-raw prerouting { type filter hook prerouting priority -300 ; }
add chain inet istio-proxy-raw output { type filter hook output priority -300 ; }
add chain inet istio-proxy-raw istio-inbound
add chain inet istio-proxy-raw istio-output-dns
add rule inet istio-proxy-raw output counter jump istio-output-dns
add rule inet istio-proxy-raw istio-output-dns udp dport 53 meta skuid 1337 counter ct zone set 1
add rule inet istio-proxy-raw istio-output-dns udp sport 15053 meta skuid 1337 counter ct zone set 2
add rule inet istio-proxy-raw istio-output-dns udp dport 53 meta skgid 1337 counter ct zone set 1
add rule inet istio-proxy-raw istio-output-dns udp sport 15053 meta skgid 1337 counter ct zone set 2
add rule inet istio-proxy-raw prerouting counter jump istio-inbound
add rule inet istio-proxy-raw istio-output-dns udp dport 53 counter ct zone set 2
add rule inet istio-proxy-raw istio-inbound udp sport 53 counter ct zone set 1
`;

const SNAT6 = 'fd16:9254:7127:1337:ffff:ffff:ffff:ffff';

/** c.4 for an ambient pod with the global defaults (DNS capture and IPv6 on), per table in emission order. */
const AMBIENT_POD = `add table inet istio-ambient-nat
flush table inet istio-ambient-nat
add chain inet istio-ambient-nat prerouting { type nat hook prerouting priority -100 ; }
add chain inet istio-ambient-nat output { type nat hook output priority -100 ; }
add chain inet istio-ambient-nat istio-prerouting
add chain inet istio-ambient-nat istio-output
add rule inet istio-ambient-nat output jump istio-output
add rule inet istio-ambient-nat prerouting jump istio-prerouting
add rule inet istio-ambient-nat istio-prerouting meta l4proto tcp ip saddr 169.254.7.127 counter accept
add rule inet istio-ambient-nat istio-prerouting meta l4proto tcp ip6 saddr ${SNAT6} counter accept
add rule inet istio-ambient-nat istio-output meta l4proto tcp ip daddr 169.254.7.127 counter accept
add rule inet istio-ambient-nat istio-output meta l4proto tcp ip6 daddr ${SNAT6} counter accept
add rule inet istio-ambient-nat istio-prerouting ip daddr != 127.0.0.1/32 tcp dport != 15008 mark and 0xfff  != 0x539 counter redirect to :15006
add rule inet istio-ambient-nat istio-prerouting ip6 daddr != ::1/128 tcp dport != 15008 mark and 0xfff != 0x539 counter redirect to :15006
add rule inet istio-ambient-nat istio-output oifname != lo mark and 0xfff != 0x539 udp dport 53 counter redirect to :15053
add rule inet istio-ambient-nat istio-output ip daddr != 127.0.0.1/32 tcp dport 53 mark and 0xfff != 0x539 counter redirect to :15053
add rule inet istio-ambient-nat istio-output ip6 daddr != ::1/128 tcp dport 53 mark and 0xfff != 0x539 counter redirect to :15053
add rule inet istio-ambient-nat istio-output meta l4proto tcp mark and 0xfff == 0x111 counter accept
add rule inet istio-ambient-nat istio-output oifname lo ip daddr != 127.0.0.1/32 counter accept
add rule inet istio-ambient-nat istio-output oifname lo ip6 daddr != ::1/128 counter accept
add rule inet istio-ambient-nat istio-output meta l4proto tcp ip daddr != 127.0.0.1/32 mark and 0xfff != 0x539 counter redirect to :15001
add rule inet istio-ambient-nat istio-output meta l4proto tcp ip6 daddr != ::1/128 mark and 0xfff != 0x539 counter redirect to :15001
add table inet istio-ambient-mangle
flush table inet istio-ambient-mangle
add chain inet istio-ambient-mangle prerouting { type filter hook prerouting priority -150 ; }
add chain inet istio-ambient-mangle output { type route hook output priority -150 ; }
add chain inet istio-ambient-mangle istio-prerouting
add chain inet istio-ambient-mangle istio-output
add rule inet istio-ambient-mangle prerouting jump istio-prerouting
add rule inet istio-ambient-mangle output jump istio-output
add rule inet istio-ambient-mangle istio-prerouting meta mark & 0xfff == 0x539 counter ct mark set ct mark & 0xfffff000 |  0x111
add rule inet istio-ambient-mangle istio-output ct mark and 0xfff == 0x111 counter meta mark set ct mark
add table inet istio-ambient-raw
flush table inet istio-ambient-raw
add chain inet istio-ambient-raw prerouting { type filter hook prerouting priority -300 ; }
add chain inet istio-ambient-raw output { type filter hook output priority -300 ; }
add chain inet istio-ambient-raw istio-prerouting
add chain inet istio-ambient-raw istio-output
add rule inet istio-ambient-raw prerouting jump istio-prerouting
add rule inet istio-ambient-raw output jump istio-output
add rule inet istio-ambient-raw istio-output udp dport 53 meta mark and 0xfff == 0x539 counter ct zone set 1
add rule inet istio-ambient-raw istio-prerouting udp sport 53 meta mark and 0xfff != 0x539 counter ct zone set 1
`;

/** c.7: set manager start, the host-probe transaction, then one enrolled pod. */
const AMBIENT_HOST = `add table inet istio-ambient-nat
add set inet istio-ambient-nat istio-inpod-probes-v4 { type ipv4_addr ; comment "UUID of the pods that are part of ambient mesh" ; }
add set inet istio-ambient-nat istio-inpod-probes-v6 { type ipv6_addr ; comment "UUID of the pods that are part of ambient mesh" ; }
add table inet istio-ambient-nat
flush table inet istio-ambient-nat
add chain inet istio-ambient-nat postrouting { type nat hook postrouting priority 100 ; }
add rule inet istio-ambient-nat postrouting meta l4proto tcp skuid 0 ip daddr @istio-inpod-probes-v4 counter snat to 169.254.7.127
add rule inet istio-ambient-nat postrouting meta l4proto tcp skuid 0 ip6 daddr @istio-inpod-probes-v6 counter snat to ${SNAT6}
add element inet istio-ambient-nat istio-inpod-probes-v4 { 192.0.2.10 comment "1d5e4c0a-7b2f-4c3e-9a61-0d2b6f8e4a10" }
add element inet istio-ambient-nat istio-inpod-probes-v6 { 2001:db8::10 comment "1d5e4c0a-7b2f-4c3e-9a61-0d2b6f8e4a10" }
`;

interface Chain {
  base?: string;
  rules: string[];
}
type Tables = Map<string, Map<string, Chain>>;

const squash = (text: string) => text.trim().replace(/\s+/g, ' ');

/** Replays an Istio (knftables) transaction: the final chains of each table, in declaration order. */
function replayIstio(transaction: string): Tables {
  const tables: Tables = new Map();
  const chainOf = (table: string, chain: string) => {
    const c = tables.get(table)?.get(chain);
    if (!c) throw new Error(`rule for undeclared chain ${table} ${chain}`);
    return c;
  };
  for (const line of transaction.split('\n').filter((l) => l.trim() !== '')) {
    let m: RegExpExecArray | null;
    if ((m = /^add table inet (\S+)$/.exec(line))) {
      if (!tables.has(m[1]!)) tables.set(m[1]!, new Map());
    } else if (/^(flush table|add set|add element) /.test(line)) {
      // flush keeps nothing we track; sets are compared separately.
    } else if ((m = /^add chain inet (\S+) (\S+)(?: \{ (.*) \})?$/.exec(line))) {
      const base = m[3] ? squash(m[3].replace(/;/g, '')) : undefined;
      tables.get(m[1]!)!.set(m[2]!, { ...(base ? { base } : {}), rules: [] });
    } else if ((m = /^add rule inet (\S+) (\S+) (.*)$/.exec(line))) {
      chainOf(m[1]!, m[2]!).rules.push(squash(m[3]!));
    } else if ((m = /^insert rule inet (\S+) (\S+) index (\d+) (.*)$/.exec(line))) {
      chainOf(m[1]!, m[2]!).rules.splice(Number(m[3]), 0, squash(m[4]!));
    } else {
      throw new Error(`unexpected transaction line ${line}`);
    }
  }
  return tables;
}

/** Reads our artifact back into the same shape (rule comments dropped). */
function readArtifact(text: string): Tables {
  const tables: Tables = new Map();
  let table: Map<string, Chain> | undefined;
  let chain: Chain | undefined;
  for (const line of text.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^table inet (\S+) \{$/.exec(line))) tables.set(m[1]!, (table = new Map()));
    else if ((m = /^\tchain (\S+) \{$/.exec(line))) table!.set(m[1]!, (chain = { rules: [] }));
    else if (chain && (m = /^\t\t(type .*); policy accept;$/.exec(line))) chain.base = squash(m[1]!);
    else if (chain && /^\t\t\S/.test(line)) chain.rules.push(squash(line.replace(/ comment "[^"]*"$/, '')));
    else if (/^\t\}$/.test(line)) chain = undefined;
  }
  return tables;
}

function compileOne(yaml: string): string {
  const result = compile([{ path: 'pod.yaml', text: `apiVersion: nftops.dev/v1alpha1\n${yaml}` }], { generator: 'nftops test' });
  expect(result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  expect(result.artifacts).toHaveLength(1);
  return result.artifacts[0]!.text;
}

/** Our rules may carry a counter where Istio's have none (the ambient base-chain jumps): Istio's rule plus `counter`. */
function withOurCounter(rule: string): string {
  return /\bcounter\b/.test(rule) ? rule : `counter ${rule}`;
}

function expectParity(ours: Tables, istio: Tables): void {
  expect([...ours.keys()], 'tables, in order').toEqual([...istio.keys()]);
  for (const [name, chains] of istio) {
    const mine = ours.get(name)!;
    expect([...mine.keys()], `${name}: chains, in order`).toEqual([...chains.keys()]);
    for (const [chain, want] of chains) {
      expect(mine.get(chain)!.base, `${name} ${chain}: type, hook, priority`).toEqual(want.base);
      expect(mine.get(chain)!.rules, `${name} ${chain}: rules, in order`).toEqual(want.rules.map(withOurCounter));
    }
  }
}

const SIDECAR_DEFAULT = 'kind: MeshRedirection\nmetadata: { name: productpage }\nspec:\n  mode: sidecar\n';
const SIDECAR_CNI_DNS =
  'kind: MeshRedirection\nmetadata: { name: productpage }\nspec:\n  mode: sidecar\n  sidecar:\n    defaults: istio-cni\n    dns: { capture: true }\n';
const AMBIENT_DEFAULT = 'kind: MeshRedirection\nmetadata: { name: details }\nspec:\n  mode: ambient\n';
const HOST = `kind: AmbientNode
metadata: { name: worker }
spec:
  kubelet: { uid: 0 }
  pods:
    - uid: 1d5e4c0a-7b2f-4c3e-9a61-0d2b6f8e4a10
      addresses: [192.0.2.10, "2001:db8::10"]
`;

const CASES: [string, string, string][] = [
  ['b.6.2 production default sidecar (istio-init)', SIDECAR_DEFAULT, B62],
  ['b.6.4 CNI sidecar with DNS capture', SIDECAR_CNI_DNS, B64],
  ['c.4 ambient pod, global defaults', AMBIENT_DEFAULT, AMBIENT_POD],
  ['c.7 ambient host rules', HOST, AMBIENT_HOST],
];

describe('mesh: chain-by-chain parity with Istio', () => {
  it.each(CASES)('%s', (_name, yaml, transaction) => {
    expectParity(readArtifact(compileOne(yaml)), replayIstio(transaction));
  });

  it('b.6.2 with IPv6: the ::6 return, the ::1 twins and the ::1 return in their places', () => {
    const chains = readArtifact(compileOne(`${SIDECAR_DEFAULT}  sidecar: { ipv6: true }\n`)).get('istio-proxy-nat')!;
    const b62 = replayIstio(B62).get('istio-proxy-nat')!.get('istio-output')!.rules;
    const expected = b62.flatMap((rule) => {
      if (rule === 'oifname lo ip saddr 127.0.0.6/32 counter return') return [rule, 'oifname lo ip6 saddr ::6/128 counter return'];
      if (rule.includes('jump istio-in-redirect')) return [rule, rule.replace('ip daddr != 127.0.0.1/32', 'ip6 daddr != ::1/128')];
      if (rule === 'ip daddr 127.0.0.1/32 counter return') return [rule, 'ip6 daddr ::1/128 counter return'];
      return [rule];
    });
    expect(chains.get('istio-output')!.rules).toEqual(expected);
  });

  it('TPROXY with IPv6: istio-inbound starts [mark return, ::6 return, mark != 1338 return, 127.0.0.6 return] (insert order)', () => {
    const mangle = readArtifact(compileOne(`${SIDECAR_DEFAULT}  sidecar: { interceptionMode: TPROXY, ipv6: true }\n`)).get('istio-proxy-mangle')!;
    expect(mangle.get('istio-inbound')!.rules.slice(0, 4)).toEqual([
      'meta l4proto tcp mark 1337 counter return',
      'iifname lo meta l4proto tcp ip6 saddr ::6/128 counter return',
      'iifname lo meta l4proto tcp mark != 1338 counter return',
      'iifname lo meta l4proto tcp ip saddr 127.0.0.6/32 counter return',
    ]);
    expect([...mangle.keys()]).toEqual(['prerouting', 'output', 'istio-divert', 'istio-tproxy', 'istio-inbound']);
  });

  it('TPROXY with no inbound ports: the insert-index downgrade (issue #58135) turns every insert into an add', () => {
    const text = compileOne(`${SIDECAR_DEFAULT}  sidecar: { interceptionMode: TPROXY, inboundPorts: { include: [] } }\n`);
    const mangle = readArtifact(text).get('istio-proxy-mangle')!;
    expect([...mangle.keys()]).toEqual(['prerouting', 'output', 'istio-inbound']);
    expect(mangle.get('istio-inbound')!.rules).toEqual([
      'meta l4proto tcp mark 1337 counter return',
      'iifname lo meta l4proto tcp ip saddr 127.0.0.6/32 counter return',
      'iifname lo meta l4proto tcp mark != 1338 counter return',
    ]);
    // No TPROXY routing without inbound capture (b.7).
    expect(text).not.toContain('# routing:');
  });

  it('virtual interfaces eth1,eth2 end up reversed (repeated insert at index 0), above the excluded interfaces', () => {
    const nat = readArtifact(compileOne(`${SIDECAR_DEFAULT}  sidecar: { virtualInterfaces: [eth1, eth2], excludeInterfaces: [eth9] }\n`)).get('istio-proxy-nat')!;
    expect(nat.get('prerouting')!.rules).toEqual([
      'iifname "eth2" counter jump istio-redirect',
      'iifname "eth1" counter jump istio-redirect',
      'iifname "eth2" counter return',
      'iifname "eth1" counter return',
      'iifname "eth9" counter return',
      'meta l4proto tcp counter jump istio-inbound',
    ]);
  });

  it('DNS capture without servers or captureAll is silently off in Istio: no { 53, T }, no raw table, and we warn', () => {
    const result = compile([{ path: 'pod.yaml', text: `apiVersion: nftops.dev/v1alpha1\n${SIDECAR_DEFAULT}  sidecar: { dns: { capture: true } }\n` }]);
    expect(result.diagnostics.map((d) => d.code)).toEqual(['MESH_DNS_NO_SERVERS']);
    expect(result.artifacts[0]!.text).toBe(compile([{ path: 'pod.yaml', text: `apiVersion: nftops.dev/v1alpha1\n${SIDECAR_DEFAULT}` }]).artifacts[0]!.text);
  });

  it('the GID rule never excludes port 53, even with DNS capture', () => {
    const output = readArtifact(compileOne(SIDECAR_CNI_DNS)).get('istio-proxy-nat')!.get('istio-output')!.rules;
    expect(output.filter((r) => r.includes('skgid 1337 counter jump'))).toEqual([
      'oifname lo meta l4proto tcp ip daddr != 127.0.0.1/32 tcp dport != 15008 skgid 1337 counter jump istio-in-redirect',
    ]);
    expect(output.filter((r) => r.includes('skuid 1337 counter jump'))[0]).toContain('tcp dport != { 53, 15008 }');
  });

  it('ambient ingress mode (bypass inbound capture) keeps an empty istio-prerouting declared', () => {
    const nat = readArtifact(compileOne(`${AMBIENT_DEFAULT}  ambient: { pod: { bypassInboundCapture: true } }\n`)).get('istio-ambient-nat')!;
    expect([...nat.keys()]).toEqual(['prerouting', 'output', 'istio-prerouting', 'istio-output']);
    expect(nat.get('istio-prerouting')!.rules).toEqual([]);
  });

  it('every rule of every mesh artifact carries a counter', () => {
    for (const [, yaml] of CASES) {
      for (const chains of readArtifact(compileOne(yaml)).values()) {
        for (const chain of chains.values()) for (const rule of chain.rules) expect(rule).toMatch(/\bcounter\b/);
      }
    }
  });
});

/** `nft list table` text without counters' numbers, handles and our comments: what Istio's debugging guide reads. */
function normalizeListing(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^\tcomment "/.test(line))
    .map((line) =>
      line
        .replace(/ comment "(MeshRedirection|AmbientNode)\/[^"]*"/, '')
        .replace(/counter packets \d+ bytes \d+/, 'counter')
        .replace(/^(\t\t)counter (jump istio-(?:prerouting|output))$/, '$1$2'),
    )
    .join('\n')
    .trimEnd();
}

async function listTables(netns: string, names: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const name of names) {
    const result = await netnsExec(netns, 'nft', ['list', 'table', 'inet', name]);
    expect(result.exitCode, String(result.stderr)).toBe(0);
    parts.push(String(result.stdout));
  }
  return parts.join('');
}

describe.runIf(kernelAvailable())('mesh: parity in a real kernel (nft list table of Istio\'s transaction vs ours)', () => {
  const nft = createNftDriver();
  it.each(CASES)('%s', async (_name, yaml, transaction) => {
    const ours = compileOne(yaml);
    const names = [...readArtifact(ours).keys()];
    const [istioListing, ourListing] = await Promise.all([
      withNetns(async (netns) => {
        expect(await nft.apply(transaction, { netns })).toEqual({ ok: true });
        return listTables(netns, names);
      }),
      withNetns(async (netns) => {
        expect(await nft.apply(ours, { netns })).toEqual({ ok: true });
        return listTables(netns, names);
      }),
    ]);
    expect(normalizeListing(ourListing)).toBe(normalizeListing(istioListing));
  });

  it('b.6.2 lists exactly as the specification shows', async () => {
    await withNetns(async (netns) => {
      expect(await nft.apply(compileOne(SIDECAR_DEFAULT), { netns })).toEqual({ ok: true });
      expect(normalizeListing(await listTables(netns, ['istio-proxy-nat']))).toBe(normalizeListing(B62_LISTING));
    });
  });
});
