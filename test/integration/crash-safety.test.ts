// Runner processes that die or are told to stop in the middle of a sync into PostgreSQL: the
// message is never lost (redelivered, or handed back), another runner finishes the sync once
// the connection lock lets it, the dead runner can no longer commit state, and the destination
// ends with exactly the source's rows. The fencing rule itself is tested in store.test.ts
// ("stops a holder whose lock expired from committing state over its successor"); here it is
// the real dead runner's token that is refused.
//
// The source is a keyless stream (no primary key, so no upsert can hide a duplicate row) read
// as a full refresh into an overwrite table: each run writes a generation of rows, and only a
// completed run removes the others — a second copy of any row would show.
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../shared/config.js';
import { newSyncRequest } from '../../shared/messages.js';
import { queueDepth } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { LockLostError } from '../../shared/errors.js';
import { writeKeylessSource } from '../helpers/keyless-source.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { closeRunnerHarness, isRunning, openRunnerHarness, runUntil as runRecordUntil, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';
import { waitFor } from '../helpers/services.js';

const RECORDS = 400;
const STATE_EVERY = 25;
/** 10 ms a record: a sync takes 4–5 s, long enough to be killed in the middle. */
const DELAY_MS = 10;

type Harness = RunnerHarness & { db: TestDatabase };

async function harness(name: string, overrides: Partial<ConfigInput>): Promise<Harness> {
  const h = await openRunnerHarness(name, { logLevel: 'info', ...overrides });
  const db = await createTestDatabase(name);
  const source = await writeKeylessSource(h.dir);
  await h.services.store.connections.apply({
    id: 'events',
    source: { command: [source], config: { records: RECORDS, stateEvery: STATE_EVERY, delayMs: DELAY_MS } },
    destination: { connector: 'destination-postgres', config: { ...db.config, schema: 'crash' } },
    streams: [{ name: 'events', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }],
  });
  return { ...h, db };
}

async function close(h: Harness | undefined): Promise<void> {
  if (!h) return;
  await closeRunnerHarness(h);
  await h.db.drop();
}

const run = (h: Harness, syncId: string) => h.services.store.runs.get(syncId);

/** Syncs here take seconds: up to a minute by default, polled every 50 ms. */
const runUntil = (h: Harness, syncId: string, what: string, done: (r: RunRecord) => boolean, timeoutMs = 60_000): Promise<RunRecord> =>
  runRecordUntil(h, syncId, what, done, timeoutMs, 50);

const stateVersion = async (h: Harness) => (await h.services.store.state.get('events'))?.version ?? 0;

/** Rows in the destination, distinct ids, and generations (runs) they came from. */
async function rows(h: Harness): Promise<{ rows: number; ids: number; generations: number; maxId: number }> {
  const { rows: r } = await h.db.pool.query<{ rows: number; ids: number; generations: number; max_id: number }>(
    'SELECT count(*)::int AS rows, count(DISTINCT id)::int AS ids, count(DISTINCT _tidepool_generation)::int AS generations, coalesce(max(id), 0)::int AS max_id FROM crash.events',
  );
  const first = r[0]!;
  return { rows: first.rows, ids: first.ids, generations: first.generations, maxId: first.max_id };
}

/**
 * Once every runner is gone, an unacked message would be back in the queue: none may be. The
 * runners still up are told to stop (SIGTERM) rather than killed: a sync is recorded as finished
 * just before its message is acked, and a SIGKILL in between hands back a message that was done
 * (the next delivery would ack it as settled, but this queue would not be empty yet). A runner
 * that stops hands back whatever it did not finish, so a message left unfinished still shows.
 * One that does not stop in time is killed.
 */
async function expectQueuesEmpty(h: Harness): Promise<void> {
  const live = h.runners.filter(isRunning);
  for (const r of live) r.kill('SIGTERM');
  const stopped = Promise.all(live.map((r) => r.exited));
  if ((await Promise.race([stopped.then(() => true), new Promise((resolve) => setTimeout(resolve, 20_000, false))])) === false) {
    for (const r of h.runners) if (isRunning(r)) r.kill('SIGKILL');
  }
  await Promise.all(h.runners.map((r) => r.exited));
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect((await queueDepth(h.broker, h.topology.syncsQueue)).ready).toBe(0);
  expect((await queueDepth(h.broker, h.topology.deadQueue)).ready).toBe(0);
}

describe('crash safety: a runner killed with SIGKILL in the middle of a sync', () => {
  let h: Harness | undefined;
  afterEach(() => close(h));

  it('is redelivered, taken over after the lock TTL, its late state commit is refused, and the rows are exact', async () => {
    h = await harness('crash-kill', { lockTtl: '3s' });
    const request = newSyncRequest('events');
    await publishSync(h.channel, h.topology, request);
    const doomed = spawnRunner(h, 'doomed');
    await runUntil(h, request.syncId, 'the sync to start', (r) => r.status === 'running' && r.runnerId === 'doomed');
    // Mid-way: some checkpoints committed (4 × 25 of 400 records), most of the work left.
    await waitFor('four state commits', async () => (await stateVersion(h!)) >= 4, 30_000, 20);
    const holder = await h.services.store.locks.holder('events');
    expect(holder).toMatch(/^\d+:doomed$/);
    const deadLock = { connectionId: 'events', token: Number(holder!.split(':')[0]), owner: 'doomed', value: holder! };

    doomed.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await doomed.exited).toBeNull();
    // Whatever the dead runner's connectors still did with what they had, no state came after it.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const versionAtDeath = await stateVersion(h);
    expect(versionAtDeath).toBeGreaterThanOrEqual(4);
    expect(versionAtDeath).toBeLessThan(RECORDS / STATE_EVERY);

    // Another runner gets the redelivered message at once, but the connection stays locked
    // until the dead runner's lock expires (last renewed ≤ lockTtl/3 before the kill).
    spawnRunner(h, 'heir');
    const rerun = await runUntil(h, request.syncId, 'the heir to start the sync', (r) => r.runnerId === 'heir' && r.status === 'running', 30_000);
    const waited = Date.parse(rerun.startedAt) - killedAt;
    expect(waited).toBeGreaterThanOrEqual((2 * h.config.lockTtl) / 3 - 200);
    expect(waited).toBeLessThan(h.config.lockTtl + 5_000);
    const heirHolder = await h.services.store.locks.holder('events');
    expect(Number(heirHolder?.split(':')[0])).toBeGreaterThan(deadLock.token);

    // A commit the dead runner had in flight, arriving now: fenced.
    const before = await h.services.store.state.get('events');
    await expect(h.services.store.state.commit(deadLock, [{ type: 'STREAM', stream: { stream_descriptor: { name: 'events' }, stream_state: { cursor: 999_999 } } }], request.syncId)).rejects.toBeInstanceOf(LockLostError);
    expect((await h.services.store.state.get('events'))?.version).toBe(before?.version);

    const done = await runUntil(h, request.syncId, 'the sync to succeed', (r) => r.status === 'succeeded', 60_000);
    // Redelivery is not a new attempt; the killed execution is in the history, as it was left.
    expect(done).toMatchObject({ attempt: 1, runnerId: 'heir', records: RECORDS, stateCommits: RECORDS / STATE_EVERY });
    expect(done.previousAttempts?.map((p) => [p.runnerId, p.status])).toEqual([['doomed', 'running']]);
    // Each checkpoint committed once: the dead runner's, then the heir's full run's, no more.
    expect(await stateVersion(h)).toBe(versionAtDeath + RECORDS / STATE_EVERY);
    expect(done.stateVersion).toBe(versionAtDeath + RECORDS / STATE_EVERY);
    // Exactly the source's rows, from the completed run only.
    expect(await rows(h)).toEqual({ rows: RECORDS, ids: RECORDS, generations: 1, maxId: RECORDS });
    await expectQueuesEmpty(h);
  }, 120_000);

  // A runner killed with SIGKILL closes its connectors' pipes, so the destination's input ends
  // with EOF as if the source had finished. Before the runner sent Airbyte's TRACE STREAM_STATUS
  // (STARTED for every stream first, COMPLETE only after a successful source), destination-
  // postgres took that EOF as the end: it committed its partial read and, for this overwrite
  // stream, deleted the previous complete generation (measured: 400 rows down to 101). Now it
  // sees STARTED without COMPLETE, rolls back to its last STATE and applies no overwrite.
  it('keeps the previous complete rows until a rerun completes (the orphaned destination rolls back at EOF without COMPLETE)', async () => {
    h = await harness('crash-eof', { lockTtl: '3s' });
    const first = newSyncRequest('events');
    await publishSync(h.channel, h.topology, first);
    const doomed = spawnRunner(h, 'doomed');
    await runUntil(h, first.syncId, 'the first sync to succeed', (r) => r.status === 'succeeded');
    expect(await rows(h)).toMatchObject({ rows: RECORDS, generations: 1 });
    const complete = await stateVersion(h);

    const second = newSyncRequest('events');
    await publishSync(h.channel, h.topology, second);
    await waitFor('the second sync to be mid-way', async () => (await stateVersion(h!)) >= complete + 4, 30_000, 20);
    doomed.kill('SIGKILL');
    await doomed.exited;
    // The orphaned destination reads on to EOF, then rolls back and exits: its connection goes.
    await waitFor('the orphaned destination to end', async () => {
      const { rows: active } = await h!.db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tidepool-destination-postgres'`,
        [h!.db.database],
      );
      return active[0]?.n === 0;
    }, 10_000, 50);
    // The first sync's complete generation, whole and alone: no partial second read beside it.
    expect(await rows(h)).toEqual({ rows: RECORDS, ids: RECORDS, generations: 1, maxId: RECORDS });

    spawnRunner(h, 'heir');
    const done = await runUntil(h, second.syncId, 'the rerun to succeed', (r) => r.status === 'succeeded' && r.runnerId === 'heir', 60_000);
    expect(done.records).toBe(RECORDS);
    expect(await rows(h)).toEqual({ rows: RECORDS, ids: RECORDS, generations: 1, maxId: RECORDS });
    await expectQueuesEmpty(h);
  }, 120_000);
});

describe('crash safety: SIGTERM in the middle of a sync', () => {
  let h: Harness | undefined;
  afterEach(() => close(h));

  it('with a long shutdownGrace: the sync finishes, is acked, and the runner exits 0', async () => {
    h = await harness('crash-sigterm-finish', { shutdownGrace: '60s' });
    const request = newSyncRequest('events');
    await publishSync(h.channel, h.topology, request);
    const runner = spawnRunner(h, 'finisher');
    await waitFor('two state commits', async () => (await stateVersion(h!)) >= 2, 30_000, 20);
    runner.kill('SIGTERM');
    const stoppedAt = Date.now();
    expect(await runner.exited).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(h.config.shutdownGrace);
    const done = await run(h, request.syncId);
    expect(done).toMatchObject({ status: 'succeeded', runnerId: 'finisher', attempt: 1, records: RECORDS, stateCommits: RECORDS / STATE_EVERY });
    expect(done?.previousAttempts).toBeUndefined();
    expect(await stateVersion(h)).toBe(RECORDS / STATE_EVERY);
    expect(await rows(h)).toEqual({ rows: RECORDS, ids: RECORDS, generations: 1, maxId: RECORDS });
    await expectQueuesEmpty(h);
  }, 120_000);

  it('with a short shutdownGrace: the sync is requeued, not lost, and another runner completes it', async () => {
    h = await harness('crash-sigterm-requeue', { shutdownGrace: '300ms' });
    const request = newSyncRequest('events');
    await publishSync(h.channel, h.topology, request);
    const runner = spawnRunner(h, 'quitter');
    await waitFor('two state commits', async () => (await stateVersion(h!)) >= 2, 30_000, 20);
    runner.kill('SIGTERM');
    expect(await runner.exited).toBe(0);
    const requeued = await run(h, request.syncId);
    expect(requeued).toMatchObject({ status: 'requeued', runnerId: 'quitter', attempt: 1, error: { type: 'cancelled' } });
    const versionAtStop = await stateVersion(h);
    // Its lock was released on the way out: the next runner does not wait for the TTL.
    expect(await h.services.store.locks.holder('events')).toBeUndefined();
    expect((await queueDepth(h.broker, h.topology.syncsQueue)).ready).toBe(1);

    spawnRunner(h, 'successor');
    const done = await runUntil(h, request.syncId, 'the sync to succeed', (r) => r.status === 'succeeded');
    expect(done).toMatchObject({ attempt: 1, runnerId: 'successor', records: RECORDS, stateCommits: RECORDS / STATE_EVERY });
    expect(done.previousAttempts?.map((p) => [p.runnerId, p.status])).toEqual([['quitter', 'requeued']]);
    expect(await stateVersion(h)).toBe(versionAtStop + RECORDS / STATE_EVERY);
    expect(await rows(h)).toEqual({ rows: RECORDS, ids: RECORDS, generations: 1, maxId: RECORDS });
    await expectQueuesEmpty(h);
  }, 120_000);
});
