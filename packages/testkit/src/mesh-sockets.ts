import { existsSync } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
import { createNetns, deleteNetns } from './netns.js';
import { assertDocumentationAddress } from './traffic.js';

/**
 * Socket helpers for the mesh (Istio redirection) tests. Unlike the LB traffic kit they need what Node has no
 * API for: IP_TRANSPARENT listeners (TPROXY), SO_MARK on a client socket (ztunnel's mark), and clients or
 * servers running as a given UID/GID (the proxy UID 1337, kubelet). A small Python program does the socket
 * work; `setpriv` switches the UID. Everything stays inside namespaces the caller made.
 *
 * Each listener answers a TCP connection or a UDP datagram with one JSON line naming itself, the local
 * address the connection arrived at (for TPROXY: the original destination) and the peer it saw.
 */

const AGENT = String.raw`
import json, select, socket, sys
cfg = json.loads(sys.argv[1])
IP_TRANSPARENT, IPV6_TRANSPARENT, SO_MARK = 19, 75, 36
def fmt(a):
    return ('[%s]:%d' if ':' in a[0] else '%s:%d') % (a[0], a[1])
if cfg['mode'] == 'serve':
    socks = {}
    for l in cfg['listen']:
        v6 = l['family'] == 6
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM if l['proto'] == 'tcp' else socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if v6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if l.get('transparent'):
            s.setsockopt(socket.IPPROTO_IPV6 if v6 else socket.SOL_IP, IPV6_TRANSPARENT if v6 else IP_TRANSPARENT, 1)
        s.bind((l.get('address') or ('::' if v6 else '0.0.0.0'), l['port']))
        if l['proto'] == 'tcp':
            s.listen(128)
        socks[s.fileno()] = (s, l)
    sys.stdout.write('ready\n'); sys.stdout.flush()
    while True:
        ready, _, _ = select.select([sys.stdin] + [s for s, _ in socks.values()], [], [])
        for r in ready:
            if r is sys.stdin:
                if not sys.stdin.readline():
                    sys.exit(0)
                continue
            s, l = socks[r.fileno()]
            base = {'server': l['name'], 'listener': l['port'], 'proto': l['proto']}
            try:
                if l['proto'] == 'tcp':
                    c, peer = s.accept()
                    c.sendall((json.dumps(dict(base, local=fmt(c.getsockname()), peer=fmt(peer))) + '\n').encode())
                    c.close()
                else:
                    data, peer = s.recvfrom(2048)
                    s.sendto((json.dumps(dict(base, local=fmt(s.getsockname()), peer=fmt(peer))) + '\n').encode(), peer)
            except OSError:
                pass
else:
    results = []
    for r in cfg['requests']:
        v6 = ':' in r['host']
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM if r['proto'] == 'tcp' else socket.SOCK_DGRAM)
        s.settimeout(cfg['timeout'])
        try:
            if r.get('mark'):
                s.setsockopt(socket.SOL_SOCKET, SO_MARK, r['mark'])
            s.connect((r['host'], r['port']))
            if r['proto'] == 'tcp':
                data = b''
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            else:
                s.send(b'query')
                data = s.recv(4096)
            results.append({'ok': True, 'reply': json.loads(data.decode())})
        except Exception as e:
            results.append({'ok': False, 'error': '%s: %s' % (type(e).__name__, e)})
        finally:
            s.close()
    print(json.dumps(results))
`;

function python(): string {
  // The system interpreter: a per-user shim (pyenv) is not readable once setpriv drops root.
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** True when the mesh socket helpers can run (python3 and setpriv are present). */
export function meshSocketsAvailable(): boolean {
  const available = (existsSync('/usr/bin/python3') || existsSync('/usr/local/bin/python3')) && (existsSync('/usr/bin/setpriv') || existsSync('/bin/setpriv'));
  // Under CI a missing tool is a failure, not a reason to skip (as kernelAvailable does).
  if (!available && process.env.CI === 'true') throw new Error('mesh socket tests need python3 and setpriv (util-linux) under CI=true');
  return available;
}

export interface Identity {
  readonly uid: number;
  readonly gid?: number;
}

function command(netns: string, identity: Identity | undefined, config: unknown): [string, string[]] {
  const body = [python(), '-c', AGENT, JSON.stringify(config)];
  const as = identity ? ['setpriv', `--reuid=${identity.uid}`, `--regid=${identity.gid ?? identity.uid}`, '--clear-groups', ...body] : body;
  return ['ip', ['netns', 'exec', netns, ...as]];
}

export interface MeshListener {
  /** Shown in replies, so a test can tell which listener a connection reached. */
  readonly name: string;
  readonly proto: 'tcp' | 'udp';
  readonly family: 4 | 6;
  readonly port: number;
  /** Default: the wildcard address of the family. */
  readonly address?: string;
  /** IP_TRANSPARENT / IPV6_TRANSPARENT (needs root): accepts TPROXY-diverted connections. */
  readonly transparent?: boolean;
}

export interface MeshServer {
  stop(): Promise<void>;
}

/** Starts one server process with LISTENERS in NETNS, as IDENTITY (default root); resolves once all listen. */
export async function startMeshServer(netns: string, listeners: readonly MeshListener[], identity?: Identity): Promise<MeshServer> {
  const [file, args] = command(netns, identity, { mode: 'serve', listen: listeners });
  const child: ResultPromise = execa(file, args, { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', reject: false, buffer: false });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`mesh server in ${netns} not ready after 10 s: ${err}`)), 10_000);
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ready\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void child.then((result) => {
      clearTimeout(timer);
      reject(new Error(`mesh server in ${netns} exited (${result.exitCode}): ${err}`));
    });
  });
  return {
    async stop() {
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await child;
      clearTimeout(timer);
    },
  };
}

export interface MeshRequest {
  readonly proto: 'tcp' | 'udp';
  /** A documentation-range or loopback address. */
  readonly host: string;
  readonly port: number;
  /** SO_MARK on the socket (needs root). */
  readonly mark?: number;
}

export interface MeshReply {
  readonly server: string;
  readonly listener: number;
  readonly proto: 'tcp' | 'udp';
  /** Where the connection arrived: for TPROXY, the original destination. */
  readonly local: string;
  readonly peer: string;
}

export type MeshResult = { readonly ok: true; readonly reply: MeshReply } | { readonly ok: false; readonly error: string };

/** Runs the requests one after another from NETNS as IDENTITY (default root) and reports where each landed. */
export async function meshConnect(netns: string, requests: readonly MeshRequest[], identity?: Identity, timeoutSeconds = 3): Promise<MeshResult[]> {
  for (const r of requests) assertDocumentationAddress(r.host);
  const [file, args] = command(netns, identity, { mode: 'connect', requests, timeout: timeoutSeconds });
  const result = await execa(file, args, { reject: false, timeout: 60_000 });
  if (result.exitCode !== 0) throw new Error(`mesh client in ${netns} failed: ${String(result.stderr)}`);
  return JSON.parse(String(result.stdout)) as MeshResult[];
}

/**
 * Two namespaces joined by a veth: POD (192.0.2.1, 2001:db8::1, default routes via the peer) and PEER
 * (192.0.2.254, 2001:db8::fe), which also owns the "outside" addresses 203.0.113.7, 203.0.113.53 and
 * 2001:db8:ffff::7, 2001:db8:ffff::53 on its lo. PEER plays the world for a sidecar or ambient pod, or the
 * node for ambient host-probe tests.
 */
export interface MeshTopology {
  readonly pod: string;
  readonly peer: string;
  destroy(): Promise<void>;
}

export const MESH_POD = { v4: '192.0.2.1', v6: '2001:db8::1' } as const;
export const MESH_PEER = { v4: '192.0.2.254', v6: '2001:db8::fe' } as const;
export const MESH_OUTSIDE = { v4: '203.0.113.7', v6: '2001:db8:ffff::7', dns4: '203.0.113.53', dns6: '2001:db8:ffff::53' } as const;

async function ipBatch(netns: string, commands: readonly string[]): Promise<void> {
  const result = await execa('ip', ['-n', netns, '-batch', '-'], { input: `${commands.join('\n')}\n`, reject: false, timeout: 10_000 });
  if (result.exitCode !== 0) throw new Error(`ip -batch in ${netns} failed: ${String(result.stderr).trim()}`);
}

export async function createMeshTopology(prefix = 'nftops-mesh'): Promise<MeshTopology> {
  const created: string[] = [];
  const destroy = async () => {
    for (const netns of created.splice(0)) await deleteNetns(netns);
  };
  try {
    created.push(await createNetns(`${prefix}-p`));
    created.push(await createNetns(`${prefix}-o`));
    const [pod, peer] = created as [string, string];
    const noDad = ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'];
    for (const netns of [pod, peer]) {
      const r = await execa('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', ...noDad], { reject: false });
      if (r.exitCode !== 0) throw new Error(`sysctl in ${netns} failed: ${String(r.stderr)}`);
    }
    // Distinct ifindexes and fixed MACs with permanent neighbours: no first packet is ever delayed or lost.
    const podMac = '02:00:5e:00:53:01';
    const peerMac = '02:00:5e:00:53:fe';
    await ipBatch(pod, [
      `link add eth0 address ${podMac} index 41 type veth peer name eth0 address ${peerMac} index 42 netns ${peer}`,
      `address add ${MESH_POD.v4}/24 dev eth0`,
      `address add ${MESH_POD.v6}/64 dev eth0 nodad`,
      'link set eth0 up',
      `neigh replace ${MESH_PEER.v4} lladdr ${peerMac} dev eth0 nud permanent`,
      `neigh replace ${MESH_PEER.v6} lladdr ${peerMac} dev eth0 nud permanent`,
    ]);
    await ipBatch(peer, [
      `address add ${MESH_PEER.v4}/24 dev eth0`,
      `address add ${MESH_PEER.v6}/64 dev eth0 nodad`,
      `address add ${MESH_OUTSIDE.v4}/32 dev lo`,
      `address add ${MESH_OUTSIDE.dns4}/32 dev lo`,
      `address add ${MESH_OUTSIDE.v6}/128 dev lo nodad`,
      `address add ${MESH_OUTSIDE.dns6}/128 dev lo nodad`,
      'link set eth0 up',
      `neigh replace ${MESH_POD.v4} lladdr ${podMac} dev eth0 nud permanent`,
      `neigh replace ${MESH_POD.v6} lladdr ${podMac} dev eth0 nud permanent`,
    ]);
    await ipBatch(pod, [`route add default via ${MESH_PEER.v4}`, `route add default via ${MESH_PEER.v6}`]);
    // Wait until both ends are up (IPv6 drops packets on a link that is not yet operational).
    const deadline = Date.now() + 5_000;
    for (const netns of [pod, peer]) {
      for (;;) {
        const r = await execa('ip', ['-j', '-n', netns, 'addr', 'show', 'dev', 'eth0'], { reject: false });
        const [info] = (r.exitCode === 0 ? JSON.parse(String(r.stdout)) : []) as { operstate?: string; addr_info?: { family: string; scope: string; tentative?: boolean }[] }[];
        if (info?.operstate === 'UP' && info.addr_info?.some((a) => a.family === 'inet6' && a.scope === 'link' && !a.tentative)) break;
        if (Date.now() > deadline) throw new Error(`eth0 in ${netns} did not come up`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    return { pod, peer, destroy };
  } catch (error) {
    await destroy();
    throw error;
  }
}

/** Runs FN with a fresh mesh topology and always deletes it afterwards. */
export async function withMeshTopology<T>(fn: (topology: MeshTopology) => Promise<T>): Promise<T> {
  const topology = await createMeshTopology();
  try {
    return await fn(topology);
  } finally {
    await topology.destroy();
  }
}
