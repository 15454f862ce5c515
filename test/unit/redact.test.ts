import { describe, expect, it } from 'vitest';
import { maskUrlCredentials, redactObject, redactText, secretValues } from '../../shared/redact.js';

describe('maskUrlCredentials', () => {
  it.each([
    ['amqp://guest:guest@127.0.0.1:5672', 'amqp://guest:***@127.0.0.1:5672'],
    ['connecting to redis://:s3cret@redis:6379/0 failed', 'connecting to redis://:***@redis:6379/0 failed'],
    ['postgres://app:p%40ss/w0rd@db/app and amqps://u:x@mq', 'postgres://app:***@db/app and amqps://u:***@mq'],
  ])('%s', (text, masked) => {
    expect(maskUrlCredentials(text)).toBe(masked);
  });

  it('leaves URLs without a password alone', () => {
    for (const text of ['redis://127.0.0.1:6379', 'amqp://user@host', 'https://example.com/a?b=c']) {
      expect(maskUrlCredentials(text)).toBe(text);
    }
  });
});

describe('secretValues', () => {
  it('finds values under secret-looking keys at any depth', () => {
    const secrets = secretValues({
      host: 'db',
      password: 'hunter22',
      tunnel: { ssh: { private_key: '-----BEGIN KEY-----', user: 'bob' } },
      credentials: { apiKey: 'ak-123456' },
      list: [{ client_secret: 'cs-abc' }, { token: 987654 }],
      clientSecret: 'xy', // too short to be worth hiding
    });
    expect([...secrets].sort()).toEqual(['-----BEGIN KEY-----', '987654', 'ak-123456', 'cs-abc', 'hunter22'].sort());
  });

  it('finds nothing in a config without secrets', () => {
    expect(secretValues({ host: 'db', port: 5432, tables: ['a', 'b'] }).size).toBe(0);
    expect(secretValues(null).size).toBe(0);
    expect(secretValues('password').size).toBe(0);
  });

  it('finds every string in a list under a secret-looking key', () => {
    const secrets = secretValues({ api_keys: ['key-one-111', 'key-two-222'] });
    expect(secrets.has('key-one-111')).toBe(true);
    expect(secrets.has('key-two-222')).toBe(true);
  });
});

describe('redactObject', () => {
  it('replaces secret values and keeps everything else', () => {
    const config = { host: 'db', port: 5432, password: 'hunter22', nested: { api_key: 'k', list: [{ token: 42 }] }, ssl: true };
    expect(redactObject(config)).toEqual({
      host: 'db',
      port: 5432,
      password: '[redacted]',
      nested: { api_key: '[redacted]', list: [{ token: '[redacted]' }] },
      ssl: true,
    });
  });

  it('does not modify its input', () => {
    const config = { password: 'hunter22' };
    redactObject(config);
    expect(config.password).toBe('hunter22');
  });

  it('redacts strings in a list under a secret-looking key', () => {
    const out = redactObject({ api_keys: ['key-one-111'] });
    expect(JSON.stringify(out)).not.toContain('key-one-111');
  });
});

describe('redactText', () => {
  it('replaces every occurrence of every secret and masks URL passwords', () => {
    const secrets = secretValues({ password: 'hunter22', token: 'tok-999' });
    expect(redactText('auth hunter22 failed (hunter22), token tok-999, url amqp://u:pw@h', secrets)).toBe(
      'auth [redacted] failed ([redacted]), token [redacted], url amqp://u:***@h',
    );
  });

  it('leaves text without secrets unchanged', () => {
    expect(redactText('all good', new Set(['hunter22']))).toBe('all good');
  });

  it('leaves no part of a secret that contains another secret', () => {
    const secrets = secretValues({ password: 'abc123', api_token: 'abc123-extra-456' });
    const out = redactText('token is abc123-extra-456', secrets);
    expect(out).not.toContain('extra-456');
  });
});
