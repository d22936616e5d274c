import type { RoutingItem } from '@nftops/artifact';
import type { IrTable } from '../ir.js';
import { MeshEmitter, type MeshRule, type TableSpec } from './emit.js';
import type { SidecarConfig, SidecarMesh } from './model.js';

/**
 * Sidecar mode: Istio's `tools/istio-nftables/pkg/capture/run.go`, step by step (spec b.4). Rule text follows
 * Istio's tokens (`skuid` in nat/mangle, `meta skuid` in raw, `mark` vs `meta mark set`, ...); user-given
 * interface and group names are quoted, which nft lists the same way.
 */
export const SIDECAR_TABLES = { nat: 'istio-proxy-nat', mangle: 'istio-proxy-mangle', raw: 'istio-proxy-raw' } as const;

const NAT = SIDECAR_TABLES.nat;
const MANGLE = SIDECAR_TABLES.mangle;
const RAW = SIDECAR_TABLES.raw;
const DNS_PORT = 15053;
const OUTBOUND_MARK = 1338;

function tableSpecs(ref: string): TableSpec[] {
  return [
    {
      name: NAT,
      comment: `nftops: Istio sidecar redirection, nat (${ref})`,
      chains: [
        { name: 'prerouting', base: { type: 'nat', hook: 'prerouting', priority: -100 } },
        { name: 'output', base: { type: 'nat', hook: 'output', priority: -100 } },
        { name: 'istio-inbound' },
        { name: 'istio-redirect' },
        { name: 'istio-in-redirect' },
        { name: 'istio-output' },
        { name: 'istio-output-dns' },
      ],
    },
    {
      name: MANGLE,
      comment: `nftops: Istio sidecar redirection, mangle (${ref})`,
      chains: [
        { name: 'prerouting', base: { type: 'filter', hook: 'prerouting', priority: -150 } },
        { name: 'output', base: { type: 'route', hook: 'output', priority: -150 } },
        { name: 'istio-divert' },
        { name: 'istio-tproxy' },
        { name: 'istio-inbound' },
        { name: 'istio-drop' },
      ],
    },
    {
      name: RAW,
      comment: `nftops: Istio sidecar redirection, raw (${ref})`,
      chains: [
        { name: 'prerouting', base: { type: 'filter', hook: 'prerouting', priority: -300 } },
        { name: 'output', base: { type: 'filter', hook: 'output', priority: -300 } },
        { name: 'istio-inbound' },
        { name: 'istio-output-dns' },
      ],
    },
  ];
}

const rule = (match: string, action: string, detail: string, statements?: string[]): MeshRule => ({
  match,
  action,
  detail,
  ...(statements ? { statements } : {}),
});

/** Emits every sidecar rule in Istio's order into E. */
export function emitSidecar(e: MeshEmitter, c: SidecarConfig): void {
  const LB = c.loopbackCidr;
  const T = c.inboundTunnelPort;
  const M = c.tproxyMark;
  const v6 = c.ipv6;
  const includesLoopback = c.outboundCidrInclude !== '*' && c.outboundCidrInclude.some((cidr) => cidr.loopback);

  // S1. Excluded interfaces.
  for (const i of c.excludeInterfaces) {
    e.add(NAT, 'prerouting', rule(`iifname ${i}`, 'return', 'excluded interface'));
    e.add(NAT, 'output', rule(`oifname ${i}`, 'return', 'excluded interface'));
  }
  if (c.tproxy) {
    for (const i of c.excludeInterfaces) {
      e.add(MANGLE, 'prerouting', rule(`iifname ${i}`, 'return', 'excluded interface'));
      e.add(MANGLE, 'output', rule(`oifname ${i}`, 'return', 'excluded interface'));
    }
  }

  // S2. Virtual interfaces short-circuit.
  for (const v of c.virtualInterfaces) e.insert(NAT, 'prerouting', 0, rule(`iifname ${v}`, 'return', 'virtual interface'));

  // S3. Drop invalid.
  if (c.dropInvalid) {
    e.add(MANGLE, 'prerouting', rule('meta l4proto tcp ct state invalid', 'jump istio-drop', 'invalid'));
    e.add(MANGLE, 'istio-drop', rule('', 'drop', 'invalid'));
  }

  // S4-S6.
  e.add(NAT, 'istio-inbound', rule(`meta l4proto tcp tcp dport ${T}`, 'return', 'tunnel port'));
  e.add(NAT, 'istio-redirect', rule('meta l4proto tcp', `redirect to :${c.proxyPort}`, 'to proxy'));
  e.add(NAT, 'istio-in-redirect', rule('meta l4proto tcp', `redirect to :${c.inboundCapturePort}`, 'to inbound capture'));

  // S7. Inbound capture.
  const include = c.inboundInclude;
  if (include === '*' || include.length > 0) {
    if (!c.tproxy) {
      e.add(NAT, 'prerouting', rule('meta l4proto tcp', 'jump istio-inbound', 'inbound'));
      if (include === '*') {
        for (const p of c.inboundExclude) e.add(NAT, 'istio-inbound', rule(`meta l4proto tcp tcp dport ${p}`, 'return', 'inbound exclude'));
        e.add(NAT, 'istio-inbound', rule('meta l4proto tcp', 'jump istio-in-redirect', 'inbound all'));
      } else {
        for (const p of include) e.add(NAT, 'istio-inbound', rule(`meta l4proto tcp tcp dport ${p}`, 'jump istio-in-redirect', 'inbound include'));
      }
    } else {
      e.add(MANGLE, 'istio-divert', rule('', `meta mark set ${M}`, 'divert'));
      e.add(MANGLE, 'istio-divert', rule('', 'accept', 'divert'));
      e.add(MANGLE, 'istio-tproxy', rule(`meta l4proto tcp ip daddr != ${LB}`, 'accept', 'tproxy', [`tproxy ip to :${c.inboundCapturePort}`, `meta mark set ${M}`]));
      if (v6) {
        e.add(MANGLE, 'istio-tproxy', rule('meta l4proto tcp ip6 daddr != ::1/128', 'accept', 'tproxy', [`tproxy ip6 to :${c.inboundCapturePort}`, `meta mark set ${M}`]));
      }
      e.add(MANGLE, 'prerouting', rule('meta l4proto tcp', 'jump istio-inbound', 'inbound'));
      if (include === '*') {
        for (const p of c.inboundExclude) e.add(MANGLE, 'istio-inbound', rule(`meta l4proto tcp tcp dport ${p}`, 'return', 'inbound exclude'));
        e.add(MANGLE, 'istio-inbound', rule('meta l4proto tcp ct state related,established', 'jump istio-divert', 'inbound all'));
        e.add(MANGLE, 'istio-inbound', rule('meta l4proto tcp', 'jump istio-tproxy', 'inbound all'));
      } else {
        for (const p of include) {
          e.add(MANGLE, 'istio-inbound', rule(`meta l4proto tcp ct state related,established tcp dport ${p}`, 'jump istio-divert', 'inbound include'));
          e.add(MANGLE, 'istio-inbound', rule(`meta l4proto tcp tcp dport ${p}`, 'jump istio-tproxy', 'inbound include'));
        }
      }
    }
  }

  // S8-S10.
  e.add(NAT, 'output', rule('', 'jump istio-output', 'outbound'));
  for (const p of c.outboundPortsExclude) {
    e.add(NAT, 'istio-output', rule(`tcp dport ${p}`, 'return', 'outbound port exclude'));
    e.add(NAT, 'istio-output', rule(`udp dport ${p}`, 'return', 'outbound port exclude'));
  }
  e.add(NAT, 'istio-output', rule('oifname lo ip saddr 127.0.0.6/32', 'return', 'from proxy inbound'));
  if (v6) e.add(NAT, 'istio-output', rule('oifname lo ip6 saddr ::6/128', 'return', 'from proxy inbound'));

  // S11/S12. Per proxy UID, then per proxy GID.
  const owner = (key: 'skuid' | 'skgid', id: string, dnsPorts: boolean) => {
    const ports = dnsPorts ? `{ 53, ${T} }` : `${T}`;
    const what = key === 'skuid' ? 'proxy uid' : 'proxy gid';
    e.add(NAT, 'istio-output', rule(`oifname lo meta l4proto tcp ip daddr != ${LB} tcp dport != ${ports} ${key} ${id}`, 'jump istio-in-redirect', `${what} to self`));
    if (v6) e.add(NAT, 'istio-output', rule(`oifname lo meta l4proto tcp ip6 daddr != ::1/128 tcp dport != ${ports} ${key} ${id}`, 'jump istio-in-redirect', `${what} to self`));
    if (!includesLoopback) {
      e.add(
        NAT,
        'istio-output',
        c.dns
          ? rule(`oifname lo meta l4proto tcp tcp dport != 53 ${key} != ${id}`, 'return', `app over lo`)
          : rule(`oifname lo ${key} != ${id}`, 'return', 'app over lo'),
      );
    }
    e.add(NAT, 'istio-output', rule(`${key} ${id}`, 'return', what));
  };
  for (const u of c.proxyUids) owner('skuid', u, c.dns);
  // Istio never puts port 53 into the GID rule, even with DNS capture (b.8).
  for (const g of c.proxyGids) owner('skgid', g, false);

  // S13. Owner groups.
  if (c.ownerGroupsInclude === '*') {
    for (const g of c.ownerGroupsExclude) e.add(NAT, 'istio-output', rule(`skgid ${g}`, 'return', 'owner group exclude'));
  } else {
    e.add(NAT, 'istio-output', rule(c.ownerGroupsInclude.map((g) => `skgid != ${g}`).join(' '), 'return', 'owner group include'));
  }

  // S14. DNS.
  if (c.dns) {
    e.add(RAW, 'output', rule('', 'jump istio-output-dns', 'dns'));
    e.add(NAT, 'istio-output', rule('', 'jump istio-output-dns', 'dns'));
    const redirect = `redirect to :${DNS_PORT}`;
    if (c.captureAllDns) {
      e.add(NAT, 'istio-output-dns', rule('meta l4proto tcp tcp dport 53', redirect, 'dns tcp'));
    } else {
      for (const s of c.dnsServers4) e.add(NAT, 'istio-output-dns', rule(`ip daddr ${s}/32 tcp dport 53`, redirect, 'dns tcp'));
      if (v6) for (const s of c.dnsServers6) e.add(NAT, 'istio-output-dns', rule(`ip6 daddr ${s}/128 tcp dport 53`, redirect, 'dns tcp'));
    }
    if (c.captureAllDns) {
      e.add(NAT, 'istio-output-dns', rule('udp dport 53', redirect, 'dns udp'));
    } else {
      for (const s of c.dnsServers4) e.add(NAT, 'istio-output-dns', rule(`ip daddr ${s}/32 udp dport 53`, redirect, 'dns udp'));
      if (v6) for (const s of c.dnsServers6) e.add(NAT, 'istio-output-dns', rule(`ip6 daddr ${s}/128 udp dport 53`, redirect, 'dns udp'));
    }
    for (const u of c.proxyUids) {
      e.add(RAW, 'istio-output-dns', rule(`udp dport 53 meta skuid ${u}`, 'ct zone set 1', 'dns proxy upstream'));
      e.add(RAW, 'istio-output-dns', rule(`udp sport ${DNS_PORT} meta skuid ${u}`, 'ct zone set 2', 'dns proxy reply'));
    }
    for (const g of c.proxyGids) {
      e.add(RAW, 'istio-output-dns', rule(`udp dport 53 meta skgid ${g}`, 'ct zone set 1', 'dns proxy upstream'));
      e.add(RAW, 'istio-output-dns', rule(`udp sport ${DNS_PORT} meta skgid ${g}`, 'ct zone set 2', 'dns proxy reply'));
    }
    if (c.captureAllDns) {
      e.add(RAW, 'prerouting', rule('', 'jump istio-inbound', 'dns'));
      e.add(RAW, 'istio-output-dns', rule('udp dport 53', 'ct zone set 2', 'dns app query'));
      e.add(RAW, 'istio-inbound', rule('udp sport 53', 'ct zone set 1', 'dns upstream reply'));
    } else {
      if (c.dnsServers4.length + c.dnsServers6.length > 0) e.add(RAW, 'prerouting', rule('', 'jump istio-inbound', 'dns'));
      for (const s of c.dnsServers4) {
        e.add(RAW, 'istio-output-dns', rule(`udp dport 53 ip daddr ${s}/32`, 'ct zone set 2', 'dns app query'));
        e.add(RAW, 'istio-inbound', rule(`udp sport 53 ip saddr ${s}/32`, 'ct zone set 1', 'dns upstream reply'));
      }
      if (v6) {
        for (const s of c.dnsServers6) {
          e.add(RAW, 'istio-output-dns', rule(`udp dport 53 ip6 daddr ${s}/128`, 'ct zone set 2', 'dns app query'));
          e.add(RAW, 'istio-inbound', rule(`udp sport 53 ip6 saddr ${s}/128`, 'ct zone set 1', 'dns upstream reply'));
        }
      }
    }
  }

  // S15. Localhost.
  e.add(NAT, 'istio-output', rule(`ip daddr ${LB}`, 'return', 'localhost'));
  if (v6) e.add(NAT, 'istio-output', rule('ip6 daddr ::1/128', 'return', 'localhost'));

  // S16. Outbound CIDR excludes, IPv4 first.
  for (const cidr of c.outboundCidrExclude.filter((x) => x.family === 4)) {
    e.add(NAT, 'istio-output', rule(`ip daddr ${cidr.text}`, 'return', 'outbound cidr exclude'));
  }
  if (v6) {
    for (const cidr of c.outboundCidrExclude.filter((x) => x.family === 6)) {
      e.add(NAT, 'istio-output', rule(`ip6 daddr ${cidr.text}`, 'return', 'outbound cidr exclude'));
    }
  }

  // S17. Outbound port includes.
  for (const p of c.outboundPortsInclude) e.add(NAT, 'istio-output', rule(`tcp dport ${p}`, 'jump istio-redirect', 'outbound port include'));

  // S18. Outbound CIDR includes.
  if (c.outboundCidrInclude === '*') {
    e.add(NAT, 'istio-output', rule('', 'jump istio-redirect', 'outbound all'));
    for (const v of c.virtualInterfaces) e.insert(NAT, 'prerouting', 0, rule(`iifname ${v}`, 'jump istio-redirect', 'virtual interface'));
  } else {
    const families: [4 | 6, string][] = v6 ? [[4, 'ip'], [6, 'ip6']] : [[4, 'ip']];
    for (const [family, keyword] of families) {
      for (const cidr of c.outboundCidrInclude.filter((x) => x.family === family)) {
        for (const v of c.virtualInterfaces) {
          e.insert(NAT, 'prerouting', 0, rule(`iifname ${v} ${keyword} daddr ${cidr.text}`, 'jump istio-redirect', 'virtual interface'));
        }
        e.add(NAT, 'istio-output', rule(`${keyword} daddr ${cidr.text}`, 'jump istio-redirect', 'outbound cidr include'));
      }
    }
  }

  // S19. TPROXY extras.
  if (c.tproxy) {
    e.add(MANGLE, 'prerouting', rule(`meta l4proto tcp mark ${M}`, 'ct mark set mark', 'tproxy connmark'));
    e.add(MANGLE, 'output', rule(`oifname lo meta l4proto tcp mark ${M}`, 'return', 'tproxy'));
    const marks = (key: 'skuid' | 'skgid', id: string) => {
      e.add(MANGLE, 'output', rule(`oifname lo meta l4proto tcp ip daddr != ${LB} ${key} ${id}`, `meta mark set ${OUTBOUND_MARK}`, 'proxy to self'));
      if (v6) e.add(MANGLE, 'output', rule(`oifname lo meta l4proto tcp ip6 daddr != ::1/128 ${key} ${id}`, `meta mark set ${OUTBOUND_MARK}`, 'proxy to self'));
    };
    for (const u of c.proxyUids) marks('skuid', u);
    for (const g of c.proxyGids) marks('skgid', g);
    e.add(MANGLE, 'output', rule(`meta l4proto tcp ct mark ${M}`, 'meta mark set ct mark', 'tproxy restore mark'));
    e.insert(MANGLE, 'istio-inbound', 0, rule(`meta l4proto tcp mark ${M}`, 'return', 'tproxy marked'));
    e.insert(MANGLE, 'istio-inbound', 1, rule('iifname lo meta l4proto tcp ip saddr 127.0.0.6/32', 'return', 'from proxy inbound'));
    if (v6) e.insert(MANGLE, 'istio-inbound', 1, rule('iifname lo meta l4proto tcp ip6 saddr ::6/128', 'return', 'from proxy inbound'));
    e.insert(MANGLE, 'istio-inbound', 2, rule(`iifname lo meta l4proto tcp mark != ${OUTBOUND_MARK}`, 'return', 'over lo not from proxy'));
  }
}

/** The sidecar's routing (b.7): `::6/128` on lo for IPv6, and the TPROXY policy routing. */
export function sidecarRouting(c: SidecarConfig): RoutingItem[] {
  const items: RoutingItem[] = [];
  if (c.ipv6) items.push({ kind: 'address', family: 6, address: '::6/128', dev: 'lo' });
  const inbound = c.inboundInclude === '*' || c.inboundInclude.length > 0;
  if (c.tproxy && inbound) {
    const families: (4 | 6)[] = c.ipv6 ? [4, 6] : [4];
    for (const family of families) {
      items.push({ kind: 'rule', family, fwmark: c.tproxyMark, mask: 0xffffffff, table: c.tproxyRouteTable, priority: c.tproxyRulePriority });
    }
    for (const family of families) {
      items.push({ kind: 'route', family, type: 'local', prefix: family === 4 ? '0.0.0.0/0' : '::/0', dev: 'lo', table: c.tproxyRouteTable });
    }
  }
  return items;
}

export function lowerSidecar(mesh: SidecarMesh): { tables: IrTable[]; emitter: MeshEmitter } {
  const e = new MeshEmitter(mesh.origin.ref, 'sidecar');
  emitSidecar(e, mesh.sidecar);
  const tables = tableSpecs(mesh.origin.ref).flatMap((spec) => e.table(spec) ?? []);
  return { tables, emitter: e };
}
