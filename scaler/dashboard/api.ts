// The dashboard's JSON API (/api/...): what the page shows and does, for scripts too. Reads come
// from the store (series, runs, connections, state) and the scaler's last tick; the dead-letter
// routes call the same library as `tidepool dlq` (shared/broker/dead-letters.ts).
//
// Every answer is JSON; every refusal is a 4xx with {"error": "..."} saying what was wrong.
import type { ChannelModel } from 'amqplib';
import { z } from 'zod';
import type { Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import {
  DeadQueueMissingError,
  getDeadLetter,
  listDeadLetters,
  purgeDeadLetters,
  replayDeadLetters,
  type DeadLetterFilter,
  type ReplayResult,
} from '../../shared/broker/dead-letters.js';
import { BrokerSession, type Session } from '../../shared/broker/session.js';
import type { TlsFiles } from '../../shared/tls.js';
import { topologyFor, type Topology } from '../../shared/broker/topology.js';
import { cancelSync } from '../../shared/cancel.js';
import type { Connection, ConnectorDefinition } from '../../shared/connections.js';
import { idProblem, idSchema } from '../../shared/ids.js';
import type { Store } from '../../shared/store/index.js';
import { RUN_STATUSES, type RunListing, type RunRecord } from '../../shared/store/runs.js';
import { parseDuration } from '../../shared/units.js';
import type { ScalerSnapshot } from '../loop.js';
import { scheduleOverview } from '../schedules/overview.js';

/** An answer: status and a JSON-able body. */
export interface ApiResponse {
  status: number;
  body: unknown;
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ApiRequest {
  method: string;
  /** Path without the query, e.g. /api/runs/abc. */
  path: string;
  query: URLSearchParams;
  /** The parsed JSON body of a POST (an object), else undefined. */
  body: Record<string, unknown> | undefined;
}

export interface ApiDeps {
  config: Pick<Config, 'prefix' | 'amqpUrl' | 'pollInterval' | 'deliveryLimit' | 'maxAttempts'>;
  store: Store;
  logger: Logger;
  /** The scaler's latest tick, if any yet. */
  snapshot: () => ScalerSnapshot | undefined;
}

/** How far back the charts go: what the scaler keeps in Redis (an hour at the default poll interval). */
const SERIES_MAX_MINUTES = 60;
const RUNS_MAX_LIMIT = 1000;
const DEAD_LETTERS_MAX_LIMIT = 10_000;

// Ids follow the id rule (shared/ids.ts); dead-letter ids do not: a malformed message is listed
// under whatever its body names, and must stay reachable to be purged.
const connectionId = idSchema('connection id');

// Query strings: every parameter known, every value checked; an unknown parameter is a mistake
// (a misspelt filter silently returning everything is worse than a 400).
const runsQuery = z
  .object({
    connection: connectionId.optional(),
    status: z.enum(RUN_STATUSES as [string, ...string[]], { error: `must be one of ${RUN_STATUSES.join(', ')}` }).optional(),
    limit: z.coerce.number({ error: 'must be a number' }).int('must be an integer').min(1).max(RUNS_MAX_LIMIT).default(50),
  })
  .strict();

const seriesQuery = z
  .object({
    minutes: z.coerce.number({ error: 'must be a number' }).int('must be an integer').min(1).max(SERIES_MAX_MINUTES).default(SERIES_MAX_MINUTES),
    since: z.coerce.number({ error: 'must be a number (epoch ms)' }).int('must be an integer (epoch ms)').min(0).optional(),
  })
  .strict();

const deadLettersQuery = z
  .object({
    connection: connectionId.optional(),
    limit: z.coerce.number({ error: 'must be a number' }).int('must be an integer').min(1).max(DEAD_LETTERS_MAX_LIMIT).default(100),
  })
  .strict();

const replayAllBody = z
  .object({
    connectionId: connectionId.optional(),
    /** Required without connectionId: replaying every letter is never the default of an empty body. */
    all: z.literal(true).optional(),
  })
  .strict()
  .refine((b) => b.connectionId !== undefined || b.all === true, { message: 'give connectionId, or "all": true to replay every letter' });

const purgeBody = z
  .object({
    connectionId: connectionId.optional(),
    olderThan: z
      .string()
      .refine((v) => parseDuration(v) !== undefined, 'must be a duration like 30m, 12h, 7d')
      .optional(),
    all: z.literal(true).optional(),
  })
  .strict()
  .refine((b) => b.connectionId !== undefined || b.olderThan !== undefined || b.all === true, {
    message: 'give connectionId and/or olderThan, or "all": true to purge every letter',
  });

function parseWith<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') return `unknown ${what === 'body' ? 'field' : 'parameter'}${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    const key = issue.path.map(String).join('.');
    return key ? `${key}: ${issue.message}` : issue.message;
  });
  throw new ApiError(400, `bad ${what}: ${issues.join('; ')}`);
}

function queryObject(query: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of query) {
    if (key in out) throw new ApiError(400, `bad query: parameter "${key}" given more than once`);
    out[key] = value;
  }
  return out;
}

/**
 * A broker connection of the dashboard's own (dead-letter commands hold letters on channels of
 * it), opened on first use and again after a loss. No topology is declared: a dashboard with a
 * wrong prefix says the dead queue is missing rather than creating one.
 */
export class DashboardBroker {
  private readonly broker: BrokerSession<Record<string, never>>;
  private opening: Promise<Session<Record<string, never>>> | undefined;
  private closed = false;

  constructor(url: string, logger: Logger, tls?: TlsFiles) {
    // A lost connection is only forgotten (keepConnected: never): the next request opens another.
    this.broker = new BrokerSession({ url, tls, logger, connectionName: 'tidepool-dashboard', channels: {}, keepConnected: () => false });
  }

  async get(): Promise<ChannelModel> {
    if (this.closed) throw new ApiError(503, 'dashboard is shutting down');
    const session = this.broker.session;
    if (session) return session.connection;
    // One connect for the requests that arrive meanwhile; a failed one is forgotten at once.
    this.opening ??= this.broker.connect(5_000).finally(() => (this.opening = undefined));
    try {
      return (await this.opening).connection;
    } catch (err) {
      throw new ApiError(503, `broker unavailable: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.broker.stop();
    await this.opening?.catch(() => undefined);
    await this.broker.close();
  }
}

export class DashboardApi {
  private readonly topology: Topology;
  /**
   * Dead-letter operations of this dashboard run one at a time: each holds the letters it reads
   * until it is done, so a replay running beside a listing (another tab, the page's refresh)
   * would not find its letter. `tidepool dlq` commands beside it can still see fewer.
   */
  private deadLetterTurn: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: ApiDeps,
    private readonly broker: DashboardBroker,
  ) {
    this.topology = topologyFor(deps.config.prefix, deps.config);
  }

  /** Routes one /api/ request; throws ApiError for refusals. */
  async handle(req: ApiRequest): Promise<ApiResponse> {
    const parts = req.path.split('/').filter((p) => p !== '').map((p) => safeDecode(p));
    // parts[0] === 'api'
    const [, resource, id, action, ...extra] = parts;
    const route = (method: string, ...allowed: string[]) => {
      if (req.method !== method && !(method === 'GET' && req.method === 'HEAD')) throw new ApiError(405, `method ${req.method} not allowed on ${req.path} (allowed: ${allowed.join(', ') || method})`);
    };
    if (extra.length > 0) throw notFound(req.path);
    switch (resource) {
      case 'overview':
        if (id !== undefined) throw notFound(req.path);
        route('GET');
        return ok(this.overview());
      case 'series':
        if (id !== undefined) throw notFound(req.path);
        route('GET');
        return ok(await this.series(req.query));
      case 'runs':
        if (id !== undefined && action === 'cancel') {
          route('POST');
          return this.cancel(id, req);
        }
        route('GET');
        if (action !== undefined) throw notFound(req.path);
        return ok(id === undefined ? await this.runs(req.query) : await this.run(id, req.query));
      case 'connections':
        if (id !== undefined) throw notFound(req.path);
        route('GET');
        return ok(await this.connections(req.query));
      case 'dead-letters':
        return this.deadLetters(req, id, action);
      default:
        throw notFound(req.path);
    }
  }

  private overview() {
    const s = this.deps.snapshot();
    return {
      prefix: this.deps.config.prefix,
      now: Date.now(),
      pollIntervalMs: this.deps.config.pollInterval,
      queues: { syncs: this.topology.syncsQueue, dead: this.topology.deadQueue },
      scaler: s ?? null,
    };
  }

  private async series(query: URLSearchParams) {
    const q = parseWith(seriesQuery, queryObject(query), 'query');
    const now = Date.now();
    const from = Math.max(now - q.minutes * 60_000, q.since ?? 0);
    const [samples, minutes] = await Promise.all([this.deps.store.series.since(from), this.deps.store.series.minuteCounts(now - q.minutes * 60_000, now)]);
    return {
      now,
      pollIntervalMs: this.deps.config.pollInterval,
      samples: samples.map((s) => ({ t: s.t, ready: s.ready, inFlight: s.inFlight, dead: s.dead ?? null, running: s.running, starting: s.starting, launched: s.launched })),
      syncsPerMinute: minutes,
      scaler: this.deps.snapshot() ?? null,
    };
  }

  /** `corrupt`: keys of records in range that do not parse, left out of `runs`. */
  private async runs(query: URLSearchParams): Promise<RunListing> {
    const q = parseWith(runsQuery, queryObject(query), 'filter');
    const listing = await this.deps.store.runs.listing({
      limit: q.limit,
      ...(q.connection !== undefined ? { connectionId: q.connection } : {}),
      ...(q.status !== undefined ? { status: q.status as RunRecord['status'] } : {}),
    });
    if (listing.corrupt.length > 0) this.deps.logger.warn({ keys: listing.corrupt }, 'corrupt run records skipped');
    return listing;
  }

  private async run(syncId: string, query: URLSearchParams): Promise<RunRecord> {
    parseWith(z.object({}).strict(), queryObject(query), 'query');
    const idError = idProblem('sync id', syncId);
    if (idError !== undefined) throw new ApiError(400, `bad path: ${idError}`);
    const run = await this.deps.store.runs.get(syncId);
    if (!run) throw new ApiError(404, `no run of sync "${syncId}" (unknown sync id, or trimmed after runsKept records)`);
    return run;
  }

  /**
   * POST /api/runs/<id>/cancel: the same cancel as `tidepool cancel` (shared/cancel.ts), by
   * `dashboard`. A sync with no record yet may still be queued, so it is marked all the same;
   * one that already ended is a 409. Confirmation is the page's; the call is the confirmed act.
   */
  private async cancel(syncId: string, req: ApiRequest): Promise<ApiResponse> {
    if (req.body !== undefined) parseWith(z.object({}).strict(), req.body, 'body');
    const idError = idProblem('sync id', syncId);
    if (idError !== undefined) throw new ApiError(400, `bad path: ${idError}`);
    const result = await cancelSync(this.deps.store, syncId, 'dashboard');
    if (result.outcome === 'ended') throw new ApiError(409, `sync "${syncId}" already ended (${result.status}): nothing to cancel`);
    this.deps.logger.warn({ syncId, status: result.status ?? 'queued' }, 'dashboard: sync cancelled');
    return ok({ syncId, cancelled: result.marker, status: result.status ?? null });
  }

  private async connections(query: URLSearchParams) {
    parseWith(z.object({}).strict(), queryObject(query), 'query');
    const { store } = this.deps;
    const [list, schedules] = await Promise.all([store.connections.list(), scheduleOverview(store)]);
    const scheduleOf = new Map(schedules.map((s) => [s.connectionId, s]));
    const rows = await Promise.all(
      list.map(async (c) => {
        const [state, [lastRun]] = await Promise.all([store.state.get(c.id), store.runs.list({ connectionId: c.id, limit: 1 })]);
        return {
          id: c.id,
          source: describeConnector(c.source),
          destination: describeConnector(c.destination),
          streams: streamNames(c),
          state: state ? { version: state.version, updatedAt: state.updatedAt, syncId: state.syncId, streams: state.state.length } : null,
          lastRun: lastRun ? summarizeRun(lastRun) : null,
          // Next run and pause state; null for a connection synced only on request.
          schedule: scheduleOf.get(c.id) ?? null,
        };
      }),
    );
    return { connections: rows };
  }

  private deadLetters(req: ApiRequest, id: string | undefined, action: string | undefined): Promise<ApiResponse> {
    const turn = this.deadLetterTurn.then(() => this.deadLetterOperation(req, id, action));
    this.deadLetterTurn = turn.catch(() => undefined);
    return turn;
  }

  private async deadLetterOperation(req: ApiRequest, id: string | undefined, action: string | undefined): Promise<ApiResponse> {
    const connection = () => this.broker.get();
    try {
      // /api/dead-letters
      if (id === undefined) {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new ApiError(405, `method ${req.method} not allowed on ${req.path} (allowed: GET)`);
        const q = parseWith(deadLettersQuery, queryObject(req.query), 'filter');
        const listing = await listDeadLetters(await connection(), this.topology, { limit: q.limit, ...(q.connection !== undefined ? { connectionId: q.connection } : {}) });
        return ok({ queue: this.topology.deadQueue, ...listing });
      }
      // /api/dead-letters/replay (all, or all of a connection) and /api/dead-letters/purge
      if (action === undefined && (id === 'replay' || id === 'purge') && req.method === 'POST') {
        return id === 'replay' ? await this.replayAll(req, await connection()) : await this.purge(req, await connection());
      }
      // /api/dead-letters/<id>
      if (action === undefined) {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new ApiError(405, `method ${req.method} not allowed on ${req.path} (allowed: GET)`);
        parseWith(z.object({}).strict(), queryObject(req.query), 'query');
        const letter = await getDeadLetter(await connection(), this.topology, id);
        if (!letter) throw new ApiError(404, `no dead letter "${id}" in ${this.topology.deadQueue}`);
        return ok(letter);
      }
      // /api/dead-letters/<id>/replay
      if (action === 'replay') {
        if (req.method !== 'POST') throw new ApiError(405, `method ${req.method} not allowed on ${req.path} (allowed: POST)`);
        if (req.body !== undefined) parseWith(z.object({}).strict(), req.body, 'body');
        const result = await replayDeadLetters(await connection(), this.topology, { ids: [id] });
        this.deps.logger.info({ id, replayed: result.replayed.length, failed: result.failed.length }, 'dashboard: dead letter replayed');
        return replayResponse(result, this.topology);
      }
      throw notFound(req.path);
    } catch (err) {
      if (err instanceof DeadQueueMissingError) throw new ApiError(503, err.message);
      throw err;
    }
  }

  private async replayAll(req: ApiRequest, connection: ChannelModel): Promise<ApiResponse> {
    const body = parseWith(replayAllBody, req.body ?? {}, 'body');
    const result = await replayDeadLetters(connection, this.topology, { all: true, ...(body.connectionId !== undefined ? { connectionId: body.connectionId } : {}) });
    this.deps.logger.info({ connectionId: body.connectionId, replayed: result.replayed.length, skipped: result.skipped.length, failed: result.failed.length }, 'dashboard: dead letters replayed');
    return replayResponse(result, this.topology);
  }

  private async purge(req: ApiRequest, connection: ChannelModel): Promise<ApiResponse> {
    const body = parseWith(purgeBody, req.body ?? {}, 'body');
    const filter: DeadLetterFilter = {
      ...(body.connectionId !== undefined ? { connectionId: body.connectionId } : {}),
      ...(body.olderThan !== undefined ? { olderThanMs: parseDuration(body.olderThan)! } : {}),
    };
    // Confirmation is the page's (a confirm() dialog); the API call is the confirmed act.
    const result = await purgeDeadLetters(connection, this.topology, filter);
    this.deps.logger.warn({ connectionId: body.connectionId, olderThan: body.olderThan, purged: result.purged.length }, 'dashboard: dead letters purged');
    return ok({ purged: result.purged.map((l) => l.id), matched: result.matched });
  }
}

/** 200 when every asked-for letter was replayed; 404 when none was found; 409 when some cannot be replayed; 502 when the broker refused. */
function replayResponse(result: ReplayResult, topology: Topology): ApiResponse {
  if (result.failed.length > 0) {
    return { status: 502, body: { ...result, error: `replay failed: ${result.failed.map((f) => `${f.id}: ${f.error}`).join('; ')}` } };
  }
  if (result.skipped.length > 0) {
    return { status: 409, body: { ...result, error: `not replayable (the body is not a sync request; purge it instead): ${result.skipped.map((s) => `${s.id}: ${s.reason}`).join('; ')}` } };
  }
  if (result.notFound.length > 0 && result.replayed.length === 0) {
    return { status: 404, body: { ...result, error: `no dead letter ${result.notFound.map((id) => `"${id}"`).join(', ')} in ${topology.deadQueue}` } };
  }
  return ok(result);
}

function ok(body: unknown): ApiResponse {
  return { status: 200, body };
}

function notFound(path: string): ApiError {
  return new ApiError(404, `no such API route: ${path}`);
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ApiError(400, `bad path segment: ${part}`);
  }
}

/** What a connector is, without its config (which holds credentials). */
function describeConnector(c: ConnectorDefinition): string {
  if (c.connector !== undefined) return c.connector;
  if (c.image !== undefined) return c.image;
  return c.command?.[0] ?? '?';
}

function streamNames(c: Connection): string[] | null {
  return c.streams ? c.streams.map((s) => s.name) : null;
}

function summarizeRun(r: RunRecord) {
  return {
    syncId: r.syncId,
    status: r.status,
    attempt: r.attempt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt ?? null,
    durationMs: r.durationMs ?? null,
    records: r.records,
    bytes: r.bytes,
    error: r.error?.message ?? null,
  };
}
