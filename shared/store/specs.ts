// Connector SPECs, cached by the fingerprint of the connector program that printed them
// (runner/sync/spec.ts): `spec` is run once per program version, not once per sync or connection.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { ConnectorSpecification } from '../protocol.js';
import type { Keys } from './redis.js';

/**
 * What is cached: the SPEC, or null for a program that exited 0 without printing one (a script
 * speaking only `read` or `write`), so that it is not asked again on every sync.
 */
export interface CachedSpec {
  spec: ConnectorSpecification | null;
  fetchedAt: string;
}

// A record read back from Redis is input like any other: anyone who can write to the store can
// put anything there. A malformed one is treated as absent and replaced.
const cachedSpecSchema = z.object({
  spec: z
    .object({
      connectionSpecification: z.record(z.string(), z.unknown()),
      documentationUrl: z.string().optional(),
      supportsIncremental: z.boolean().optional(),
      supported_destination_sync_modes: z.array(z.enum(['overwrite', 'append', 'append_dedup'])).optional(),
    })
    .loose()
    .nullable(),
  fetchedAt: z.string(),
});

/** Unused specs go after this long; each read keeps a spec in use alive. */
const SPEC_TTL_SECONDS = 30 * 24 * 3600;

export class SpecStore {
  constructor(private readonly redis: Redis, private readonly keys: Keys) {}

  async get(fingerprint: string): Promise<CachedSpec | undefined> {
    const json = await this.redis.getex(this.keys.spec(fingerprint), 'EX', SPEC_TTL_SECONDS);
    if (json === null) return undefined;
    try {
      const parsed = cachedSpecSchema.safeParse(JSON.parse(json));
      return parsed.success ? (parsed.data as CachedSpec) : undefined;
    } catch {
      return undefined;
    }
  }

  async put(fingerprint: string, entry: CachedSpec): Promise<void> {
    await this.redis.set(this.keys.spec(fingerprint), JSON.stringify(entry), 'EX', SPEC_TTL_SECONDS);
  }
}
