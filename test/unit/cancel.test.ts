import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { watchCancel } from '../../runner/sync/cancel-watch.js';
import { SyncCancelledError } from '../../shared/errors.js';
import { CancelStore, type CancelMarker, type CancelSubject } from '../../shared/store/cancels.js';
import { Keys } from '../../shared/store/redis.js';

const logger = pino({ level: 'silent' });
const subject: CancelSubject = { syncId: 's1', connectionId: 'c1', requestedAt: '2026-01-01T10:00:00.000Z' };

/** A CancelStore over a fake Redis holding these two markers. */
function storeWith(own: unknown, connection: unknown): CancelStore {
  const json = (v: unknown) => (v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v));
  const redis = { mget: (...keys: string[]) => Promise.resolve(keys.map((k) => (k.includes(':cancel:sync:') ? json(own) : json(connection)))) };
  return new CancelStore(redis as unknown as Redis, new Keys('t'));
}

describe('CancelStore.cancelOf: which marker cancels a sync', () => {
  const before = { by: 'ann', at: '2026-01-01T09:00:00.000Z' };
  const after = { by: 'bob', at: '2026-01-01T11:00:00.000Z' };

  it("its own marker; its connection's only when the sync was requested before it", async () => {
    expect(await storeWith(before, undefined).cancelOf(subject)).toEqual(before);
    expect(await storeWith(undefined, after).cancelOf(subject)).toEqual(after);
    expect(await storeWith(undefined, before).cancelOf(subject)).toBeUndefined();
    expect(await storeWith(undefined, undefined).cancelOf(subject)).toBeUndefined();
  });

  it('a replay from the dead-letter queue after the cancel is a new request; one before it is not', async () => {
    expect(await storeWith(before, after).cancelOf({ ...subject, replayedAt: Date.parse('2026-01-01T12:00:00.000Z') })).toBeUndefined();
    expect(await storeWith(after, undefined).cancelOf({ ...subject, replayedAt: Date.parse('2026-01-01T10:30:00.000Z') })).toEqual(after);
  });

  it('a stored value that is no marker cancels nothing', async () => {
    expect(await storeWith('not json', { by: 1 }).cancelOf(subject)).toBeUndefined();
  });
});

describe('watchCancel', () => {
  const marker: CancelMarker = { by: 'ann', at: '2026-01-01T11:00:00.000Z' };

  it('aborts with a SyncCancelledError once the marker appears, and reads no more', async () => {
    let reads = 0;
    const stored: { marker?: CancelMarker } = {};
    const watch = watchCancel({ cancelOf: () => (reads++, Promise.resolve(stored.marker)) }, subject, logger, 10);
    await new Promise((r) => setTimeout(r, 35));
    expect(watch.cancelled.aborted).toBe(false);
    stored.marker = marker;
    await new Promise((r) => setTimeout(r, 30));
    expect(watch.cancelled.aborted).toBe(true);
    expect(watch.cancelled.reason).toBeInstanceOf(SyncCancelledError);
    expect((watch.cancelled.reason as SyncCancelledError).message).toBe('sync cancelled by ann at 2026-01-01T11:00:00.000Z');
    expect(watch.marker).toEqual(marker);
    const readsThen = reads;
    await new Promise((r) => setTimeout(r, 40));
    expect(reads).toBe(readsThen);
    watch.stop();
  });

  it('a read that fails is tried again; check() reads at once; stop() ends it', async () => {
    let fail = true;
    const watch = watchCancel({ cancelOf: () => (fail ? Promise.reject(new Error('store away')) : Promise.resolve(marker)) }, subject, logger, 10_000);
    await watch.check();
    expect(watch.cancelled.aborted).toBe(false);
    fail = false;
    await watch.check();
    expect(watch.marker).toEqual(marker);
    watch.stop();
    const stopped = watchCancel({ cancelOf: () => Promise.resolve(marker) }, subject, logger, 10);
    stopped.stop();
    await new Promise((r) => setTimeout(r, 30));
    expect(stopped.cancelled.aborted).toBe(false);
  });
});
