import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StatusDocument } from './model.js';
import type { WatchMetrics } from './metrics.js';

export interface StatusSource {
  ready(): boolean;
  status(): StatusDocument;
  metrics: WatchMetrics;
}

/**
 * The status server (node:http): GET /healthz, /readyz, /metrics (Prometheus text), /status (JSON).
 * Bound to 127.0.0.1 by default; it has no authentication and changes nothing.
 */
export async function startStatusServer(source: StatusSource, host: string, port: number): Promise<{ server: Server; address: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain; charset=utf-8', 'method not allowed\n');
    switch (path) {
      case '/healthz':
        return send(200, 'text/plain; charset=utf-8', 'ok\n');
      case '/readyz':
        return source.ready() ? send(200, 'text/plain; charset=utf-8', 'ready\n') : send(503, 'text/plain; charset=utf-8', 'not ready: no successful apply yet\n');
      case '/status':
        return send(200, 'application/json', `${JSON.stringify(source.status(), null, 2)}\n`);
      case '/metrics':
        source.metrics.text().then(
          (text) => send(200, source.metrics.registry.contentType, text),
          (error: Error) => send(500, 'text/plain; charset=utf-8', `metrics failed: ${error.message}\n`),
        );
        return;
      default:
        return send(404, 'text/plain; charset=utf-8', 'not found: try /healthz, /readyz, /metrics, /status\n');
    }
  });
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
  return { server, address: shown };
}
