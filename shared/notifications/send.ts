// One HTTP delivery of one event to one target: the body in the target's format, signed when the
// target has a secret, within a timeout. Says how it went; never throws.
import { PACKAGE_VERSION } from '../paths.js';
import type { NotificationEvent } from './events.js';
import { renderBody } from './payload.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signature } from './signature.js';
import { signingSecret, type Target } from './targets.js';

/** Why a delivery failed, as the failures metric labels it. */
export type FailureReason = 'timeout' | 'network' | 'http_4xx' | 'http_5xx' | 'http_other' | 'secret';

export type SendResult = { ok: true; status: number } | { ok: false; reason: FailureReason; status?: number; message: string };

export interface SendOptions {
  timeoutMs: number;
  /** Which attempt this is (1 = first), in a header: receivers see retries as such. */
  attempt: number;
  env?: NodeJS.ProcessEnv;
}

export async function sendEvent(event: NotificationEvent, target: Target, options: SendOptions): Promise<SendResult> {
  const body = renderBody(event, target.format);
  const timestamp = Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': `tidepool/${PACKAGE_VERSION}`,
    'x-tidepool-event': event.type,
    'x-tidepool-event-id': event.id,
    'x-tidepool-delivery-attempt': String(options.attempt),
    [TIMESTAMP_HEADER]: String(timestamp),
  };
  try {
    const secret = signingSecret(target, options.env);
    if (secret !== undefined) headers[SIGNATURE_HEADER] = signature(secret, timestamp, body);
  } catch (err) {
    return { ok: false, reason: 'secret', message: (err as Error).message };
  }
  try {
    // No redirects: a 3xx is the receiver's misconfiguration, and following one would send the
    // signed event somewhere nobody configured.
    const res = await fetch(target.url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(options.timeoutMs) });
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
    const reason = res.status >= 500 ? 'http_5xx' : res.status >= 400 ? 'http_4xx' : 'http_other';
    return { ok: false, reason, status: res.status, message: `HTTP ${res.status}` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return { ok: false, reason: 'timeout', message: `no answer within ${options.timeoutMs} ms` };
    return { ok: false, reason: 'network', message: e.cause?.code ?? e.cause?.message ?? e.message };
  }
}

/** A target's URL as logs and listings show it: scheme, host and the path's first segment (a Slack webhook's path is its secret). */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    const segments = u.pathname.split('/').filter(Boolean);
    return `${u.protocol}//${u.host}/${segments[0] ?? ''}${segments.length > 1 ? '/…' : ''}`;
  } catch {
    return '(not a URL)';
  }
}
