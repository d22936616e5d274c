import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { createNftDriver } from '@nftops/nft-driver';
import { kernelAvailable, withLbTopology, type ConnectResult, type LbTopology } from '@nftops/testkit';
import { importLbaas } from '../src/import/lbaas.js';

/**
 * Behaviour equivalence of `nftops import lbaas`: the rules ch-k8s-lbaas itself renders for a model and
 * the rules nftops compiles from the converted YAML carry the same traffic the same way.
 *
 * ch-k8s-lbaas's side is rendered by the faithful reference renderer below (lbaas.md §2.3-2.9: its Go
 * template, byte for byte, with tcp before udp where Go's map order is random) and loaded, after the host
 * base chains it declares into, into one LB topology; nftops's artifact into another (fresh namespaces
 * each). The same flows (sources, destination, ports, protocols) go through both, one at a time per
 * forward, so every flow's round-robin slot is known.
 *
 * Order semantics (the documented choice): both schedulers are "numgen inc" over the destinations from
 * slot 0, but ch-k8s-lbaas numbers the destinations in STRING order (198.51.100.10 < 198.51.100.9) and
 * nftops in NUMERIC order; the compiler always sorts backends by address, so the converter cannot keep
 * ch-k8s-lbaas's order. The test accounts for it explicitly: each side's accepted flows must land on the
 * backend its own order predicts, and flow k of ch-k8s-lbaas is compared with the nftops flow of the same
 * round that went to the same backend (the permutation string order -> numeric order). Then every flow's
 * outcome (backend and port reached, the source the backend saw, or the failure) must be identical.
 */

const FIXTURES = new URL('./fixtures/import/lbaas/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, FIXTURES), 'utf8');

// ---------------------------------------------------------------------------------------------------------------
// The reference: ch-k8s-lbaas's nftables_generator.go + template, as lbaas.md §2.3-2.9 specifies it.

interface AgentNftables {
  filterTableName: string;
  filterTableType: string;
  filterForwardChain: string;
  natTableName: string;
  natPreroutingChain: string;
  natPostroutingChain: string;
  policyPrefix: string;
  enableSnat: boolean;
  fwmarkBits: number;
  fwmarkMask: number;
}

/** FillNftablesConfig's defaults, then the TOML's [nftables] values. */
function agentNftables(toml: string | undefined): AgentNftables {
  const n = ((toml ? parseToml(toml) : {}) as { nftables?: Record<string, unknown> }).nftables ?? {};
  const pick = <T>(key: string, fallback: T): T => (n[key] === undefined ? fallback : (n[key] as T));
  return {
    filterTableName: pick('filter-table-name', 'filter'),
    filterTableType: pick('filter-table-type', 'inet'),
    filterForwardChain: pick('filter-forward-chain', 'forward'),
    natTableName: pick('nat-table-name', 'nat'),
    natPreroutingChain: pick('nat-prerouting-chain', 'prerouting'),
    natPostroutingChain: pick('nat-postrouting-chain', 'postrouting'),
    policyPrefix: pick('policy-prefix', ''),
    enableSnat: pick('enable-snat', true),
    fwmarkBits: pick('fwmark-bits', 1),
    fwmarkMask: pick('fwmark-mask', 1),
  };
}

interface RawModel {
  ingress?: { address: string; ports?: { protocol: 'TCP' | 'UDP'; 'inbound-port': number; 'destination-addresses': string[]; 'destination-port': number }[] }[];
  'network-policies'?: {
    name: string;
    'allowed-ingresses'?: {
      'ipblock-filters'?: { allow: string; block?: string[] }[];
      'port-filters'?: { protocol: 'TCP' | 'UDP'; port?: number; 'end-port'?: number }[];
    }[];
  }[];
  'policy-assignments'?: { address: string; 'network-policies'?: string[] }[];
}

const goStringLess = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The nftables file ch-k8s-lbaas writes for MODEL (not partial-reload mode). */
function renderChK8sLbaas(raw: unknown, c: AgentNftables): string {
  const model = ((raw as Record<string, unknown>)['load-balancer-config'] ?? raw) as RawModel;
  const hex = (n: number) => `0x${n.toString(16)}`;
  const mark = `${hex(c.fwmarkBits)} and ${hex(c.fwmarkMask)}`;
  const p = c.policyPrefix;
  const filter = c.filterTableName !== '';
  let out = filter ? '\n\n' : '\n\n\n';
  if (filter) {
    const assignments = model['policy-assignments'] ?? [];
    const podChain = (address: string) => `${p}POD-${address.replaceAll(':', '-')}`;
    // isIPv4Address / isIPv6Address: a string heuristic, not a parser (§2.7).
    const daddr = (a: string) => (!a.includes(':') && a.split('.').length === 4 ? 'ip daddr ' : a.split(':').length >= 3 ? 'ip6 daddr ' : '');
    out += `table ${c.filterTableType} ${c.filterTableName} {\n`;
    out += `\tchain ${c.filterForwardChain} {\n`;
    for (const a of assignments) out += `\t\tct mark ${mark} ${daddr(a.address)}${a.address} goto ${podChain(a.address)};\n`;
    out += `\t\tct mark ${mark} accept;\n\t}\n`;
    out += `\n\t# Using uppercase POD to prevent collisions with policy names like 'pod-x.x.x.x'\n`;
    for (const a of assignments) {
      out += `\tchain ${podChain(a.address)} {\n`;
      for (const name of a['network-policies'] ?? []) out += `\t\tjump ${p}${name};\n`;
      out += `\t\tdrop;\n\t}\n`;
    }
    out += `\n\t# Using uppercase RULE and CIDR to prevent collisions with policy names like 'x-rule-y-cidr-z'\n`;
    const policies = new Map<string, NonNullable<RawModel['network-policies']>[number]>();
    for (const policy of model['network-policies'] ?? []) policies.set(policy.name, policy); // last one wins
    for (const name of [...policies.keys()].sort(goStringLess)) {
      const ingresses = policies.get(name)!['allowed-ingresses'] ?? [];
      out += `\tchain ${p}${name} {\n`;
      ingresses.forEach((_, i) => (out += `\t\tjump ${p}${name}-RULE${i};\n`));
      out += `\t}\n`;
      ingresses.forEach((ingress, i) => {
        // makeSAddrMatches: one per ipblock with its except list; none gives one empty match.
        const blocks = ingress['ipblock-filters'] ?? [];
        const saddrs = blocks.length === 0 ? [{ match: '', except: [] as string[] }] : blocks.map((b) => ({ match: `ip saddr ${b.allow}`, except: b.block ?? [] }));
        // makePortMatches: per protocol (tcp before udp), input order, a missing port means {0-65535}.
        const filters = ingress['port-filters'] ?? [];
        const portMatches: string[] = [];
        for (const proto of ['TCP', 'UDP'] as const) {
          const mine = filters.filter((f) => f.protocol === proto);
          if (mine.length === 0) continue;
          const items = mine.some((f) => f.port === undefined) ? ['0-65535'] : mine.map((f) => (f['end-port'] !== undefined ? `${f.port}-${f['end-port']}` : `${f.port}`));
          portMatches.push(`${proto.toLowerCase()} dport {${items.join(',')}}`);
        }
        const ports = portMatches.length === 0 ? [''] : portMatches;
        // makeIngressRuleChain: saddr outer, ports inner; CIDR<j> is the index in that product.
        const entries = saddrs.flatMap((s) => ports.map((port) => ({ ...s, port })));
        out += `\tchain ${p}${name}-RULE${i} {\n`;
        entries.forEach((e, j) => {
          out += `\t\t${e.match} ${e.port}${e.except.length > 0 ? ` jump ${p}${name}-RULE${i}-CIDR${j}` : ' accept'};\n`;
        });
        out += `\t}\n`;
        entries.forEach((e, j) => {
          if (e.except.length === 0) return;
          out += `\tchain ${p}${name}-RULE${i}-CIDR${j} {\n`;
          for (const block of e.except) out += `\t\tip saddr ${block} return;\n`;
          out += `\t\taccept;\n\t}\n`;
        });
      });
    }
    out += `}\n\n`;
  }
  // Forwards without destinations are skipped; the rest sorted (stably) by address string, then port.
  const forwards = (model.ingress ?? [])
    .flatMap((ingress) => (ingress.ports ?? []).map((port) => ({ address: ingress.address, ...port })))
    .filter((f) => f['destination-addresses'].length > 0)
    .map((f, index) => ({ f, index }))
    .sort((a, b) => goStringLess(a.f.address, b.f.address) || a.f['inbound-port'] - b.f['inbound-port'] || a.index - b.index)
    .map(({ f }) => f);
  out += `table ip ${c.natTableName} {\n\tchain ${c.natPreroutingChain} {\n`;
  for (const f of forwards) {
    const destinations = [...f['destination-addresses']].sort(goStringLess);
    const map = destinations.map((d, i) => `${i} : ${d}, `).join('');
    out += `\t\tip daddr ${f.address} ${f.protocol.toLowerCase()} dport ${f['inbound-port']} mark set ${mark} ct mark set meta mark dnat to numgen inc mod ${destinations.length} map {${map}} : ${f['destination-port']};\n`;
  }
  out += `\t}\n`;
  if (c.enableSnat) out += `\tchain ${c.natPostroutingChain} {\n\t\tmark ${mark} masquerade;\n\t}\n`;
  out += `}\n`;
  return out;
}

/** The host's base chains ch-k8s-lbaas declares into (the Debian /etc/nftables.conf of its docs). */
function hostBaseChains(c: AgentNftables): string {
  return `table ip ${c.natTableName} {
	chain ${c.natPreroutingChain} { type nat hook prerouting priority dstnat; }
	chain ${c.natPostroutingChain} { type nat hook postrouting priority srcnat; }
}
table ${c.filterTableType} ${c.filterTableName} {
	chain ${c.filterForwardChain} { type filter hook forward priority 0; policy accept; }
}
`;
}

describe('the reference renderer of ch-k8s-lbaas', () => {
  it('prints the template byte for byte (§2.9: blank lines, comments, visible spaces of empty matches, map syntax)', () => {
    const model = {
      'load-balancer-config': {
        ingress: [
          {
            address: '172.23.42.2',
            ports: [{ protocol: 'TCP', 'inbound-port': 80, 'destination-addresses': ['10.0.0.9', '10.0.0.10'], 'destination-port': 30080 }],
          },
          {
            address: '172.23.42.10',
            ports: [
              { protocol: 'UDP', 'inbound-port': 53, 'destination-addresses': ['10.0.0.9'], 'destination-port': 30053 },
              { protocol: 'TCP', 'inbound-port': 443, 'destination-addresses': [], 'destination-port': 30443 },
            ],
          },
        ],
        'network-policies': [
          { name: 'zz-block-everything', 'allowed-ingresses': [] },
          {
            name: 'allow',
            'allowed-ingresses': [
              { 'port-filters': [{ protocol: 'TCP', port: 80 }, { protocol: 'TCP', port: 8080, 'end-port': 8090 }] },
              { 'ipblock-filters': [{ allow: '0.0.0.0/0', block: ['10.0.0.0/8'] }] },
              {},
            ],
          },
        ],
        'policy-assignments': [{ address: 'fd00::1', 'network-policies': ['allow', 'zz-block-everything'] }],
      },
    };
    expect(renderChK8sLbaas(model, agentNftables(undefined))).toBe(
      [
        '',
        '',
        'table inet filter {',
        '\tchain forward {',
        '\t\tct mark 0x1 and 0x1 ip6 daddr fd00::1 goto POD-fd00--1;',
        '\t\tct mark 0x1 and 0x1 accept;',
        '\t}',
        '',
        "\t# Using uppercase POD to prevent collisions with policy names like 'pod-x.x.x.x'",
        '\tchain POD-fd00--1 {',
        '\t\tjump allow;',
        '\t\tjump zz-block-everything;',
        '\t\tdrop;',
        '\t}',
        '',
        "\t# Using uppercase RULE and CIDR to prevent collisions with policy names like 'x-rule-y-cidr-z'",
        '\tchain allow {',
        '\t\tjump allow-RULE0;',
        '\t\tjump allow-RULE1;',
        '\t\tjump allow-RULE2;',
        '\t}',
        '\tchain allow-RULE0 {',
        '\t\t tcp dport {80,8080-8090} accept;',
        '\t}',
        '\tchain allow-RULE1 {',
        '\t\tip saddr 0.0.0.0/0  jump allow-RULE1-CIDR0;',
        '\t}',
        '\tchain allow-RULE1-CIDR0 {',
        '\t\tip saddr 10.0.0.0/8 return;',
        '\t\taccept;',
        '\t}',
        '\tchain allow-RULE2 {',
        '\t\t  accept;',
        '\t}',
        '\tchain zz-block-everything {',
        '\t}',
        '}',
        '',
        'table ip nat {',
        '\tchain prerouting {',
        '\t\tip daddr 172.23.42.10 udp dport 53 mark set 0x1 and 0x1 ct mark set meta mark dnat to numgen inc mod 1 map {0 : 10.0.0.9, } : 30053;',
        '\t\tip daddr 172.23.42.2 tcp dport 80 mark set 0x1 and 0x1 ct mark set meta mark dnat to numgen inc mod 2 map {0 : 10.0.0.10, 1 : 10.0.0.9, } : 30080;',
        '\t}',
        '\tchain postrouting {',
        '\t\tmark 0x1 and 0x1 masquerade;',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The traffic comparison.

const VIP = '192.0.2.10';
/** Client sources: inside both policies' blocks, re-admitted by block-range's second ipblock, in block-range's except, in allow-http's except. */
const SOURCES = ['203.0.113.5', '203.0.113.20', '203.0.113.70', '203.0.113.200'];
const BACKENDS = ['198.51.100.9', '198.51.100.10', '198.51.100.11', '198.51.100.12'];
/** Below TCP's 1 s initial retransmission: a dropped SYN is never retried as a new flow (numgen would move on). */
const TIMEOUT = 800;

interface FlowBatch {
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  /** The destination list of the forward (empty: no slots, one flow per source). */
  readonly destinations: readonly string[];
}

/** IPv4 addresses in numeric (byte) order, as the compiler numbers backends. */
const numeric = (list: readonly string[]) => {
  const key = (a: string) => a.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
  return [...new Set(list)].sort((a, b) => key(a) - key(b));
};
const stringOrder = (list: readonly string[]) => [...list].sort(goStringLess);

/** One flow's observable outcome. */
function outcome(r: ConnectResult): string {
  return r.ok ? `ok ${r.backend} saw ${r.sawSource}` : `failed ${r.error}`;
}

/** Runs every forward's flows, each forward's strictly one at a time (its slot sequence), forwards in parallel. */
async function runFlows(t: LbTopology, batches: readonly FlowBatch[]): Promise<ConnectResult[][][]> {
  return Promise.all(
    batches.map(async (batch) => {
      const perSource: ConnectResult[][] = [];
      for (const source of SOURCES) {
        const count = Math.max(1, batch.destinations.length);
        perSource.push(await t.connectMany({ vip: VIP, port: batch.port, protocol: batch.protocol, source, count, concurrency: 1, timeoutMs: TIMEOUT }));
      }
      return perSource;
    }),
  );
}

describe.runIf(kernelAvailable())('import lbaas: the converted YAML behaves as ch-k8s-lbaas', () => {
  it('same accept/drop/refuse outcome for every flow and the same round-robin sequence (modulo string vs numeric slot order)', async () => {
    const modelText = read('request.yaml');
    const configText = read('agent.toml');
    const converted = importLbaas({
      model: { path: 'request.yaml', text: modelText },
      config: { path: 'agent.toml', text: configText },
      schemaBase: '../../schemas/v1alpha1/',
    });
    expect(converted.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(converted.ok).toBe(true);
    const ours = converted.artifact!.text;
    const agent = agentNftables(configText);
    const raw = parseYaml(modelText) as unknown;
    const theirs = renderChK8sLbaas(raw, agent);

    const model = (raw as { 'load-balancer-config': RawModel })['load-balancer-config'];
    const batches: FlowBatch[] = model.ingress![0]!.ports!.map((p) => ({
      protocol: p.protocol.toLowerCase() as 'tcp' | 'udp',
      port: p['inbound-port'],
      destinations: p['destination-addresses'],
    }));
    const options = {
      vips: [VIP],
      clientAddresses: SOURCES,
      backendAddresses: BACKENDS,
      serverPorts: [8080, 5353, 8005, 8443],
    };
    const nft = createNftDriver();
    const run = (prefix: string, rulesets: string[]) =>
      withLbTopology({ ...options, prefix }, async (t) => {
        for (const ruleset of rulesets) {
          const loaded = await nft.apply(ruleset, { netns: t.lbNetns });
          expect(loaded, `nft -f in ${prefix}:\n${ruleset}`).toEqual({ ok: true });
        }
        try {
          return await runFlows(t, batches);
        } catch (error) {
          if (error instanceof Error) error.message += `\n\nLB ruleset:\n${await t.listRuleset()}`;
          throw error;
        }
      });
    const [chResults, ourResults] = await Promise.all([run('nftops-imp-ch', [hostBaseChains(agent), theirs]), run('nftops-imp-ours', [ours])]);

    const targetPort = new Map(model.ingress![0]!.ports!.map((p) => [p['inbound-port'], p['destination-port']]));
    let accepted = 0;
    let dropped = 0;
    batches.forEach((batch, b) => {
      const chOrder = stringOrder(batch.destinations);
      const ourOrder = numeric(batch.destinations);
      SOURCES.forEach((source, s) => {
        const ch = chResults[b]![s]!;
        const us = ourResults[b]![s]!;
        const what = `${batch.protocol}/${batch.port} from ${source}`;
        if (batch.destinations.length === 0) {
          // ch-k8s-lbaas skips the forward: the VIP is local, nothing listens: refused. nftops rejects: refused.
          expect(ch.map(outcome), `${what} (ch-k8s-lbaas)`).toEqual(['failed refused']);
          expect(us.map(outcome), what).toEqual(ch.map(outcome));
          return;
        }
        // Each side's accepted flows land where its own slot order says.
        ch.forEach((r, k) => {
          if (r.ok) expect(r.backend, `${what} flow ${k} (ch-k8s-lbaas, string order)`).toBe(`${chOrder[k % chOrder.length]}:${targetPort.get(batch.port)}`);
        });
        us.forEach((r, k) => {
          if (r.ok) expect(r.backend, `${what} flow ${k} (nftops, numeric order)`).toBe(`${ourOrder[k % ourOrder.length]}:${targetPort.get(batch.port)}`);
        });
        // Flow k of ch-k8s-lbaas against the nftops flow of the same round that went to the same backend.
        const aligned = ch.map((_, k) => us[Math.floor(k / chOrder.length) * chOrder.length + ourOrder.indexOf(chOrder[k % chOrder.length]!)]!);
        expect(aligned.map(outcome), `${what}: per-flow outcomes, aligned by backend`).toEqual(ch.map(outcome));
        for (const r of ch) r.ok ? accepted++ : dropped++;
      });
    });
    // The scenario exercises both outcomes plentifully (so the equality above is not vacuous).
    expect(accepted).toBeGreaterThanOrEqual(20);
    expect(dropped).toBeGreaterThanOrEqual(15);
  });
});
