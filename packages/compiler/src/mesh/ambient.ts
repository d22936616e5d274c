import type { RoutingItem } from '@nftops/artifact';
import type { IrTable } from '../ir.js';
import { comment, identifier } from '../nft-text.js';
import { MeshEmitter, type MeshRule, type TableSpec } from './emit.js';
import type { AmbientNodeMesh, AmbientPodConfig, AmbientPodMesh } from './model.js';

/**
 * Ambient mode: Istio's `cni/pkg/nftables/nftables.go` (spec c.4) for the pod network namespace, and
 * `host_sets.go` (c.7) for the node. Marks, ports and the routing table are Istio's constants (c.2).
 */
export const AMBIENT_TABLES = { nat: 'istio-ambient-nat', mangle: 'istio-ambient-mangle', raw: 'istio-ambient-raw' } as const;

const NAT = AMBIENT_TABLES.nat;
const MANGLE = AMBIENT_TABLES.mangle;
const RAW = AMBIENT_TABLES.raw;
export const AMBIENT_CONSTANTS = {
  inpodMark: 0x539,
  inpodMask: 0xfff,
  tproxyMark: 0x111,
  tproxyMask: 0xfff,
  routeTable: 100,
  rulePriority: 32764,
  outboundPort: 15001,
  inboundPlaintextPort: 15006,
  inboundPort: 15008,
  dnsPort: 15053,
} as const;

function podTableSpecs(ref: string): TableSpec[] {
  const chains = (type: 'nat' | 'filter' | 'route', outputType: 'nat' | 'filter' | 'route', priority: number) => [
    { name: 'prerouting', base: { type, hook: 'prerouting' as const, priority } },
    { name: 'output', base: { type: outputType, hook: 'output' as const, priority } },
    { name: 'istio-prerouting' },
    { name: 'istio-output' },
  ];
  return [
    { name: NAT, comment: `nftops: Istio ambient pod redirection, nat (${ref})`, chains: chains('nat', 'nat', -100) },
    { name: MANGLE, comment: `nftops: Istio ambient pod redirection, mangle (${ref})`, chains: chains('filter', 'route', -150) },
    { name: RAW, comment: `nftops: Istio ambient pod redirection, raw (${ref})`, chains: chains('filter', 'filter', -300) },
  ];
}

const rule = (match: string, action: string, detail: string): MeshRule => ({ match, action, detail });

/** Emits every ambient pod rule in Istio's order into E. */
export function emitAmbientPod(e: MeshEmitter, c: AmbientPodConfig): void {
  const K = AMBIENT_CONSTANTS;
  const ingress = c.bypassInboundCapture;
  const v6 = c.ipv6;
  const notZtunnel = 'mark and 0xfff != 0x539';
  // A1-A5. Base chain jumps (Istio has no counter on these five; ours do: every rule counts).
  e.add(MANGLE, 'prerouting', rule('', 'jump istio-prerouting', 'entry'));
  e.add(MANGLE, 'output', rule('', 'jump istio-output', 'entry'));
  e.add(NAT, 'output', rule('', 'jump istio-output', 'entry'));
  if (c.dns) {
    e.add(RAW, 'prerouting', rule('', 'jump istio-prerouting', 'entry'));
    e.add(RAW, 'output', rule('', 'jump istio-output', 'entry'));
  }
  e.add(NAT, 'prerouting', rule('', 'jump istio-prerouting', 'entry'));
  // A6. Virtual interfaces.
  for (const v of c.virtualInterfaces) {
    e.add(NAT, 'istio-prerouting', rule(`iifname ${v} meta l4proto tcp`, `redirect to :${K.outboundPort}`, 'virtual interface'));
    e.add(NAT, 'istio-prerouting', rule(`iifname ${v} meta l4proto tcp`, 'return', 'virtual interface'));
  }
  // A7. Connections from ztunnel get the connmark.
  e.add(MANGLE, 'istio-prerouting', rule('meta mark & 0xfff == 0x539', 'ct mark set ct mark & 0xfffff000 | 0x111', 'from ztunnel'));
  // A8. Host probes (SNATed by the node) skip ztunnel.
  if (!ingress) {
    e.add(NAT, 'istio-prerouting', rule(`meta l4proto tcp ip saddr ${c.snat4}`, 'accept', 'host probe'));
    if (v6) e.add(NAT, 'istio-prerouting', rule(`meta l4proto tcp ip6 saddr ${c.snat6}`, 'accept', 'host probe'));
  }
  // A9. Replies to host probes.
  e.add(NAT, 'istio-output', rule(`meta l4proto tcp ip daddr ${c.snat4}`, 'accept', 'host probe reply'));
  if (v6) e.add(NAT, 'istio-output', rule(`meta l4proto tcp ip6 daddr ${c.snat6}`, 'accept', 'host probe reply'));
  // A10. Inbound to ztunnel.
  if (!ingress) {
    e.add(NAT, 'istio-prerouting', rule(`ip daddr != 127.0.0.1/32 tcp dport != ${K.inboundPort} ${notZtunnel}`, `redirect to :${K.inboundPlaintextPort}`, 'inbound'));
    if (v6) e.add(NAT, 'istio-prerouting', rule(`ip6 daddr != ::1/128 tcp dport != ${K.inboundPort} ${notZtunnel}`, `redirect to :${K.inboundPlaintextPort}`, 'inbound'));
  }
  // A11. Restore the mark from the connmark.
  e.add(MANGLE, 'istio-output', rule('ct mark and 0xfff == 0x111', 'meta mark set ct mark', 'restore mark'));
  // A12. DNS.
  if (c.dns) {
    e.add(NAT, 'istio-output', rule(`oifname != lo ${notZtunnel} udp dport 53`, `redirect to :${K.dnsPort}`, 'dns udp'));
    e.add(NAT, 'istio-output', rule(`ip daddr != 127.0.0.1/32 tcp dport 53 ${notZtunnel}`, `redirect to :${K.dnsPort}`, 'dns tcp'));
    if (v6) e.add(NAT, 'istio-output', rule(`ip6 daddr != ::1/128 tcp dport 53 ${notZtunnel}`, `redirect to :${K.dnsPort}`, 'dns tcp'));
    e.add(RAW, 'istio-output', rule('udp dport 53 meta mark and 0xfff == 0x539', 'ct zone set 1', 'dns ztunnel upstream'));
    e.add(RAW, 'istio-prerouting', rule('udp sport 53 meta mark and 0xfff != 0x539', 'ct zone set 1', 'dns upstream reply'));
  }
  // A13-A15. Outbound.
  e.add(NAT, 'istio-output', rule('meta l4proto tcp mark and 0xfff == 0x111', 'accept', 'ztunnel connection'));
  e.add(NAT, 'istio-output', rule('oifname lo ip daddr != 127.0.0.1/32', 'accept', 'over lo'));
  if (v6) e.add(NAT, 'istio-output', rule('oifname lo ip6 daddr != ::1/128', 'accept', 'over lo'));
  e.add(NAT, 'istio-output', rule(`meta l4proto tcp ip daddr != 127.0.0.1/32 ${notZtunnel}`, `redirect to :${K.outboundPort}`, 'outbound'));
  if (v6) e.add(NAT, 'istio-output', rule(`meta l4proto tcp ip6 daddr != ::1/128 ${notZtunnel}`, `redirect to :${K.outboundPort}`, 'outbound'));
}

/** c.8: `ip route replace local 0.0.0.0/0 dev lo table 100` and `ip rule add fwmark 0x111/0xfff pref 32764 lookup 100` (+ IPv6). */
export function ambientPodRouting(c: AmbientPodConfig): RoutingItem[] {
  const K = AMBIENT_CONSTANTS;
  const families: (4 | 6)[] = c.ipv6 ? [4, 6] : [4];
  return [
    ...families.map((family): RoutingItem => ({ kind: 'route', family, type: 'local', prefix: family === 4 ? '0.0.0.0/0' : '::/0', dev: 'lo', table: K.routeTable })),
    ...families.map((family): RoutingItem => ({ kind: 'rule', family, fwmark: K.tproxyMark, mask: K.tproxyMask, table: K.routeTable, priority: K.rulePriority })),
  ];
}

export function lowerAmbientPod(mesh: AmbientPodMesh): { tables: IrTable[]; emitter: MeshEmitter } {
  const e = new MeshEmitter(mesh.origin.ref, 'ambient');
  emitAmbientPod(e, mesh.ambient);
  return { tables: podTableSpecs(mesh.origin.ref).flatMap((spec) => e.table(spec) ?? []), emitter: e };
}

export const PROBE_SET_COMMENT = 'UUID of the pods that are part of ambient mesh';

/** c.7: the node's probe sets and the kubelet SNAT rule, in table istio-ambient-nat of the node netns. */
export function lowerAmbientNode(mesh: AmbientNodeMesh): IrTable {
  const c = mesh.node;
  const source = mesh.origin.ref;
  const element = (p: { address: string; podUid: string }) => `${p.address} ${comment(p.podUid)}`;
  const sets = [
    { name: identifier('istio-inpod-probes-v4'), type: 'type ipv4_addr', flags: [], elements: c.probes4.map(element), comment: PROBE_SET_COMMENT },
    ...(c.ipv6 ? [{ name: identifier('istio-inpod-probes-v6'), type: 'type ipv6_addr', flags: [], elements: c.probes6.map(element), comment: PROBE_SET_COMMENT }] : []),
  ];
  const rules = [
    { match: [`meta l4proto tcp skuid ${c.kubelet} ip daddr @istio-inpod-probes-v4`], actions: [`snat to ${c.snat4}`], source, detail: 'kubelet probe' },
    ...(c.ipv6
      ? [{ match: [`meta l4proto tcp skuid ${c.kubelet} ip6 daddr @istio-inpod-probes-v6`], actions: [`snat to ${c.snat6}`], source, detail: 'kubelet probe' }]
      : []),
  ];
  return {
    family: 'inet',
    name: AMBIENT_TABLES.nat,
    comment: `nftops: Istio ambient node probe SNAT (${source})`,
    sets,
    maps: [],
    chains: [{ name: 'postrouting', base: { type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' }, rules }],
  };
}
