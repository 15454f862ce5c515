import { describe, expect, it } from 'vitest';
import { ConnectionFileError, connectionSchema, parseConnectionFile } from '../../shared/connections.js';
import { InvalidMessageError } from '../../shared/errors.js';
import { newSyncRequest, parseSyncRequest } from '../../shared/messages.js';

const valid = {
  syncId: 'sync-1',
  connectionId: 'pg-to-jsonl',
  fullRefresh: true,
  requestedAt: '2025-01-02T03:04:05.000Z',
  requestedBy: 'cli',
};

function invalid(body: string): InvalidMessageError {
  try {
    parseSyncRequest(Buffer.from(body));
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidMessageError);
    return err as InvalidMessageError;
  }
  throw new Error(`accepted ${body}`);
}

describe('parseSyncRequest', () => {
  it('parses a valid request', () => {
    expect(parseSyncRequest(Buffer.from(JSON.stringify(valid)))).toEqual(valid);
  });

  it('defaults fullRefresh to false', () => {
    const { fullRefresh: _, ...rest } = valid;
    expect(parseSyncRequest(Buffer.from(JSON.stringify(rest))).fullRefresh).toBe(false);
  });

  it('round-trips newSyncRequest', () => {
    const req = newSyncRequest('conn', { fullRefresh: true, requestedBy: 'me' });
    expect(parseSyncRequest(Buffer.from(JSON.stringify(req)))).toEqual(req);
  });

  it('rejects a body that is not JSON, never to be retried', () => {
    const err = invalid('{"syncId":');
    expect(err.message).toMatch(/not JSON/);
    expect(err.retryable).toBe(false);
  });

  it('rejects a request without connectionId, naming the field', () => {
    const { connectionId: _, ...rest } = valid;
    expect(invalid(JSON.stringify(rest)).message).toContain('connectionId');
  });

  it('rejects an unknown field (strict)', () => {
    expect(invalid(JSON.stringify({ ...valid, priority: 5 })).message).toContain('priority');
  });

  it.each([
    ['empty connectionId', { ...valid, connectionId: '' }],
    ['bad date', { ...valid, requestedAt: 'yesterday' }],
    ['fullRefresh as a string', { ...valid, fullRefresh: 'yes' }],
    ['an array', [valid]],
    ['null', null],
  ])('rejects %s', (_name, body) => {
    expect(invalid(JSON.stringify(body)).message).toMatch(/not a sync request/);
  });
});

describe('connectionSchema', () => {
  const base = {
    id: 'c1',
    source: { connector: 'source-faker', config: { count: 10 } },
    destination: { command: ['node', 'dest.js'] },
  };

  it('accepts a connection with a builtin connector and a command', () => {
    const c = connectionSchema.parse(base);
    expect(c.source.connector).toBe('source-faker');
    expect(c.destination.config).toEqual({});
  });

  it('accepts an image', () => {
    expect(connectionSchema.safeParse({ ...base, destination: { image: 'airbyte/destination-csv:1.0' } }).success).toBe(true);
  });

  it.each([
    ['none', {}],
    ['connector and command', { connector: 'source-faker', command: ['x'] }],
    ['command and image', { command: ['x'], image: 'y' }],
    ['all three', { connector: 'source-faker', command: ['x'], image: 'y' }],
  ])('rejects a connector with %s of connector/command/image', (_name, source) => {
    const r = connectionSchema.safeParse({ ...base, source });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/exactly one of connector, command or image/);
  });

  it('rejects an unknown builtin connector name', () => {
    const r = connectionSchema.safeParse({ ...base, source: { connector: 'source-mysql' } });
    expect(r.success).toBe(false);
    expect(r.error?.issues.some((i) => i.path.join('.') === 'source.connector')).toBe(true);
  });

  it('rejects unknown fields and bad ids', () => {
    expect(connectionSchema.safeParse({ ...base, schedule: '@daily' }).success).toBe(false);
    expect(connectionSchema.safeParse({ ...base, source: { ...base.source, secret: 1 } }).success).toBe(false);
    expect(connectionSchema.safeParse({ ...base, id: 'has space' }).success).toBe(false);
    expect(connectionSchema.safeParse({ ...base, streams: [] }).success).toBe(false);
  });

  it('accepts one connection, a list, or { connections }', () => {
    expect(parseConnectionFile(base)).toHaveLength(1);
    expect(parseConnectionFile([base, { ...base, id: 'c2' }])).toHaveLength(2);
    expect(parseConnectionFile({ connections: [base] })).toHaveLength(1);
  });

  const fileIssues = (doc: unknown): string[] => {
    try {
      parseConnectionFile(doc);
    } catch (err) {
      expect(err).toBeInstanceOf(ConnectionFileError);
      return (err as ConnectionFileError).issues;
    }
    throw new Error('the file was accepted');
  };

  it('names the place in the file and the connection id of every problem', () => {
    const bad = { ...base, id: 'pg-1', destination: { command: 'node dest.js' } };
    expect(fileIssues({ connections: [base, { ...base, id: 'c2' }, bad] })).toEqual([
      'connections[2].destination.command: expected an array of strings, e.g. [/opt/venvs/source-faker/bin/source-faker] (connection "pg-1")',
    ]);
    expect(fileIssues([{ ...base, source: { connector: 'source-fakr' } }])).toEqual([
      '[0].source.connector: connector must be one of source-faker, source-postgres, source-e2e-test, destination-jsonl, destination-postgres, destination-e2e-test (or use command/image) (connection "c1")',
    ]);
    expect(fileIssues({ ...base, streams: [{ name: 'users', syncMode: 'sometimes' }] })[0]).toMatch(/^streams\[0\]\.syncMode: .*"full_refresh".*\(connection "c1"\)$/);
    expect(fileIssues([base, base])).toEqual(['connection "c1" is defined twice']);
    expect(fileIssues('just text')).toEqual(['expected a connection, a list of connections, or {connections: [...]}']);
  });
});
