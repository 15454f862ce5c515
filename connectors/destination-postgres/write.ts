import { randomUUID } from 'node:crypto';
import type { Client } from 'pg';
import { describeStream, indexStreams, streamKey } from '../lib/catalog.js';
import type { WriteContext } from '../lib/cli.js';
import { ProtocolError } from '../lib/errors.js';
import { parseInputMessage, readLineBatches } from '../lib/input.js';
import { IncompleteInputError, StreamStatuses } from '../lib/stream-status.js';
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
 *
 * The end of the input is the end of the sync only if it is complete (lib/stream-status.ts):
 * when the orchestrator announced streams with STREAM_STATUS STARTED and EOF comes before
 * their COMPLETE (a killed runner), the rows after the last STATE are rolled back, overwrite
 * streams keep their previous rows, and the write fails.
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
  const writers = await openWriters(client, config, catalog, generation);

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
  const statuses = new StreamStatuses();
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
          if (statuses.isComplete(record.stream, record.namespace)) {
            throw new ProtocolError(`line ${lineNumber}: RECORD for stream ${describeStream(writer.table.descriptor)} after its STREAM_STATUS COMPLETE`);
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
          if (message.streamStatus) statuses.observe(message.streamStatus);
          // A source that fails still ends our stdin normally; its TRACE ERROR is the only sign.
          else if (message.error) sourceFailed = true;
          break;
        default:
          break;
      }
    }
  }
  const overwritten = [...writers.values()].filter((writer) => writer.table.overwrite);
  const incomplete = statuses.incomplete();
  if (incomplete.length > 0) {
    // EOF without COMPLETE: the orchestrator stopped mid-sync. Nothing after the last STATE
    // is kept (it was never confirmed, and the retry from the last committed state sends it
    // again), and no overwrite is applied.
    if (inTransaction) await client.query('ROLLBACK');
    inTransaction = false;
    await abandonGeneration(client, overwritten, generation);
    throw new IncompleteInputError(incomplete);
  }
  await commit();
  await replacePreviousGeneration(client, overwritten, generation, sourceFailed, out);
}

/** One writer per configured stream, its table created or brought up to date. */
async function openWriters(
  client: Client,
  config: DestinationPostgresConfig,
  catalog: WriteContext<DestinationPostgresConfig>['catalog'],
  generation: string,
): Promise<Map<string, TableWriter>> {
  const writers = new Map<string, TableWriter>();
  let id = 0;
  for (const [key, configured] of indexStreams(catalog)) {
    const table = targetTable(configured, config.schema);
    await prepareTable(client, table);
    writers.set(key, new TableWriter(table, generation, config.batchSize, id++));
  }
  return writers;
}

/** After a complete input: the overwrite streams' older rows go, unless the source failed. */
async function replacePreviousGeneration(
  client: Client,
  overwritten: TableWriter[],
  generation: string,
  sourceFailed: boolean,
  out: WriteContext<DestinationPostgresConfig>['out'],
): Promise<void> {
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

/**
 * An overwrite that will not be completed: the previous rows stay. A keyless table also loses
 * this run's rows committed at its STATEs, which would otherwise sit beside the previous
 * generation as duplicates until a complete run; a full refresh starts over, so nothing needs
 * them. A keyed table keeps them: each upsert replaced the previous row of its key in place,
 * so deleting it would lose the row.
 */
async function abandonGeneration(client: Client, overwritten: readonly TableWriter[], generation: string): Promise<void> {
  const keyless = overwritten.filter((writer) => writer.table.primaryKey.length === 0);
  if (keyless.length === 0) return;
  await client.query('BEGIN');
  for (const writer of keyless) {
    await client.query(`DELETE FROM ${qualifiedName(writer.table.schema, writer.table.name)} WHERE ${quoteIdent(GENERATION)} = $1`, [generation]);
  }
  await client.query('COMMIT');
}
