// Attack (or accident): a raw SET of garbage in the store, as anyone who can reach Redis could
// do with redis-cli. One corrupt run record or connection must not take a listing down: `tidepool
// runs` and /api/runs list the rest and name the corrupt keys; reading that one record is an
// error naming its key; the next write of the record replaces it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configEnv } from '../../shared/config.js';
import { createRegistry } from '../../shared/metrics.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { startDashboard } from '../../scaler/dashboard/server.js';
import { tidepool } from './cli.js';
import { openTestServices, testConfig, type TestServices } from '../helpers/services.js';

const exec = promisify(execFile);

function record(syncId: string, startedAt: string): RunRecord {
  return { syncId, connectionId: 'victim', status: 'succeeded', attempt: 1, runnerId: 'r1', fullRefresh: false, requestedAt: startedAt, startedAt, records: 3, bytes: 30, streams: {}, stateCommits: 1 };
}

describe('corrupt records in the store', () => {
  let s: TestServices;
  const redisCli = (...args: string[]) => exec('redis-cli', ['-u', s.config.redisUrl, ...args]);
  let badKeys: string[];

  beforeAll(async () => {
    s = openTestServices(testConfig('sec-corrupt'));
    const { keys } = s.store;
    await s.store.runs.put(record('good-1', '2026-01-01T00:00:01.000Z'));
    await s.store.runs.put(record('good-2', '2026-01-01T00:00:03.000Z'));
    // Not JSON, and JSON of the wrong shape, each indexed like a real run (newest of all).
    await redisCli('SET', keys.run('bad-json'), '{"syncId": "bad-json", garbage');
    await redisCli('ZADD', keys.runs(), String(Date.parse('2026-01-01T00:00:04.000Z')), 'bad-json');
    await redisCli('SET', keys.run('bad-shape'), '{"syncId": 5, "streams": "x"}');
    await redisCli('ZADD', keys.runs(), String(Date.parse('2026-01-01T00:00:02.000Z')), 'bad-shape');
    badKeys = [keys.run('bad-json'), keys.run('bad-shape')];
  });
  afterAll(() => s.cleanup());

  it('tidepool runs lists the good records and warns on stderr with the corrupt keys', async () => {
    const env = configEnv(s.config);
    const table = await tidepool(['runs'], env);
    expect(table.code).toBe(0);
    const rows = table.stdout.trimEnd().split('\n').slice(1);
    expect(rows.map((r) => r.split(/\s+/)[0])).toEqual(['good-2', 'good-1']);
    expect(table.stderr).toContain(`warning: 2 corrupt run record(s) skipped: ${badKeys.join(', ')}`);

    const json = await tidepool(['runs', '--json'], env);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as RunRecord[]).map((r) => r.syncId)).toEqual(['good-2', 'good-1']);
    expect(json.stderr).toContain('corrupt run record(s) skipped');
  });

  it('/api/runs answers 200 with the good records and a corrupt field; the record itself is an error naming its key', async () => {
    const dashboard = await startDashboard({
      config: { ...s.config, dashboardPort: 0, dashboardHost: '127.0.0.1', dashboardToken: '' },
      store: s.store,
      logger: s.logger,
      registry: createRegistry(),
      snapshot: () => undefined,
    });
    try {
      const get = (path: string) => fetch(new URL(path, dashboard.url)).then(async (r) => ({ status: r.status, body: (await r.json()) as { runs?: RunRecord[]; corrupt?: string[]; error?: string } }));
      const listing = await get('/api/runs');
      expect(listing.status).toBe(200);
      expect(listing.body.runs!.map((r) => r.syncId)).toEqual(['good-2', 'good-1']);
      expect(listing.body.corrupt).toEqual(badKeys);
      const one = await get('/api/runs/bad-json');
      expect(one.status).toBe(500);
      expect(one.body.error).toContain(`corrupt record at ${badKeys[0]!}: not JSON`);
      expect(one.body.error).not.toContain('garbage');
    } finally {
      await dashboard.close();
    }
  });

  it('get names the key, getMany and trim pass over it, and the next put replaces it', async () => {
    await expect(s.store.runs.get('bad-shape')).rejects.toThrow(`corrupt record at ${badKeys[1]!}: syncId:`);
    expect((await s.store.runs.getMany(['good-1', 'bad-json', 'missing'])).map((r) => r?.syncId)).toEqual(['good-1', undefined, undefined]);
    await s.store.runs.put(record('bad-json', '2026-01-01T00:00:05.000Z'));
    expect((await s.store.runs.get('bad-json'))?.previousAttempts).toBeUndefined();
    expect((await s.store.runs.listing()).corrupt).toEqual([badKeys[1]]);
  });

  it('a corrupt connection is left out of the connection listing and reported', async () => {
    const { keys } = s.store;
    await s.store.connections.apply({ id: 'victim', source: { connector: 'source-faker', config: {} }, destination: { connector: 'destination-e2e-test', config: {} } });
    await redisCli('SET', keys.connection('broken'), 'not json at all');
    await redisCli('SADD', keys.connections(), 'broken');
    const listing = await s.store.connections.listing();
    expect(listing.connections.map((c) => c.id)).toEqual(['victim']);
    expect(listing.corrupt).toEqual([keys.connection('broken')]);
    const listed = await tidepool(['connections', 'list'], configEnv(s.config));
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('victim');
  });
});
