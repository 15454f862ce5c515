import type { Client } from 'pg';
import { qualifiedName, quoteIdent } from '../lib/postgres.js';
import { EMITTED_AT, GENERATION, type SqlType, type TargetTable } from './table.js';

// PostgreSQL's bind message counts parameters in 16 bits.
const MAX_PARAMETERS = 65_535;

/**
 * Buffers one table's records and writes them as multi-row INSERTs (upserts when the table
 * has a primary key). Writing does not commit: the caller decides when a transaction ends.
 */
export class TableWriter {
  readonly table: TargetTable;
  readonly #generation: string;
  readonly #rowsPerStatement: number;
  readonly #keyIndexes: number[];
  // Rows by primary key, so a key seen twice in one batch is written once, with its last
  // values: a single INSERT ... ON CONFLICT may not touch the same row twice.
  #keyed = new Map<string, unknown[]>();
  #rows: unknown[][] = [];
  readonly #statements = new Map<number, string>();
  readonly #statementName: string;

  constructor(table: TargetTable, generation: string, batchSize: number, id: number) {
    this.table = table;
    this.#generation = generation;
    // Per row: the stream's columns plus emitted_at; the generation is one shared parameter.
    const perRow = table.columns.length + 1;
    this.#rowsPerStatement = Math.max(1, Math.min(batchSize, Math.floor((MAX_PARAMETERS - 1) / perRow)));
    this.#keyIndexes = table.primaryKey.map((key) => table.columns.findIndex((column) => column.name === key));
    this.#statementName = `tidepool_insert_${id}`;
  }

  get buffered(): number {
    return this.#keyIndexes.length > 0 ? this.#keyed.size : this.#rows.length;
  }

  get full(): boolean {
    return this.buffered >= this.#rowsPerStatement;
  }

  add(data: Record<string, unknown>, emittedAt: number): void {
    const columns = this.table.columns;
    const row = new Array<unknown>(columns.length + 1);
    for (let i = 0; i < columns.length; i += 1) {
      const column = columns[i];
      if (column) row[i] = toParameter(data[column.name], column.type);
    }
    row[columns.length] = new Date(emittedAt);
    if (this.#keyIndexes.length === 0) {
      this.#rows.push(row);
      return;
    }
    const key = JSON.stringify(this.#keyIndexes.map((index) => row[index]));
    this.#keyed.set(key, row);
  }

  /** Writes every buffered row into the current transaction. */
  async write(client: Client): Promise<void> {
    const rows = this.#keyIndexes.length > 0 ? [...this.#keyed.values()] : this.#rows;
    this.#keyed = new Map();
    this.#rows = [];
    for (let start = 0; start < rows.length; start += this.#rowsPerStatement) {
      const slice = rows.slice(start, start + this.#rowsPerStatement);
      const values: unknown[] = [this.#generation];
      for (const row of slice) for (const value of row) values.push(value);
      // A full-size statement is prepared once per connection and reused.
      const full = slice.length === this.#rowsPerStatement;
      await client.query({
        text: this.#statement(slice.length),
        values,
        ...(full ? { name: this.#statementName } : {}),
      });
    }
  }

  #statement(rowCount: number): string {
    let text = this.#statements.get(rowCount);
    if (text !== undefined) return text;
    const { table } = this;
    const names = [...table.columns.map((column) => column.name), EMITTED_AT, GENERATION].map(quoteIdent);
    const perRow = table.columns.length + 1;
    const tuples: string[] = [];
    for (let row = 0; row < rowCount; row += 1) {
      const placeholders: string[] = [];
      for (let column = 0; column < perRow; column += 1) placeholders.push(`$${2 + row * perRow + column}`);
      placeholders.push('$1');
      tuples.push(`(${placeholders.join(', ')})`);
    }
    text = `INSERT INTO ${qualifiedName(table.schema, table.name)} (${names.join(', ')}) VALUES ${tuples.join(', ')}`;
    if (table.primaryKey.length > 0) {
      const keys = new Set(table.primaryKey);
      const updates = names
        .filter((_, index) => index >= table.columns.length || !keys.has(table.columns[index]?.name ?? ''))
        .map((name) => `${name} = EXCLUDED.${name}`);
      text += ` ON CONFLICT (${table.primaryKey.map(quoteIdent).join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
    }
    // Full batches repeat; partial ones (at a STATE) vary in size and are not kept.
    if (rowCount === this.#rowsPerStatement) this.#statements.set(rowCount, text);
    return text;
  }
}

/**
 * A record value as a query parameter for its column. pg would send a JS array as a
 * PostgreSQL array literal, which a jsonb column rejects, so JSON columns get JSON text.
 */
function toParameter(value: unknown, type: SqlType): unknown {
  if (value === undefined || value === null) return null;
  if (type === 'jsonb') return JSON.stringify(value);
  if (typeof value === 'object') return JSON.stringify(value);
  return value;
}
