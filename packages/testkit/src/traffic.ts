import { existsSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { execa, type ResultPromise } from 'execa';

/**
 * Traffic helpers for kernel tests: tiny node servers that report who connected, and a client that opens many
 * connections in one process and reports where each one landed.
 *
 * Safety: every address handed to these helpers must lie in a documentation range (192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24, 2001:db8::/32) or loopback; anything else throws before a packet is sent.
 */

export type TrafficProtocol = 'tcp' | 'udp';

const documentation = new BlockList();
documentation.addSubnet('192.0.2.0', 24, 'ipv4');
documentation.addSubnet('198.51.100.0', 24, 'ipv4');
documentation.addSubnet('203.0.113.0', 24, 'ipv4');
documentation.addSubnet('127.0.0.0', 8, 'ipv4');
documentation.addSubnet('2001:db8::', 32, 'ipv6');
documentation.addAddress('::1', 'ipv6');

/** True for an address the kit may use: the documentation ranges and loopback. */
export function isDocumentationAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return documentation.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export function assertDocumentationAddress(address: string): void {
  if (!isDocumentationAddress(address)) {
    throw new Error(
      `refusing to use ${JSON.stringify(address)}: test traffic must stay in 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32 or loopback`,
    );
  }
}

/** `198.51.100.10:8080` or `[2001:db8:b::10]:8080`. */
export function formatEndpoint(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/** True when the kernel offers SCTP sockets (the module is loaded or built in). Node itself has no SCTP. */
export function sctpAvailable(): boolean {
  return existsSync('/proc/sys/net/sctp');
}

// ---------------------------------------------------------------------------------------------------------------
// Server

/**
 * The server: binds every (address, port, protocol) it is given — one socket per address, so UDP replies leave from
 * the address the datagram was sent to and conntrack can undo the DNAT — prints `ready`, and answers each TCP
 * connection or UDP datagram with `<address>:<port> saw <peer address>:<peer port>\n` (then closes the connection).
 * It exits when its stdin closes, so it never outlives the test process.
 */
const SERVER_SCRIPT = String.raw`
const net = require('node:net');
const dgram = require('node:dgram');
const config = JSON.parse(process.argv[1]);
const fmt = (a, p) => (net.isIP(a) === 6 ? '[' + a + ']:' + p : a + ':' + p);
let pending = config.listen.length;
const done = () => { if (--pending === 0) process.stdout.write('ready\n'); };
const fail = (what, error) => { process.stderr.write('cannot listen on ' + what + ': ' + error.message + '\n'); process.exit(2); };
for (const { address, port, protocol } of config.listen) {
  const what = protocol + ' ' + fmt(address, port);
  if (protocol === 'tcp') {
    const server = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.end(fmt(address, port) + ' saw ' + fmt(socket.remoteAddress, socket.remotePort) + '\n');
    });
    server.on('error', (error) => fail(what, error));
    server.listen({ host: address, port, backlog: 1024 }, done);
  } else {
    const socket = dgram.createSocket(net.isIP(address) === 6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
    socket.on('error', (error) => fail(what, error));
    socket.on('message', (message, peer) => {
      socket.send(fmt(address, port) + ' saw ' + fmt(peer.address, peer.port) + '\n', peer.port, peer.address);
    });
    socket.bind({ address, port, exclusive: true }, done);
  }
}
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
`;

export interface ServerOptions {
  readonly addresses: readonly string[];
  readonly ports: readonly number[];
  /** Default: tcp and udp. */
  readonly protocols?: readonly TrafficProtocol[];
  /** How long to wait for every socket to be bound (default 10 s). */
  readonly readyTimeoutMs?: number;
}

export interface ServerHandle {
  readonly netns: string;
  readonly pid: number | undefined;
  /** What the server listens on, e.g. `tcp 198.51.100.10:8080`. */
  readonly listening: readonly string[];
  stop(): Promise<void>;
}

/** Starts one server process inside NETNS listening on every address × port × protocol. Resolves once all are bound. */
export async function startServer(netns: string, options: ServerOptions): Promise<ServerHandle> {
  const protocols = options.protocols ?? ['tcp', 'udp'];
  const listen: { address: string; port: number; protocol: TrafficProtocol }[] = [];
  for (const address of options.addresses) {
    assertDocumentationAddress(address);
    for (const port of options.ports) {
      for (const protocol of protocols) listen.push({ address, port, protocol });
    }
  }
  if (listen.length === 0) throw new Error('startServer: nothing to listen on');
  const child = execa('ip', ['netns', 'exec', netns, process.execPath, '-e', SERVER_SCRIPT, JSON.stringify({ listen })], {
    stdin: 'pipe',
    reject: false,
    buffer: false,
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin?.end();
      const killer = setTimeout(() => child.kill('SIGKILL'), 2_000);
      try {
        await child;
      } finally {
        clearTimeout(killer);
      }
    }
  };
  try {
    await waitForReady(child, options.readyTimeoutMs ?? 10_000);
  } catch (error) {
    child.kill('SIGKILL');
    await child;
    throw error;
  }
  return {
    netns,
    pid: child.pid,
    listening: listen.map((item) => `${item.protocol} ${formatEndpoint(item.address, item.port)}`),
    stop,
  };
}

function waitForReady(child: ResultPromise, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const finish = (error?: Error) => {
      clearTimeout(timer);
      child.stdout?.off('data', onStdout);
      child.stderr?.off('data', onStderr);
      if (error) reject(error);
      else resolve();
    };
    const onStdout = (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('ready\n')) finish();
    };
    const onStderr = (chunk: Buffer) => {
      stderr += chunk.toString();
    };
    const timer = setTimeout(() => finish(new Error(`server not ready after ${timeoutMs} ms: ${stderr.trim()}`)), timeoutMs);
    child.stdout?.on('data', onStdout);
    child.stderr?.on('data', onStderr);
    child.then(
      (result) => finish(new Error(`server exited (code ${result.exitCode}) before it was ready: ${stderr.trim()}`)),
      (error: Error) => finish(error),
    );
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Client

/**
 * The client: opens COUNT connections (TCP) or sends COUNT datagrams from fresh sockets (UDP), at most CONCURRENCY
 * at a time, each from its own explicit source port so no two flows ever share a conntrack tuple.
 * One-shot mode (config in argv): prints one JSON array of results and exits. Agent mode (no argv): reads one JSON
 * request `{id, ...config}` per stdin line, runs requests concurrently, answers each with a line `{id, results}`,
 * and exits when stdin closes: one long-lived process per client namespace instead of one per batch.
 */
const CLIENT_SCRIPT = String.raw`
const net = require('node:net');
const dgram = require('node:dgram');
const LINE = /^(\[([^\]]+)\]|([^:\s]+)):(\d+) saw (\[([^\]]+)\]|([^:\s]+)):(\d+)\s*$/;
function parse(text) {
  const m = LINE.exec(text);
  if (!m) return { ok: false, error: 'garbled', message: JSON.stringify(text) };
  const backendAddress = m[2] || m[3];
  const sawSource = m[6] || m[7];
  return { ok: true, backend: m[1] + ':' + m[4], backendAddress, backendPort: Number(m[4]), sawSource, sawPort: Number(m[8]) };
}
function classify(error) {
  switch (error && error.code) {
    case 'ECONNREFUSED': return 'refused';
    case 'ECONNRESET': case 'EPIPE': return 'reset';
    case 'EHOSTUNREACH': case 'ENETUNREACH': case 'EACCES': case 'EPERM': case 'EADDRNOTAVAIL': return 'unreachable';
    default: return 'error';
  }
}
function once(c, index) {
  const family = net.isIP(c.vip);
  const localPort = c.firstSourcePort + index;
  const source = c.sources.length ? c.sources[index % c.sources.length] : undefined;
  return new Promise((resolve) => {
    let settled = false;
    let cleanup = () => {};
    const finish = (result) => { if (settled) return; settled = true; clearTimeout(timer); cleanup(); resolve({ source, sourcePort: localPort, ...result }); };
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout', message: 'no answer within ' + c.timeoutMs + ' ms' }), c.timeoutMs);
    if (c.protocol === 'tcp') {
      const options = { host: c.vip, port: c.port, family, localPort };
      if (source) options.localAddress = source;
      const socket = net.connect(options);
      cleanup = () => socket.destroy();
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk) => { data += chunk; });
      socket.on('end', () => finish(data ? parse(data) : { ok: false, error: 'empty', message: 'closed without an answer' }));
      socket.on('error', (error) => finish(data ? parse(data) : { ok: false, error: classify(error), message: error.code + ': ' + error.message }));
    } else {
      const socket = dgram.createSocket(family === 6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
      cleanup = () => { try { socket.close(); } catch {} };
      socket.on('error', (error) => finish({ ok: false, error: classify(error), message: error.code + ': ' + error.message }));
      socket.on('message', (message) => finish(parse(message.toString('utf8'))));
      const bind = { port: localPort, exclusive: true };
      if (source) bind.address = source;
      socket.bind(bind, () => {
        socket.connect(c.port, c.vip, (error) => {
          if (error) return finish({ ok: false, error: classify(error), message: String(error) });
          socket.send('hello\n', (error) => { if (error) finish({ ok: false, error: classify(error), message: String(error) }); });
        });
      });
    }
  });
}
async function run(c) {
  const results = new Array(c.count);
  let next = 0;
  const worker = async () => { while (next < c.count) { const i = next++; results[i] = await once(c, i); } };
  await Promise.all(Array.from({ length: Math.min(c.concurrency, c.count) }, worker));
  return results;
}
if (process.argv[1]) {
  run(JSON.parse(process.argv[1])).then((results) => process.stdout.write(JSON.stringify(results)));
} else {
  let buffer = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const request = JSON.parse(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      run(request).then((results) => process.stdout.write(JSON.stringify({ id: request.id, results }) + '\n'));
    }
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdout.write('ready\n');
}
`;

export type ConnectFailure = 'timeout' | 'refused' | 'reset' | 'unreachable' | 'empty' | 'garbled' | 'error';

export type ConnectResult =
  | {
      readonly ok: true;
      /** The client address the connection was made from (undefined: the kernel's choice). */
      readonly source?: string;
      readonly sourcePort: number;
      /** `198.51.100.10:8080` or `[2001:db8:b::10]:8080`: the server socket that answered. */
      readonly backend: string;
      readonly backendAddress: string;
      readonly backendPort: number;
      /** The peer address the server saw: the client (no SNAT) or the LB (masquerade). */
      readonly sawSource: string;
      readonly sawPort: number;
    }
  | {
      readonly ok: false;
      readonly source?: string;
      readonly sourcePort: number;
      readonly error: ConnectFailure;
      readonly message: string;
    };

export interface ConnectOptions {
  readonly netns: string;
  readonly vip: string;
  readonly port: number;
  /** Default tcp. */
  readonly protocol?: TrafficProtocol;
  readonly count: number;
  /** Source address (must be one of the client namespace's addresses); default: the kernel's choice. */
  readonly source?: string;
  /** Several source addresses: connection i is made from sources[i % sources.length]. Overrides source. */
  readonly sources?: readonly string[];
  /**
   * Per connection; default 2000 ms: a flow that should work must not time out on a loaded machine. Pass a shorter
   * timeout (500-1000 ms) when every flow is expected to be dropped.
   */
  readonly timeoutMs?: number;
  /** Connections in flight at once; default 8. Order does not matter for numgen counts, only the number of flows. */
  readonly concurrency?: number;
  /** Source ports firstSourcePort .. firstSourcePort+count-1 are used, one per connection. */
  readonly firstSourcePort: number;
}

type ClientConfig = {
  vip: string;
  port: number;
  protocol: TrafficProtocol;
  count: number;
  sources: string[];
  timeoutMs: number;
  concurrency: number;
  firstSourcePort: number;
};

function clientConfig(options: Omit<ConnectOptions, 'netns'>): { config: ClientConfig; budget: number } {
  assertDocumentationAddress(options.vip);
  const sources = options.sources?.length ? [...options.sources] : options.source !== undefined ? [options.source] : [];
  for (const source of sources) assertDocumentationAddress(source);
  if (!Number.isInteger(options.count) || options.count < 1) throw new Error('client: count must be a positive integer');
  const timeoutMs = options.timeoutMs ?? 2_000;
  const concurrency = Math.max(1, options.concurrency ?? 8);
  if (options.firstSourcePort < 1024 || options.firstSourcePort + options.count > 65_535) {
    throw new Error(`client: source ports ${options.firstSourcePort}+${options.count} out of range`);
  }
  const config = {
    vip: options.vip,
    port: options.port,
    protocol: options.protocol ?? 'tcp',
    count: options.count,
    sources,
    timeoutMs,
    concurrency,
    firstSourcePort: options.firstSourcePort,
  };
  // Bound the whole run: every connection ends within timeoutMs, plus start-up and slack.
  const budget = Math.ceil(options.count / concurrency) * (timeoutMs + 200) + 15_000;
  return { config, budget };
}

/** Runs the client once in OPTIONS.netns (a fresh process) and returns one result per connection, in order. */
export async function runClient(options: ConnectOptions): Promise<ConnectResult[]> {
  const { config, budget } = clientConfig(options);
  const result = await execa('ip', ['netns', 'exec', options.netns, process.execPath, '-e', CLIENT_SCRIPT, JSON.stringify(config)], {
    reject: false,
    timeout: budget,
    stdin: 'ignore',
  });
  if (result.timedOut) throw new Error(`client did not finish within ${budget} ms`);
  if (result.exitCode !== 0) throw new Error(`client failed (exit ${result.exitCode}): ${String(result.stderr).trim()}`);
  return JSON.parse(String(result.stdout)) as ConnectResult[];
}

export interface ClientAgent {
  readonly netns: string;
  readonly pid: number | undefined;
  /** Like runClient, without starting a process; concurrent calls run concurrently. */
  run(options: Omit<ConnectOptions, 'netns'>): Promise<ConnectResult[]>;
  stop(): Promise<void>;
}

/** Starts a long-lived client process in NETNS; every run() is a request to it. */
export async function startClientAgent(netns: string): Promise<ClientAgent> {
  const child = execa('ip', ['netns', 'exec', netns, process.execPath, '-e', CLIENT_SCRIPT], {
    stdin: 'pipe',
    reject: false,
    buffer: false,
  });
  try {
    await waitForReady(child, 10_000);
  } catch (error) {
    child.kill('SIGKILL');
    await child;
    throw error;
  }
  const pending = new Map<number, { resolve: (results: ConnectResult[]) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  let buffer = '';
  let exited: Error | undefined;
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (!line.startsWith('{')) continue;
      const { id, results } = JSON.parse(line) as { id: number; results: ConnectResult[] };
      const waiter = pending.get(id);
      if (!waiter) continue;
      pending.delete(id);
      clearTimeout(waiter.timer);
      waiter.resolve(results);
    }
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  void child.then(() => {
    exited = new Error(`client agent in ${netns} exited: ${stderr.trim()}`);
    for (const waiter of pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(exited);
    }
    pending.clear();
  });
  return {
    netns,
    pid: child.pid,
    run(options) {
      const { config, budget } = clientConfig(options);
      if (exited) return Promise.reject(exited);
      const id = nextId++;
      return new Promise<ConnectResult[]>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`client agent did not answer within ${budget} ms`));
        }, budget);
        pending.set(id, { resolve, reject, timer });
        child.stdin?.write(`${JSON.stringify({ id, ...config })}\n`);
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin?.end();
        const killer = setTimeout(() => child.kill('SIGKILL'), 2_000);
        try {
          await child;
        } finally {
          clearTimeout(killer);
        }
      }
    },
  };
}

export interface TrafficSummary {
  readonly total: number;
  readonly ok: number;
  /** Successful connections per backend endpoint (`198.51.100.10:8080`). */
  readonly byBackend: Record<string, number>;
  /** Successful connections per backend address (port ignored). */
  readonly byBackendAddress: Record<string, number>;
  /** Successful connections per source address the servers saw. */
  readonly bySawSource: Record<string, number>;
  /** Failures per kind (`timeout`, `refused`, ...). */
  readonly failures: Record<string, number>;
  /** The same, per client source address (`default` when the kernel chose it). */
  readonly bySource: Record<string, { ok: number; byBackend: Record<string, number>; failures: Record<string, number> }>;
}

export function summarize(results: readonly ConnectResult[]): TrafficSummary {
  const byBackend: Record<string, number> = {};
  const byBackendAddress: Record<string, number> = {};
  const bySawSource: Record<string, number> = {};
  const failures: Record<string, number> = {};
  const bySource: TrafficSummary['bySource'] = {};
  let ok = 0;
  const bump = (record: Record<string, number>, key: string) => {
    record[key] = (record[key] ?? 0) + 1;
  };
  for (const result of results) {
    const perSource = (bySource[result.source ?? 'default'] ??= { ok: 0, byBackend: {}, failures: {} });
    if (result.ok) perSource.ok++;
    bump(result.ok ? perSource.byBackend : perSource.failures, result.ok ? result.backend : result.error);
    if (result.ok) {
      ok++;
      bump(byBackend, result.backend);
      bump(byBackendAddress, result.backendAddress);
      bump(bySawSource, result.sawSource);
    } else {
      bump(failures, result.error);
    }
  }
  return { total: results.length, ok, byBackend, byBackendAddress, bySawSource, failures, bySource };
}
