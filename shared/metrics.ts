// Prometheus metrics (prom-client): one registry per process, served at /metrics. Every name is
// `tidepool_*` with its unit in it (`_seconds`, `_bytes`, `_total`: Prometheus's naming, which
// dashboards and queries rely on to read a series right); the scaler's metrics are defined in
// scaler/metrics.ts, the runner's in runner/metrics.ts, and what both have (reconnections) here.
//
// A registry of our own, not prom-client's global one: tests run a scaler and runners' metrics
// side by side in one process, and a global registry would mix them (or refuse a second
// registration of the same name).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from './logger.js';

/** A registry with the process's own metrics (CPU, memory, event-loop lag: process_*, nodejs_*) when `process` is set. */
export function createRegistry(options: { process?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.process) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Reconnections after a lost broker or store connection; both processes have them. */
export class ReconnectMetrics {
  readonly broker: Counter;
  readonly store: Counter;

  constructor(registry: Registry) {
    this.broker = new Counter({
      name: 'tidepool_broker_reconnects_total',
      help: 'Broker (RabbitMQ) connections restored after being lost.',
      registers: [registry],
    });
    this.store = new Counter({
      name: 'tidepool_store_reconnects_total',
      help: 'Store (Redis) connections restored after being lost.',
      registers: [registry],
    });
  }

  /** Counts each time `redis` is ready again after losing its connection (not its first connect). */
  watchRedis(redis: Pick<Redis, 'on'>): void {
    let lost = false;
    redis.on('reconnecting', () => {
      lost = true;
    });
    redis.on('ready', () => {
      if (lost) this.store.inc();
      lost = false;
    });
  }
}

/** Answers GET /metrics with the registry in the Prometheus text format. */
export async function writeMetrics(registry: Registry, res: ServerResponse): Promise<void> {
  try {
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
    res.end(body);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`collecting metrics failed: ${(err as Error).message}\n`);
  }
}

export interface MetricsServer {
  server: Server;
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * A listener that serves only GET /metrics (what the runners and, off the dashboard, the scaler
 * expose for Prometheus to scrape). Resolves once listening; rejects when the port is taken.
 */
export async function serveMetrics(options: { registry: Registry; port: number; host: string; logger: Logger }): Promise<MetricsServer> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found: only /metrics is served here\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('method not allowed\n');
      return;
    }
    void writeMetrics(options.registry, res);
  });
  await listen(server, options.port, options.host);
  const port = (server.address() as AddressInfo).port;
  options.logger.info({ host: options.host, port }, 'serving /metrics');
  return { server, port, close: () => closeServer(server) };
}

/** server.listen as a promise that rejects on EADDRINUSE and the like. */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      server.on('error', () => undefined);
      resolve();
    });
  });
}

/** Stops accepting, ends idle keep-alive connections, and resolves once every connection is gone. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    // Requests still running (a long dead-letter listing) get a moment, then their sockets go.
    setTimeout(() => server.closeAllConnections(), 2_000).unref();
  });
}
