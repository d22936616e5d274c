import { describe, expect, it } from 'vitest';
import { parseArtifact, routingOfHeader } from '@nftops/artifact';
import { compile, formatDiagnostic } from '@nftops/compiler';
import { createIpRouting, createNftDriver } from '@nftops/nft-driver';
import {
  kernelAvailable,
  meshConnect,
  meshSocketsAvailable,
  MESH_OUTSIDE,
  MESH_PEER,
  MESH_POD,
  startMeshServer,
  withMeshTopology,
  type MeshListener,
  type MeshRequest,
  type MeshResult,
  type MeshServer,
} from '@nftops/testkit';

/**
 * Istio's redirection, proven with real sockets: compile a MeshRedirection / AmbientNode, apply its nft
 * transaction and its routing companion (the artifact header) inside a pod namespace wired to a peer
 * namespace (the outside world, or the node), then open connections as given UIDs and see which listener each
 * one reaches. Addresses: pod 192.0.2.1 / 2001:db8::1, peer 192.0.2.254 / 2001:db8::fe, "outside"
 * 203.0.113.7 / 2001:db8:ffff::7 and DNS servers 203.0.113.53 / 2001:db8:ffff::53 on the peer.
 */

const nft = createNftDriver();
const ip = createIpRouting();
const APP = { uid: 1000, gid: 1000 };
const PROXY = { uid: 1337, gid: 1337 };
const O4 = MESH_OUTSIDE.v4;
const O6 = MESH_OUTSIDE.v6;

function artifactOf(yaml: string): string {
  const result = compile([{ path: 'mesh.yaml', text: yaml }]);
  expect(result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  expect(result.artifacts).toHaveLength(1);
  return result.artifacts[0]!.text;
}

/** Applies the artifact in NETNS as the watcher will: the nft transaction, then its routing, idempotently. */
async function install(netns: string, yaml: string): Promise<void> {
  const text = artifactOf(yaml);
  const parsed = parseArtifact(text);
  expect(parsed.ok).toBe(true);
  if (!parsed.ok) return;
  const routing = routingOfHeader(parsed.artifact.header.extra);
  expect(routing.ok).toBe(true);
  if (!routing.ok) return;
  expect(await nft.apply(text, { netns })).toEqual({ ok: true });
  await ip.apply(routing.routing, { netns });
  // Applying both again changes nothing (what the watcher does on every pass).
  expect(await nft.apply(text, { netns })).toEqual({ ok: true });
  expect((await ip.apply(routing.routing, { netns })).changed).toEqual([]);
}

const both = (name: string, proto: 'tcp' | 'udp', port: number, extra: Partial<MeshListener> = {}): MeshListener[] => [
  { name, proto, family: 4, port, ...extra },
  { name, proto, family: 6, port, ...extra },
];
/** Istio's DNS proxy listens on localhost only (so its replies leave from the address the redirect chose). */
const dnsProxy = (name: string): MeshListener[] => [
  { name, proto: 'udp', family: 4, port: 15053, address: '127.0.0.1' },
  { name, proto: 'udp', family: 6, port: 15053, address: '::1' },
  { name, proto: 'tcp', family: 4, port: 15053, address: '127.0.0.1' },
  { name, proto: 'tcp', family: 6, port: 15053, address: '::1' },
];
const tcp = (host: string, port: number, mark?: number): MeshRequest => ({ proto: 'tcp', host, port, ...(mark ? { mark } : {}) });
const udp = (host: string, port: number): MeshRequest => ({ proto: 'udp', host, port });

/** `server@listener` of each result (or the error), for one readable assertion per batch. */
function landed(results: readonly MeshResult[]): string[] {
  return results.map((r) => (r.ok ? `${r.reply.server}@${r.reply.listener}` : `error: ${r.error}`));
}

async function withServers<T>(starts: Promise<MeshServer>[], fn: () => Promise<T>): Promise<T> {
  const settled = await Promise.allSettled(starts);
  const servers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    return await fn();
  } finally {
    await Promise.allSettled(servers.map((s) => s.stop()));
  }
}

/** The outside world on the peer: web on 80 and 8443, DNS on 53. */
const outside = (peer: string) =>
  startMeshServer(peer, [
    ...both('outside', 'tcp', 80),
    ...both('outside', 'tcp', 8443),
    ...both('outside-dns', 'tcp', 53),
    // UDP servers bind the address they serve, so replies come from it.
    { name: 'outside-dns', proto: 'udp', family: 4, port: 53, address: MESH_OUTSIDE.dns4 },
    { name: 'outside-dns', proto: 'udp', family: 6, port: 53, address: MESH_OUTSIDE.dns6 },
  ]);

const SIDECAR_REDIRECT = `apiVersion: nftops.dev/v1alpha1
kind: MeshRedirection
metadata: { name: productpage }
spec:
  mode: sidecar
  sidecar:
    ipv6: true
    outboundPorts: { exclude: [8443] }
    dns: { capture: true, captureAll: true }
`;

describe.runIf(kernelAvailable() && meshSocketsAvailable())('mesh traffic with real sockets', () => {
  it('sidecar REDIRECT: outbound to 15001 unless from the proxy UID, inbound to 15006, excluded ports bypass, DNS to 15053, IPv4 and IPv6', async () => {
    await withMeshTopology(async ({ pod, peer }) => {
      await install(pod, SIDECAR_REDIRECT);
      await withServers(
        [
          startMeshServer(pod, [...both('proxy-outbound', 'tcp', 15001), ...both('proxy-inbound', 'tcp', 15006), ...dnsProxy('proxy-dns')], PROXY),
          startMeshServer(pod, [...both('app', 'tcp', 9080), ...both('health', 'tcp', 15021), ...both('tunnel', 'tcp', 15008)], APP),
          outside(peer),
        ],
        async () => {
          // An application's connections to any outside address land on the proxy's outbound listener.
          expect(landed(await meshConnect(pod, [tcp(O4, 80), tcp(O6, 80), tcp(O4, 8443), tcp(O6, 8443)], APP))).toEqual([
            'proxy-outbound@15001',
            'proxy-outbound@15001',
            'outside@8443', // outboundPorts.exclude
            'outside@8443',
          ]);
          // DNS over UDP and TCP to port 53 lands on the proxy's DNS listener.
          const dns = [udp(MESH_OUTSIDE.dns4, 53), udp(MESH_OUTSIDE.dns6, 53), tcp(MESH_OUTSIDE.dns4, 53), tcp(MESH_OUTSIDE.dns6, 53)];
          expect(landed(await meshConnect(pod, dns, APP))).toEqual(['proxy-dns@15053', 'proxy-dns@15053', 'proxy-dns@15053', 'proxy-dns@15053']);
          // The proxy's own connections (UID 1337) go out untouched, DNS included.
          expect(landed(await meshConnect(pod, [tcp(O4, 80), tcp(O6, 80), ...dns], PROXY))).toEqual([
            'outside@80',
            'outside@80',
            'outside-dns@53',
            'outside-dns@53',
            'outside-dns@53',
            'outside-dns@53',
          ]);
          // Inbound: workload ports land on 15006; excluded inbound ports (15021) and the tunnel port reach their listeners.
          const inbound = await meshConnect(peer, [
            tcp(MESH_POD.v4, 9080),
            tcp(MESH_POD.v6, 9080),
            tcp(MESH_POD.v4, 15021),
            tcp(MESH_POD.v6, 15021),
            tcp(MESH_POD.v4, 15008),
          ]);
          expect(landed(inbound)).toEqual(['proxy-inbound@15006', 'proxy-inbound@15006', 'health@15021', 'health@15021', 'tunnel@15008']);
          expect(inbound[0]!.ok && inbound[0]!.reply.peer.startsWith(`${MESH_PEER.v4}:`)).toBe(true);
        },
      );
    });
  });

  it('sidecar TPROXY: inbound connections reach the 15006 listener with their original destination preserved', async () => {
    await withMeshTopology(async ({ pod, peer }) => {
      await install(
        pod,
        `apiVersion: nftops.dev/v1alpha1
kind: MeshRedirection
metadata: { name: reviews }
spec:
  mode: sidecar
  sidecar: { interceptionMode: TPROXY, ipv6: true }
`,
      );
      await withServers(
        [
          startMeshServer(pod, both('proxy-inbound', 'tcp', 15006, { transparent: true })),
          startMeshServer(pod, both('health', 'tcp', 15021), APP),
        ],
        async () => {
          const results = await meshConnect(peer, [tcp(MESH_POD.v4, 9080), tcp(MESH_POD.v6, 9443), tcp(MESH_POD.v4, 15021)]);
          expect(landed(results)).toEqual(['proxy-inbound@15006', 'proxy-inbound@15006', 'health@15021']);
          const [v4, v6] = results as [Extract<MeshResult, { ok: true }>, Extract<MeshResult, { ok: true }>];
          expect(v4.reply.local).toBe(`${MESH_POD.v4}:9080`);
          expect(v4.reply.peer.startsWith(`${MESH_PEER.v4}:`)).toBe(true);
          expect(v6.reply.local).toBe(`[${MESH_POD.v6}]:9443`);
          expect(v6.reply.peer.startsWith(`[${MESH_PEER.v6}]:`)).toBe(true);
        },
      );
    });
  });

  it('ambient pod: outbound TCP to 15001, inbound to 15006 except 15008, ztunnel-marked packets bypass, DNS to 15053', async () => {
    await withMeshTopology(async ({ pod, peer }) => {
      await install(pod, 'apiVersion: nftops.dev/v1alpha1\nkind: MeshRedirection\nmetadata: { name: details }\nspec:\n  mode: ambient\n');
      await withServers(
        [
          startMeshServer(pod, [
            ...both('ztunnel-outbound', 'tcp', 15001),
            ...both('ztunnel-inbound', 'tcp', 15006),
            ...both('ztunnel-hbone', 'tcp', 15008),
            ...dnsProxy('ztunnel-dns'),
          ]),
          outside(peer),
        ],
        async () => {
          expect(landed(await meshConnect(pod, [tcp(O4, 80), tcp(O6, 80), tcp(O4, 8443)], APP))).toEqual([
            'ztunnel-outbound@15001',
            'ztunnel-outbound@15001',
            'ztunnel-outbound@15001',
          ]);
          // ztunnel's own sockets carry mark 0x539 and are not redirected.
          expect(landed(await meshConnect(pod, [tcp(O4, 80, 0x539), tcp(O6, 80, 0x539)]))).toEqual(['outside@80', 'outside@80']);
          const dns = [udp(MESH_OUTSIDE.dns4, 53), udp(MESH_OUTSIDE.dns6, 53), tcp(MESH_OUTSIDE.dns4, 53), tcp(MESH_OUTSIDE.dns6, 53)];
          expect(landed(await meshConnect(pod, dns, APP))).toEqual(['ztunnel-dns@15053', 'ztunnel-dns@15053', 'ztunnel-dns@15053', 'ztunnel-dns@15053']);
          const inbound = [tcp(MESH_POD.v4, 9080), tcp(MESH_POD.v6, 9080), tcp(MESH_POD.v4, 15008), tcp(MESH_POD.v6, 15008)];
          expect(landed(await meshConnect(peer, inbound))).toEqual(['ztunnel-inbound@15006', 'ztunnel-inbound@15006', 'ztunnel-hbone@15008', 'ztunnel-hbone@15008']);
        },
      );
    });
  });

  it('ambient pod with DNS capture off (per-pod override): DNS goes out, TCP still to ztunnel', async () => {
    await withMeshTopology(async ({ pod, peer }) => {
      await install(pod, 'apiVersion: nftops.dev/v1alpha1\nkind: MeshRedirection\nmetadata: { name: details }\nspec:\n  mode: ambient\n  ambient: { pod: { dnsCapture: false } }\n');
      await withServers([startMeshServer(pod, [...both('ztunnel-outbound', 'tcp', 15001), ...dnsProxy('ztunnel-dns')]), outside(peer)], async () => {
        expect(landed(await meshConnect(pod, [udp(MESH_OUTSIDE.dns4, 53), tcp(O4, 80)], APP))).toEqual(['outside-dns@53', 'ztunnel-outbound@15001']);
      });
    });
  });

  const node = (kubelet: string) => `apiVersion: nftops.dev/v1alpha1
kind: AmbientNode
metadata: { name: worker }
spec:
  kubelet: ${kubelet}
  pods:
    - uid: 1d5e4c0a-7b2f-4c3e-9a61-0d2b6f8e4a10
      addresses: [${MESH_POD.v4}, "${MESH_POD.v6}"]
`;

  it('ambient host: kubelet (by UID, then by user name) reaches the pod from the probe address and bypasses ztunnel; others do not', async () => {
    await withMeshTopology(async ({ pod, peer: nodeNetns }) => {
      await install(pod, 'apiVersion: nftops.dev/v1alpha1\nkind: MeshRedirection\nmetadata: { name: details }\nspec:\n  mode: ambient\n');
      await install(nodeNetns, node('{ uid: 4242 }'));
      await withServers([startMeshServer(pod, [...both('app', 'tcp', 8080), ...both('ztunnel-inbound', 'tcp', 15006)], APP)], async () => {
        const requests = [tcp(MESH_POD.v4, 8080), tcp(MESH_POD.v6, 8080)];
        const kubelet = await meshConnect(nodeNetns, requests, { uid: 4242 });
        expect(landed(kubelet)).toEqual(['app@8080', 'app@8080']);
        expect(kubelet.map((r) => r.ok && r.reply.peer.replace(/:\d+$/, ''))).toEqual(['169.254.7.127', '[fd16:9254:7127:1337:ffff:ffff:ffff:ffff]']);
        // Another UID on the node is not SNATed, so the pod sends it to ztunnel.
        const other = await meshConnect(nodeNetns, requests, { uid: 4243 });
        expect(landed(other)).toEqual(['ztunnel-inbound@15006', 'ztunnel-inbound@15006']);
        expect(other[0]!.ok && other[0]!.reply.peer.startsWith(`${MESH_PEER.v4}:`)).toBe(true);

        // The same by user name (nft resolves "nobody" when it loads the artifact).
        await install(nodeNetns, node('{ user: nobody }'));
        const byName = await meshConnect(nodeNetns, requests, { uid: 65534 });
        expect(landed(byName)).toEqual(['app@8080', 'app@8080']);
        expect(byName[0]!.ok && byName[0]!.reply.peer.startsWith('169.254.7.127:')).toBe(true);
        expect(landed(await meshConnect(nodeNetns, requests, { uid: 4242 }))).toEqual(['ztunnel-inbound@15006', 'ztunnel-inbound@15006']);
      });
    });
  });
});
