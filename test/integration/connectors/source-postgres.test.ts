import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AirbyteMessage } from '../../../shared/protocol.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/pg.js';
import { catalogOf, errorTraces, records, run, states, tempDir, type TempDir } from './harness.js';

let db: TestDatabase;
let dir: TempDir;

beforeAll(async () => {
  db = await createTestDatabase('source-postgres');
  dir = await tempDir('source-postgres');
  await db.pool.query(`
    CREATE TABLE typed (
      id bigint PRIMARY KEY,
      small smallint NOT NULL,
      big int8,
      amount numeric(12, 3),
      ratio double precision,
      flag boolean,
      at timestamptz(6),
      local_at timestamp,
      day date,
      doc jsonb,
      label varchar(20),
      uid uuid
    );
    CREATE TABLE "Mixed Case" ("Key" int, "quote""d" text);
    CREATE VIEW typed_view AS SELECT * FROM typed;
    INSERT INTO typed VALUES
      (2, 1, 9007199254740993, 12.5, 0.25, true, '2024-03-01 10:20:30.123456+02', '2024-03-01 10:20:30.5', '2024-02-29',
       '{"a": [1, 2]}', 'two', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
      (1, 2, 42, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    INSERT INTO "Mixed Case" VALUES (1, 'x');
  `);
});

afterAll(async () => {
  await db?.drop();
  await dir?.remove();
});

async function connectorRun(command: string, config: unknown, catalog?: unknown, state?: unknown) {
  const args = [command, '--config', await dir.file(`config-${Math.random()}.json`, config)];
  if (catalog !== undefined) args.push('--catalog', await dir.file(`catalog-${Math.random()}.json`, catalog));
  if (state !== undefined) args.push('--state', await dir.file(`state-${Math.random()}.json`, state));
  return run('source-postgres', args);
}

async function read(config: unknown, catalog: unknown, state?: unknown): Promise<AirbyteMessage[]> {
  const result = await connectorRun('read', config, catalog, state);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return result.messages;
}

/** What a runner would pass back with --state after the run. */
function committed(messages: AirbyteMessage[]): unknown[] {
  const last = states(messages).at(-1);
  return last ? [last] : [];
}

describe('source-postgres', () => {
  it('checks the connection, and reports a wrong password as FAILED', async () => {
    const ok = await connectorRun('check', db.config);
    expect(ok.messages).toEqual([{ type: 'CONNECTION_STATUS', connectionStatus: { status: 'SUCCEEDED' } }]);
    const bad = await connectorRun('check', { ...db.config, password: 'wrong' });
    expect(bad.code).toBe(0);
    const status = bad.messages[0];
    expect(status?.type === 'CONNECTION_STATUS' && status.connectionStatus.status).toBe('FAILED');
  });

  it('discovers base tables with typed json schemas and primary keys', async () => {
    const result = await connectorRun('discover', db.config);
    const message = result.messages[0];
    expect(message?.type).toBe('CATALOG');
    if (message?.type !== 'CATALOG') return;
    const streams = message.catalog.streams;
    expect(streams.map((stream) => stream.name)).toEqual(['Mixed Case', 'typed']);
    const typed = streams.find((stream) => stream.name === 'typed');
    expect(typed).toMatchObject({
      supported_sync_modes: ['full_refresh', 'incremental'],
      source_defined_cursor: false,
      source_defined_primary_key: [['id']],
    });
    expect(typed?.namespace).toBeUndefined();
    expect(typed?.json_schema['properties']).toMatchObject({
      id: { type: 'integer' },
      small: { type: 'integer' },
      big: { type: ['null', 'integer'] },
      amount: { type: ['null', 'number'] },
      ratio: { type: ['null', 'number'] },
      flag: { type: ['null', 'boolean'] },
      at: { type: ['null', 'string'], format: 'date-time' },
      local_at: { type: ['null', 'string'], format: 'date-time' },
      day: { type: ['null', 'string'], format: 'date' },
      doc: { type: ['null', 'object'] },
      label: { type: ['null', 'string'] },
      uid: { type: ['null', 'string'] },
    });
    expect(streams.find((stream) => stream.name === 'Mixed Case')?.source_defined_primary_key).toBeUndefined();
  });

  it('reads a full refresh in primary key order with JSON-friendly values', async () => {
    const messages = await read(db.config, catalogOf({ name: 'typed' }, { name: 'Mixed Case' }));
    expect(records(messages, 'typed')).toEqual([
      { id: 1, small: 2, big: 42, amount: null, ratio: null, flag: null, at: null, local_at: null, day: null, doc: null, label: null, uid: null },
      {
        id: 2,
        small: 1,
        big: '9007199254740993', // beyond 2^53: kept exact as text
        amount: 12.5,
        ratio: 0.25,
        flag: true,
        at: '2024-03-01T08:20:30.123456Z',
        local_at: '2024-03-01T10:20:30.5',
        day: '2024-02-29',
        doc: { a: [1, 2] },
        label: 'two',
        uid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      },
    ]);
    expect(records(messages, 'Mixed Case')).toEqual([{ Key: 1, 'quote"d': 'x' }]);
  });

  it('reads incrementally: a second read with the state returns only the new rows', async () => {
    await db.pool.query(`
      CREATE TABLE events (id serial PRIMARY KEY, at timestamptz(6) NOT NULL, body text);
      INSERT INTO events (at, body)
      SELECT '2024-01-01 00:00:00+00'::timestamptz + g * interval '1.000001 second', 'e' || g FROM generate_series(1, 50) g;
    `);
    const catalog = catalogOf({ name: 'events', syncMode: 'incremental', cursorField: ['at'] });
    const first = await read(db.config, catalog);
    expect(records(first).map((row) => row['id'])).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(states(first).at(-1)?.stream?.stream_state).toEqual({ cursor_field: ['at'], cursor: '2024-01-01 00:00:50.00005+00' });

    await db.pool.query(`
      INSERT INTO events (at, body)
      SELECT '2024-01-01 00:00:50.000051+00'::timestamptz + g * interval '1 microsecond', 'new' || g FROM generate_series(0, 2) g;
    `);
    const second = await read(db.config, catalog, committed(first));
    expect(records(second).map((row) => row['body'])).toEqual(['new0', 'new1', 'new2']);
    // The microsecond after the cursor is not lost to rounding.
    expect(records(second)[0]?.['at']).toBe('2024-01-01T00:00:50.000051Z');

    const third = await read(db.config, catalog, committed(second));
    expect(records(third)).toEqual([]);
    expect(states(third)).toEqual(states(second).slice(-1));
  });

  it('never places a state inside a run of rows sharing a cursor value', async () => {
    // Cursor values: 1 ×3, 2 ×2, 3 ×4, 4 ×1, 5 ×3.
    await db.pool.query(`
      CREATE TABLE runs (id serial PRIMARY KEY, version int NOT NULL);
      INSERT INTO runs (version) VALUES (1), (1), (1), (2), (2), (3), (3), (3), (3), (4), (5), (5), (5);
    `);
    const config = { ...db.config, stateEvery: 2 };
    const catalog = catalogOf({ name: 'runs', syncMode: 'incremental', cursorField: ['version'] });
    const messages = await read(config, catalog);
    expect(records(messages)).toHaveLength(13);

    let seen: number[] = [];
    const checkpoints: string[] = [];
    for (const message of messages) {
      if (message.type === 'RECORD') seen.push(message.record.data['version'] as number);
      if (message.type !== 'STATE') continue;
      const cursor = message.state.stream?.stream_state?.['cursor'] as string;
      checkpoints.push(cursor);
      // Every row up to the cursor is out, and none beyond it yet.
      expect(seen.every((version) => version <= Number(cursor))).toBe(true);
      seen = [];
    }
    expect(checkpoints).toEqual(['1', '2', '3', '5']);

    // Resuming from any of the states yields exactly the rows after it.
    for (const cursor of checkpoints) {
      const state = [{ type: 'STREAM', stream: { stream_descriptor: { name: 'runs' }, stream_state: { cursor_field: ['version'], cursor } } }];
      const resumed = records(await read(config, catalog, state)).map((row) => row['version']);
      const expected = [1, 1, 1, 2, 2, 3, 3, 3, 3, 4, 5, 5, 5].filter((version) => version > Number(cursor));
      expect(resumed).toEqual(expected);
    }
  });

  it('reads a table spanning many FETCH batches, with states at the configured interval', async () => {
    await db.pool.query(`
      CREATE TABLE big (id int PRIMARY KEY, payload text);
      INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 25000) g;
    `);
    const messages = await read({ ...db.config, stateEvery: 10_000 }, catalogOf({ name: 'big', syncMode: 'incremental', cursorField: ['id'] }));
    const ids = records(messages).map((row) => row['id']);
    expect(ids).toHaveLength(25_000);
    expect(ids.at(-1)).toBe(25_000);
    expect(states(messages).map((state) => state.stream?.stream_state?.['cursor'])).toEqual(['10000', '20000', '25000']);
  });

  it('needs a cursor_field for incremental streams, and a valid config', async () => {
    const noCursor = await connectorRun('read', db.config, catalogOf({ name: 'typed', syncMode: 'incremental' }));
    expect(noCursor.code).toBe(1);
    expect(records(noCursor.messages)).toEqual([]);
    const [error] = errorTraces(noCursor.messages);
    expect(error?.failure_type).toBe('config_error');
    expect(error?.message).toContain('cursor_field');

    const badConfig = await connectorRun('read', { ...db.config, port: 'five' }, catalogOf({ name: 'typed' }));
    expect(badConfig.code).toBe(1);
    expect(errorTraces(badConfig.messages)[0]).toMatchObject({ failure_type: 'config_error', message: expect.stringContaining('port') });

    const missingTable = await connectorRun('read', db.config, catalogOf({ name: 'nope' }));
    expect(missingTable.code).toBe(1);
    expect(errorTraces(missingTable.messages)[0]?.message).toContain('nope');
  });
});
