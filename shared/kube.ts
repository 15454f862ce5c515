// Kubernetes client plumbing shared by the adapters: loading a kubeconfig and reading the
// status codes an adapter acts on: 409 on create (already there), 404 on delete (already gone),
// 429 (the API server asks for fewer requests: back off).
import { ApiException, KubeConfig, type V1ResourceRequirements } from '@kubernetes/client-node';
import type { Config } from './config.js';
import { parseQuantity } from './units.js';

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

/**
 * The labels every runner Job, connector pod and secret of one installation carries: several
 * installations (or tests) share a namespace, and each watches and sweeps only its own.
 */
export function installationSelector(config: Pick<Config, 'prefix'>): Record<string, string> {
  return { 'tidepool.io/prefix': config.prefix };
}

/** Labels as a label selector (`k=v,k=v`). */
export function labelSelector(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const code = (err as { code?: unknown; statusCode?: unknown } | null)?.code ?? (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

export const isConflict = (err: unknown) => statusCode(err) === 409;
export const isNotFound = (err: unknown) => statusCode(err) === 404;
export const isTooManyRequests = (err: unknown) => statusCode(err) === 429;

export function kubeErrorMessage(err: unknown): string {
  if (err instanceof ApiException) {
    let body = err.body as { message?: string } | string | undefined;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body) as { message?: string }; // a Status object, usually
      } catch {
        // plain text: keep it
      }
    }
    const message = typeof body === 'string' ? body : body?.message;
    return `HTTP ${err.code}${message ? `: ${message}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

export interface ResourceSettings {
  requests?: { cpu?: string | undefined; memory?: string | undefined } | undefined;
  limits?: { cpu?: string | undefined; memory?: string | undefined } | undefined;
}

/**
 * A container's resources from layered settings (installation defaults, then per-connector
 * overrides): later layers win per field, and empty values mean "not set".
 */
export function resourceRequirements(...layers: (ResourceSettings | undefined)[]): V1ResourceRequirements | undefined {
  const pick = (part: 'requests' | 'limits') => {
    const merged: Record<string, string> = {};
    for (const layer of layers) {
      for (const [k, v] of Object.entries(layer?.[part] ?? {})) if (v) merged[k] = v;
    }
    return Object.keys(merged).length > 0 ? merged : undefined;
  };
  const requests = pick('requests');
  const limits = pick('limits');
  // A connection that lowers a limit below the installation's default request means "this
  // little": the API server would refuse request > limit, so the request comes down with it.
  for (const [k, limit] of Object.entries(limits ?? {})) {
    const request = requests?.[k];
    if (request !== undefined && (parseQuantity(request) ?? 0) > (parseQuantity(limit) ?? Infinity)) requests![k] = limit;
  }
  if (!requests && !limits) return undefined;
  return { ...(requests ? { requests } : {}), ...(limits ? { limits } : {}) };
}
