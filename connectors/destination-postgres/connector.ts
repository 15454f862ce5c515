// destination-postgres: one typed table per stream, upserted by primary key, committed at
// each STATE.
import { z } from 'zod';
import type { Connector } from '../lib/cli.js';
import { checkConnection, pgConnectionFields, quoteIdent } from '../lib/postgres.js';
import { writePostgres } from './write.js';

const configSchema = z.object({
  ...pgConnectionFields,
  batchSize: z.int().min(1).default(1000).describe('Rows per INSERT statement.'),
});

export const destinationPostgres: Connector<typeof configSchema> = {
  name: 'destination-postgres',
  configSchema,
  spec: { supported_destination_sync_modes: ['overwrite', 'append', 'append_dedup'] },
  check: (config) => checkConnection(config, 'tidepool-destination-postgres', `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(config.schema)}`),
  write: writePostgres,
};
