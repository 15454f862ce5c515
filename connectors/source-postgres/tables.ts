import type { Client } from 'pg';
import type { AirbyteStream } from '../../shared/protocol.js';

export interface Column {
  name: string;
  /** The base type's name (a domain's underlying type), e.g. "int8", "timestamptz", "_text". */
  type: string;
  nullable: boolean;
  /** For arrays, the element type's name. */
  elementType: string | null;
}

export interface Table {
  name: string;
  columns: Column[];
  primaryKey: string[];
}

// Base tables only: plain ('r') and partitioned ('p') tables, but not the partitions
// themselves, whose rows the partitioned table already returns. Tables the role cannot read
// are left out, as a read of them would only fail.
const COLUMNS_SQL = `
  SELECT c.relname AS table_name, a.attname AS column_name, NOT a.attnotnull AS nullable,
         bt.typname AS type_name, et.typname AS element_type
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
    LEFT JOIN pg_catalog.pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
   WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
     AND has_table_privilege(c.oid, 'SELECT')
   ORDER BY c.relname, a.attnum`;

const PRIMARY_KEYS_SQL = `
  SELECT c.relname AS table_name, a.attname AS column_name
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
   WHERE n.nspname = $1 AND i.indisprimary
   ORDER BY c.relname, k.position`;

/** The readable base tables of a schema, by name, in name order. */
export async function listTables(client: Client, schema: string): Promise<Map<string, Table>> {
  const tables = new Map<string, Table>();
  const columns = await client.query<{
    table_name: string;
    column_name: string;
    nullable: boolean;
    type_name: string;
    element_type: string | null;
  }>(COLUMNS_SQL, [schema]);
  for (const row of columns.rows) {
    let table = tables.get(row.table_name);
    if (!table) {
      table = { name: row.table_name, columns: [], primaryKey: [] };
      tables.set(row.table_name, table);
    }
    table.columns.push({ name: row.column_name, type: row.type_name, nullable: row.nullable, elementType: row.element_type });
  }
  const keys = await client.query<{ table_name: string; column_name: string }>(PRIMARY_KEYS_SQL, [schema]);
  for (const row of keys.rows) tables.get(row.table_name)?.primaryKey.push(row.column_name);
  return tables;
}

export function streamOf(table: Table): AirbyteStream {
  const properties: Record<string, unknown> = {};
  for (const column of table.columns) properties[column.name] = columnSchema(column);
  return {
    name: table.name,
    json_schema: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties },
    supported_sync_modes: ['full_refresh', 'incremental'],
    source_defined_cursor: false,
    ...(table.primaryKey.length > 0 ? { source_defined_primary_key: table.primaryKey.map((column) => [column]) } : {}),
  };
}

function columnSchema(column: Column): Record<string, unknown> {
  const schema =
    column.elementType === null
      ? typeSchema(column.type)
      : { type: 'array', items: typeSchema(column.elementType) };
  if (!column.nullable) return schema;
  return { ...schema, type: ['null', schema['type']] };
}

function typeSchema(type: string): Record<string, unknown> {
  switch (type) {
    case 'int2':
    case 'int4':
    case 'int8':
    case 'oid':
      return { type: 'integer' };
    case 'numeric':
    case 'float4':
    case 'float8':
      return { type: 'number' };
    case 'bool':
      return { type: 'boolean' };
    case 'timestamp':
      return { type: 'string', format: 'date-time', airbyte_type: 'timestamp_without_timezone' };
    case 'timestamptz':
      return { type: 'string', format: 'date-time', airbyte_type: 'timestamp_with_timezone' };
    case 'date':
      return { type: 'string', format: 'date' };
    case 'json':
    case 'jsonb':
      return { type: 'object' };
    default:
      // text, varchar, bpchar, uuid, and every type pg hands over as text.
      return { type: 'string' };
  }
}
