import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AirbyteMessage } from '../../../shared/protocol.js';
import { catalogOf, errorTraces, records, run, states, tempDir, type TempDir } from './harness.js';

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('faker');
});
afterAll(async () => {
  await dir.remove();
});

const usersCatalog = (syncMode: 'full_refresh' | 'incremental' = 'incremental') =>
  catalogOf({ name: 'users', syncMode, cursorField: ['id'] });

async function read(config: unknown, catalog: unknown, state?: unknown): Promise<AirbyteMessage[]> {
  const args = ['read', '--config', await dir.file(`config-${Math.random()}.json`, config)];
  args.push('--catalog', await dir.file(`catalog-${Math.random()}.json`, catalog));
  if (state !== undefined) args.push('--state', await dir.file(`state-${Math.random()}.json`, state));
  const result = await run('source-faker', args);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return result.messages;
}

const cursorsOf = (messages: AirbyteMessage[]) => states(messages).map((state) => state.stream?.stream_state?.['cursor']);

describe('source-faker', () => {
  it('describes its config in spec', async () => {
    const result = await run('source-faker', ['spec']);
    expect(result.code).toBe(0);
    const [message] = result.messages;
    expect(message?.type).toBe('SPEC');
    if (message?.type !== 'SPEC') return;
    expect(Object.keys(message.spec.connectionSpecification['properties'] as object).sort()).toEqual(
      ['count', 'purchasesPerUser', 'seed', 'stateEvery'],
    );
  });

  it('passes check and discovers users and purchases', async () => {
    const config = await dir.file('check.json', {});
    const check = await run('source-faker', ['check', '--config', config]);
    expect(check.messages).toEqual([{ type: 'CONNECTION_STATUS', connectionStatus: { status: 'SUCCEEDED' } }]);

    const discover = await run('source-faker', ['discover', '--config', config]);
    const catalog = discover.messages[0];
    expect(catalog?.type).toBe('CATALOG');
    if (catalog?.type !== 'CATALOG') return;
    expect(catalog.catalog.streams.map((stream) => stream.name)).toEqual(['users', 'purchases']);
    for (const stream of catalog.catalog.streams) {
      expect(stream.supported_sync_modes).toEqual(['full_refresh', 'incremental']);
      expect(stream.source_defined_cursor).toBe(true);
      expect(stream.default_cursor_field).toEqual(['id']);
      expect(stream.source_defined_primary_key).toEqual([['id']]);
      expect(stream.json_schema['type']).toBe('object');
    }
    const users = catalog.catalog.streams[0];
    expect(Object.keys(users?.json_schema['properties'] as object)).toEqual([
      'id', 'name', 'email', 'title', 'age', 'address', 'created_at', 'updated_at',
    ]);
  });

  it('generates the same records for the same seed, and others for another seed', async () => {
    const first = records(await read({ seed: 7, count: 300 }, usersCatalog()));
    const second = records(await read({ seed: 7, count: 300 }, usersCatalog()));
    const other = records(await read({ seed: 8, count: 300 }, usersCatalog()));
    expect(first).toHaveLength(300);
    expect(first.map((user) => user['id'])).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(second).toEqual(first);
    expect(other.map((user) => user['name'])).not.toEqual(first.map((user) => user['name']));

    const user = first[0] as Record<string, unknown>;
    expect(user).toMatchObject({ id: 1, address: { city: expect.any(String), zip: expect.any(String) } });
    expect(new Date(user['created_at'] as string).toISOString()).toBe(user['created_at']);
    expect(Date.parse(user['updated_at'] as string)).toBeGreaterThanOrEqual(Date.parse(user['created_at'] as string));
    const size = JSON.stringify(user).length;
    expect(size).toBeGreaterThan(180);
    expect(size).toBeLessThan(350);
  });

  it('resumes an incremental read after the state cursor with exactly the missing records', async () => {
    const config = { count: 1000, stateEvery: 100 };
    const full = await read(config, usersCatalog());
    expect(cursorsOf(full)).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);

    const state = [{ type: 'STREAM', stream: { stream_descriptor: { name: 'users' }, stream_state: { cursor: 500 } } }];
    const resumed = await read(config, usersCatalog(), state);
    const ids = records(resumed).map((user) => user['id']);
    expect(ids).toEqual(Array.from({ length: 500 }, (_, i) => i + 501));
    expect(records(resumed)).toEqual(records(full).slice(500));
    expect(cursorsOf(resumed)).toEqual([600, 700, 800, 900, 1000]);
    // States come after the records they cover.
    const lastState = resumed.findLastIndex((message) => message.type === 'STATE');
    expect(lastState).toBe(resumed.length - 1);
  });

  it('emits a closing state carrying the cursor forward when nothing is new', async () => {
    const wrapped = [
      { type: 'STATE', state: { type: 'STREAM', stream: { stream_descriptor: { name: 'users' }, stream_state: { cursor: 40 } } } },
    ];
    const messages = await read({ count: 40 }, usersCatalog(), wrapped);
    expect(records(messages)).toEqual([]);
    expect(messages).toEqual([
      {
        type: 'STATE',
        state: { type: 'STREAM', stream: { stream_descriptor: { name: 'users' }, stream_state: { cursor: 40 } } },
      },
    ]);
    const empty = await read({ count: 0 }, usersCatalog());
    expect(cursorsOf(empty)).toEqual([0]);
  });

  it('reads everything with a legacy {} state, and full refresh ignores state', async () => {
    expect(records(await read({ count: 25 }, usersCatalog(), {}))).toHaveLength(25);
    const state = [{ type: 'STREAM', stream: { stream_descriptor: { name: 'users' }, stream_state: { cursor: 20 } } }];
    expect(records(await read({ count: 25 }, usersCatalog('full_refresh'), state))).toHaveLength(25);
  });

  it('emits only configured streams; purchases has count × purchasesPerUser rows', async () => {
    const messages = await read(
      { count: 30, purchasesPerUser: 3 },
      catalogOf({ name: 'purchases', syncMode: 'incremental', cursorField: ['id'] }),
    );
    expect(records(messages, 'users')).toEqual([]);
    const purchases = records(messages, 'purchases');
    expect(purchases).toHaveLength(90);
    expect(new Set(purchases.map((purchase) => purchase['user_id']))).toEqual(new Set(Array.from({ length: 30 }, (_, i) => i + 1)));
    expect(purchases[0]).toEqual({
      id: 1,
      user_id: 1,
      product: expect.any(String),
      price: expect.any(Number),
      quantity: expect.any(Number),
      purchased_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
  });

  it('rejects a bad config with a config_error naming the field', async () => {
    const config = await dir.file('bad.json', { count: -5 });
    const result = await run('source-faker', ['read', '--config', config, '--catalog', await dir.file('c.json', usersCatalog())]);
    expect(result.code).toBe(1);
    expect(records(result.messages)).toEqual([]);
    const [error] = errorTraces(result.messages);
    expect(error?.failure_type).toBe('config_error');
    expect(error?.message).toContain('count');
  });

  it('fails clearly on an unknown command, a missing file, or an unknown stream', async () => {
    const unknown = await run('source-faker', ['fly']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown command "fly"');
    expect(errorTraces(unknown.messages)[0]?.failure_type).toBe('config_error');

    const missing = await run('source-faker', ['check', '--config', '/nonexistent/config.json']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('/nonexistent/config.json');
    expect(errorTraces(missing.messages)[0]?.failure_type).toBe('config_error');

    const config = await dir.file('ok.json', {});
    const stream = await run('source-faker', ['read', '--config', config, '--catalog', await dir.file('x.json', catalogOf({ name: 'orders' }))]);
    expect(stream.code).toBe(1);
    expect(errorTraces(stream.messages)[0]?.message).toContain('orders');
  });
});
