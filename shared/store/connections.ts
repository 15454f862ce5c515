// Connection definitions, by id.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { connectionSchema, type Connection } from '../connections.js';
import type { Keys } from './redis.js';
import { scheduleKeys } from './schedules.js';

export type ApplyResult = 'created' | 'updated' | 'unchanged';

/** One version of a connection as it was applied (`connections history`). */
export interface ConnectionVersion {
  version: number;
  /** When it was applied; null for the version found in place when history began. */
  appliedAt: string | null;
  connection: Connection;
}

/** Versions kept per connection; older ones drop off. */
export const CONNECTION_VERSIONS_KEPT = 50;

// Atomic, so that two applies at once cannot give two versions one number or lose one. Each
// changed definition becomes a new version at the head of the history; an unchanged one is not.
// A connection stored before history existed gets its old definition recorded as a version
// first, so that the first rollback has something to go back to. The entry is assembled as text:
// ARGV[1] is JSON already, ARGV[3] an ISO timestamp, the version a number.
const APPLY = `
local prev = redis.call('GET', KEYS[1])
if prev == ARGV[1] then return {0, tonumber(redis.call('GET', KEYS[4]) or '0')} end
if prev and redis.call('LLEN', KEYS[5]) == 0 then
  local v0 = redis.call('INCR', KEYS[4])
  redis.call('LPUSH', KEYS[5], '{"version":' .. v0 .. ',"appliedAt":null,"connection":' .. prev .. '}')
end
local v = redis.call('INCR', KEYS[4])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
redis.call('LPUSH', KEYS[5], '{"version":' .. v .. ',"appliedAt":"' .. ARGV[3] .. '","connection":' .. ARGV[1] .. '}')
redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[4]) - 1)
if prev then return {2, v} end
return {1, v}`;

// Atomic, so that no sync can start between the check and the delete: a connection whose lock is
// held (KEYS[2]: a sync of it is running) is left alone (-1); one that is not stored gives 0.
// KEYS[3] is the set of ids, ARGV[1] the id; the rest of KEYS are the connection's own keys, its
// committed state among them: a connection applied again under the same id starts afresh.
const DELETE = `
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('SREM', KEYS[3], ARGV[1])
local removed = redis.call('DEL', KEYS[1])
for i = 4, #KEYS do redis.call('DEL', KEYS[i]) end
return removed`;

/** What `delete` did: a connection with a sync running is not deleted. */
export type DeleteResult = 'deleted' | 'not-found' | 'running';

type ConnectionRedis = Redis & {
  tpConnectionApply(connection: string, connections: string, catalog: string, version: string, history: string, json: string, id: string, now: string, keep: number): Promise<[number, number]>;
  tpConnectionDelete(...keysThenId: string[]): Promise<number>;
};

const versionSchema = z.object({ version: z.number().int().positive(), appliedAt: z.string().nullable(), connection: connectionSchema });

export class ConnectionStore {
  private readonly redis: ConnectionRedis;

  constructor(redis: Redis, private readonly keys: Keys) {
    if (!('tpConnectionApply' in redis)) redis.defineCommand('tpConnectionApply', { numberOfKeys: 5, lua: APPLY });
    // The number of keys varies (the schedule's are listed), so it is passed with each call.
    if (!('tpConnectionDelete' in redis)) redis.defineCommand('tpConnectionDelete', { lua: DELETE });
    this.redis = redis as ConnectionRedis;
  }

  async apply(connection: Connection): Promise<ApplyResult> {
    return (await this.applyVersioned(connection)).result;
  }

  /** Stores the connection; a changed one becomes a new version. The source may have changed: its catalog is discovered again. */
  async applyVersioned(connection: Connection): Promise<{ result: ApplyResult; version: number }> {
    const k = this.keys;
    const id = connection.id;
    const [code, version] = await this.redis.tpConnectionApply(
      k.connection(id), k.connections(), k.catalog(id), k.connectionVersion(id), k.connectionHistory(id),
      JSON.stringify(connection), id, new Date().toISOString(), CONNECTION_VERSIONS_KEPT,
    );
    return { result: code === 0 ? 'unchanged' : code === 1 ? 'created' : 'updated', version };
  }

  /** The connection's current version number; 0 for one applied before versions were kept. */
  async version(id: string): Promise<number> {
    return Number((await this.redis.get(this.keys.connectionVersion(id))) ?? 0);
  }

  /**
   * Its versions, newest first. An entry that does not parse (anyone who can write to Redis can
   * put anything there) is left out rather than failing the listing.
   */
  async history(id: string): Promise<ConnectionVersion[]> {
    const entries = await this.redis.lrange(this.keys.connectionHistory(id), 0, -1);
    return entries.flatMap((json) => {
      const version = parseStored(json, versionSchema);
      return version ? [version] : [];
    });
  }

  /** The connection and its version number, read together (one MGET) so they match. */
  async getVersioned(id: string): Promise<{ connection: Connection; version: number } | undefined> {
    const [json, version] = await this.redis.mget(this.keys.connection(id), this.keys.connectionVersion(id));
    if (json === null || json === undefined) return undefined;
    return { connection: connectionSchema.parse(JSON.parse(json)), version: Number(version ?? 0) };
  }

  async get(id: string): Promise<Connection | undefined> {
    const json = await this.redis.get(this.keys.connection(id));
    return json === null ? undefined : connectionSchema.parse(JSON.parse(json));
  }

  /** Every connection, by id; definitions that do not parse are left out. */
  async list(): Promise<Connection[]> {
    return (await this.listing()).connections;
  }

  /**
   * Every connection, by id, with the keys of the stored definitions that do not parse: one
   * corrupt definition (a stray write to Redis) is left out and reported, not the end of the listing.
   */
  async listing(): Promise<{ connections: Connection[]; corrupt: string[] }> {
    const ids = (await this.redis.smembers(this.keys.connections())).sort();
    const out = { connections: [] as Connection[], corrupt: [] as string[] };
    if (ids.length === 0) return out;
    const keys = ids.map((id) => this.keys.connection(id));
    const values = await this.redis.mget(keys);
    values.forEach((json, i) => {
      if (json === null) return;
      const connection = parseStored(json, connectionSchema);
      if (connection) out.connections.push(connection);
      else out.corrupt.push(keys[i]!);
    });
    return out;
  }

  /** Removes the connection with everything kept for it by id: catalog, check results, history, and its schedule's bookkeeping. */
  /**
   * Deletes the connection with everything stored for it — catalog, checks, history, committed
   * state, schedule — unless a sync of it is running. Its run records stay (they expire on their
   * own) so what it did can still be looked up; a sync of it still queued is dead-lettered as
   * naming an unknown connection.
   */
  async delete(id: string): Promise<DeleteResult> {
    const keys = [
      this.keys.connection(id),
      this.keys.lock(id),
      this.keys.connections(),
      this.keys.catalog(id),
      this.keys.checked(id),
      this.keys.connectionHistory(id),
      this.keys.connectionVersion(id),
      this.keys.state(id),
      ...scheduleKeys(this.keys, id),
    ];
    const result = await this.redis.tpConnectionDelete(String(keys.length), ...keys, id);
    return result < 0 ? 'running' : result === 1 ? 'deleted' : 'not-found';
  }

  async getCatalog(id: string): Promise<{ sourceHash: string; catalog: unknown } | undefined> {
    const json = await this.redis.get(this.keys.catalog(id));
    return json === null ? undefined : (JSON.parse(json) as { sourceHash: string; catalog: unknown });
  }

  async putCatalog(id: string, sourceHash: string, catalog: unknown): Promise<void> {
    await this.redis.set(this.keys.catalog(id), JSON.stringify({ sourceHash, catalog }));
  }

  /** The hash of the connector definition whose `check` last succeeded for this role. */
  async getChecked(id: string, role: 'source' | 'destination'): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.checked(id), role)) ?? undefined;
  }

  async putChecked(id: string, role: 'source' | 'destination', definitionHash: string): Promise<void> {
    await this.redis.hset(this.keys.checked(id), role, definitionHash);
  }
}

/** A stored JSON value checked against its schema; undefined when it does not parse. */
function parseStored<S extends z.ZodType>(json: string, schema: S): z.output<S> | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
