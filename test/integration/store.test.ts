// The Redis store against a real Redis: the guarantees the runner and scaler build on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaderLock } from '../../shared/store/leader.js';
import { StaleLockError } from '../../shared/store/state.js';
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
    await expect(s.store.state.commit(stale!, [{ type: 'LEGACY', data: { cursor: 99 } }], 'sync-1')).rejects.toBeInstanceOf(StaleLockError);
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
});
