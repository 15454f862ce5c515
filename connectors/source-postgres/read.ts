import type { Client } from 'pg';
import type { ConfiguredAirbyteStream, StreamDescriptor } from '../../shared/protocol.js';
import { describeStream, descriptorOf, indexStreams } from '../lib/catalog.js';
import type { ReadContext } from '../lib/cli.js';
import { ConfigError } from '../lib/errors.js';
import type { Output } from '../lib/output.js';
import { classifyPgError, connect, qualifiedName, quoteIdent, type PgConnectionConfig } from '../lib/postgres.js';
import { streamStateLine, type StreamStates } from '../lib/state.js';
import { listTables, type Column, type Table } from './tables.js';

export interface SourcePostgresConfig extends PgConnectionConfig {
  schema: string;
  stateEvery: number;
}

// Rows per FETCH: enough to amortise the round trip, few enough that memory stays flat
// whatever the table's size.
const FETCH_ROWS = 1000;
const CURSOR_NAME = 'tidepool_read';

interface Plan {
  descriptor: StreamDescriptor;
  schema: string;
  table: Table;
  columns: Column[];
  incremental?: { column: Column; after: string | undefined };
}

export async function readPostgres({ config, catalog, state, out }: ReadContext<SourcePostgresConfig>): Promise<void> {
  const client = await connect(config, 'tidepool-source-postgres');
  try {
    const tables = await listTables(client, config.schema).catch((err: unknown) => {
      throw classifyPgError(err, `cannot list the tables of schema ${config.schema}`);
    });
    indexStreams(catalog);
    // Every stream is checked before the first row goes out, so a typo fails the run at once.
    const plans = catalog.streams.map((configured) => planStream(configured, config.schema, tables, state, out));
    for (const plan of plans) {
      try {
        await readStream(client, plan, config.stateEvery, out);
      } catch (err) {
        throw classifyPgError(err, `reading stream ${describeStream(plan.descriptor)}`);
      }
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

function planStream(
  configured: ConfiguredAirbyteStream,
  schema: string,
  tables: Map<string, Table>,
  states: StreamStates,
  out: Output,
): Plan {
  const descriptor = descriptorOf(configured);
  const table = tables.get(configured.stream.name);
  if (!table) {
    throw new ConfigError(`stream ${configured.stream.name}: no readable table of that name in the schema`);
  }
  // The configured json_schema may list a subset of the columns (column selection).
  const selected = configured.stream.json_schema['properties'];
  const columns =
    typeof selected === 'object' && selected !== null && Object.keys(selected).length > 0
      ? table.columns.filter((column) => Object.hasOwn(selected, column.name))
      : table.columns;
  if (columns.length === 0) throw new ConfigError(`stream ${table.name}: none of the configured columns exist`);
  if (configured.sync_mode !== 'incremental') return { descriptor, schema, table, columns };

  const cursorField = configured.cursor_field?.[0];
  if (cursorField === undefined) {
    throw new ConfigError(`stream ${table.name}: incremental sync needs a cursor_field (a column to read new rows by)`);
  }
  const column = table.columns.find((candidate) => candidate.name === cursorField);
  if (!column) throw new ConfigError(`stream ${table.name}: cursor_field ${cursorField} is not a column of the table`);
  if (column.type === 'json' || column.elementType !== null) {
    throw new ConfigError(`stream ${table.name}: cursor_field ${cursorField} has type ${column.type}, which has no order`);
  }
  return { descriptor, schema, table, columns, incremental: { column, after: committedCursor(descriptor, cursorField, states, out) } };
}

function committedCursor(
  descriptor: StreamDescriptor,
  cursorField: string,
  states: StreamStates,
  out: Output,
): string | undefined {
  const state = states.get(descriptor);
  if (state === undefined || state['cursor'] === undefined || state['cursor'] === null) return undefined;
  const field = state['cursor_field'];
  if (Array.isArray(field) && field[0] !== cursorField) {
    // A state kept for another column says nothing about this one: read everything again.
    void out.message({
      type: 'LOG',
      log: {
        level: 'WARN',
        message: `stream ${describeStream(descriptor)}: state is for cursor ${String(field[0])}, not ${cursorField}; reading all rows`,
      },
    });
    return undefined;
  }
  const cursor = state['cursor'];
  if (typeof cursor !== 'string' && typeof cursor !== 'number') {
    throw new ConfigError(`invalid state for stream ${describeStream(descriptor)}: cursor must be a string`);
  }
  return String(cursor);
}

async function readStream(client: Client, plan: Plan, stateEvery: number, out: Output): Promise<void> {
  const { text, values } = buildQuery(plan);
  const names = plan.columns.map((column) => column.name);
  const cursorIndex = names.length;
  const descriptor = plan.descriptor;
  const head = `{"type":"RECORD","record":{"stream":${JSON.stringify(descriptor.name)},${
    descriptor.namespace === undefined ? '' : `"namespace":${JSON.stringify(descriptor.namespace)},`
  }"emitted_at":`;

  // The last cursor value seen in a row; rows come in cursor order, so once a row with a
  // different value arrives every row holding this one has been emitted.
  let last = plan.incremental?.after;
  let sinceState = 0;
  const stateOf = (cursor: string | undefined): Record<string, unknown> => ({
    cursor_field: [plan.incremental?.column.name],
    ...(cursor === undefined ? {} : { cursor }),
  });

  // REPEATABLE READ: one snapshot for the whole stream, however many FETCHes it takes.
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
  try {
    await client.query(`DECLARE ${CURSOR_NAME} NO SCROLL CURSOR FOR ${text}`, values);
    for (;;) {
      const batch = await client.query<unknown[]>({ text: `FETCH ${FETCH_ROWS} FROM ${CURSOR_NAME}`, rowMode: 'array' });
      const prefix = `${head}${Date.now()},"data":`;
      for (const row of batch.rows) {
        if (plan.incremental) {
          const value = row[cursorIndex] as string | null;
          // Rows without a cursor value (only on a first read: `>` excludes them later) sort
          // last and cannot move the cursor.
          if (value !== null && value !== last) {
            if (sinceState >= stateEvery && last !== undefined) {
              const wait = out.line(streamStateLine(descriptor, stateOf(last)));
              if (wait) await wait;
              sinceState = 0;
            }
            last = value;
          }
        }
        const data: Record<string, unknown> = {};
        for (let i = 0; i < names.length; i += 1) data[names[i] as string] = row[i];
        const wait = out.line(`${prefix}${JSON.stringify(data)}}}`);
        if (wait) await wait;
        sinceState += 1;
      }
      if (batch.rows.length < FETCH_ROWS) break;
    }
    await client.query(`CLOSE ${CURSOR_NAME}`);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  if (plan.incremental) {
    const wait = out.line(streamStateLine(descriptor, stateOf(last)));
    if (wait) await wait;
  }
}

function buildQuery(plan: Plan): { text: string; values: unknown[] } {
  const columns = plan.columns.map((column) => quoteIdent(column.name)).join(', ');
  const from = qualifiedName(plan.schema, plan.table.name);
  if (!plan.incremental) {
    const order = plan.table.primaryKey.map(quoteIdent).join(', ');
    return { text: `SELECT ${columns} FROM ${from}${order ? ` ORDER BY ${order}` : ''}`, values: [] };
  }
  // Qualified, because the text column below would make a bare name ambiguous in ORDER BY.
  const cursor = `${from}.${quoteIdent(plan.incremental.column.name)}`;
  // The cursor travels as text so a timestamp keeps all its digits. Equal numerics can print
  // differently (1.0, 1.00); trimming the scale keeps "same value" and "same text" one thing,
  // which the state boundaries rely on.
  const cursorText = plan.incremental.column.type === 'numeric' ? `trim_scale(${cursor})::text` : `${cursor}::text`;
  const after = plan.incremental.after;
  return {
    text: `SELECT ${columns}, ${cursorText} FROM ${from}${after === undefined ? '' : ` WHERE ${cursor} > $1`} ORDER BY ${cursor}`,
    values: after === undefined ? [] : [after],
  };
}
