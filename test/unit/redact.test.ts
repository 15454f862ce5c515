import { describe, expect, it } from 'vitest';
import { embeddedSecrets, isSecretKey, maskUrlCredentials, quote, redactCut, redactObject, redactText, secretValues } from '../../shared/redact.js';

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

describe('isSecretKey', () => {
  it.each([
    'password', 'PASSWORD', 'db_password', 'PGPASSWORD', 'pwd', 'passwd', 'pass', 'db_pass', 'passphrase',
    'access_key', 'accessKey', 'ssh_key', 'SSHKey', 'api_key', 'apiKey', 'apikey', 'private_key', 'privateKey', 'api_keys', 'AWS_SECRET_ACCESS_KEY',
    'secret', 'secretKey', 'client_secret', 'clientSecret', 'secrets',
    'token', 'access_token', 'refreshToken', 'TIDEPOOL_TOKEN', 'tokens',
    'credentials', 'credential', 'service_account_credentials',
    'dsn', 'DSN', 'database_dsn', 'authorization',
  ])('%s is secret', (name) => {
    expect(isSecretKey(name)).toBe(true);
  });

  it.each(['host', 'port', 'user', 'username', 'database', 'bypass', 'key', 'primary_key', 'primaryKey', 'cursor_key', 'sort_keys', 'partition_key', 'keyspace', 'url', 'tables'])(
    '%s is not',
    (name) => {
      expect(isSecretKey(name)).toBe(false);
    },
  );
});

describe('embeddedSecrets', () => {
  it.each([
    ['postgres://u:pass@h/db', ['pass', 'u:pass']],
    ['postgres://app:p%40ss@db/app', ['p%40ss', 'p@ss', 'app:p%40ss', 'app:p@ss']],
    ['mysql://root:hunter22@db:3306/x?ssl=true&password=other1', ['hunter22', 'root:hunter22', 'other1']],
    ["host=db user=app password='s3cr et' dbname=app", ['s3cr et']],
    ['jdbc:postgresql://db/app?user=app&sslpassword=key-pass', ['key-pass']],
    ['Traceback: connect(user=admin, token=tok-123) failed', ['tok-123']],
    ['redis://127.0.0.1:6379', []],
    ['postgres://u@h/db', []],
    ['plain text with no credentials', []],
  ])('%s', (text, found) => {
    expect([...embeddedSecrets(text)].sort()).toEqual([...found].sort());
  });
});

describe('secretValues: the finding (M2)', () => {
  it('takes pwd, ssh_key, access_key, a dsn and its password, and a URL password under any name', () => {
    const secrets = secretValues({
      source: { config: { host: 'db', pwd: 'pwd-value-1', tunnel: { ssh_key: '-----BEGIN KEY-----abc' }, s3: { access_key: 'AKIA123456' }, dsn: 'postgres://u:dsnpass@h/db' } },
      destination: { config: { url: 'postgres://w:urlpass@h/db', primary_key: [['user_id']] } },
    });
    for (const s of ['pwd-value-1', '-----BEGIN KEY-----abc', 'AKIA123456', 'postgres://u:dsnpass@h/db', 'dsnpass', 'u:dsnpass', 'urlpass', 'w:urlpass']) expect(secrets).toContain(s);
    expect(secrets).not.toContain('user_id');
    expect(secrets).not.toContain('db');
  });
});

describe('redactText: every form of a secret', () => {
  const secret = 'pa"ss\\word 42/é&x';
  const secrets = new Set([secret]);
  it.each([
    ['plain', `login failed for ${secret}`],
    ['JSON-escaped (a connector echoing its config)', `config ${JSON.stringify({ password: secret })}`],
    ['JSON-escaped twice (config JSON inside a JSON string)', JSON.stringify({ log: JSON.stringify({ password: secret }) })],
    ['URL-encoded', `GET /login?password=${encodeURIComponent(secret)}`],
    ['form-encoded (spaces as +)', `body: password=${encodeURIComponent(secret).replace(/%20/g, '+')}`],
  ])('%s', (_form, text) => {
    const out = redactText(text, secrets);
    expect(out).toContain('[redacted]');
    for (const piece of ['pa"ss', 'pa\\"ss', 'pa%22ss', 'word 42', 'word%2042', 'word+42']) expect(out).not.toContain(piece);
  });

  it('never searches its own replacement again (a secret inside "[redacted]")', () => {
    expect(redactText('x act y', new Set(['act', 'redacted']))).toBe('x [redacted] y');
  });
});

describe('redacted before cut', () => {
  const secrets = new Set(['CutSecret-123456']);
  it.each([
    // [text, cut by then?, max, expected]
    ['password=CutSecret-123456 rest', false, 20, 'password=[redacted] …'],
    ['password=CutSecret-123456', false, 12, 'password=[re…'],
    ['password=CutSecret-', true, 100, 'password=…'],
    ['password=C', true, 100, 'password=…'],
    ['password=CutSecret-12\ufffd', true, 100, 'password=…'],
    ['dsn postgres://u:half-a-passw', true, 100, 'dsn postgres://u:***…'],
    ['nothing secret here', true, 100, 'nothing secret here…'],
  ])('%j (cut %s, max %i)', (text, cut, max, expected) => {
    expect(quote(text.replace('\\ufffd', '\ufffd'), secrets, max, cut)).toBe(expected);
  });

  it('drops the start of a JSON-escaped form cut at the end', () => {
    const s = new Set(['a"b\\c-secret']);
    expect(redactCut('{"password":"a\\"b\\\\c-se', s, true)).toBe('{"password":"');
  });
});
