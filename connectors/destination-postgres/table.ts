import type { Client } from 'pg';
import type { ConfiguredAirbyteStream, StreamDescriptor } from '../../shared/protocol.js';
import { describeStream, descriptorOf, primaryKeyOf } from '../lib/catalog.js';
import { ConfigError } from '../lib/errors.js';
import { qualifiedName, quoteIdent } from '../lib/postgres.js';

export type SqlType = 'bigint' | 'double precision' | 'boolean' | 'timestamptz' | 'date' | 'text' | 'jsonb';

export interface TargetColumn {
  name: string;
  type: SqlType;
}

/** Where and how one configured stream is stored. */
export interface TargetTable {
  descriptor: StreamDescriptor;
  schema: string;
  name: string;
  /** The stream's own columns, from its json_schema, in schema order. */
  columns: TargetColumn[];
  primaryKey: string[];
  overwrite: boolean;
}

export const EMITTED_AT = '_tidepool_emitted_at';
export const GENERATION = '_tidepool_generation';

/** The table for a stream: in the stream's namespace as schema if it has one, else the config's. */
export function targetTable(configured: ConfiguredAirbyteStream, defaultSchema: string): TargetTable {
  const descriptor = descriptorOf(configured);
  const properties = configured.stream.json_schema['properties'];
  const columns: TargetColumn[] = [];
  if (typeof properties === 'object' && properties !== null) {
    for (const [name, schema] of Object.entries(properties)) {
      // The bookkeeping columns belong to the destination; a field of that name is not stored.
      if (name === EMITTED_AT || name === GENERATION) continue;
      columns.push({ name, type: sqlType(schema) });
    }
  }
  const primaryKey = primaryKeyOf(configured);
  for (const column of primaryKey) {
    if (!columns.some((candidate) => candidate.name === column)) {
      throw new ConfigError(`stream ${describeStream(descriptor)}: primary key ${column} is not a property of its json_schema`);
    }
  }
  return {
    descriptor,
    schema: descriptor.namespace ?? defaultSchema,
    name: descriptor.name,
    columns,
    primaryKey,
    overwrite: configured.destination_sync_mode === 'overwrite',
  };
}

/** JSON Schema type → column type; anything not plainly scalar is kept whole as jsonb. */
export function sqlType(schema: unknown): SqlType {
  if (typeof schema !== 'object' || schema === null) return 'jsonb';
  const { type: declared, format } = schema as { type?: unknown; format?: unknown };
  const types = (Array.isArray(declared) ? declared : [declared]).filter((type) => type !== 'null');
  if (types.length !== 1) return 'jsonb';
  switch (types[0]) {
    case 'integer':
      return 'bigint';
    case 'number':
      return 'double precision';
    case 'boolean':
      return 'boolean';
    case 'string':
      return format === 'date-time' ? 'timestamptz' : format === 'date' ? 'date' : 'text';
    default:
      return 'jsonb';
  }
}

/**
 * Creates the schema and table if missing and adds columns the stream gained since. An
 * existing table must already have the stream's primary key, since upserts depend on it.
 */
export async function prepareTable(client: Client, table: TargetTable): Promise<void> {
  const name = qualifiedName(table.schema, table.name);
  const definitions = [
    ...table.columns.map((column) => `${quoteIdent(column.name)} ${column.type}`),
    `${quoteIdent(EMITTED_AT)} timestamptz`,
    `${quoteIdent(GENERATION)} text`,
  ];
  if (table.primaryKey.length > 0) definitions.push(`PRIMARY KEY (${table.primaryKey.map(quoteIdent).join(', ')})`);

  await retryOnCatalogRace(() => client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(table.schema)}`));
  await retryOnCatalogRace(() => client.query(`CREATE TABLE IF NOT EXISTS ${name} (${definitions.join(', ')})`));
  // ALTER TABLE takes an exclusive lock, which would queue behind any long query on the table
  // (and everything else behind it), so it only runs when a column is actually missing.
  const present = await client.query<{ column_name: string }>(
    `SELECT attname AS column_name FROM pg_catalog.pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
    [name],
  );
  const existing = new Set(present.rows.map((row) => row.column_name));
  const wanted: TargetColumn[] = [
    ...table.columns,
    { name: EMITTED_AT, type: 'timestamptz' },
    { name: GENERATION, type: 'text' },
  ];
  const additions = wanted
    .filter((column) => !existing.has(column.name))
    .map((column) => `ADD COLUMN IF NOT EXISTS ${quoteIdent(column.name)} ${column.type}`);
  if (additions.length > 0) await client.query(`ALTER TABLE ${name} ${additions.join(', ')}`);

  if (table.primaryKey.length === 0) return;
  const primaryKey = await client.query<{ column_name: string }>(
    `SELECT a.attname AS column_name
       FROM pg_catalog.pg_index i
       CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1::regclass AND i.indisprimary
      ORDER BY k.position`,
    [name],
  );
  const current = primaryKey.rows.map((row) => row.column_name);
  if (current.length === 0) {
    await client.query(`ALTER TABLE ${name} ADD PRIMARY KEY (${table.primaryKey.map(quoteIdent).join(', ')})`);
  } else if (current.join('\0') !== table.primaryKey.join('\0')) {
    throw new ConfigError(
      `table ${table.schema}.${table.name} has primary key (${current.join(', ')}), but the stream's is (${table.primaryKey.join(', ')})`,
    );
  }
}

/**
 * Two writers creating the same schema or table at once can both pass IF NOT EXISTS and one
 * then fails on the catalog's unique index (23505); the second attempt sees the object.
 */
async function retryOnCatalogRace(statement: () => Promise<unknown>): Promise<void> {
  try {
    await statement();
  } catch (err) {
    const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
    if (code !== '23505' && code !== '42P07' && code !== '42P06') throw err;
    await statement();
  }
}
