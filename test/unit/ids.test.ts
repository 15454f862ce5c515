import { describe, expect, it } from 'vitest';
import { ConnectionFileError, parseConnectionFile } from '../../shared/connections.js';
import { idProblem, isValidId, quoteValue } from '../../shared/ids.js';
import { idsFromBody, newSyncRequest, parseSyncRequest } from '../../shared/messages.js';

const request = (over: Record<string, unknown>) => Buffer.from(JSON.stringify({ syncId: 's-1', connectionId: 'c-1', requestedAt: '2025-01-01T00:00:00.000Z', ...over }));

describe('the id rule', () => {
  it('takes letters, digits, ".", "_" and "-", starting with a letter or digit, up to 128', () => {
    for (const ok of ['a', 'Z9', 'pg-1', 'orders.v2_eu', '0', 'a'.repeat(128), newSyncRequest('x').syncId]) expect(isValidId(ok), ok).toBe(true);
    for (const bad of ['', '.hidden', '-flag', '_x', 'has space', 'x/../../tmp', '..', 'a\nb', 'a\r', '\u001b[31mred', 'é', 'ü-unicode', 'a'.repeat(129), 'a\u0000', 42, null, undefined]) {
      expect(isValidId(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  it('names the field and the value, escaped and bounded', () => {
    expect(idProblem('syncId', 'ok-1')).toBeUndefined();
    const problem = idProblem('syncId', 'x/../\u001b[2J\r\nforged')!;
    expect(problem).toMatch(/^syncId "x\/\.\.\/\\u001b\[2J\\r\\nforged" is not a valid id/);
    expect(problem).not.toMatch(/[\u0000-\u001f]/);
    expect(quoteValue('y'.repeat(10_000)).length).toBeLessThan(100);
    expect(idProblem('connectionId', 7)).toMatch(/^connectionId must be a string id/);
  });
});

describe('ids where they enter', () => {
  it('a sync request with a bad syncId or connectionId is malformed, and the reason names the field and the value', () => {
    expect(() => parseSyncRequest(request({ syncId: 'x/../../tmp/trav' }))).toThrow(/syncId "x\/\.\.\/\.\.\/tmp\/trav" is not a valid id/);
    expect(() => parseSyncRequest(request({ connectionId: 'has space' }))).toThrow(/connectionId "has space" is not a valid id/);
    expect(() => parseSyncRequest(request({ syncId: 'a\nb' }))).toThrow(/syncId "a\\nb"/);
    expect(parseSyncRequest(request({})).syncId).toBe('s-1');
  });

  it('ids from a body that is no valid request are kept only when they are valid ids', () => {
    expect(idsFromBody(request({ syncId: 'x/../y', connectionId: 'c-1' }))).toEqual({ connectionId: 'c-1' });
    expect(idsFromBody(request({ syncId: 's\u001b', connectionId: 'no space' }))).toEqual({});
  });

  it('a connection file with a bad id names the id, escaped', () => {
    const doc = { id: 'pg/../1\n', source: { connector: 'source-faker' }, destination: { connector: 'destination-jsonl' } };
    let error: unknown;
    try {
      parseConnectionFile(doc);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConnectionFileError);
    expect((error as ConnectionFileError).issues).toEqual([expect.stringMatching(/^id: id "pg\/\.\.\/1\\n" is not a valid id .*\(connection "pg\/\.\.\/1\\n"\)$/)]);
  });
});
