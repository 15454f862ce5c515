import { describe, expect, it } from 'vitest';
import { ConnectionFileError, parseConnectionFile } from '../../shared/connections.js';

const connection = (extra: Record<string, unknown>) => ({ id: 'c1', source: { connector: 'source-faker' }, destination: { connector: 'destination-jsonl' }, ...extra });

describe("a connection's syncTimeout", () => {
  it('is a duration or milliseconds, optional', () => {
    expect(parseConnectionFile(connection({ syncTimeout: '2h' }))[0]!.syncTimeout).toBe(7_200_000);
    expect(parseConnectionFile(connection({ syncTimeout: 1500 }))[0]!.syncTimeout).toBe(1500);
    expect(parseConnectionFile(connection({}))[0]!.syncTimeout).toBeUndefined();
  });

  it('refuses what is no positive duration, saying so', () => {
    for (const bad of ['soon', 0, -5, '0s']) {
      expect(() => parseConnectionFile(connection({ syncTimeout: bad }))).toThrow(ConnectionFileError);
    }
    expect(() => parseConnectionFile(connection({ syncTimeout: 'soon' }))).toThrow(/syncTimeout/);
  });
});
