// The real Airbyte source-faker (airbyte-source-faker 7.2.1 from PyPI, built on the Python
// CDK; scripts/airbyte-connectors installs it) through a real local runner into the reference
// destination-postgres. Our reference connectors follow the protocol as we read it; this one
// sends what Airbyte's CDK really sends: per-stream STATE messages, STREAM_STATUS and ESTIMATE
// traces, LOG lines, its own state format (a loop offset per stream). The checks:
//   - the first sync lands exactly what the connector emits: the test runs the connector's
//     `read` itself (same config, full refresh), keeps that output, and compares by primary key;
//   - the committed state is what the connector checkpointed, and a second sync resumes from
//     it: 0 records, rows untouched;
//   - a full refresh writes the source's rows again, with no duplicates.
// No assumption about which destination_sync_mode the runner picks beyond "no duplicate rows".
// Missing connector: skipped with the reason locally, a failure in CI (CI=true).
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishSync } from '../../shared/broker/publisher.js';
import { newSyncRequest } from '../../shared/messages.js';
import type { AirbyteCatalog, AirbyteRecordMessage, AirbyteStateMessage, AirbyteStream, ConfiguredAirbyteCatalog } from '../../shared/protocol.js';
import { FINAL_STATUSES, type RunRecord } from '../../shared/store/runs.js';
import { realConnectorGate, runConnector, sourceFakerCommand, SOURCE_FAKER_VERSION } from '../helpers/airbyte.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { closeRunnerHarness, openRunnerHarness, publishSyncOf, runUntil, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';

const SOURCE_FAKER = sourceFakerCommand();
const gate = realConnectorGate(SOURCE_FAKER);

const CONNECTION = 'real-source-faker';
const SCHEMA = 'faker';
const STREAMS = ['users', 'purchases'];
// always_updated: false makes the source stop once `count` records were emitted, so a sync that
// resumes from the committed state has nothing to send. parallelism 1: one process, less CPU.
const SOURCE_CONFIG = { count: 300, seed: 42, records_per_slice: 100, always_updated: false, parallelism: 1 };
// The connector stamps updated_at with the time of the read (whole seconds); every other value
// follows the seed. That field is checked to be no older than the read it came from instead.
const READ_TIME_FIELDS = new Set(['updated_at']);

type Row = Record<string, unknown>;

interface Expected {
  stream: AirbyteStream;
  primaryKey: string[];
  /** The connector's own RECORD data, by primary key. */
  records: Map<string, Row>;
  /** The stream_state of the last STATE the connector sent for this stream. */
  lastState: Record<string, unknown> | undefined;
}

if (!gate.run) {
  console.warn(`airbyte-source-faker.test.ts skipped: ${gate.reason}`);
  describe(`airbyte-source-faker ${SOURCE_FAKER_VERSION} (real connector)`, () => {
    it.skip(`skipped: ${gate.reason}`, () => undefined);
  });
}

describe.runIf(gate.run)(`airbyte-source-faker ${SOURCE_FAKER_VERSION} (real connector) → runner → destination-postgres`, () => {
  let h: RunnerHarness;
  let db: TestDatabase;
  const expected = new Map<string, Expected>();
  let expectedRecords = 0;
  /** The tables after the first sync, every column. */
  let afterFirstSync: Map<string, string[]>;

  beforeAll(async () => {
    if (!existsSync(SOURCE_FAKER)) {
      throw new Error(`${SOURCE_FAKER} is missing: run scripts/airbyte-connectors (CI must not skip the real connector)`);
    }
    // One attempt: a failing sync goes straight to the dead queue, with its reason in the run record.
    h = await openRunnerHarness('airbyte-source-faker', { maxAttempts: 1 });
    db = await createTestDatabase('airbyte_source_faker');

    // The saved copy of the source's output: discover, then a full-refresh read of our streams.
    const configFile = join(h.dir, 'config.json');
    await writeFile(configFile, JSON.stringify(SOURCE_CONFIG));
    const discovered = (await runConnector(SOURCE_FAKER, ['discover', '--config', configFile])).find((m) => m.type === 'CATALOG');
    const catalog = discovered?.['catalog'] as AirbyteCatalog | undefined;
    expect(catalog?.streams.map((s) => s.name)).toEqual(expect.arrayContaining(STREAMS));
    const configured: ConfiguredAirbyteCatalog = {
      streams: STREAMS.map((name) => {
        const stream = catalog!.streams.find((s) => s.name === name)!;
        return { stream, sync_mode: 'full_refresh', destination_sync_mode: 'overwrite' };
      }),
    };
    const catalogFile = join(h.dir, 'catalog.json');
    await writeFile(catalogFile, JSON.stringify(configured));
    const output = await runConnector(SOURCE_FAKER, ['read', '--config', configFile, '--catalog', catalogFile]);
    await writeFile(join(h.dir, 'source-output.jsonl'), output.map((m) => JSON.stringify(m)).join('\n'));

    for (const { stream } of configured.streams) {
      const primaryKey = (stream.source_defined_primary_key ?? []).map((path) => path.join('.'));
      expect(primaryKey, `${stream.name}: the connector declares a primary key`).not.toEqual([]);
      expected.set(stream.name, { stream, primaryKey, records: new Map(), lastState: undefined });
    }
    for (const message of output) {
      if (message.type === 'RECORD') {
        const record = message['record'] as AirbyteRecordMessage;
        const e = expected.get(record.stream)!;
        e.records.set(keyOf(record.data, e.primaryKey), record.data);
        expectedRecords += 1;
      } else if (message.type === 'STATE') {
        const state = message['state'] as AirbyteStateMessage;
        const e = state.stream ? expected.get(state.stream.stream_descriptor.name) : undefined;
        if (e) e.lastState = state.stream?.stream_state;
      }
    }
    for (const [name, e] of expected) expect(e.records.size, `${name}: records in the saved copy`).toBeGreaterThan(0);
    // No duplicate keys in the source's own output: every RECORD is a distinct row.
    expect([...expected.values()].reduce((n, e) => n + e.records.size, 0)).toBe(expectedRecords);

    await h.services.store.connections.apply({
      id: CONNECTION,
      source: { command: [SOURCE_FAKER], config: SOURCE_CONFIG },
      destination: { connector: 'destination-postgres', config: { ...db.config, schema: SCHEMA } },
      // Sync modes left to the runner's defaults.
      streams: STREAMS.map((name) => ({ name })),
    });
    spawnRunner(h, 'airbyte-faker-runner');
  });

  afterAll(async () => {
    await closeRunnerHarness(h);
    await db?.drop();
  });

  it('first sync: the tables hold exactly the records the connector emits, and its state is committed', async () => {
    const run = await syncToTheEnd(await publishSyncOf(h, CONNECTION), 'the first sync');
    expect(run).toMatchObject({ status: 'succeeded', records: expectedRecords });
    for (const e of expected.values()) {
      expect(await differences(e, 0n), `${e.stream.name}: rows vs the connector's output`).toEqual([]);
    }

    const committed = await h.services.store.state.get(CONNECTION);
    expect(committed, 'committed state after the first sync').toBeDefined();
    for (const e of expected.values()) {
      const state = committed!.state.find((s) => s.stream?.stream_descriptor.name === e.stream.name);
      expect(state?.stream?.stream_state, `${e.stream.name}: committed stream state`).toMatchObject(withoutReadTime(e.lastState ?? {}));
    }
    afterFirstSync = await snapshot();
  });

  it('second sync (always_updated: false) resumes from the committed state: 0 records, rows unchanged', async () => {
    expect(afterFirstSync, 'the first sync ran').toBeDefined();
    const run = await syncToTheEnd(await publishSyncOf(h, CONNECTION), 'the second sync');
    expect(run).toMatchObject({ status: 'succeeded', records: 0 });
    expect(await snapshot()).toEqual(afterFirstSync);
    expect(await h.services.store.state.get(CONNECTION)).toBeDefined();
  });

  it('a full refresh sync writes the source rows again: exactly the connector output, no duplicates', async () => {
    const requested = BigInt(Math.floor(Date.now() / 1000)) * 1_000_000n;
    const request = newSyncRequest(CONNECTION, { fullRefresh: true });
    await publishSync(h.channel, h.topology, request);
    const run = await syncToTheEnd(request.syncId, 'the full refresh');
    expect(run).toMatchObject({ status: 'succeeded', fullRefresh: true, records: expectedRecords });
    for (const e of expected.values()) {
      const table = `${quote(SCHEMA)}.${quote(e.stream.name)}`;
      const keys = e.primaryKey.map(quote).join(', ');
      const { rows } = await db.pool.query<{ n: string; distinct_keys: string }>(`SELECT count(*) AS n, count(DISTINCT (${keys})) AS distinct_keys FROM ${table}`);
      expect(rows[0], `${e.stream.name}: row count`).toEqual({ n: String(e.records.size), distinct_keys: String(e.records.size) });
      // Read-time fields no older than the request: these rows came from the new read.
      expect(await differences(e, requested), `${e.stream.name}: rows vs the connector's output`).toEqual([]);
    }
  });

  /** The run once final; on a timeout, the error says what the run and the runner were doing. */
  async function syncToTheEnd(syncId: string, what: string): Promise<RunRecord> {
    try {
      return await runUntil(h, syncId, what, (r) => FINAL_STATUSES.has(r.status), 50_000, 200);
    } catch (err) {
      const run = await h.services.store.runs.get(syncId);
      const runner = h.runners[0];
      const log = (runner?.log.join('') ?? '').split('\n').slice(-15).join('\n');
      throw new Error(`${(err as Error).message}\nrun: ${JSON.stringify(run)}\nrunner exit: ${String(runner?.exitCode)}; its log tail:\n${log}`);
    }
  }

  async function snapshot(): Promise<Map<string, string[]>> {
    const tables = new Map<string, string[]>();
    for (const e of expected.values()) {
      const order = e.primaryKey.map(quote).join(', ');
      const { rows } = await db.pool.query<{ row: string }>(`SELECT to_jsonb(t)::text AS row FROM ${quote(SCHEMA)}.${quote(e.stream.name)} t ORDER BY ${order}`);
      tables.set(e.stream.name, rows.map((r) => r.row));
    }
    return tables;
  }

  /**
   * Where the table of a stream differs from the connector's output, compared by primary key
   * over the stream's own properties (columns the destination adds are not compared). Values
   * are brought to one form per column type: timestamps as UTC microseconds, numbers as numbers.
   * Read-time fields must be no older than `notBefore` (µs) nor than the saved copy's value.
   */
  async function differences(e: Expected, notBefore: bigint): Promise<string[]> {
    const found: string[] = [];
    const { rows: columns } = await db.pool.query<{ column_name: string; data_type: string }>(
      'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2',
      [SCHEMA, e.stream.name],
    );
    const types = new Map(columns.map((c) => [c.column_name, c.data_type]));
    const properties = Object.keys(e.stream.json_schema['properties'] ?? {});
    for (const p of properties) if (!types.has(p)) found.push(`no column for property ${p}`);
    const compared = properties.filter((p) => types.has(p));
    const select = compared.map((c) => (types.get(c) === 'timestamp with time zone' ? `to_char(${quote(c)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS ${quote(c)}` : quote(c)));
    const { rows } = await db.pool.query<Row>(`SELECT ${select.join(', ')} FROM ${quote(SCHEMA)}.${quote(e.stream.name)}`);

    const actual = new Map<string, Row>();
    for (const row of rows) {
      const key = keyOf(row, e.primaryKey);
      if (actual.has(key)) found.push(`duplicate row for key ${key}`);
      actual.set(key, row);
    }
    for (const key of actual.keys()) if (!e.records.has(key)) found.push(`row ${key} is not in the source's output`);
    for (const [key, record] of e.records) {
      const row = actual.get(key);
      if (!row) {
        found.push(`record ${key} is missing`);
        continue;
      }
      for (const column of compared) {
        const type = types.get(column)!;
        const want = stored(record[column], type);
        const got = fromTable(row[column], type);
        if (READ_TIME_FIELDS.has(column)) {
          const sent = micros(want);
          const floor = sent !== undefined && sent > notBefore ? sent : notBefore;
          const landed = micros(got);
          if (landed === undefined || landed < floor) found.push(`${key}.${column}: ${JSON.stringify(row[column])} is older than the read (${JSON.stringify(record[column])})`);
        } else if (JSON.stringify(canonical(got)) !== JSON.stringify(canonical(want))) {
          found.push(`${key}.${column}: table has ${JSON.stringify(row[column])}, source sent ${JSON.stringify(record[column])}`);
        }
      }
      if (found.length > 20) break;
    }
    return found.slice(0, 20);
  }
});

function keyOf(data: Row, primaryKey: string[]): string {
  return JSON.stringify(primaryKey.map((k) => Number(data[k])));
}

function micros(value: unknown): bigint | undefined {
  return typeof value === 'string' && /^-?\d+$/.test(value) ? BigInt(value) : undefined;
}

function withoutReadTime(state: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(state).filter(([k]) => !READ_TIME_FIELDS.has(k)));
}

/** A record value as the destination stores it in a column of `type`. */
function stored(value: unknown, type: string): unknown {
  if (value === undefined || value === null) return null;
  switch (type) {
    case 'timestamp with time zone':
      return instantMicros(asText(value));
    case 'bigint':
    case 'double precision':
      return Number(value);
    case 'text':
      return asText(value);
    default:
      return value;
  }
}

/** A value read from the table (pg gives bigint as a string; timestamps selected as UTC text). */
function fromTable(value: unknown, type: string): unknown {
  if (value === null || value === undefined) return null;
  if (type === 'timestamp with time zone') return instantMicros(asText(value));
  if (type === 'bigint' || type === 'double precision') return Number(value);
  return value;
}

/** A string as it is, anything else as JSON text (how the destination stores non-strings in text). */
function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Objects with sorted keys, so that jsonb's key order does not count. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Row)[k])]));
  }
  return value;
}

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/**
 * An RFC 3339 date-time as microseconds since the epoch (a string; exact, unlike a Date). No
 * offset means UTC: the connector sends purchases.created_at that way, and destination-postgres
 * reads it in a UTC session.
 */
function instantMicros(text: string): string {
  const m = DATE_TIME.exec(text);
  if (!m) return `not a date-time: ${text}`;
  const [, year, month, day, hour, minute, second, fraction = '', zone = 'Z'] = m;
  const date = new Date(0);
  date.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  date.setUTCHours(Number(hour), Number(minute), Number(second), 0);
  let ms = date.getTime();
  if (zone !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const offsetMinutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0');
    ms -= (zone.startsWith('-') ? -1 : 1) * offsetMinutes * 60_000;
  }
  return (BigInt(ms) * 1000n + BigInt(fraction.padEnd(6, '0'))).toString();
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}
