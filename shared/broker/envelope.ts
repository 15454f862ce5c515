// The envelope of a sync message: every `x-tidepool-*` header is written and read here, and
// nowhere else. A sync request's body never changes on its way through retries, deferrals,
// dead letters and replays; its headers say which attempt it is and what happened to it. One
// module spells them, so the runner that writes a failure and the operator's tools that read it
// back cannot drift apart, and a change of the wire format is a change of this file.
//
// Reading is defensive throughout: a message may come from a runner, from the broker, from an
// older tidepool or from someone's script, so a header may be missing, of another type, or huge.
import type { MessageProperties } from 'amqplib';
import type { FailureInfo } from '../errors.js';

/** AMQP headers tidepool sets on sync messages (exported for tests that read messages raw). */
export const HEADERS = {
  /** The attempt this delivery is (1 = the first); on a dead letter, the attempts made. */
  attempt: 'x-tidepool-attempt',
  firstFailureAt: 'x-tidepool-first-failure-at',
  reason: 'x-tidepool-reason',
  origin: 'x-tidepool-failure-origin',
  type: 'x-tidepool-failure-type',
  /** A boolean: was the last failure retryable (a retryable dead letter ran out of attempts). */
  retryable: 'x-tidepool-failure-retryable',
  runner: 'x-tidepool-runner',
  lastFailureAt: 'x-tidepool-last-failure-at',
  stderrSource: 'x-tidepool-stderr-source',
  stderrDestination: 'x-tidepool-stderr-destination',
  /** The body's syncId and connectionId, on dead letters (absent when the body is no sync request): listable without parsing bodies. */
  syncId: 'x-tidepool-sync-id',
  connectionId: 'x-tidepool-connection-id',
  /** How many times the sync was put back because its connection stayed busy with another sync (a number). */
  deferrals: 'x-tidepool-deferrals',
  /** How many times an operator replayed this sync from the dead-letter queue (a number, 1 after the first replay). */
  replayed: 'x-tidepool-replayed',
  /** When it was last replayed (ISO 8601). */
  replayedAt: 'x-tidepool-replayed-at',
  /** A unique id of that replay (a UUID): ties the republished message to its confirm or return. */
  replayId: 'x-tidepool-replay-id',
  /**
   * When a message put in a delay queue (a retry, a deferral) is due back (ISO 8601, ms): where
   * its next wait in the syncs queue starts. The broker's own dead-lettering time has
   * one-second resolution, too coarse for delays of a few hundred ms.
   */
  dueAt: 'x-tidepool-due-at',
  /** Names of others' headers left off a republished message because they did not fit (CARRIED_HEADER_BYTES). */
  droppedHeaders: 'x-tidepool-dropped-headers',
} as const;

type Headers = Readonly<Record<string, unknown>>;

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

/**
 * Bytes of others' headers (not tidepool's, not the broker's) a republished message carries.
 * Anyone who can publish sets them, and what tidepool adds must still fit beside them (see
 * STDERR_HEADER_BYTES): a 65 KB header once made every republish fail, and the broker then
 * dead-lettered the message with its own "delivery limit" reason instead of tidepool's.
 */
export const CARRIED_HEADER_BYTES = 8 * 1024;
/** The most bytes (name and JSON value) each of tidepool's own headers takes as tidepool writes it. */
const OWN_HEADER_BYTES: ReadonlyMap<string, number> = new Map(
  Object.values(HEADERS).map((name): [string, number] => {
    if (name === HEADERS.reason) return [name, 256 + 4 * MAX_REASON];
    if (name === HEADERS.stderrSource || name === HEADERS.stderrDestination) return [name, 256 + 2 * STDERR_HEADER_BYTES];
    return [name, 512];
  }),
);
/** Longest list of dropped header names kept (characters). */
const MAX_DROPPED_NAMES = 1000;

/** Headers the broker sets on delivery and dead-lettering; never copied into a new message. */
const BROKER_HEADER = /^x-(death|first-death-.*|last-death-.*|delivery-count|acquired-count)$/;

/** tidepool headers that survive a replay; every other x-tidepool-* one is failure bookkeeping. */
const KEPT_ON_REPLAY: ReadonlySet<string> = new Set([HEADERS.syncId, HEADERS.connectionId, HEADERS.replayed, HEADERS.replayedAt]);

// ---------------------------------------------------------------------------------------------
// Writing

/** The headers of a newly published sync request: its first attempt (plus any the publisher adds). */
export function firstAttemptHeaders(extra: Headers = {}): Record<string, unknown> {
  return { [HEADERS.attempt]: 1, ...extra };
}

/** The headers of a delivery that a message republished in its place keeps: all but the broker's (and `drop`). */
function carriedHeaders(old: Headers | undefined, drop: (name: string) => boolean = () => false): Record<string, unknown> {
  const headers: Record<string, unknown> = {};
  const dropped: string[] = [];
  let budget = CARRIED_HEADER_BYTES;
  for (const [name, value] of Object.entries(old ?? {})) {
    if (BROKER_HEADER.test(name) || drop(name) || name === HEADERS.droppedHeaders) continue;
    const size = Buffer.byteLength(name) + jsonBytes(value);
    // tidepool's own are carried when no bigger than tidepool writes them (a publisher could
    // write any of them); others' share one budget.
    const own = OWN_HEADER_BYTES.get(name);
    if (own !== undefined ? size > own : size > budget) {
      dropped.push(name);
      continue;
    }
    if (own === undefined) budget -= size;
    headers[name] = value;
  }
  if (dropped.length > 0) headers[HEADERS.droppedHeaders] = dropped.join(',').slice(0, MAX_DROPPED_NAMES);
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
 * The headers of the message that replaces a failed delivery (a retry, or a dead letter): the
 * old ones (minus the broker's own and stale stderr), then the failure. `withStderr`: the
 * connectors' stderr tails (dead letters; a retry's run record has them, the message need not
 * carry them around).
 */
export function failureHeaders(old: Headers | undefined, failure: FailureInfo, context: FailureContext, withStderr: boolean): Record<string, unknown> {
  const now = (context.now ?? new Date()).toISOString();
  // A previous delay's due time is stale on the message that replaces it.
  const headers = carriedHeaders(old, (name) => name === HEADERS.stderrSource || name === HEADERS.stderrDestination || name === HEADERS.dueAt);
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

/** `headers` for a message going into a delay queue for `delayMs`, with when it is due back. */
export function withDueAt(headers: Record<string, unknown>, delayMs: number, now = new Date()): Record<string, unknown> {
  return { ...headers, [HEADERS.dueAt]: new Date(now.getTime() + Math.max(0, delayMs)).toISOString() };
}

/** The headers of a sync put back because its connection was busy: the same attempt, one more deferral. */
export function deferredHeaders(old: Headers | undefined): { headers: Record<string, unknown>; deferrals: number } {
  const headers = carriedHeaders(old);
  const before = Number(headers[HEADERS.deferrals]);
  const deferrals = (Number.isInteger(before) && before > 0 ? before : 0) + 1;
  headers[HEADERS.deferrals] = deferrals;
  return { headers, deferrals };
}

/**
 * The headers of a dead letter replayed by an operator: the attempt reset to 1, the failure
 * bookkeeping gone, the replay counted and dated, and `replayId` to recognise its confirm or
 * return. Headers of others (not x-tidepool-*, not the broker's) are kept.
 */
export function replayHeaders(old: Headers | undefined, replay: { replayed: number; at: Date; replayId: string }): Record<string, unknown> {
  const headers = carriedHeaders(old, (name) => name.startsWith('x-tidepool-') && !KEPT_ON_REPLAY.has(name));
  headers[HEADERS.attempt] = 1;
  headers[HEADERS.replayed] = replay.replayed;
  headers[HEADERS.replayedAt] = replay.at.toISOString();
  headers[HEADERS.replayId] = replay.replayId;
  return headers;
}

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * The attempt a delivery is: the header, or 1 for a message published without one (or with
 * garbage in it: no whole number ≥ 1), and at most `maxAttempts`. Anyone who can publish can
 * write the header, so it is not trusted beyond what the runner's own rules allow: a claimed
 * attempt 99 is the last attempt (it fails for good at its first failure, as a message put on
 * the dead-letter queue by its publisher would), never an attempt count no sync can reach,
 * nor a retry level without a delay queue, nor "later than any recorded run" to a check for
 * duplicate deliveries.
 */
export function attemptOf(properties: Pick<MessageProperties, 'headers'>, maxAttempts: number): number {
  const n = Number(properties.headers?.[HEADERS.attempt]);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, maxAttempts) : 1;
}

/** When an operator last replayed this message from the dead-letter queue (ms since the epoch), if ever. */
export function replayedAtOf(properties: Pick<MessageProperties, 'headers'>): number | undefined {
  const at = Date.parse(String(properties.headers?.[HEADERS.replayedAt] ?? ''));
  return Number.isFinite(at) ? at : undefined;
}

/** When a delayed message was due back in the syncs queue (ms since the epoch), if it went through a delay queue. */
export function dueAtOf(properties: Pick<MessageProperties, 'headers'>): number | undefined {
  const at = Date.parse(String(properties.headers?.[HEADERS.dueAt] ?? ''));
  return Number.isFinite(at) ? at : undefined;
}

/** The replay id a republished message carries (its return names it). */
export function replayIdOf(headers: Headers | undefined): string | undefined {
  const id = headers?.[HEADERS.replayId];
  return typeof id === 'string' ? id : undefined;
}

/** Whether a header is one of the connectors' stderr tails (shown as lines, not as a header value). */
export function isStderrHeader(name: string): boolean {
  return name === HEADERS.stderrSource || name === HEADERS.stderrDestination;
}

/** What a message's tidepool headers say about its failures and replays; undefined where a header is missing or unreadable. */
export interface FailureReading {
  reason: string | undefined;
  origin: string | undefined;
  type: string | undefined;
  retryable: boolean | undefined;
  /** The attempt header as written (on a dead letter: the attempts made). */
  attempts: number | undefined;
  runner: string | undefined;
  firstFailureAt: string | undefined;
  lastFailureAt: string | undefined;
  syncId: string | undefined;
  connectionId: string | undefined;
  /** Replays so far (0: never). */
  replayed: number;
  replayedAt: string | undefined;
}

export function readFailure(headers: Headers): FailureReading {
  return {
    reason: fieldText(headers[HEADERS.reason]),
    origin: fieldText(headers[HEADERS.origin]),
    type: fieldText(headers[HEADERS.type]),
    retryable: flag(headers[HEADERS.retryable]),
    attempts: count(headers[HEADERS.attempt]),
    runner: fieldText(headers[HEADERS.runner]),
    firstFailureAt: isoText(headers[HEADERS.firstFailureAt]),
    lastFailureAt: isoText(headers[HEADERS.lastFailureAt]),
    syncId: fieldText(headers[HEADERS.syncId]),
    connectionId: fieldText(headers[HEADERS.connectionId]),
    replayed: count(headers[HEADERS.replayed]) ?? 0,
    replayedAt: fieldText(headers[HEADERS.replayedAt]),
  };
}

/** The connectors' last stderr lines a dead letter carries. */
export function readStderr(headers: Headers): { source: string[]; destination: string[] } {
  return { source: lines(headers[HEADERS.stderrSource]), destination: lines(headers[HEADERS.stderrDestination]) };
}

/** The broker's latest dead-lettering of a message. */
export interface BrokerDeath {
  reason: string;
  queue: string | undefined;
  firstAt: string | undefined;
  lastAt: string | undefined;
}

/** The broker's latest dead-lettering: x-death[0] (most recent first), else x-last/first-death-*. */
export function readDeath(headers: Headers): BrokerDeath | undefined {
  const deaths = Array.isArray(headers['x-death']) ? (headers['x-death'] as unknown[]).filter((d): d is Record<string, unknown> => d !== null && typeof d === 'object') : [];
  const latest = deaths[0];
  const reason = fieldText(latest?.reason) ?? fieldText(headers['x-last-death-reason']) ?? fieldText(headers['x-first-death-reason']);
  if (reason === undefined) return undefined;
  const times = deaths.map((d) => timestamp(d.time)).filter((t): t is string => t !== undefined).sort();
  return {
    reason,
    queue: fieldText(latest?.queue) ?? fieldText(headers['x-last-death-queue']) ?? fieldText(headers['x-first-death-queue']),
    firstAt: times[0],
    lastAt: (latest ? timestamp(latest.time) : undefined) ?? times[times.length - 1],
  };
}

/** How often a quorum queue handed this message out and got it back. */
export function deliveryCountOf(headers: Headers): number {
  return count(headers['x-delivery-count']) ?? 0;
}

// ---------------------------------------------------------------------------------------------
// AMQP field values as amqplib decodes them

/** A field as text: strings, byte arrays and numbers; empty is undefined. */
export function fieldText(value: unknown): string | undefined {
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (Buffer.isBuffer(value)) return value.length === 0 ? undefined : value.toString('utf8');
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return undefined;
}

function flag(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  const t = fieldText(value)?.toLowerCase();
  return t === 'true' || t === '1' ? true : t === 'false' || t === '0' ? false : undefined;
}

function count(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

function isoText(value: unknown): string | undefined {
  const t = fieldText(value) ?? timestamp(value);
  if (t === undefined) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** An AMQP timestamp as amqplib decodes it ({'!': 'timestamp', value: seconds}) → ISO. */
function timestamp(value: unknown): string | undefined {
  if (value !== null && typeof value === 'object' && (value as { '!'?: unknown })['!'] === 'timestamp') {
    const seconds = Number((value as { value?: unknown }).value);
    return Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : undefined;
  }
  return undefined;
}

/** A stderr tail header: a JSON array of lines; tolerates plain text. */
function lines(value: unknown): string[] {
  const raw = fieldText(value);
  if (raw === undefined) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    if (Array.isArray(parsed)) return parsed.map((l) => (typeof l === 'string' ? l : JSON.stringify(l)));
  } catch {
    // Not JSON: one line per line.
  }
  return raw.split('\n');
}

/** A field value as plain JSON (byte arrays as text, AMQP timestamps as ISO 8601). */
export function fieldAsJson(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(fieldAsJson);
  if (value !== null && typeof value === 'object') {
    const ts = timestamp(value);
    if (ts !== undefined) return ts;
    const o = value as Record<string, unknown>;
    if ('!' in o && 'value' in o) return fieldAsJson(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, fieldAsJson(v)]));
  }
  return value;
}

/** Bytes of a header value as JSON; 0 for what JSON cannot say (undefined), which AMQP does not carry either. */
function jsonBytes(value: unknown): number {
  // JSON.stringify's type says string, but it answers undefined for undefined and functions.
  const json = JSON.stringify(value) as unknown;
  return typeof json === 'string' ? Buffer.byteLength(json) : 0;
}
