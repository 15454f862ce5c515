// The dead-letter queue, for operators: list, show, replay and purge dead letters while runners
// keep adding to it, without ever losing one. Used by `tidepool dlq` and the dashboard.
//
// How a letter is read without being lost: a dedicated channel takes messages with basic.get and
// manual ack, holds them unacked, and gives back the ones it only looked at. A crash, a closed
// channel or a lost connection gives them back too (the broker requeues everything unacked), so
// the worst case of any failure here is a letter still in the queue — or, for replay, a letter
// still in the queue *and* republished (a duplicate, never a loss): a letter is acked only after
// its republish was confirmed by the broker (and routed: published as mandatory).
//
// Giving a letter back must not count against it. The dead queue is a classic queue
// (topology.ts declareDeadQueue): it has no delivery limit, so no number of listings drops a
// letter, and its headers are left as they were. On a quorum queue it would: measured on
// RabbitMQ 3.10.8, every return raised x-delivery-count by one (nack with requeue and a closed
// channel alike), and with a delivery limit the broker dropped the letter after that many
// returns — RabbitMQ 4.0 to 4.2 give every quorum queue a limit of 20, so 20 listings dropped
// every letter. RabbitMQ 4.3 counts only failed deliveries (basic.reject, a lost channel), not
// basic.nack; letters are given back by nack for that reason. The quorum dead queue of earlier
// tidepools is emptied into this one at start (dead-queue-migration.ts); `deadQueueWarnings`
// says when letters still wait there.
//
// Order: a classic queue puts a letter given back at its old place. (A quorum queue put nacked
// letters at the back in the order nacked, and a closed channel's at the head, shuffled: letters
// are given back by nack, one at a time, in the order read, then the channel is closed.)
// Listings sort by failure time anyway, so queue order only keeps the queue stable from one
// listing to the next.
//
// A listing reads at most as many letters as the queue held when it started (checkQueue on a
// throw-away channel), so it terminates while runners add letters. Letters held by another dlq
// command at that moment are not ready, so it sees fewer; it never sees one twice.
import { createHash, randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, GetMessage, Options } from 'amqplib';
import { oversizedBody, parseSyncRequest } from '../messages.js';
import { deliveryCountOf, fieldAsJson, fieldText, readDeath, readFailure, readStderr, replayHeaders, replayIdOf } from './envelope.js';
import type { Topology } from './topology.js';
import { legacyReady } from './dead-queue-migration.js';

/** A dead letter as listed: what failed, where, when, how often. */
export interface DeadLetter {
  /**
   * What the commands take: the sync id from the body; for a body without one (not JSON, not a
   * sync request) the x-tidepool-sync-id header, else the message id, else `sha256-` and the
   * first 16 hex digits of the body's hash.
   */
  id: string;
  idFrom: 'body' | 'header' | 'message-id' | 'body-hash';
  messageId: string | undefined;
  connectionId: string | undefined;
  /** Why it is here: the runner's reason, or the broker's (x-death) when the broker dead-lettered it. */
  reason: string;
  /** Who put it here: a runner (x-tidepool-* failure headers) or the broker (x-death only). */
  deadLetteredBy: 'runner' | 'broker' | 'unknown';
  origin: string | undefined;
  type: string | undefined;
  attempts: number | undefined;
  firstFailureAt: string | undefined;
  lastFailureAt: string | undefined;
  runner: string | undefined;
  /** Whether the runner judged the last failure retryable (true: it ran out of attempts). */
  retryable: boolean | undefined;
  /** How many times this sync was replayed before it landed here again (0: never). */
  replayed: number;
  replayedAt: string | undefined;
  /** x-delivery-count: 0 in the classic dead queue; in a quorum one left by an earlier tidepool, how often it was handed out and given back. */
  deliveryCount: number;
  /** The body is a valid sync request: replaying it can work. */
  replayable: boolean;
  /** Why it is not replayable. */
  problem: string | undefined;
}

/** One dead letter in full. */
export interface DeadLetterDetail extends DeadLetter {
  /** The body as UTF-8 text. */
  body: string;
  /** The body in base64 when it is not valid UTF-8. */
  bodyBase64: string | undefined;
  /** AMQP properties other than headers, JSON-safe. */
  properties: Record<string, unknown>;
  /** Every header, JSON-safe (AMQP timestamps as ISO strings). */
  headers: Record<string, unknown>;
  /** The connectors' last stderr lines, from x-tidepool-stderr-source / -destination. */
  stderr: { source: string[]; destination: string[] };
}

export interface DeadLetterFilter {
  connectionId?: string;
  /** Only letters whose last failure is at least this old. Letters with no known time never match. */
  olderThanMs?: number;
  /** For olderThanMs; default: now. */
  now?: Date;
}

export interface DeadLetterListing {
  /** Newest last failure first; letters without a time last. */
  letters: DeadLetter[];
  /** Letters that matched the filter (letters.length may be cut by limit). */
  matched: number;
  /** Letters read. */
  scanned: number;
  /** Ready letters in the queue when the listing started. */
  depth: number;
  warnings: string[];
}

export class DeadQueueMissingError extends Error {
  override readonly name = 'DeadQueueMissingError';
  constructor(readonly queue: string) {
    super(`dead-letter queue "${queue}" does not exist (wrong TIDEPOOL_PREFIX, or nothing has run with this prefix yet)`);
  }
}

export class ReplayError extends Error {
  override readonly name = 'ReplayError';
}

const BROKER_REASONS: Readonly<Record<string, string>> = {
  delivery_limit: 'delivery limit reached (x-delivery-limit)',
  rejected: 'rejected by a consumer without requeue',
  expired: 'message TTL expired',
  maxlen: 'queue length limit reached',
};

/** Letters replayed per batch: published together, each acked on its own confirm. */
const REPLAY_BATCH = 256;

/** How long a command waits, at most, for the letters it gave back to be ready again. */
const RETURN_WAIT_MS = 2000;

// ---------------------------------------------------------------------------------------------
// Reading

/** Ready messages in a queue, read on a throw-away channel: a missing queue closes the channel. */
async function readyCount(connection: ChannelModel, queue: string): Promise<number> {
  const channel = await connection.createChannel();
  channel.on('error', () => undefined);
  try {
    return (await channel.checkQueue(queue)).messageCount;
  } catch (err) {
    if (/NOT_FOUND|404/.test((err as Error).message)) throw new DeadQueueMissingError(queue);
    throw err;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/**
 * Takes letters off the dead queue on its own channel and holds them unacked until they are
 * acked (removed for good) or given back by release().
 */
class DeadQueueReader {
  /** In the order read; Map keeps insertion order. */
  private readonly held = new Map<GetMessage, { settled: boolean }>();
  private taken = 0;
  private closedError: Error | undefined;

  private constructor(
    private readonly connection: ChannelModel,
    private readonly channel: Channel,
    private readonly queue: string,
    readonly depth: number,
  ) {
    channel.on('error', (err: Error) => {
      this.closedError = err;
    });
    channel.on('close', () => {
      this.closedError ??= new Error('channel closed');
    });
  }

  static async open(connection: ChannelModel, queue: string): Promise<DeadQueueReader> {
    const depth = await readyCount(connection, queue);
    const channel = await connection.createChannel();
    return new DeadQueueReader(connection, channel, queue, depth);
  }

  get scanned(): number {
    return this.taken;
  }

  /** The next letter, or undefined once as many as the queue held at the start were read. */
  async next(): Promise<GetMessage | undefined> {
    if (this.taken >= this.depth) return undefined;
    if (this.closedError) throw new Error(`reading ${this.queue}: ${this.closedError.message}`);
    const message = await this.channel.get(this.queue, { noAck: false });
    if (message === false) return undefined;
    this.taken++;
    this.held.set(message, { settled: false });
    return message;
  }

  /** Removes a letter for good. Only after whatever replaces it is safe. */
  ack(message: GetMessage): void {
    const entry = this.held.get(message);
    if (!entry || entry.settled) throw new Error('dead letter already settled');
    if (this.closedError) throw new Error(`cannot remove the letter: ${this.closedError.message} (it went back to ${this.queue})`);
    this.channel.ack(message);
    entry.settled = true;
  }

  /**
   * Gives back every letter not acked, in the order read, closes the channel, and waits until the
   * letters given back are ready again. By nack, never reject: RabbitMQ ≥ 4.3 counts a reject as
   * a failed delivery. A quorum queue applies returns (and acks) as Raft commands
   * after the channel has moved on — close-ok does not wait for them — so without this wait a
   * listing started right after another one saw only some of the letters (measured here: up to
   * ~100 ms on a busy 2-core machine). Acks sent before the close are never lost by it: the
   * queue gets them before it learns that the channel is gone.
   */
  async release(): Promise<void> {
    const returning = [...this.held].filter(([, h]) => !h.settled);
    const alive = this.closedError === undefined;
    const readyBefore = alive && returning.length > 0 ? await readyCount(this.connection, this.queue).catch(() => undefined) : undefined;
    for (const [message, entry] of returning) {
      entry.settled = true;
      if (this.closedError) continue; // the broker already took them back
      try {
        this.channel.nack(message, false, true);
      } catch {
        // The channel died under us: the broker requeues everything that was unacked.
      }
    }
    await this.channel.close().catch(() => undefined);
    if (readyBefore !== undefined) await this.waitUntilReady(readyBefore + returning.length);
  }

  /**
   * Polls the ready count until it reaches `target`. Best effort: another dlq command taking
   * letters meanwhile can keep it below, so it gives up after RETURN_WAIT_MS (nothing is lost
   * either way; the letters are on their way back).
   */
  private async waitUntilReady(target: number): Promise<void> {
    const deadline = Date.now() + RETURN_WAIT_MS;
    for (let delay = 5; Date.now() < deadline; delay = Math.min(delay * 2, 100)) {
      const ready = await readyCount(this.connection, this.queue).catch(() => undefined);
      if (ready === undefined || ready >= target) return;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** Reads letters one by one (visit returns true to stop early) and gives them all back. */
async function scan(
  connection: ChannelModel,
  topology: Topology,
  visit: (message: GetMessage, letter: DeadLetter) => boolean,
): Promise<{ depth: number; scanned: number }> {
  const reader = await DeadQueueReader.open(connection, topology.deadQueue);
  try {
    for (;;) {
      const message = await reader.next();
      if (!message) break;
      if (visit(message, describe(message, topology))) break;
    }
    return { depth: reader.depth, scanned: reader.scanned };
  } finally {
    await reader.release();
  }
}

function matches(letter: DeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.connectionId !== undefined && letter.connectionId !== filter.connectionId) return false;
  if (filter.olderThanMs !== undefined) {
    if (letter.lastFailureAt === undefined) return false;
    const at = Date.parse(letter.lastFailureAt);
    if (Number.isNaN(at) || (filter.now ?? new Date()).getTime() - at < filter.olderThanMs) return false;
  }
  return true;
}

function newestFirst(a: DeadLetter, b: DeadLetter): number {
  const ta = a.lastFailureAt === undefined ? Number.NEGATIVE_INFINITY : Date.parse(a.lastFailureAt);
  const tb = b.lastFailureAt === undefined ? Number.NEGATIVE_INFINITY : Date.parse(b.lastFailureAt);
  return tb - ta || a.id.localeCompare(b.id);
}

/**
 * What an operator should know about the dead queue: letters still in the quorum queue of an
 * earlier tidepool (an older runner re-bound it during a rolling upgrade, or an older reader held
 * them when they were moved). They are not listed here; the next start of a process moves them.
 */
export async function deadQueueWarnings(connection: ChannelModel, topology: Topology): Promise<string[]> {
  const waiting = await legacyReady(connection, topology.legacyDeadQueue);
  if (!waiting) return [];
  return [
    `${waiting} dead letter${waiting === 1 ? '' : 's'} still in ${topology.legacyDeadQueue}, the queue of an earlier tidepool: ` +
      `the next tidepool process to start moves ${waiting === 1 ? 'it' : 'them'} here`,
  ];
}

/** The dead letters matching the filter, newest first, at most `limit` of them. Removes nothing. */
export async function listDeadLetters(
  connection: ChannelModel,
  topology: Topology,
  filter: DeadLetterFilter & { limit?: number } = {},
): Promise<DeadLetterListing> {
  const all: DeadLetter[] = [];
  const { depth, scanned } = await scan(connection, topology, (_message, letter) => {
    if (matches(letter, filter)) all.push(letter);
    return false;
  });
  all.sort(newestFirst);
  return {
    letters: filter.limit === undefined ? all : all.slice(0, filter.limit),
    matched: all.length,
    scanned,
    depth,
    warnings: await deadQueueWarnings(connection, topology),
  };
}

/** One letter in full, by id (or message id); undefined when it is not in the queue. Removes nothing. */
export async function getDeadLetter(connection: ChannelModel, topology: Topology, id: string): Promise<DeadLetterDetail | undefined> {
  let found: DeadLetterDetail | undefined;
  await scan(connection, topology, (message, letter) => {
    if (letter.id !== id && letter.messageId !== id) return false;
    found = detail(message, letter);
    return true;
  });
  return found;
}

// ---------------------------------------------------------------------------------------------
// Replay

export type ReplaySelector = { ids: string[] } | { all: true; connectionId?: string };

export interface ReplayedLetter {
  id: string;
  connectionId: string | undefined;
  /** The value of the replay marker on the republished message. */
  replayed: number;
}

export interface ReplayResult {
  replayed: ReplayedLetter[];
  /** Letters left in the queue because replaying them cannot work (the body is not a sync request). */
  skipped: { id: string; reason: string }[];
  /** Asked-for ids not in the queue. */
  notFound: string[];
  /** Letters whose replay failed; they are still in the queue. */
  failed: { id: string; error: string }[];
}

/**
 * Republishes letters to the main exchange with the syncs routing key, with the attempt reset to
 * 1, the failure headers removed and the replay marker set (envelope.ts replayHeaders: a count
 * and when). Each letter is acked only after its republish was confirmed and
 * routed. Every letter carrying an asked-for id is replayed (duplicates included).
 */
export async function replayDeadLetters(
  connection: ChannelModel,
  topology: Topology,
  selector: ReplaySelector,
  options: { now?: Date } = {},
): Promise<ReplayResult> {
  const wanted = 'ids' in selector ? new Set(selector.ids) : undefined;
  const found = new Set<string>();
  const result: ReplayResult = { replayed: [], skipped: [], notFound: [], failed: [] };
  const now = options.now ?? new Date();
  const reader = await DeadQueueReader.open(connection, topology.deadQueue);
  let publisher: Publisher | undefined;
  let batch: { message: GetMessage; letter: DeadLetter }[] = [];
  const state = { stop: false };

  // Publishes a batch at once and acks each letter when its own publish is confirmed, never
  // before. Batches, not one by one: on a quorum queue every get and every ack is a Raft commit,
  // and publishing between gets made each get wait for a disk write (~40 ms per letter measured
  // here, vs ~2 ms when reading alone).
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const current = batch;
    batch = [];
    try {
      publisher ??= await Publisher.open(connection);
    } catch (err) {
      for (const { letter } of current) result.failed.push({ id: letter.id, error: (err as Error).message });
      state.stop = true;
      return;
    }
    const open = publisher;
    const outcomes = await Promise.allSettled(
      current.map(({ message, letter }) => {
        const replayId = randomUUID();
        return open.publish(topology.exchange, topology.syncRoutingKey, message.content, replayOptions(message, letter, letter.replayed + 1, now, replayId), replayId);
      }),
    );
    outcomes.forEach((outcome, i) => {
      const { message, letter } = current[i]!;
      if (outcome.status === 'rejected') {
        // Refused or not routable: the letter stays, and we stop — the rest would most likely
        // fail the same way.
        result.failed.push({ id: letter.id, error: outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason) });
        state.stop = true;
        return;
      }
      try {
        reader.ack(message);
        result.replayed.push({ id: letter.id, connectionId: letter.connectionId, replayed: letter.replayed + 1 });
      } catch (err) {
        // Republished, but the letter could not be removed: it is back in the dead queue too.
        result.failed.push({ id: letter.id, error: `republished, but the dead letter could not be removed and is still in the queue (${(err as Error).message}); do not replay it again` });
        state.stop = true;
      }
    });
  };

  try {
    while (!state.stop) {
      const message = await reader.next();
      if (!message) break;
      const letter = describe(message, topology);
      if (wanted) {
        const key = wanted.has(letter.id) ? letter.id : letter.messageId !== undefined && wanted.has(letter.messageId) ? letter.messageId : undefined;
        if (key === undefined) continue;
        found.add(key);
      } else if ('all' in selector && selector.connectionId !== undefined && letter.connectionId !== selector.connectionId) {
        continue;
      }
      if (!letter.replayable) {
        result.skipped.push({ id: letter.id, reason: letter.problem ?? 'not a sync request' });
        continue;
      }
      batch.push({ message, letter });
      if (batch.length >= REPLAY_BATCH) await flush();
    }
    if (!state.stop) await flush();
  } finally {
    await publisher?.close();
    await reader.release();
  }
  if (wanted) result.notFound = [...wanted].filter((id) => !found.has(id));
  return result;
}

function replayOptions(message: GetMessage, letter: DeadLetter, replayed: number, now: Date, replayId: string): Options.Publish {
  const props = message.properties as { contentType?: unknown; contentEncoding?: unknown };
  return {
    persistent: true,
    mandatory: true,
    contentType: typeof props.contentType === 'string' ? props.contentType : 'application/json',
    ...(typeof props.contentEncoding === 'string' ? { contentEncoding: props.contentEncoding } : {}),
    messageId: letter.messageId ?? letter.id,
    timestamp: Math.floor(now.getTime() / 1000),
    headers: replayHeaders(message.properties.headers, { replayed, at: now, replayId }),
  };
}

/** A confirm channel that also notices unroutable (returned) mandatory publishes. */
class Publisher {
  /** Replay ids of messages the broker returned as unroutable. */
  private readonly returned = new Set<string>();
  private failure: Error | undefined;

  private constructor(private readonly channel: ConfirmChannel) {
    // basic.return comes before the confirm of the same message, but maybe after confirms of
    // later ones (those wait for a quorum commit, a return does not): correlate by replay id.
    channel.on('return', (message: { properties: { headers?: Record<string, unknown> } }) => {
      const id = replayIdOf(message.properties.headers);
      if (id !== undefined) this.returned.add(id);
    });
    channel.on('error', (err: Error) => {
      this.failure = err;
    });
  }

  static async open(connection: ChannelModel): Promise<Publisher> {
    return new Publisher(await connection.createConfirmChannel());
  }

  /** Resolves once the broker confirmed it; rejects when refused, unroutable or the channel died. */
  publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish, replayId: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      try {
        this.channel.publish(exchange, routingKey, content, options, (err: unknown) => {
          if (err) reject(this.failure ?? (err instanceof Error ? err : new Error('the broker refused the message')));
          else if (this.returned.delete(replayId)) reject(new ReplayError(`no queue is bound to exchange "${exchange}" with routing key "${routingKey}": message not routed`));
          else resolve();
        });
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  async close(): Promise<void> {
    await this.channel.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Purge

export interface PurgeResult {
  /** Letters removed. */
  purged: DeadLetter[];
  /** Letters that matched (purged, unless confirmation was refused). */
  matched: number;
  /** False when confirm() said no: nothing was removed. */
  confirmed: boolean;
}

/**
 * Removes the letters matching the filter. `confirm` is called with the matching letters while
 * they are held (so exactly those are removed, not letters that arrived meanwhile); nothing is
 * removed unless it resolves true.
 */
export async function purgeDeadLetters(
  connection: ChannelModel,
  topology: Topology,
  filter: DeadLetterFilter = {},
  confirm?: (letters: DeadLetter[]) => Promise<boolean>,
): Promise<PurgeResult> {
  const reader = await DeadQueueReader.open(connection, topology.deadQueue);
  const matched: { message: GetMessage; letter: DeadLetter }[] = [];
  try {
    for (;;) {
      const message = await reader.next();
      if (!message) break;
      const letter = describe(message, topology);
      if (matches(letter, filter)) matched.push({ message, letter });
    }
    if (matched.length === 0) return { purged: [], matched: 0, confirmed: true };
    if (confirm && !(await confirm(matched.map((m) => m.letter)))) return { purged: [], matched: matched.length, confirmed: false };
    const purged: DeadLetter[] = [];
    for (const m of matched) {
      reader.ack(m.message);
      purged.push(m.letter);
    }
    return { purged, matched: matched.length, confirmed: true };
  } finally {
    await reader.release();
  }
}

// ---------------------------------------------------------------------------------------------
// Describing a letter (its headers read by the envelope, defensively: a letter may come from a
// runner, from the broker, or be garbage)

function describe(message: GetMessage, topology: Topology): DeadLetter {
  const headers = message.properties.headers ?? {};
  const messageId = fieldText(message.properties.messageId);
  let bodySyncId: string | undefined;
  let bodyConnectionId: string | undefined;
  try {
    // A body too big to be a sync request is not parsed here either (a listing reads every letter).
    if (oversizedBody(message.content) !== undefined) throw new Error('not parsed');
    const json: unknown = JSON.parse(message.content.toString('utf8'));
    if (json !== null && typeof json === 'object') {
      const o = json as Record<string, unknown>;
      if (typeof o.syncId === 'string' && o.syncId !== '') bodySyncId = o.syncId;
      if (typeof o.connectionId === 'string' && o.connectionId !== '') bodyConnectionId = o.connectionId;
    }
  } catch {
    // Not JSON: listed all the same.
  }
  let problem: string | undefined;
  try {
    parseSyncRequest(message.content);
  } catch (err) {
    problem = (err as Error).message;
  }
  const failure = readFailure(headers);
  const id = bodySyncId ?? failure.syncId ?? messageId ?? `sha256-${createHash('sha256').update(message.content).digest('hex').slice(0, 16)}`;
  const idFrom = bodySyncId !== undefined ? 'body' : failure.syncId !== undefined ? 'header' : messageId !== undefined ? 'message-id' : 'body-hash';

  const death = readDeath(headers);
  const published = typeof message.properties.timestamp === 'number' ? new Date(message.properties.timestamp * 1000).toISOString() : undefined;
  const common = {
    id,
    idFrom,
    messageId,
    connectionId: bodyConnectionId ?? failure.connectionId,
    attempts: failure.attempts,
    runner: failure.runner,
    replayed: failure.replayed,
    replayedAt: failure.replayedAt,
    deliveryCount: deliveryCountOf(headers),
    retryable: failure.retryable,
    replayable: problem === undefined,
    problem,
  } as const;
  const runnerLast = failure.lastFailureAt;
  // The broker put it here (at the syncs queue's delivery limit, say) when its latest x-death is
  // from the syncs queue and not older than the runner's last failure: a sync that failed,
  // went to a delay queue, then crashed runners until the limit carries both.
  const byBroker =
    death !== undefined &&
    (failure.reason === undefined ||
      (death.queue === topology.syncsQueue && (runnerLast === undefined || death.lastAt === undefined || Date.parse(death.lastAt) >= Date.parse(runnerLast) - 1000)));
  if (death && byBroker) {
    return {
      ...common,
      reason: `${BROKER_REASONS[death.reason] ?? death.reason}${death.queue ? ` in ${death.queue}` : ''}${failure.reason !== undefined ? ` (earlier failure: ${failure.reason})` : ''}`,
      deadLetteredBy: 'broker',
      origin: 'broker',
      type: death.reason,
      firstFailureAt: failure.firstFailureAt ?? death.firstAt ?? published,
      lastFailureAt: death.lastAt ?? published,
    };
  }
  if (failure.reason !== undefined) {
    return {
      ...common,
      reason: failure.reason,
      deadLetteredBy: 'runner',
      origin: failure.origin,
      type: failure.type,
      firstFailureAt: failure.firstFailureAt ?? death?.firstAt ?? runnerLast ?? published,
      lastFailureAt: runnerLast ?? death?.lastAt ?? published,
    };
  }
  return {
    ...common,
    reason: 'unknown (no x-tidepool-reason or x-death header)',
    deadLetteredBy: 'unknown',
    origin: undefined,
    type: undefined,
    firstFailureAt: published,
    lastFailureAt: published,
  };
}

function detail(message: GetMessage, letter: DeadLetter): DeadLetterDetail {
  const headers = message.properties.headers ?? {};
  let bodyBase64: string | undefined;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(message.content);
  } catch {
    bodyBase64 = message.content.toString('base64');
  }
  const properties: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(message.properties as unknown as Record<string, unknown>)) {
    if (name === 'headers' || value === undefined) continue;
    properties[name] = name === 'timestamp' && typeof value === 'number' ? new Date(value * 1000).toISOString() : fieldAsJson(value);
  }
  return {
    ...letter,
    body: message.content.toString('utf8'),
    bodyBase64,
    properties,
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, fieldAsJson(v)])),
    stderr: readStderr(headers),
  };
}
