// The headers a failed sync carries: on its way to a delay queue (for the next attempt) and to
// the dead-letter queue (for an operator). One builder, so both say the same things the same way.
import type { FailureInfo } from '../../shared/errors.js';
import { HEADERS } from '../../shared/messages.js';

/** Longest reason kept (characters). */
const MAX_REASON = 4000;
/** Longest stderr line kept in a header (characters). */
const MAX_STDERR_LINE = 500;
/**
 * Stderr bytes kept per connector, on top of the line count (stderrTailLines). All headers of a
 * message travel in one AMQP frame (128 KiB with amqplib's defaults) and amqplib encodes them
 * into a 64 KiB scratch buffer: a message whose headers do not fit cannot be published, and a
 * dead letter that cannot be published is no dead letter.
 */
export const STDERR_HEADER_BYTES = 16 * 1024;

/** Headers the broker sets on delivery and dead-lettering; never copied into a new message. */
const BROKER_HEADER = /^x-(death|first-death-.*|last-death-.*|delivery-count|acquired-count)$/;

/** The headers of a delivery that a message republished in its place keeps: all but the broker's (and `drop`). */
export function carriedHeaders(old: Readonly<Record<string, unknown>> | undefined, drop: readonly string[] = []): Record<string, unknown> {
  const headers: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(old ?? {})) if (!BROKER_HEADER.test(name) && !drop.includes(name)) headers[name] = value;
  return headers;
}

export interface FailureContext {
  /** The value of the attempt header on the new message. */
  attempt: number;
  runnerId: string;
  /** Known when the body is a sync request, or at least JSON naming them. */
  syncId?: string | undefined;
  connectionId?: string | undefined;
  now?: Date;
}

/**
 * The headers of the message that replaces a failed delivery: the old ones (minus the broker's
 * own and stale stderr), then the failure. `withStderr`: the connectors' stderr tails (dead
 * letters; a retry's run record has them, the message need not carry them around).
 */
export function failureHeaders(old: Readonly<Record<string, unknown>> | undefined, failure: FailureInfo, context: FailureContext, withStderr: boolean): Record<string, unknown> {
  const now = (context.now ?? new Date()).toISOString();
  const headers = carriedHeaders(old, [HEADERS.stderrSource, HEADERS.stderrDestination]);
  const firstFailureAt = old?.[HEADERS.firstFailureAt];
  Object.assign(headers, {
    [HEADERS.attempt]: context.attempt,
    [HEADERS.reason]: failure.message.slice(0, MAX_REASON),
    [HEADERS.origin]: failure.origin,
    [HEADERS.type]: failure.type,
    [HEADERS.retryable]: failure.retryable,
    [HEADERS.runner]: context.runnerId,
    [HEADERS.firstFailureAt]: typeof firstFailureAt === 'string' ? firstFailureAt : now,
    [HEADERS.lastFailureAt]: now,
    ...(context.syncId !== undefined ? { [HEADERS.syncId]: context.syncId } : {}),
    ...(context.connectionId !== undefined ? { [HEADERS.connectionId]: context.connectionId } : {}),
  });
  if (withStderr) {
    headers[HEADERS.stderrSource] = JSON.stringify(tailWithin(failure.stderr?.source ?? [], STDERR_HEADER_BYTES));
    headers[HEADERS.stderrDestination] = JSON.stringify(tailWithin(failure.stderr?.destination ?? [], STDERR_HEADER_BYTES));
  }
  return headers;
}

/** The last lines, each cut to MAX_STDERR_LINE, that fit in `budget` bytes as a JSON array. */
export function tailWithin(lines: readonly string[], budget: number): string[] {
  const kept: string[] = [];
  let used = 2; // []
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = (lines[i] ?? '').slice(0, MAX_STDERR_LINE);
    const cost = Buffer.byteLength(JSON.stringify(line)) + 1;
    if (used + cost > budget) break;
    used += cost;
    kept.push(line);
  }
  return kept.reverse();
}

/** syncId and connectionId from a body that is JSON but perhaps not a valid sync request. */
export function idsFromBody(body: Buffer): { syncId?: string; connectionId?: string } {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return {};
  }
  if (!json || typeof json !== 'object') return {};
  const { syncId, connectionId } = json as Record<string, unknown>;
  const ok = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 200;
  return { ...(ok(syncId) ? { syncId } : {}), ...(ok(connectionId) ? { connectionId } : {}) };
}
