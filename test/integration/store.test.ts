// The Redis store against a real Redis: the guarantees the runner and scaler build on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaderLock } from '../../scaler/leadership/redis-lock.js';
import { LockLostError } from '../../shared/errors.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';

let s: TestServices;
beforeAll(() => {
  s = openTestServices(testConfig('store', { runsKept: 10 }));
});
afterAll(async () => {
  await s.cleanup();
});

describe('connection lock with fencing', () => {
  it('lets one holder in at a time, with increasing tokens', async () => {
    const a = await s.store.locks.tryAcquire('c1', 'runner-a', 5000);
    expect(a).toBeDefined();
    expect(await s.store.locks.tryAcquire('c1', 'runner-b', 5000)).toBeUndefined();
    expect(await s.store.locks.release(a!)).toBe(true);
    const b = await s.store.locks.tryAcquire('c1', 'runner-b', 5000);
    expect(b!.token).toBeGreaterThan(a!.token);
    await s.store.locks.release(b!);
  });

  it('stops a holder whose lock expired from committing state over its successor', async () => {
    const stale = await s.store.locks.tryAcquire('c2', 'runner-slow', 200);
    await s.store.state.commit(stale!, [{ type: 'LEGACY', data: { cursor: 1 } }], 'sync-1');
    await waitFor('the lock to expire', async () => (await s.store.locks.holder('c2')) === undefined, 5000, 50);
    const fresh = await s.store.locks.tryAcquire('c2', 'runner-new', 5000);
    await s.store.state.commit(fresh!, [{ type: 'LEGACY', data: { cursor: 2 } }], 'sync-2');
    await expect(s.store.state.commit(stale!, [{ type: 'LEGACY', data: { cursor: 99 } }], 'sync-1')).rejects.toBeInstanceOf(LockLostError);
    expect(await s.store.locks.renew(stale!, 5000)).toBe(false);
    expect(await s.store.locks.release(stale!)).toBe(false);
    const state = await s.store.state.get('c2');
    expect(state).toMatchObject({ version: 2, syncId: 'sync-2', state: [{ data: { cursor: 2 } }] });
    await s.store.locks.release(fresh!);
  });
});

describe('run records', () => {
  const run = (i: number, connectionId: string, status: RunRecord['status']): RunRecord => ({
    syncId: `sync-${i}`,
    connectionId,
    status,
    attempt: 1,
    runnerId: 'r',
    fullRefresh: false,
    requestedAt: new Date(1_700_000_000_000 + i * 1000).toISOString(),
    startedAt: new Date(1_700_000_000_000 + i * 1000).toISOString(),
    records: i,
    bytes: i * 10,
    streams: {},
    stateCommits: 0,
  });

  it('lists newest first, filters by connection and status, and keeps only runsKept', async () => {
    for (let i = 1; i <= 14; i++) await s.store.runs.put(run(i, i % 2 ? 'odd' : 'even', i % 3 ? 'succeeded' : 'dead_lettered'));
    const all = await s.store.runs.list({ limit: 100 });
    expect(all.map((r) => r.syncId)).toEqual([14, 13, 12, 11, 10, 9, 8, 7, 6, 5].map((i) => `sync-${i}`));
    expect(await s.store.runs.get('sync-1')).toBeUndefined();
    const odd = await s.store.runs.list({ connectionId: 'odd', limit: 3 });
    expect(odd.map((r) => r.syncId)).toEqual(['sync-13', 'sync-11', 'sync-9']);
    const dead = await s.store.runs.list({ status: 'dead_lettered', limit: 10 });
    expect(dead.map((r) => r.syncId)).toEqual(['sync-12', 'sync-9', 'sync-6']);
  });

  it('counts the runs started after a moment (the recent arrival rate idle runners read)', async () => {
    // After the test above: sync-5 … sync-14 kept, started at base + i s.
    expect(await s.store.runs.startedSince(1_700_000_000_000 + 11_000)).toBe(3);
    expect(await s.store.runs.startedSince(1_700_000_000_000 + 10_500)).toBe(4);
    expect(await s.store.runs.startedSince(Date.now())).toBe(0);
  });
});

describe('runner heartbeats', () => {
  it('lists runners whose heartbeat is fresh, and forgets removed ones', async () => {
    const beat = (runnerId: string) => ({ runnerId, host: 'h', pid: 1, concurrency: 2, inFlight: 1, syncsDone: 0, state: 'consuming' as const, startedAt: '', lastBeatAt: '' });
    await s.store.runners.beat(beat('r1'));
    await s.store.runners.beat(beat('r2'));
    expect((await s.store.runners.alive()).map((h) => h.runnerId).sort()).toEqual(['r1', 'r2']);
    await s.store.runners.remove('r1');
    expect((await s.store.runners.alive()).map((h) => h.runnerId)).toEqual(['r2']);
  });
});

describe('scaler leader lock', () => {
  it('has one leader; another takes over only after the TTL', async () => {
    const key = s.store.keys.leader('scaler');
    const a = new LeaderLock(s.store.redis, key, 'scaler-a', 300);
    const b = new LeaderLock(s.store.redis, key, 'scaler-b', 300);
    expect(await a.acquireOrRenew()).toBe(true);
    expect(await b.acquireOrRenew()).toBe(false);
    expect(await a.acquireOrRenew()).toBe(true);
    await waitFor('b to take over after a stops renewing', () => b.acquireOrRenew(), 3000, 50);
    expect(await a.acquireOrRenew()).toBe(false);
    await b.resign();
    expect(await a.acquireOrRenew()).toBe(true);
  });
});

describe('connections', () => {
  it('applies idempotently and reports what changed', async () => {
    const c = { id: 'c', source: { connector: 'source-faker', config: { count: 1 } }, destination: { connector: 'destination-jsonl', config: { destination_path: '/tmp/x' } } };
    expect(await s.store.connections.apply(c)).toBe('created');
    expect(await s.store.connections.apply(c)).toBe('unchanged');
    await s.store.connections.putCatalog('c', 'h', { streams: [] });
    expect(await s.store.connections.apply({ ...c, description: 'changed' })).toBe('updated');
    expect(await s.store.connections.getCatalog('c')).toBeUndefined();
    expect((await s.store.connections.list()).map((x) => x.id)).toEqual(['c']);
  });

  it('keeps every changed definition as a numbered version, newest first', async () => {
    const c = { id: 'versioned', source: { command: ['/opt/a/source'], version: '1.0', config: {} }, destination: { connector: 'destination-e2e-test', config: {} } };
    expect(await s.store.connections.applyVersioned(c)).toEqual({ result: 'created', version: 1 });
    expect(await s.store.connections.applyVersioned(c)).toEqual({ result: 'unchanged', version: 1 });
    const v2 = { ...c, source: { command: ['/opt/b/source'], version: '2.0', config: {} } };
    expect(await s.store.connections.applyVersioned(v2)).toEqual({ result: 'updated', version: 2 });
    const history = await s.store.connections.history('versioned');
    expect(history.map((v) => [v.version, v.connection.source.version])).toEqual([[2, '2.0'], [1, '1.0']]);
    expect(history[0]!.appliedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(await s.store.connections.getVersioned('versioned')).toEqual({ connection: v2, version: 2 });
  });

  it('records the definition found in place as the first version when history begins, and skips entries it cannot read', async () => {
    const c = { id: 'legacy', source: { connector: 'source-faker', config: {} }, destination: { connector: 'destination-e2e-test', config: {} } };
    // Written as a store from before versions were kept would have left it.
    await s.store.redis.set(s.store.keys.connection('legacy'), JSON.stringify(c));
    expect(await s.store.connections.version('legacy')).toBe(0);
    expect(await s.store.connections.applyVersioned({ ...c, description: 'now versioned' })).toEqual({ result: 'updated', version: 2 });
    await s.store.redis.lpush(s.store.keys.connectionHistory('legacy'), '{"version":"x"}', 'not json');
    const history = await s.store.connections.history('legacy');
    expect(history.map((v) => [v.version, v.appliedAt === null, v.connection.description])).toEqual([[2, false, 'now versioned'], [1, true, undefined]]);
    expect(await s.store.connections.delete('legacy')).toBe('deleted');
    expect(await s.store.connections.history('legacy')).toEqual([]);
  });

  it('deletes a connection with its state, catalog and schedule, but never while a sync of it holds the lock', async () => {
    const c = { id: 'doomed-c', source: { connector: 'source-faker', config: {} }, destination: { connector: 'destination-e2e-test', config: {} } };
    await s.store.connections.apply(c);
    await s.store.connections.putCatalog('doomed-c', 'h', { streams: [] });
    const lock = await s.store.locks.tryAcquire('doomed-c', 'runner-a', 5000);
    await s.store.state.commit(lock!, [{ type: 'STREAM', stream: { stream_descriptor: { name: 'users' }, stream_state: { n: 1 } } }], 'sync-1');
    // Running: nothing is touched.
    expect(await s.store.connections.delete('doomed-c')).toBe('running');
    expect(await s.store.connections.get('doomed-c')).toBeDefined();
    expect(await s.store.state.get('doomed-c')).toBeDefined();
    await s.store.locks.release(lock!);
    expect(await s.store.connections.delete('doomed-c')).toBe('deleted');
    expect(await s.store.connections.get('doomed-c')).toBeUndefined();
    expect(await s.store.connections.list()).not.toContainEqual(expect.objectContaining({ id: 'doomed-c' }));
    expect(await s.store.state.get('doomed-c')).toBeUndefined();
    expect(await s.store.connections.getCatalog('doomed-c')).toBeUndefined();
    expect(await s.store.connections.delete('doomed-c')).toBe('not-found');
  });

  it('caches specs by fingerprint, and treats a cached record that does not parse as absent', async () => {
    await s.store.specs.put('fp-1', { spec: { connectionSpecification: { type: 'object' }, supported_destination_sync_modes: ['append'] }, fetchedAt: '2026-01-01T00:00:00Z' });
    expect(await s.store.specs.get('fp-1')).toEqual({ spec: { connectionSpecification: { type: 'object' }, supported_destination_sync_modes: ['append'] }, fetchedAt: '2026-01-01T00:00:00Z' });
    await s.store.specs.put('fp-none', { spec: null, fetchedAt: '2026-01-01T00:00:00Z' });
    expect((await s.store.specs.get('fp-none'))?.spec).toBeNull();
    await s.store.redis.set(s.store.keys.spec('fp-bad'), '{"spec":{"supported_destination_sync_modes":["everything"]}}');
    expect(await s.store.specs.get('fp-bad')).toBeUndefined();
    expect(await s.store.specs.get('fp-missing')).toBeUndefined();
  });
});
