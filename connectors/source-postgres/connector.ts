// source-postgres: every readable base table of one schema as a stream, full refresh or
// incremental by a cursor column.
import { z } from 'zod';
import type { Connector } from '../lib/cli.js';
import { checkConnection, classifyPgError, connect, pgConnectionFields } from '../lib/postgres.js';
import { readPostgres } from './read.js';
import { listTables, streamOf } from './tables.js';

const configSchema = z.object({
  ...pgConnectionFields,
  stateEvery: z.int().min(1).default(1000).describe('Emit a STATE at most every this many records (incremental streams).'),
});

export const sourcePostgres: Connector<typeof configSchema> = {
  name: 'source-postgres',
  configSchema,
  spec: { supportsIncremental: true },
  check: (config) => checkConnection(config, 'tidepool-source-postgres', 'SELECT 1'),
  async discover(config) {
    const client = await connect(config, 'tidepool-source-postgres');
    try {
      const tables = await listTables(client, config.schema);
      return { streams: [...tables.values()].map(streamOf) };
    } catch (err) {
      throw classifyPgError(err, `cannot list the tables of schema ${config.schema}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  },
  read: readPostgres,
};
