import { describe, expect, it } from 'vitest';
import { LockLostError, StoreError } from '../../shared/errors.js';
import type { AirbyteStateMessage } from '../../shared/protocol.js';
import type { LockHandle } from '../../shared/store/locks.js';
import { StateCommits } from '../../runner/sync/state-commits.js';

const lock: LockHandle = { connectionId: 'c1', token: 7, owner: 'r1', value: '7:r1' };
const stream = (name: string, cursor: number): AirbyteStateMessage => ({ type: 'STREAM', stream: { stream_descriptor: { name }, stream_state: { cursor } } });

/** A state store whose commits resolve when the test says, to see their order. */
function slowStore(fail: (n: number) => Error | undefined = () => undefined) {
  const committed: AirbyteStateMessage[][] = [];
  let n = 0;
  return {
    committed,
    async commit(_lock: LockHandle, state: AirbyteStateMessage[]): Promise<number> {
      const i = ++n;
      // Later commits would finish first if they ran side by side.
      await new Promise((r) => setTimeout(r, 20 - i * 5));
      const err = fail(i);
      if (err) throw err;
      committed.push(structuredClone(state));
      return 100 + i;
    },
  };
}

describe('StateCommits', () => {
  it('commits echoed STATE one after another, in the order the destination confirmed them, merged per stream', async () => {
    const store = slowStore();
    const commits = new StateCommits(store, lock, 'sync-1', [stream('a', 1)]);
    commits.confirm(stream('b', 1));
    commits.confirm(stream('a', 2));
    commits.confirm(stream('b', 3));
    await commits.settled();
    const cursors = (state: AirbyteStateMessage[]) =>
      state.map((m) => `${m.stream?.stream_descriptor.name ?? '?'}=${String((m.stream?.stream_state as { cursor: number } | undefined)?.cursor)}`).sort();
    expect(store.committed.map(cursors)).toEqual([
      ['a=1', 'b=1'],
      ['a=2', 'b=1'],
      ['a=2', 'b=3'],
    ]);
    expect({ echoed: commits.echoed, committed: commits.committed, version: commits.version, failed: commits.failed.aborted }).toEqual({ echoed: 3, committed: 3, version: 103, failed: false });
  });

  it('a lost lock halts every commit after it and is reported once', async () => {
    const store = slowStore((n) => (n === 2 ? new LockLostError('c1') : undefined));
    const commits = new StateCommits(store, lock, 'sync-1', []);
    for (let i = 1; i <= 4; i++) commits.confirm(stream('a', i));
    await commits.settled();
    expect(store.committed).toHaveLength(1);
    expect(commits.failed.reason).toBeInstanceOf(LockLostError);
    expect(commits.committed).toBe(1);
  });

  it('a store failure is reported, and later confirmations still carry the state it missed', async () => {
    const store = slowStore((n) => (n === 1 ? new StoreError('ECONNRESET') : undefined));
    const commits = new StateCommits(store, lock, 'sync-1', []);
    commits.confirm(stream('a', 1));
    commits.confirm(stream('b', 1));
    await commits.settled();
    expect(commits.failed.reason).toBeInstanceOf(StoreError);
    expect(store.committed).toEqual([[stream('a', 1), stream('b', 1)]]);
  });

  it('commits nothing after halt()', async () => {
    const store = slowStore();
    const commits = new StateCommits(store, lock, 'sync-1', []);
    commits.halt();
    commits.confirm(stream('a', 1));
    await commits.settled();
    expect(store.committed).toEqual([]);
    expect(commits.echoed).toBe(1);
  });
});

describe('StateCommits with minIntervalMs: bursts of echoes', () => {
  /** A state store that commits at once and keeps a copy of each commit. */
  function quickStore() {
    const committed: AirbyteStateMessage[][] = [];
    return {
      committed,
      commit(_lock: LockHandle, state: AirbyteStateMessage[]): Promise<number> {
        committed.push(structuredClone(state));
        return Promise.resolve(committed.length);
      },
    };
  }
  const cursors = (state: AirbyteStateMessage[]) => state.map((m) => `${m.stream?.stream_descriptor.name ?? '?'}=${String((m.stream?.stream_state as { cursor: number } | undefined)?.cursor)}`).sort();
  const tick = () => new Promise((r) => setTimeout(r, 5));

  it('commits the first echo at once and a burst after it as one commit of the latest state of each stream', async () => {
    const store = quickStore();
    const commits = new StateCommits(store, lock, 'sync-1', [], { minIntervalMs: 60 });
    commits.confirm(stream('a', 1));
    for (let i = 2; i <= 10; i++) commits.confirm(stream(i % 2 === 0 ? 'a' : 'b', i));
    await tick();
    expect(store.committed.map(cursors)).toEqual([['a=1']]);
    await new Promise((r) => setTimeout(r, 80));
    expect(store.committed.map(cursors)).toEqual([['a=1'], ['a=10', 'b=9']]);
    await commits.settled();
    expect({ echoed: commits.echoed, committed: commits.committed, version: commits.version }).toEqual({ echoed: 10, committed: 2, version: 2 });
  });

  it('never commits ahead of the echoes: what waits is only what was confirmed', async () => {
    const store = quickStore();
    const commits = new StateCommits(store, lock, 'sync-1', [stream('a', 0)], { minIntervalMs: 40 });
    commits.confirm(stream('a', 1));
    commits.confirm(stream('a', 2));
    await tick();
    expect(store.committed.map(cursors)).toEqual([['a=1']]);
    await new Promise((r) => setTimeout(r, 60));
    expect(store.committed.map(cursors)).toEqual([['a=1'], ['a=2']]);
    commits.confirm(stream('a', 3));
    await commits.settled();
    expect(store.committed.map(cursors).at(-1)).toEqual(['a=3']);
  });

  it('settled() commits the waiting echoes at once, without waiting for the interval: the last echo is always committed', async () => {
    const store = quickStore();
    const commits = new StateCommits(store, lock, 'sync-1', [], { minIntervalMs: 60_000 });
    commits.confirm(stream('a', 1));
    commits.confirm(stream('a', 2));
    commits.confirm(stream('b', 7));
    const started = Date.now();
    await commits.settled();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(store.committed.map(cursors)).toEqual([['a=1'], ['a=2', 'b=7']]);
    expect(commits.committed).toBe(2);
  });

  it('commits echoes spaced wider than the interval one by one', async () => {
    const store = quickStore();
    const commits = new StateCommits(store, lock, 'sync-1', [], { minIntervalMs: 20 });
    for (let i = 1; i <= 3; i++) {
      commits.confirm(stream('a', i));
      await new Promise((r) => setTimeout(r, 35));
    }
    await commits.settled();
    expect(store.committed.map(cursors)).toEqual([['a=1'], ['a=2'], ['a=3']]);
  });

  it('drops what waits when halted (a lost lock): nothing is committed after halt()', async () => {
    const store = quickStore();
    const commits = new StateCommits(store, lock, 'sync-1', [], { minIntervalMs: 60_000 });
    commits.confirm(stream('a', 1));
    await tick();
    commits.confirm(stream('a', 2));
    commits.halt();
    commits.confirm(stream('a', 3));
    await commits.settled();
    expect(store.committed.map(cursors)).toEqual([['a=1']]);
    expect(commits.echoed).toBe(3);
  });
});
