import pg from 'pg';
import type { Client } from 'pg';
import { z } from 'zod';
import { ConfigError, ConnectorError, errorMessage, TransientError } from './errors.js';

/** Connection fields shared by source-postgres and destination-postgres. */
export const pgConnectionFields = {
  host: z.string().min(1).describe('PostgreSQL host name or address.'),
  port: z.int().min(1).max(65_535).default(5432),
  database: z.string().min(1),
  username: z.string().min(1),
  password: z.string().default('').meta({ airbyte_secret: true }),
  schema: z.string().min(1).default('public'),
};

export interface PgConnectionConfig {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
}

// Values exactly as a record should carry them. pg's defaults turn timestamps and dates into
// JS Dates (losing microseconds, and shifting dates by the local zone), leave int8 and
// numeric as strings, and turn intervals and bytea into objects that serialise badly.
const identity = (text: string): string => text;
const PARSERS = new Map<number, (text: string) => unknown>([
  [17, identity], // bytea: "\x..." hex text
  [20, parseInt8], // int8
  [700, parseFloating], // float4
  [701, parseFloating], // float8
  [1700, parseFloating], // numeric
  [1082, identity], // date: "2024-01-31"
  [1083, identity], // time
  [1266, identity], // timetz
  [1114, isoTimestamp], // timestamp
  [1184, isoTimestamp], // timestamptz
  [1186, identity], // interval
]);

// pg's typings declare getTypeParser with overloads an arrow function cannot restate.
/* eslint-disable @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-enum-assignment */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    (format ?? 'text') === 'text' ? (PARSERS.get(oid) ?? pg.types.getTypeParser(oid, format)) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};
/* eslint-enable @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-enum-assignment */

/**
 * Opens one connection. The session runs in UTC with ISO dates, so `::text` of a timestamp is
 * stable between runs (cursor values are kept in that form) and timestamptz values come out
 * with a "+00" offset.
 */
export async function connect(config: PgConnectionConfig, applicationName: string): Promise<Client> {
  const client = new pg.Client({
    host: config.host,
    port: config.port,
    database: config.database,
    user: config.username,
    password: config.password,
    application_name: applicationName,
    connectionTimeoutMillis: 15_000,
    options: '-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601',
    types: TYPES,
  });
  // An idle connection that drops emits 'error'; the next query reports it, so only keep the
  // process alive here.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw classifyPgError(err, `cannot connect to PostgreSQL at ${config.host}:${config.port}/${config.database}`);
  }
  return client;
}

const CONFIG_ERROR_CODES = new Set([
  '28P01', // invalid_password
  '28000', // invalid_authorization_specification
  '3D000', // invalid_catalog_name: no such database
  '3F000', // invalid_schema_name
  '42501', // insufficient_privilege
  'ENOTFOUND', // no such host
]);

/** Whose problem a PostgreSQL failure is: the user's config, a passing outage, or ours. */
/** A connector's `check`: connects and runs `probe`; FAILED with the reason when either fails. */
export async function checkConnection(config: PgConnectionConfig, applicationName: string, probe: string): Promise<{ status: 'SUCCEEDED' } | { status: 'FAILED'; message: string }> {
  try {
    const client = await connect(config, applicationName);
    try {
      await client.query(probe);
    } finally {
      await client.end();
    }
    return { status: 'SUCCEEDED' };
  } catch (err) {
    return { status: 'FAILED', message: errorMessage(err) };
  }
}

export function classifyPgError(err: unknown, context: string): ConnectorError {
  if (err instanceof ConnectorError) return err;
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  const message = `${context}: ${errorMessage(err)}`;
  if (CONFIG_ERROR_CODES.has(code)) return new ConfigError(message, { cause: err });
  if (
    code.startsWith('08') || // connection_exception
    code.startsWith('57P') || // operator_intervention: shutdown, restart
    code === '53300' || // too_many_connections
    code === '40001' || // serialization_failure
    code === '40P01' || // deadlock_detected
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH'].includes(code) ||
    /Connection terminated|timeout/i.test(errorMessage(err))
  ) {
    return new TransientError(message, { cause: err });
  }
  return new ConnectorError(message, 'system_error', { cause: err });
}

/** A quoted identifier; PostgreSQL rejects NUL in names, so that is refused here with a clear message. */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new ConfigError(`identifier ${JSON.stringify(name)} contains a NUL character`);
  return `"${name.replaceAll('"', '""')}"`;
}

export function qualifiedName(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

function parseInt8(text: string): number | string {
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : text;
}

/** numeric and floats as numbers; NaN and ±Infinity stay text, since JSON has no form for them. */
function parseFloating(text: string): number | string {
  const value = Number(text);
  return Number.isFinite(value) ? value : text;
}

const TIMESTAMP = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)(?:([+-]\d\d)(?::?(\d\d))?(?::?(\d\d))?)?( BC)?$/;

/**
 * PostgreSQL's ISO output ("2024-01-31 12:00:00.123456+00") as ISO 8601
 * ("2024-01-31T12:00:00.123456Z"), keeping every digit. Values ISO 8601 cannot carry
 * (infinity, BC dates, second-level offsets) stay as PostgreSQL wrote them.
 */
export function isoTimestamp(text: string): string {
  const match = TIMESTAMP.exec(text);
  if (!match || match[5] !== undefined || match[6] !== undefined) return text;
  const [, date, time, offsetHours, offsetMinutes] = match;
  if (offsetHours === undefined) return `${date}T${time}`;
  const offset = `${offsetHours}:${offsetMinutes ?? '00'}`;
  return `${date}T${time}${offset === '+00:00' || offset === '-00:00' ? 'Z' : offset}`;
}
