import { randomUUID } from 'node:crypto';
import type { Client } from 'pg';
import { describeStream, indexStreams, streamKey } from '../lib/catalog.js';
import type { WriteContext } from '../lib/cli.js';
import { ProtocolError } from '../lib/errors.js';
import { parseInputMessage, readLineBatches } from '../lib/input.js';
import { classifyPgError, connect, qualifiedName, quoteIdent, type PgConnectionConfig } from '../lib/postgres.js';
import { GENERATION, prepareTable, targetTable } from './table.js';
import { TableWriter } from './table-writer.js';

export interface DestinationPostgresConfig extends PgConnectionConfig {
  schema: string;
  batchSize: number;
}

/**
 * Loads records into one table per stream. Rows are inserted as batches fill, but committed
 * only when a STATE arrives (and at the end): the STATE is echoed after its COMMIT, so
 * whatever the platform checkpoints is stored, and whatever a crash loses was never
 * checkpointed and will be sent again — without duplicates, even for tables with no key.
 */
export async function writePostgres({ config, catalog, input, out }: WriteContext<DestinationPostgresConfig>): Promise<void> {
  const client = await connect(config, 'tidepool-destination-postgres');
  try {
    await load(client, config, catalog, input, out);
  } catch (err) {
    throw classifyPgError(err, 'destination-postgres write failed');
  } finally {
    // Ending the connection rolls back whatever was not committed.
    await client.end().catch(() => undefined);
  }
}

async function load(
  client: Client,
  config: DestinationPostgresConfig,
  catalog: WriteContext<DestinationPostgresConfig>['catalog'],
  input: WriteContext<DestinationPostgresConfig>['input'],
  out: WriteContext<DestinationPostgresConfig>['out'],
): Promise<void> {
  // Rows this run writes carry its generation; an overwrite removes the others at the end.
  const generation = randomUUID();
  const writers = new Map<string, TableWriter>();
  let id = 0;
  for (const [key, configured] of indexStreams(catalog)) {
    const table = targetTable(configured, config.schema);
    await prepareTable(client, table);
    writers.set(key, new TableWriter(table, generation, config.batchSize, id++));
  }

  let inTransaction = false;
  const writeAll = async (): Promise<void> => {
    for (const writer of writers.values()) {
      if (writer.buffered === 0) continue;
      if (!inTransaction) {
        await client.query('BEGIN');
        inTransaction = true;
      }
      await writer.write(client);
    }
  };
  const commit = async (): Promise<void> => {
    await writeAll();
    if (inTransaction) await client.query('COMMIT');
    inTransaction = false;
  };

  let sourceFailed = false;
  let lineNumber = 0;
  for await (const lines of readLineBatches(input)) {
    for (const line of lines) {
      lineNumber += 1;
      const message = parseInputMessage(line, lineNumber);
      if (message === undefined) continue;
      switch (message.type) {
        case 'RECORD': {
          const record = message.record;
          const writer = writers.get(streamKey(record.stream, record.namespace));
          if (!writer) {
            throw new ProtocolError(
              `line ${lineNumber}: RECORD for stream ${describeStream({ name: record.stream, ...(record.namespace === undefined ? {} : { namespace: record.namespace }) })}, which is not in the configured catalog`,
            );
          }
          writer.add(record.data, record.emitted_at);
          if (writer.full) {
            if (!inTransaction) {
              await client.query('BEGIN');
              inTransaction = true;
            }
            await writer.write(client);
          }
          break;
        }
        case 'STATE':
          await commit();
          void out.line(line);
          await out.flush();
          break;
        case 'TRACE':
          // A source that fails still ends our stdin normally; its TRACE ERROR is the only sign.
          if (message.error) sourceFailed = true;
          break;
        default:
          break;
      }
    }
  }
  await commit();

  const overwritten = [...writers.values()].filter((writer) => writer.table.overwrite);
  if (overwritten.length === 0) return;
  if (sourceFailed) {
    void out.message({
      type: 'LOG',
      log: { level: 'WARN', message: 'the source reported an error: overwrite streams keep their previous rows until a run succeeds' },
    });
    return;
  }
  // Only now that this generation is committed in full do the older rows go.
  await client.query('BEGIN');
  for (const writer of overwritten) {
    await client.query(
      `DELETE FROM ${qualifiedName(writer.table.schema, writer.table.name)} WHERE ${quoteIdent(GENERATION)} IS DISTINCT FROM $1`,
      [generation],
    );
  }
  await client.query('COMMIT');
}
