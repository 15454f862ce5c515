// What a measured stretch of work cost the Kubernetes API server, by the API server's own
// counters (apiserver_request_total on GET /metrics) rather than by counting our own calls: the
// requests that matter are also those of the controllers, the kubelet and KEDA's operator
// reacting to what we did. The cluster's components make requests all the time, so a
// measurement subtracts their idle rate over the same duration (measureIdle) and the bench's
// own requests (its lists and watches).
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { sleep } from '../../shared/backoff.js';

/** apiserver_request_total, summed by "group/resource[/subresource] VERB" (codes and scopes merged). */
export type Counters = Map<string, number>;

export async function scrapeApiRequests(kc: KubeConfig): Promise<Counters> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig names no cluster');
  const options: RequestOptions = { method: 'GET', headers: { accept: 'text/plain' } };
  await kc.applyToHTTPSOptions(options);
  const text = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest(new URL('/metrics', server), options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (body += s));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /metrics: HTTP ${res.statusCode ?? '?'}: ${body.slice(0, 200)}`))));
      res.on('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error('GET /metrics: no answer in 15 s')));
    req.on('error', reject);
    req.end();
  });
  const counters: Counters = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const close = line.lastIndexOf('}');
    const labels = new Map<string, string>();
    for (const m of line.slice(line.indexOf('{') + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels.set(m[1]!, m[2]!);
    const value = Number(line.slice(close + 1).trim());
    if (!Number.isFinite(value)) continue;
    const resource = labels.get('resource') ?? '';
    const subresource = labels.get('subresource') ?? '';
    // Non-resource requests (/healthz, /api, /metrics) have their path as subresource. Groups
    // are left out: resource names do not clash here (events of both groups are events).
    const what = resource ? `${resource}${subresource ? `/${subresource}` : ''}` : `nonresource:${subresource}`;
    const key = `${what} ${labels.get('verb') ?? '?'}`;
    counters.set(key, (counters.get(key) ?? 0) + value);
  }
  if (counters.size === 0) throw new Error('GET /metrics has no apiserver_request_total sample');
  return counters;
}

export function subtract(after: Counters, before: Counters): Counters {
  const out: Counters = new Map();
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out.set(k, d);
  }
  return out;
}

export const total = (c: Counters): number => [...c.values()].reduce((a, b) => a + b, 0);

/** jobs, pods, secrets, leases, events, other: by the resource of a counter key. */
function category(key: string): string {
  const resource = key.split(/[/ ]/, 1)[0]!;
  return ['jobs', 'pods', 'secrets', 'leases', 'events'].includes(resource) ? resource : 'other';
}

/**
 * A batch's API requests net of the cluster's own background traffic (`idle`, scaled to the
 * batch's duration) and of the bench's own `ownRequests`, in all and per sync of `n`: by
 * category and the largest "resource verb" entries.
 */
export function apiCost(gross: Counters, idle: Counters, scale: number, ownRequests: number, n: number) {
  const net: Counters = new Map();
  for (const key of new Set([...gross.keys(), ...idle.keys()])) net.set(key, (gross.get(key) ?? 0) - (idle.get(key) ?? 0) * scale);
  const idleRequests = total(idle) * scale;
  const netRequests = total(gross) - idleRequests - ownRequests;
  const byCategory: Record<string, number> = { jobs: 0, pods: 0, secrets: 0, leases: 0, events: 0, other: 0 };
  for (const [key, v] of net) byCategory[category(key)]! += v / n;
  byCategory.other! -= ownRequests / n; // the bench's own lists and watches
  const top = [...net].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]): [string, number] => [k, round(v / n, 2)]);
  return { idleRequests, netRequests, byCategory, top };
}

/** The requests the cluster makes on its own over `windowMs`, with nothing of ours running. */
export async function measureIdle(kc: KubeConfig, windowMs: number): Promise<{ idle: Counters; idleMs: number }> {
  const start = await scrapeApiRequests(kc);
  const t0 = Date.now();
  await sleep(windowMs);
  const end = await scrapeApiRequests(kc);
  return { idle: subtract(end, start), idleMs: Date.now() - t0 };
}

const round = (x: number, digits = 0): number => Math.round(x * 10 ** digits) / 10 ** digits;
