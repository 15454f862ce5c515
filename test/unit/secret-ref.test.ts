// The shape of a secretRef, checked where connections are read (`connections apply`, the store).
import { describe, expect, it } from 'vitest';
import { ConnectionFileError, parseConnectionFile } from '../../shared/connections.js';
import { findSecretRefs, parseSecretRef, replaceSecretRefs } from '../../shared/secret-ref.js';

function problems(config: Record<string, unknown>): string[] {
  try {
    parseConnectionFile({ id: 'pg-1', source: { connector: 'source-faker' }, destination: { connector: 'destination-postgres', config } });
    return [];
  } catch (err) {
    return (err as ConnectionFileError).issues;
  }
}

describe('secretRef shape', () => {
  it('takes a Secret name and a key', () => {
    expect(parseSecretRef('db-creds/password')).toEqual({ name: 'db-creds', key: 'password' });
    expect(parseSecretRef('a.b/x_Y-1.pem')).toEqual({ name: 'a.b', key: 'x_Y-1.pem' });
  });

  it.each(['nokey', '/key', 'name/', 'Upper/key', 'a/b/c', '../etc/passwd', 'db/..', 'db/.', 'db/..data', 'a..b/key', 'db/key with space', 'db/ke$y'])('refuses %j', (text) => {
    expect(typeof parseSecretRef(text)).toBe('string');
  });

  it('is checked at apply, naming the connection and the field path', () => {
    expect(problems({ password: { secretRef: 'db/pw' }, hosts: [{ token: { secretRef: 'ok/k' } }] })).toEqual([]);
    expect(problems({ password: { secretRef: 'Bad/x' } })).toEqual([
      expect.stringMatching(/^destination\.config\.password\.secretRef: secretRef "Bad\/x" is not written "name\/key".*\(connection "pg-1"\)$/),
    ]);
    expect(problems({ nested: [{ password: { secretRef: 'db/pw', default: 'x' } }] })).toEqual([
      expect.stringMatching(/^destination\.config\.nested\.0\.password: a secretRef stands alone: remove default \(connection "pg-1"\)$/),
    ]);
    expect(problems({ password: { secretRef: 42 } })[0]).toMatch(/password\.secretRef: secretRef must be a string/);
  });

  it('takes a reference as a connector env value, of the same shape', () => {
    const parse = (env: unknown) => parseConnectionFile({ id: 'e', source: { connector: 'source-faker', env }, destination: { connector: 'destination-jsonl' } });
    expect(parse({ API_KEY: { secretRef: 'api/key' }, MODE: 'fast' })[0]!.source.env).toEqual({ API_KEY: { secretRef: 'api/key' }, MODE: 'fast' });
    expect(() => parse({ API_KEY: { secretRef: '../x' } })).toThrow(/source\.env\.API_KEY\.secretRef: secretRef "\.\.\/x" is not/);
    expect(() => parse({ API_KEY: 42 })).toThrow(/source\.env\.API_KEY: expected a string or \{secretRef: name\/key\}/);
  });

  it('finds and replaces references at any depth', () => {
    const config = { host: 'db', password: { secretRef: 'db/pw' }, tunnel: { keys: [{ secretRef: 'ssh/id' }] } };
    expect(findSecretRefs(config).refs).toEqual([
      { path: ['password'], ref: { name: 'db', key: 'pw' } },
      { path: ['tunnel', 'keys', '0'], ref: { name: 'ssh', key: 'id' } },
    ]);
    expect(replaceSecretRefs(config, (f) => `<${f.ref.name}:${f.path.join('.')}>`)).toEqual({ host: 'db', password: '<db:password>', tunnel: { keys: ['<ssh:tunnel.keys.0>'] } });
    expect(config.password).toEqual({ secretRef: 'db/pw' });
  });
});
