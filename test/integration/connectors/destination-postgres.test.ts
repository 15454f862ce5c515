import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConfiguredAirbyteCatalog } from '../../../shared/protocol.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/pg.js';
import {
  catalogOf,
  connectorPath,
  errorTraces,
  LiveConnector,
  parseMessages,
  recordLine,
  run,
  stateLine,
  statusLine,
  tempDir,
  type TempDir,
} from './harness.js';

let db: TestDatabase;
let dir: TempDir;

beforeEach(async (context) => {
  db = await createTestDatabase(`destination-postgres ${context.task.name}`);
  dir = await tempDir('destination-postgres');
});
afterEach(async () => {
  await db.drop();
  await dir.remove();
});

const userProperties = {
  id: { type: 'integer' },
  name: { type: ['null', 'string'] },
  score: { type: 'number' },
  active: { type: 'boolean' },
  born: { type: 'string', format: 'date' },
  seen_at: { type: 'string', format: 'date-time' },
  address: { type: 'object' },
  tags: { type: 'array' },
};

function usersCatalog(mode: 'overwrite' | 'append' | 'append_dedup' = 'append_dedup'): ConfiguredAirbyteCatalog {
  const catalog = catalogOf({ name: 'users', properties: userProperties, destinationSyncMode: mode });
  const [configured] = catalog.streams;
  if (configured) configured.stream.source_defined_primary_key = [['id']];
  return catalog;
}

const user = (id: number, name = `user ${id}`) => ({
  id,
  name,
  score: id / 2,
  active: id % 2 === 0,
  born: '1990-05-17',
  seen_at: '2024-03-01T10:20:30.123456Z',
  address: { city: 'Lisbon' },
  tags: ['a', id],
});

async function write(catalog: ConfiguredAirbyteCatalog, lines: string[], config: Record<string, unknown> = {}) {
  return run(
    'destination-postgres',
    [
      'write',
      '--config', await dir.file(`config-${Math.random()}.json`, { ...db.config, ...config }),
      '--catalog', await dir.file(`catalog-${Math.random()}.json`, catalog),
    ],
    lines.map((line) => `${line}\n`).join(''),
  );
}

async function count(table: string, where = 'true'): Promise<number> {
  const result = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`);
  return Number(result.rows[0]?.n);
}

describe('destination-postgres', () => {
  it('checks the connection and creates the schema', async () => {
    const spec = await run('destination-postgres', ['spec']);
    const message = spec.messages[0];
    expect(message?.type === 'SPEC' && message.spec.supported_destination_sync_modes).toEqual(['overwrite', 'append', 'append_dedup']);

    const config = await dir.file('config.json', { ...db.config, schema: 'landing' });
    const check = await run('destination-postgres', ['check', '--config', config]);
    expect(check.messages).toEqual([{ type: 'CONNECTION_STATUS', connectionStatus: { status: 'SUCCEEDED' } }]);
    const schemas = await db.pool.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'landing'`);
    expect(schemas.rowCount).toBe(1);
  });

  it('creates a typed table and stores every record exactly once', async () => {
    const lines = Array.from({ length: 2500 }, (_, i) => recordLine('users', user(i + 1)));
    const result = await write(usersCatalog(), [...lines, stateLine('users', 2500)], { batchSize: 400 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${stateLine('users', 2500)}\n`);

    expect(await count('users')).toBe(2500);
    const columns = await db.pool.query<{ column_name: string; data_type: string }>(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'users' ORDER BY ordinal_position`,
    );
    expect(Object.fromEntries(columns.rows.map((row) => [row.column_name, row.data_type]))).toEqual({
      id: 'bigint',
      name: 'text',
      score: 'double precision',
      active: 'boolean',
      born: 'date',
      seen_at: 'timestamp with time zone',
      address: 'jsonb',
      tags: 'jsonb',
      _tidepool_emitted_at: 'timestamp with time zone',
      _tidepool_generation: 'text',
    });
    const row = await db.pool.query(
      `SELECT id, name, score, active, born::text, to_char(seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS seen_at,
              address, tags, _tidepool_emitted_at
         FROM users WHERE id = 7`,
    );
    expect(row.rows[0]).toEqual({
      id: '7',
      name: 'user 7',
      score: 3.5,
      active: false,
      born: '1990-05-17',
      seen_at: '2024-03-01 10:20:30.123456',
      address: { city: 'Lisbon' },
      tags: ['a', 7],
      _tidepool_emitted_at: new Date(1_700_000_000_000),
    });
  });

  it('upserts by primary key: a rerun and duplicate keys in one batch create no duplicates', async () => {
    const first = Array.from({ length: 100 }, (_, i) => recordLine('users', user(i + 1)));
    expect((await write(usersCatalog(), [...first, stateLine('users', 100)])).code).toBe(0);
    const rerun = [
      ...first,
      recordLine('users', user(5, 'renamed once')),
      recordLine('users', user(5, 'renamed twice')),
      recordLine('users', user(101)),
      stateLine('users', 101),
    ];
    const result = await write(usersCatalog('append'), rerun);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await count('users')).toBe(101);
    const renamed = await db.pool.query(`SELECT name FROM users WHERE id = 5`);
    expect(renamed.rows).toEqual([{ name: 'renamed twice' }]);
  });

  it('echoes a STATE only after the rows before it are committed', async () => {
    const live = new LiveConnector('destination-postgres', [
      'write',
      '--config', await dir.file('config.json', { ...db.config, batchSize: 50 }),
      '--catalog', await dir.file('catalog.json', usersCatalog()),
    ]);
    try {
      live.send(...Array.from({ length: 175 }, (_, i) => recordLine('users', user(i + 1))), stateLine('users', 175));
      await live.waitForLines(1);
      // Queried from another connection at the moment of the echo: committed, all of it.
      expect(await count('users')).toBe(175);

      live.send(...Array.from({ length: 130 }, (_, i) => recordLine('users', user(i + 176))), stateLine('users', 305));
      expect((await live.waitForLines(2))[1]).toBe(stateLine('users', 305));
      expect(await count('users')).toBe(305);

      // Rows after the last STATE, then a crash: nothing of them may be visible.
      live.send(...Array.from({ length: 120 }, (_, i) => recordLine('users', user(i + 306))));
      live.kill();
      await live.exited;
      expect(await count('users')).toBe(305);
    } finally {
      live.kill();
    }
  });

  it('overwrite replaces the previous rows, but keeps them when the source failed', async () => {
    const keyless = catalogOf({ name: 'logs', properties: { line: { type: 'string' } }, destinationSyncMode: 'overwrite' });
    const firstRun = Array.from({ length: 10 }, (_, i) => recordLine('logs', { line: `old ${i}` }));
    expect((await write(keyless, [...firstRun, stateLine('logs', 1)])).code).toBe(0);
    expect(await count('logs')).toBe(10);

    // A failed source: the new rows are committed at the STATE, the old ones stay for now.
    const failed = [
      recordLine('logs', { line: 'new 0' }),
      stateLine('logs', 1),
      JSON.stringify({ type: 'TRACE', trace: { type: 'ERROR', emitted_at: 1, error: { message: 'source broke' } } }),
    ];
    expect((await write(keyless, failed)).code).toBe(0);
    expect(await count('logs')).toBe(11);

    const secondRun = Array.from({ length: 3 }, (_, i) => recordLine('logs', { line: `new ${i}` }));
    expect((await write(keyless, [...secondRun, stateLine('logs', 2)])).code).toBe(0);
    const rows = await db.pool.query<{ line: string }>('SELECT line FROM logs ORDER BY line');
    expect(rows.rows.map((row) => row.line)).toEqual(['new 0', 'new 1', 'new 2']);

    // With a key: rows not sent again disappear, rows sent again stay.
    const keyed = usersCatalog('overwrite');
    expect((await write(keyed, Array.from({ length: 20 }, (_, i) => recordLine('users', user(i + 1))))).code).toBe(0);
    expect((await write(keyed, Array.from({ length: 5 }, (_, i) => recordLine('users', user(i + 1))))).code).toBe(0);
    const ids = await db.pool.query<{ id: string }>('SELECT id FROM users ORDER BY id');
    expect(ids.rows.map((row) => Number(row.id))).toEqual([1, 2, 3, 4, 5]);
  });

  describe('an input cut short: STREAM_STATUS STARTED, then EOF without COMPLETE (a killed runner)', () => {
    const logs = (mode: 'overwrite' | 'append') => catalogOf({ name: 'logs', properties: { n: { type: 'integer' } }, destinationSyncMode: mode });
    const rowsOf = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => recordLine('logs', { n: from + i }));
    const ns = async () => (await db.pool.query<{ n: number }>('SELECT n::int FROM logs ORDER BY n')).rows.map((row) => row.n);

    it('keeps the rows up to the last STATE, echoes only that STATE, and fails with a system_error', async () => {
      const result = await write(logs('append'), [statusLine('logs', 'STARTED'), ...rowsOf(1, 5), stateLine('logs', 5), ...rowsOf(6, 8)], { batchSize: 2 });
      expect(result.code).toBe(1);
      expect(result.stdout.split('\n')[0]).toBe(stateLine('logs', 5));
      expect(errorTraces(result.messages)).toEqual([
        expect.objectContaining({ failure_type: 'system_error', message: 'input ended before stream logs was complete: the orchestrator stopped mid-sync' }),
      ]);
      // Rows 6-8 were written (batchSize 2) but never committed: the retry from state 5 sends
      // them again, and a keyless append gets them once.
      expect(await ns()).toEqual([1, 2, 3, 4, 5]);
      expect((await write(logs('append'), [statusLine('logs', 'STARTED'), ...rowsOf(6, 8), stateLine('logs', 8), statusLine('logs', 'COMPLETE')])).code).toBe(0);
      expect(await ns()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    });

    it('overwrite keeps the previous rows, whole and alone', async () => {
      expect((await write(logs('overwrite'), [...rowsOf(1, 10), stateLine('logs', 10)])).code).toBe(0);
      const result = await write(logs('overwrite'), [statusLine('logs', 'STARTED'), ...rowsOf(101, 103), stateLine('logs', 103), ...rowsOf(104, 105)]);
      expect(result.code).toBe(1);
      expect(result.messages.filter((message) => message.type === 'STATE')).toHaveLength(1);
      expect(await ns()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

      // With a key, rows upserted at a STATE replaced their previous version in place: they
      // stay (newer data), and no row without a new version is removed.
      const keyed = usersCatalog('overwrite');
      expect((await write(keyed, [...Array.from({ length: 5 }, (_, i) => recordLine('users', user(i + 1))), stateLine('users', 5)])).code).toBe(0);
      const cut = await write(keyed, [statusLine('users', 'STARTED'), recordLine('users', user(2, 'new')), stateLine('users', 2), recordLine('users', user(3, 'lost'))]);
      expect(cut.code).toBe(1);
      const users = await db.pool.query<{ id: string; name: string }>('SELECT id, name FROM users ORDER BY id');
      expect(users.rows.map((row) => `${row.id}:${row.name}`)).toEqual(['1:user 1', '2:new', '3:user 3', '4:user 4', '5:user 5']);
    });

    it('one stream COMPLETE and another not is still incomplete: nothing is finalized', async () => {
      const catalog = catalogOf(
        { name: 'logs', properties: { n: { type: 'integer' } }, destinationSyncMode: 'overwrite' },
        { name: 'other', properties: { n: { type: 'integer' } }, destinationSyncMode: 'append' },
      );
      expect((await write(catalog, rowsOf(1, 2))).code).toBe(0);
      const result = await write(catalog, [
        statusLine('logs', 'STARTED'),
        statusLine('other', 'STARTED'),
        ...rowsOf(3, 4),
        recordLine('other', { n: 1 }),
        statusLine('logs', 'COMPLETE'),
      ]);
      expect(result.code).toBe(1);
      expect(errorTraces(result.messages)[0]?.message).toBe('input ended before stream other was complete: the orchestrator stopped mid-sync');
      expect(await ns()).toEqual([1, 2]);
      expect(await count('other')).toBe(0);
    });
  });

  it('with STARTED and COMPLETE for every stream, commits and overwrites as without statuses', async () => {
    const catalog = catalogOf({ name: 'logs', properties: { n: { type: 'integer' } }, destinationSyncMode: 'overwrite' });
    const rowsOf = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => recordLine('logs', { n: from + i }));
    expect((await write(catalog, [statusLine('logs', 'STARTED'), ...rowsOf(1, 10), stateLine('logs', 10), statusLine('logs', 'COMPLETE')])).code).toBe(0);
    const result = await write(catalog, [statusLine('logs', 'STARTED'), ...rowsOf(11, 13), stateLine('logs', 13), ...rowsOf(14, 15), statusLine('logs', 'COMPLETE')]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // The rows after the last STATE are committed at EOF, as they always were.
    const rows = await db.pool.query<{ n: number }>('SELECT n::int FROM logs ORDER BY n');
    expect(rows.rows.map((row) => row.n)).toEqual([11, 12, 13, 14, 15]);
    // No statuses at all (a plain `source | destination` pipe): EOF is the end, as before.
    expect((await write(catalog, rowsOf(20, 21))).code).toBe(0);
    expect(await count('logs')).toBe(2);

    // A record after its stream's COMPLETE breaks the protocol.
    const late = await write(catalog, [statusLine('logs', 'STARTED'), statusLine('logs', 'COMPLETE'), recordLine('logs', { n: 99 })]);
    expect(late.code).toBe(1);
    expect(errorTraces(late.messages)[0]?.message).toMatch(/after its STREAM_STATUS COMPLETE/);
    expect(await count('logs')).toBe(2);
  });

  it('adds columns the stream gained, and writes to the namespace as schema', async () => {
    const before = catalogOf({ name: 'items', namespace: 'shop', properties: { id: { type: 'integer' } }, primaryKey: [['id']] });
    expect((await write(before, [recordLine('items', { id: 1 }, 'shop')])).code).toBe(0);
    const after = catalogOf({
      name: 'items',
      namespace: 'shop',
      properties: { id: { type: 'integer' }, price: { type: 'number' } },
      primaryKey: [['id']],
    });
    expect((await write(after, [recordLine('items', { id: 1, price: 9.5 }, 'shop'), recordLine('items', { id: 2, price: 1 }, 'shop')])).code).toBe(0);
    const rows = await db.pool.query('SELECT id::int, price FROM shop.items ORDER BY id');
    expect(rows.rows).toEqual([{ id: 1, price: 9.5 }, { id: 2, price: 1 }]);
  });

  it('loads what source-faker produces, piped process to process', async () => {
    const fakerConfig = await dir.file('faker.json', { count: 3000, purchasesPerUser: 2, stateEvery: 700 });
    const discovered = await run('source-faker', ['discover', '--config', fakerConfig]);
    const catalogMessage = discovered.messages[0];
    if (catalogMessage?.type !== 'CATALOG') throw new Error('no catalog');
    const catalog = await dir.file('catalog.json', {
      streams: catalogMessage.catalog.streams.map((stream) => ({
        stream,
        sync_mode: 'incremental',
        destination_sync_mode: 'append_dedup',
        cursor_field: ['id'],
      })),
    });
    const destinationConfig = await dir.file('pg.json', db.config);

    const source = spawn(process.execPath, [connectorPath('source-faker'), 'read', '--config', fakerConfig, '--catalog', catalog]);
    const destination = spawn(process.execPath, [connectorPath('destination-postgres'), 'write', '--config', destinationConfig, '--catalog', catalog]);
    source.stdout.pipe(destination.stdin);
    let stdout = '';
    destination.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const [sourceCode, destinationCode] = await Promise.all(
      [source, destination].map((child) => new Promise<number | null>((resolve) => child.on('close', resolve))),
    );
    expect([sourceCode, destinationCode]).toEqual([0, 0]);
    expect(await count('users')).toBe(3000);
    expect(await count('purchases')).toBe(6000);
    // Every state the source emitted came back, in order, after its rows were committed.
    const echoed = parseMessages(stdout).map((message) =>
      message.type === 'STATE' ? `${message.state.stream?.stream_descriptor.name}:${String(message.state.stream?.stream_state?.['cursor'])}` : message.type,
    );
    expect(echoed).toEqual([
      ...[700, 1400, 2100, 2800, 3000].map((cursor) => `users:${cursor}`),
      ...[700, 1400, 2100, 2800, 3500, 4200, 4900, 5600, 6000].map((cursor) => `purchases:${cursor}`),
    ]);
  });

  it('fails with a config_error on a bad config and on an unknown stream without committing', async () => {
    const bad = await run('destination-postgres', ['check', '--config', await dir.file('bad.json', { ...db.config, batchSize: 0 })]);
    expect(bad.code).toBe(1);
    expect(errorTraces(bad.messages)[0]).toMatchObject({ failure_type: 'config_error', message: expect.stringContaining('batchSize') });

    const result = await write(usersCatalog(), [recordLine('users', user(1)), recordLine('orders', { id: 1 }), stateLine('users', 1)]);
    expect(result.code).toBe(1);
    expect(errorTraces(result.messages)[0]?.message).toContain('orders');
    expect(await count('users')).toBe(0);
  });
});
