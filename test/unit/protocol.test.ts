import { describe, expect, it } from 'vitest';
import { mergeState, stateKey, type AirbyteStateMessage } from '../../shared/protocol.js';

const streamState = (name: string, cursor: number, namespace?: string): AirbyteStateMessage => ({
  type: 'STREAM',
  stream: { stream_descriptor: namespace === undefined ? { name } : { name, namespace }, stream_state: { cursor } },
});
const globalState = (v: number): AirbyteStateMessage => ({
  type: 'GLOBAL',
  global: { shared_state: { lsn: v }, stream_states: [{ stream_descriptor: { name: 'users' }, stream_state: { v } }] },
});
const legacyState = (v: number): AirbyteStateMessage => ({ data: { v } });

describe('stateKey', () => {
  it('keys STREAM states by namespace and name', () => {
    expect(stateKey(streamState('users', 1))).toBe('stream::users');
    expect(stateKey(streamState('users', 1, 'public'))).toBe('stream:public:users');
  });

  it('distinguishes the same name in different namespaces', () => {
    expect(stateKey(streamState('users', 1, 'a'))).not.toBe(stateKey(streamState('users', 1, 'b')));
    expect(stateKey(streamState('users', 1, 'a'))).not.toBe(stateKey(streamState('users', 1)));
  });

  it('keys GLOBAL and LEGACY states', () => {
    expect(stateKey(globalState(1))).toBe('global');
    expect(stateKey(legacyState(1))).toBe('legacy');
    expect(stateKey({ type: 'LEGACY', data: {} })).toBe('legacy');
  });
});

describe('mergeState', () => {
  it('adds a stream state to an empty committed state', () => {
    expect(mergeState([], streamState('users', 1))).toEqual([streamState('users', 1)]);
  });

  it('replaces the state of the same stream and keeps the others', () => {
    const committed = [streamState('users', 1), streamState('orders', 5)];
    const merged = mergeState(committed, streamState('users', 2));
    expect(merged).toHaveLength(2);
    expect(merged).toContainEqual(streamState('users', 2));
    expect(merged).toContainEqual(streamState('orders', 5));
    expect(merged).not.toContainEqual(streamState('users', 1));
  });

  it('treats namespaces as part of the stream', () => {
    const committed = [streamState('users', 1, 'a'), streamState('users', 1, 'b')];
    const merged = mergeState(committed, streamState('users', 2, 'a'));
    expect(merged).toHaveLength(2);
    expect(merged).toContainEqual(streamState('users', 2, 'a'));
    expect(merged).toContainEqual(streamState('users', 1, 'b'));
  });

  it('lets a GLOBAL state replace everything', () => {
    expect(mergeState([streamState('users', 1), streamState('orders', 2)], globalState(9))).toEqual([globalState(9)]);
    expect(mergeState([globalState(1)], globalState(2))).toEqual([globalState(2)]);
  });

  it('lets a LEGACY state replace everything', () => {
    expect(mergeState([streamState('users', 1), globalState(3)], legacyState(4))).toEqual([legacyState(4)]);
  });

  it('drops a previous GLOBAL or LEGACY state when a STREAM state arrives', () => {
    expect(mergeState([globalState(1)], streamState('users', 2))).toEqual([streamState('users', 2)]);
    expect(mergeState([legacyState(1)], streamState('users', 2))).toEqual([streamState('users', 2)]);
  });

  it('strips sourceStats and destinationStats', () => {
    const checkpoint: AirbyteStateMessage = { ...streamState('users', 3), sourceStats: { recordCount: 10 }, destinationStats: { recordCount: 10 } };
    const [merged] = mergeState([], checkpoint);
    expect(merged).toEqual(streamState('users', 3));
    expect(merged).not.toHaveProperty('sourceStats');
    expect(merged).not.toHaveProperty('destinationStats');
    const [global] = mergeState([], { ...globalState(1), sourceStats: { recordCount: 1 } });
    expect(global).not.toHaveProperty('sourceStats');
  });

  it('does not modify its inputs', () => {
    const committed = [streamState('users', 1)];
    const checkpoint: AirbyteStateMessage = { ...streamState('users', 2), sourceStats: { recordCount: 1 } };
    const snapshot = structuredClone({ committed, checkpoint });
    mergeState(committed, checkpoint);
    expect({ committed, checkpoint }).toEqual(snapshot);
  });

  it('keeps one entry per stream over many checkpoints', () => {
    let committed: AirbyteStateMessage[] = [];
    for (let i = 0; i < 30; i++) committed = mergeState(committed, streamState(`s${i % 3}`, i));
    expect(committed).toHaveLength(3);
    expect(committed).toContainEqual(streamState('s0', 27));
    expect(committed).toContainEqual(streamState('s1', 28));
    expect(committed).toContainEqual(streamState('s2', 29));
  });
});
