import { BlockList, isIP } from 'node:net';
import { execa } from 'execa';
import { createNftDriver, findNft, type NftDriver, type NftResult } from '@nftops/nft-driver';
import { createNetns, deleteNetns } from './netns.js';
import {
  assertDocumentationAddress,
  startClientAgent,
  startServer,
  type ClientAgent,
  summarize,
  type ConnectResult,
  type ServerHandle,
  type TrafficProtocol,
  type TrafficSummary,
} from './traffic.js';

/**
 * A load-balancer test bed in three fresh network namespaces:
 *
 *   client ns                 LB ns                                  backend ns
 *   c0 203.0.113.x/24  ── lc 203.0.113.1/24    lb 198.51.100.1/24 ──  b0 198.51.100.10, .11, .12 /24
 *      2001:db8:c::x/64       2001:db8:c::1/64     2001:db8:b::1/64      2001:db8:b::10, ::11, ::12 /64
 *   default via the LB        forwarding on (v4 + v6)                default via the LB (optional)
 *   (per family in use)                                              (per family in use)
 *                             VIPs 192.0.2.10, 2001:db8:f::10 on lo (vipMode 'local', the default: how
 *                             keepalived does it) or nowhere (vipMode 'routed': the client's route alone
 *                             brings VIP traffic to the LB, which only forwards what it DNATs)
 *
 * One backend namespace holds every backend address; a server bound to each address tells them apart.
 * Nothing outside these namespaces is touched.
 */

export const LB_CLIENT_SIDE = { v4: '203.0.113.1', v6: '2001:db8:c::1' } as const;
export const LB_BACKEND_SIDE = { v4: '198.51.100.1', v6: '2001:db8:b::1' } as const;
/** Locally administered MAC addresses of the four veth ends (each pair is its own L2 segment). */
const MAC = { lc: '02:6e:66:00:00:11', c0: '02:6e:66:00:00:21', lb: '02:6e:66:00:00:12', b0: '02:6e:66:00:00:31' } as const;

const clientNet = subnet([['203.0.113.0', 24], ['2001:db8:c::', 64]]);
const backendNet = subnet([['198.51.100.0', 24], ['2001:db8:b::', 64]]);
const vipNet = subnet([['192.0.2.0', 24], ['2001:db8:f::', 64]]);

function subnet(ranges: [string, number][]): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of ranges) list.addSubnet(network, prefix, isIP(network) === 6 ? 'ipv6' : 'ipv4');
  return list;
}

function inNet(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

export interface LbTopologyOptions {
  /** Client addresses (v4 in 203.0.113.0/24, v6 in 2001:db8:c::/64, not the LB's .1/::1). Default 203.0.113.2, 2001:db8:c::2. */
  readonly clientAddresses?: readonly string[];
  /** Backend addresses (198.51.100.0/24, 2001:db8:b::/64). Default .10–.12 and ::10–::12. */
  readonly backendAddresses?: readonly string[];
  /** VIPs (192.0.2.0/24, 2001:db8:f::/64). Default 192.0.2.10, 2001:db8:f::10. */
  readonly vips?: readonly string[];
  /** 'local' (default): VIPs on the LB's lo. 'routed': VIPs assigned nowhere, only routed to the LB by the client. */
  readonly vipMode?: 'local' | 'routed';
  /** Backends route everything via the LB (default true). False: only their link is reachable, so replies need SNAT. */
  readonly backendDefaultRoute?: boolean;
  /** Start a backend server on every backend address × these ports (tcp and udp). Default [8080, 8081]; [] for none. */
  readonly serverPorts?: readonly number[];
  readonly serverProtocols?: readonly TrafficProtocol[];
  /** Namespace name prefix (default `nftops-lb`). */
  readonly prefix?: string;
}

export interface LbConnectOptions {
  readonly vip: string;
  readonly port: number;
  readonly protocol?: TrafficProtocol;
  readonly count: number;
  /** One of the client addresses; default: the first client address of the VIP's family. */
  readonly source?: string;
  /** Several client addresses, used in turn (connection i from sources[i % length]). Overrides source. */
  readonly sources?: readonly string[];
  readonly timeoutMs?: number;
  readonly concurrency?: number;
}

export interface LbTopology {
  readonly clientNetns: string;
  readonly lbNetns: string;
  readonly backendNetns: string;
  readonly clientAddresses: readonly string[];
  readonly backendAddresses: readonly string[];
  readonly vips: readonly string[];
  /** The LB's addresses on each link (what a masqueraded flow comes from). */
  readonly lbClientSide: { readonly v4: string; readonly v6: string };
  readonly lbBackendSide: { readonly v4: string; readonly v6: string };
  readonly nft: NftDriver;
  /** `nft -f -` in the LB namespace. */
  applyRuleset(text: string): Promise<NftResult>;
  /** Like applyRuleset but throws with nft's message when the ruleset is rejected. */
  applyRulesetOrThrow(text: string): Promise<void>;
  /** `nft list ruleset` text of the LB namespace (counters included): handy in failure messages. */
  listRuleset(): Promise<string>;
  /** Runs a command in one of the namespaces. */
  exec(where: 'client' | 'lb' | 'backend', file: string, args: readonly string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Starts an extra server, e.g. a sentinel in the LB namespace that shows traffic which escaped DNAT. */
  startServer(where: 'client' | 'lb' | 'backend', addresses: readonly string[], ports: readonly number[], protocols?: readonly TrafficProtocol[]): Promise<ServerHandle>;
  /** Opens COUNT connections from the client namespace; every flow gets a source port never used before in this topology. */
  connectMany(options: LbConnectOptions): Promise<ConnectResult[]>;
  /** connectMany, summarized. */
  traffic(options: LbConnectOptions): Promise<TrafficSummary>;
  /** Stops all servers and deletes the namespaces. Idempotent. */
  destroy(): Promise<void>;
}

/** `ip -n NETNS -batch -`: one process for many commands; stops at the first failure. */
async function ipBatch(netns: string, commands: readonly string[]): Promise<void> {
  const input = commands.join('\n') + '\n';
  const result = await execa('ip', ['-n', netns, '-batch', '-'], { input, reject: false, timeout: 10_000 });
  if (result.exitCode !== 0) throw new Error(`ip -n ${netns} -batch failed: ${String(result.stderr).trim()}\n${input}`);
}

async function sysctl(netns: string, settings: readonly string[]): Promise<void> {
  const result = await execa('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', ...settings], { reject: false, timeout: 10_000 });
  if (result.exitCode !== 0) throw new Error(`sysctl in ${netns} failed: ${String(result.stderr).trim()}`);
}

const v6 = (address: string) => isIP(address) === 6;

/** Waits (at most 5 s) until every link is operationally up and has its IPv6 link-local address. */
async function waitOperUp(links: readonly [string, string][]): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (const [netns, dev] of links) {
    for (;;) {
      const result = await execa('ip', ['-j', '-n', netns, 'addr', 'show', 'dev', dev], { reject: false, timeout: 10_000 });
      const [info] = (result.exitCode === 0 ? JSON.parse(String(result.stdout)) : []) as {
        operstate?: string;
        addr_info?: { family: string; scope: string; tentative?: boolean }[];
      }[];
      const linkLocal = info?.addr_info?.some((a) => a.family === 'inet6' && a.scope === 'link' && !a.tentative);
      if (info?.operstate === 'UP' && linkLocal) break;
      if (Date.now() > deadline) throw new Error(`${dev} in ${netns} did not come up: ${String(result.stdout)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

export async function createLbTopology(options: LbTopologyOptions = {}): Promise<LbTopology> {
  const clientAddresses = [...(options.clientAddresses ?? ['203.0.113.2', '2001:db8:c::2'])];
  const backendAddresses = [...(options.backendAddresses ?? ['198.51.100.10', '198.51.100.11', '198.51.100.12', '2001:db8:b::10', '2001:db8:b::11', '2001:db8:b::12'])];
  const vips = [...(options.vips ?? ['192.0.2.10', '2001:db8:f::10'])];
  const lbOwn = new Set<string>([...Object.values(LB_CLIENT_SIDE), ...Object.values(LB_BACKEND_SIDE)]);
  for (const [what, list, net] of [
    ['client', clientAddresses, clientNet],
    ['backend', backendAddresses, backendNet],
    ['VIP', vips, vipNet],
  ] as const) {
    for (const address of list) {
      assertDocumentationAddress(address);
      if (!inNet(net, address) || lbOwn.has(address)) throw new Error(`${what} address ${address} is outside its range or is the LB's own`);
    }
    if (new Set(list).size !== list.length) throw new Error(`duplicate ${what} addresses`);
  }

  const prefix = options.prefix ?? 'nftops-lb';
  const created: string[] = [];
  const servers: ServerHandle[] = [];
  let agent: Promise<ClientAgent> | undefined;
  let destroyed = false;
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    const stopAgent = agent?.then((client) => client.stop());
    await Promise.allSettled([...servers.map((server) => server.stop()), ...(stopAgent ? [stopAgent] : [])]);
    for (const netns of created) await deleteNetns(netns);
  };

  try {
    const made = await Promise.allSettled(['c', 'l', 'b'].map((role) => createNetns(`${prefix}-${role}`)));
    for (const result of made) if (result.status === 'fulfilled') created.push(result.value);
    for (const result of made) if (result.status === 'rejected') throw result.reason;
    const [clientNetns, lbNetns, backendNetns] = created as [string, string, string];

    // No duplicate address detection: addresses are usable at once.
    const noDad = ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'];
    await Promise.all([
      sysctl(clientNetns, noDad),
      sysctl(backendNetns, noDad),
      sysctl(lbNetns, [
        ...noDad,
        'net.ipv4.ip_forward=1',
        'net.ipv6.conf.all.forwarding=1',
        'net.ipv4.conf.all.rp_filter=0',
        'net.ipv4.conf.default.rp_filter=0',
      ]),
    ]);

    const addr = (dev: string, address: string, v4Prefix: number, v6Prefix: number) =>
      `address add ${address}/${v6(address) ? v6Prefix : v4Prefix} dev ${dev}${v6(address) ? ' nodad' : ''}`;
    // Distinct interface indexes on the two ends of each veth: when a veth's ifindex equals its peer's (both 2 in
    // fresh namespaces) the kernel treats its carrier change as non-urgent and delays it by up to a second, and IPv6
    // drops neighbour solicitations on the not-yet-up end, losing the first packets of every IPv6 flow.
    // Fixed MAC addresses and permanent neighbour entries on every link: no ARP or neighbour discovery ever delays
    // or loses a first packet, and a lost first SYN would be retransmitted as a new flow and skew numgen counts.
    const neigh = (address: string, mac: string, dev: string) => `neigh replace ${address} lladdr ${mac} dev ${dev} nud permanent`;
    const families = (addresses: readonly string[], side: { v4: string; v6: string }) => [
      ...(addresses.some((a) => !v6(a)) ? [side.v4] : []),
      ...(addresses.some(v6) ? [side.v6] : []),
    ];
    await ipBatch(lbNetns, [
      `link add lc address ${MAC.lc} index 11 type veth peer name c0 address ${MAC.c0} index 21 netns ${clientNetns}`,
      `link add lb address ${MAC.lb} index 12 type veth peer name b0 address ${MAC.b0} index 31 netns ${backendNetns}`,
      addr('lc', LB_CLIENT_SIDE.v4, 24, 64),
      addr('lc', LB_CLIENT_SIDE.v6, 24, 64),
      addr('lb', LB_BACKEND_SIDE.v4, 24, 64),
      addr('lb', LB_BACKEND_SIDE.v6, 24, 64),
      ...((options.vipMode ?? 'local') === 'local' ? vips.map((vip) => addr('lo', vip, 32, 128)) : []),
      'link set lc up',
      'link set lb up',
      ...clientAddresses.map((address) => neigh(address, MAC.c0, 'lc')),
      ...backendAddresses.map((address) => neigh(address, MAC.b0, 'lb')),
    ]);
    // A default route per family that has addresses (a gateway is only reachable through an on-link prefix).
    const defaults = (addresses: readonly string[], gateways: { v4: string; v6: string }) => [
      ...(addresses.some((a) => !v6(a)) ? [`route add default via ${gateways.v4}`] : []),
      ...(addresses.some(v6) ? [`route add default via ${gateways.v6}`] : []),
    ];
    const backendRoutes = (options.backendDefaultRoute ?? true) ? defaults(backendAddresses, LB_BACKEND_SIDE) : [];
    await Promise.all([
      ipBatch(clientNetns, [
        ...clientAddresses.map((address) => addr('c0', address, 24, 64)),
        'link set c0 up',
        ...families(clientAddresses, LB_CLIENT_SIDE).map((address) => neigh(address, MAC.lc, 'c0')),
        ...defaults(clientAddresses, LB_CLIENT_SIDE),
      ]),
      ipBatch(backendNetns, [
        ...backendAddresses.map((address) => addr('b0', address, 24, 64)),
        'link set b0 up',
        ...families(backendAddresses, LB_BACKEND_SIDE).map((address) => neigh(address, MAC.lb, 'b0')),
        ...backendRoutes,
      ]),
    ]);

    const serverPorts = options.serverPorts ?? [8080, 8081];
    const [server] = await Promise.all([
      serverPorts.length > 0
        ? startServer(backendNetns, { addresses: backendAddresses, ports: serverPorts, protocols: options.serverProtocols })
        : undefined,
      waitOperUp([
        [clientNetns, 'c0'],
        [lbNetns, 'lc'],
        [lbNetns, 'lb'],
        [backendNetns, 'b0'],
      ]),
    ]);
    if (server) servers.push(server);

    const nft = createNftDriver();
    const namespaces = { client: clientNetns, lb: lbNetns, backend: backendNetns };
    let nextSourcePort = 20_000;

    const connectMany = async (connect: LbConnectOptions) => {
      if (destroyed) throw new Error('the topology has been destroyed');
      const source = connect.source ?? clientAddresses.find((address) => v6(address) === v6(connect.vip));
      for (const address of connect.sources?.length ? connect.sources : source !== undefined ? [source] : []) {
        if (!clientAddresses.includes(address)) throw new Error(`${address} is not a client address`);
      }
      if (nextSourcePort + connect.count > 65_000) throw new Error('this topology has used up its source ports; create a new one');
      const firstSourcePort = nextSourcePort;
      nextSourcePort += connect.count;
      // One long-lived client process per topology: a process start costs far more than a connection.
      agent ??= startClientAgent(clientNetns);
      return (await agent).run({ ...connect, source, firstSourcePort });
    };

    return {
      clientNetns,
      lbNetns,
      backendNetns,
      clientAddresses,
      backendAddresses,
      vips,
      lbClientSide: LB_CLIENT_SIDE,
      lbBackendSide: LB_BACKEND_SIDE,
      nft,
      applyRuleset: (text) => nft.apply(text, { netns: lbNetns }),
      async applyRulesetOrThrow(text) {
        const result = await nft.apply(text, { netns: lbNetns });
        if (!result.ok) throw new Error(`nft rejected the ruleset:\n${result.stderr}`);
      },
      async listRuleset() {
        const result = await execa('ip', ['netns', 'exec', lbNetns, findNft(), 'list', 'ruleset'], { reject: false, timeout: 10_000 });
        return String(result.stdout);
      },
      async exec(where, file, args) {
        const result = await execa('ip', ['netns', 'exec', namespaces[where], file, ...args], { reject: false, timeout: 30_000 });
        return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
      },
      async startServer(where, addresses, ports, protocols) {
        const server = await startServer(namespaces[where], { addresses, ports, protocols });
        servers.push(server);
        return server;
      },
      connectMany,
      traffic: async (connect) => summarize(await connectMany(connect)),
      destroy,
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}

/** Runs FN with a fresh topology and always destroys it afterwards. */
export async function withLbTopology<T>(options: LbTopologyOptions, fn: (topology: LbTopology) => Promise<T>): Promise<T> {
  const topology = await createLbTopology(options);
  try {
    return await fn(topology);
  } finally {
    await topology.destroy();
  }
}
