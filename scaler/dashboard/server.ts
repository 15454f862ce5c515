// The scaler's dashboard: a page (static HTML/JS/CSS and uPlot, no build step), the JSON API
// under /api/ (api.ts) and /metrics, on node:http. Bound to loopback unless configured otherwise;
// with dashboardToken set, every request needs it (Authorization: Bearer, or the cookie the
// login form sets), and loadConfig refuses a non-loopback host without one.
//
// The token is never taken from a URL (URLs end up in access logs, browser history and Referer
// headers): a request with ?token= is refused. Wrong tokens are slowed down per client address
// (login-throttle.ts), whether sent to /login, as a bearer token or as the cookie.
//
// Browser attacks closed here, with or without a token:
// - DNS rebinding (a page of another site whose name resolves to 127.0.0.1 reading the API):
//   without a token, requests must name a loopback Host.
// - Cross-site requests to the API, whatever their method (a page of another site embedding
//   <img src=".../api/dead-letters">, or posting a form): refused by Sec-Fetch-Site and Origin
//   (crossSiteProblem). Listing dead letters is a read that holds every letter while it runs,
//   so even a GET is not harmless to let another site trigger.
// - Cross-site form posts, again: state-changing requests must be JSON, which a form cannot send
//   without a CORS preflight, and none is ever granted.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Registry } from 'prom-client';
import { isLoopbackHost, type Config } from '../../shared/config.js';
import { tlsFiles, type TlsFileSetting } from '../../shared/tls.js';
import type { Logger } from '../../shared/logger.js';
import { closeServer, listen, writeMetrics } from '../../shared/metrics.js';
import type { Store } from '../../shared/store/index.js';
import type { ScalerSnapshot } from '../loop.js';
import { ApiError, DashboardApi, DashboardBroker, type ApiRequest } from './api.js';
import { LoginThrottle } from './login-throttle.js';

export interface DashboardOptions {
  config: Pick<Config, 'prefix' | 'amqpUrl' | 'pollInterval' | 'deliveryLimit' | 'maxAttempts' | 'dashboardPort' | 'dashboardHost' | 'dashboardToken' | TlsFileSetting>;
  store: Store;
  logger: Logger;
  /** Served at /metrics. */
  registry: Registry;
  /** The scaler's latest tick. */
  snapshot: () => ScalerSnapshot | undefined;
}

export interface Dashboard {
  server: Server;
  port: number;
  /** http://host:port/ */
  url: string;
  close(): Promise<void>;
}

const COOKIE = 'tidepool_dashboard';
const MAX_BODY_BYTES = 64 * 1024;

const HERE = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** The files the page is made of: ours (public/, copied to dist by the build) and uPlot's, straight from node_modules. */
const ASSETS: Readonly<Record<string, { file: () => string; type: string }>> = {
  '/': { file: () => join(HERE, 'public', 'index.html'), type: 'text/html; charset=utf-8' },
  '/assets/app.js': { file: () => join(HERE, 'public', 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/style.css': { file: () => join(HERE, 'public', 'style.css'), type: 'text/css; charset=utf-8' },
  '/assets/uPlot.iife.min.js': { file: () => join(uplotDir(), 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/uPlot.min.css': { file: () => join(uplotDir(), 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

function uplotDir(): string {
  // uplot's package.json has no "exports": its main file sits in dist/ next to the browser builds.
  return dirname(require.resolve('uplot'));
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
} as const;

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { config, logger } = options;
  const log = logger.child({ component: 'dashboard' });
  const broker = new DashboardBroker(config.amqpUrl, log, tlsFiles(config, 'amqp'));
  const api = new DashboardApi({ config, store: options.store, logger: log, snapshot: options.snapshot }, broker);
  const token = config.dashboardToken === '' ? undefined : digest(config.dashboardToken);
  const throttle = new LoginThrottle();
  const cache = new Map<string, Buffer>();
  let port = config.dashboardPort;

  const asset = async (path: string): Promise<Buffer> => {
    let body = cache.get(path);
    if (!body) {
      body = await readFile(ASSETS[path]!.file());
      cache.set(path, body);
    }
    return body;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const isApi = path === '/api' || path.startsWith('/api/');

    if (!token && !allowedHost(req.headers.host, port)) {
      return send(res, 403, isApi, `host "${req.headers.host ?? ''}" not allowed: without dashboardToken the dashboard answers only requests to a loopback address (DNS rebinding protection)`);
    }
    if (url.searchParams.has('token')) {
      return send(res, 400, isApi, 'the dashboard token is never taken from a URL (URLs end up in logs and browser history): send it as Authorization: Bearer <dashboardToken>, or sign in at /login; if it was sent in a URL before, rotate it');
    }
    if (isApi) {
      const problem = crossSiteProblem(req);
      if (problem !== undefined) return send(res, 403, true, problem);
    }
    if (path === '/login') return login(req, res);
    if (token) {
      const credential = credentialOf(req);
      const wait = credential === undefined ? 0 : throttle.waitFor(req.socket.remoteAddress);
      if (wait > 0) return tooManyAttempts(res, isApi, wait);
      if (credential === undefined || !safeEqual(digest(credential), token)) {
        if (credential !== undefined) throttle.failed(req.socket.remoteAddress);
        if (!isApi && path !== '/metrics' && method === 'GET') return loginPage(res, 401, credential === undefined ? undefined : 'wrong token');
        res.setHeader('www-authenticate', 'Bearer realm="tidepool"');
        return send(res, 401, isApi, 'unauthorized: this dashboard needs its token (Authorization: Bearer <dashboardToken>)');
      }
    }

    if (path === '/metrics') {
      if (method !== 'GET' && method !== 'HEAD') return send(res, 405, false, 'method not allowed');
      return writeMetrics(options.registry, res);
    }
    if (isApi) {
      let body: Record<string, unknown> | undefined;
      if (method === 'POST') body = await readJsonBody(req);
      else if (method !== 'GET' && method !== 'HEAD') throw new ApiError(405, `method ${method} not allowed`);
      const apiRequest: ApiRequest = { method, path, query: url.searchParams, body };
      const answer = await api.handle(apiRequest);
      return json(res, answer.status, answer.body);
    }
    if (path in ASSETS) {
      if (method !== 'GET' && method !== 'HEAD') return send(res, 405, false, 'method not allowed');
      const body = await asset(path);
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': ASSETS[path]!.type, 'cache-control': 'no-cache' });
      res.end(method === 'HEAD' ? undefined : body);
      return;
    }
    return send(res, 404, false, `not found: ${path}`);
  };

  const login = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!token) return redirect(res, '/');
    if (req.method === 'GET') return loginPage(res, 200);
    if (req.method !== 'POST') return send(res, 405, false, 'method not allowed');
    const wait = throttle.waitFor(req.socket.remoteAddress);
    if (wait > 0) return tooManyAttempts(res, false, wait);
    // The one form post accepted: it carries the token itself, so a forged one gains nothing.
    const text = (await readBody(req)).toString('utf8');
    const given = new URLSearchParams(text).get('token') ?? '';
    if (!safeEqual(digest(given), token)) {
      throttle.failed(req.socket.remoteAddress);
      return loginPage(res, 401, 'wrong token');
    }
    res.setHeader('set-cookie', `${COOKIE}=${encodeURIComponent(given)}; HttpOnly; SameSite=Strict; Path=/`);
    return redirect(res, '/');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const isApi = (req.url ?? '').startsWith('/api');
      if (err instanceof ApiError) {
        send(res, err.status, isApi, err.message);
        return;
      }
      log.error({ err: (err as Error).message, url: req.url, method: req.method }, 'dashboard request failed');
      send(res, 500, isApi, `internal error: ${(err as Error).message}`);
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await listen(server, config.dashboardPort, config.dashboardHost);
  port = (server.address() as AddressInfo).port;
  const host = config.dashboardHost.includes(':') ? `[${config.dashboardHost}]` : config.dashboardHost;
  const url = `http://${host}:${port}/`;
  log.info({ url, auth: token ? 'bearer token' : 'none (loopback)' }, 'dashboard listening');
  return {
    server,
    port,
    url,
    close: async () => {
      await closeServer(server);
      await broker.close();
    },
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant-time comparison of two digests (equal length by construction). */
function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The token a request presents (Authorization: Bearer, else the login cookie), if any. */
function credentialOf(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice(7).trim();
  return cookies(req.headers.cookie)[COOKIE];
}

function cookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    try {
      out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      // A cookie that is not ours, badly encoded: ignored.
    }
  }
  return out;
}

/** Host header names a loopback address (with our port, or none). */
function allowedHost(host: string | undefined, port: number): boolean {
  if (!host) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  if (!m) return false;
  if (m[2] !== undefined && Number(m[2]) !== port) return false;
  return isLoopbackHost(m[1]!);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Why an API request comes from a page of another origin, or undefined when it does not — for
 * every method: the one check against cross-site requests.
 *
 * Sec-Fetch-Site (set by the browser, never by a page's script): `same-origin` is the dashboard's
 * own page and `none` a URL typed into the address bar or a bookmark; both pass. `cross-site`
 * is refused, and so is `same-site`: another port or another subdomain of the same site is
 * another application, and the dashboard's page never calls the API from anywhere but its own
 * origin. Origin is checked as well when sent (browsers that do not send Sec-Fetch-Site send it
 * on writes), and must name this very server; `Origin: null` (a sandboxed frame, a data: URL) is
 * refused. Non-browser clients (curl, the CLI, scripts) send neither and pass.
 */
function crossSiteProblem(req: IncomingMessage): string | undefined {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return `cross-site request refused (Sec-Fetch-Site: ${site}): the API answers only the dashboard's own page and clients that are not browsers`;
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !namesThisServer(origin, req.headers.host)) return `cross-origin request refused (Origin ${origin})`;
  return undefined;
}

function namesThisServer(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

function tooManyAttempts(res: ServerResponse, asJson: boolean, waitMs: number): void {
  res.setHeader('retry-after', String(Math.ceil(waitMs / 1000)));
  send(res, 429, asJson, `too many wrong tokens from this address: try again in ${Math.ceil(waitMs / 1000)} s`);
}

/**
 * A POST's body: JSON, always declared as such, even when empty — the content type is what a
 * cross-site form or no-cors fetch cannot set, so it is checked before anything else.
 */
async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new ApiError(415, `content-type must be application/json (got "${type || 'none'}")`);
  const raw = await readBody(req);
  if (raw.length === 0) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new ApiError(400, `body is not JSON: ${(err as Error).message}`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'body must be a JSON object');
  return body as Record<string, unknown>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function send(res: ServerResponse, status: number, asJson: boolean, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (asJson) return json(res, status, { error: message });
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`${message}\n`);
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location, 'cache-control': 'no-store' });
  res.end();
}

function loginPage(res: ServerResponse, status: number, problem?: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tidepool dashboard: sign in</title></head>
<body><main>
<h1>tidepool</h1>
<p>This dashboard needs its token (the scaler's <code>TIDEPOOL_DASHBOARD_TOKEN</code>).</p>
${problem ? `<p role="alert"><strong>${problem}</strong></p>` : ''}
<form method="post" action="/login"><label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label> <button type="submit">Sign in</button></form>
</main></body></html>`);
}
