// Connection definitions, by id.
import type { Redis } from 'ioredis';
import { connectionSchema, type Connection } from '../connections.js';
import type { Keys } from './redis.js';

export type ApplyResult = 'created' | 'updated' | 'unchanged';

export class ConnectionStore {
  constructor(private readonly redis: Redis, private readonly keys: Keys) {}

  async apply(connection: Connection): Promise<ApplyResult> {
    const json = JSON.stringify(connection);
    const previous = await this.redis.get(this.keys.connection(connection.id));
    if (previous === json) return 'unchanged';
    await this.redis
      .multi()
      .set(this.keys.connection(connection.id), json)
      .sadd(this.keys.connections(), connection.id)
      // The source may have changed: discover its streams again on the next sync.
      .del(this.keys.catalog(connection.id))
      .exec();
    return previous === null ? 'created' : 'updated';
  }

  async get(id: string): Promise<Connection | undefined> {
    const json = await this.redis.get(this.keys.connection(id));
    return json === null ? undefined : connectionSchema.parse(JSON.parse(json));
  }

  async list(): Promise<Connection[]> {
    const ids = (await this.redis.smembers(this.keys.connections())).sort();
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map((id) => this.keys.connection(id)));
    return values.flatMap((v) => (v === null ? [] : [connectionSchema.parse(JSON.parse(v))]));
  }

  async delete(id: string): Promise<boolean> {
    const [[, removed] = []] = (await this.redis
      .multi()
      .del(this.keys.connection(id))
      .srem(this.keys.connections(), id)
      .del(this.keys.catalog(id))
      .del(this.keys.checked(id))
      .exec()) ?? [];
    return removed === 1;
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
