// Resolving secretRefs: from a directory laid out like mounted Secrets (traversal and symlinks
// out of it refused), into the connectors' configs only, with every value redacted; and
// validation of a config that holds references against its connector's spec.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { plainEnv, type Connection } from '../../shared/connections.js';
import { validateConnectorConfig } from '../../shared/connector-spec.js';
import { TidepoolError } from '../../shared/errors.js';
import type { ConnectorLauncher, ConnectorRun } from '../../shared/ports/connector-launcher.js';
import { redactObject, redactText, secretValues } from '../../shared/redact.js';
import { FileSecretSource } from '../../runner/secrets/files.js';
import { resolveSecretRefs, SecretRefError, withResolvedConfigs } from '../../runner/secrets/resolve.js';

function secretsDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tp-secrets-'));
  mkdirSync(join(dir, 'db'));
  writeFileSync(join(dir, 'db', 'password'), 'Hunter2-from-file');
  writeFileSync(join(dir, 'db', 'user'), 'app');
  // A mounted Secret: key → ..data/key → ..<timestamp>/key, all inside the directory.
  mkdirSync(join(dir, 'mounted', '..2026_01_01'), { recursive: true });
  writeFileSync(join(dir, 'mounted', '..2026_01_01', 'token'), 'tok-mounted-123');
  symlinkSync('..2026_01_01', join(dir, 'mounted', '..data'));
  symlinkSync('..data/token', join(dir, 'mounted', 'token'));
  // Links out of the directory.
  const outside = mkdtempSync(join(tmpdir(), 'tp-outside-'));
  writeFileSync(join(outside, 'shadow'), 'not-yours');
  mkdirSync(join(dir, 'evil'));
  symlinkSync(join(outside, 'shadow'), join(dir, 'evil', 'key'));
  symlinkSync(outside, join(dir, 'evildir'));
  return dir;
}

function connection(config: Record<string, unknown>): Connection {
  return { id: 'pg-1', source: { connector: 'source-faker', config: { count: 5 } }, destination: { connector: 'destination-postgres', config } };
}

describe('FileSecretSource', () => {
  const source = new FileSecretSource(secretsDir());

  it('reads <dir>/<name>/<key>, through a mounted Secret’s links', async () => {
    expect(await source.read({ name: 'db', key: 'password' })).toBe('Hunter2-from-file');
    expect(await source.read({ name: 'mounted', key: 'token' })).toBe('tok-mounted-123');
    expect(await source.read({ name: 'db', key: 'nope' })).toBeUndefined();
    expect(await source.read({ name: 'nope', key: 'password' })).toBeUndefined();
  });

  it('refuses names and keys that escape the directory, and links out of it', async () => {
    for (const ref of [{ name: '..', key: 'etc' }, { name: 'db', key: '../db/password' }, { name: '/etc', key: 'passwd' }, { name: 'db', key: '..' }]) {
      await expect(source.read(ref)).rejects.toMatchObject({ type: 'config_error', retryable: false });
    }
    await expect(source.read({ name: 'evil', key: 'key' })).rejects.toThrow(/leads out of .* \(a symbolic link\): refused/);
    await expect(source.read({ name: 'evildir', key: 'shadow' })).rejects.toThrow(/leads out of/);
  });
});

describe('resolveSecretRefs', () => {
  const source = new FileSecretSource(secretsDir());

  it('replaces references by values, keeps the stored connection as it was, and redacts every value', async () => {
    const stored = connection({ host: 'db', username: { secretRef: 'db/user' }, options: { pw: { secretRef: 'db/password' } } });
    const secrets = secretValues(stored);
    const resolved = await resolveSecretRefs(stored, source, secrets);
    expect(resolved.destination.config).toEqual({ host: 'db', username: 'app', options: { pw: 'Hunter2-from-file' } });
    expect(stored.destination.config.options).toEqual({ pw: { secretRef: 'db/password' } });
    expect(resolved.source).toBe(stored.source);
    // Whatever the field's name: "options.pw" is no secret-looking name.
    expect(secrets.has('Hunter2-from-file')).toBe(true);
    expect(redactText('connect failed: password "Hunter2-from-file" refused', secrets)).toBe('connect failed: password "[redacted]" refused');
    // The references themselves are no secret: shown, and never redacted out of messages.
    expect(secrets.has('db/password')).toBe(false);
    expect(redactObject(stored).destination.config.options).toEqual({ pw: { secretRef: 'db/password' } });
  });

  it('resolves connector env values too, and a launcher gets them as text', async () => {
    const stored: Connection = { ...connection({}), source: { connector: 'source-faker', config: {}, env: { MODE: 'x', DB_PASS: { secretRef: 'db/password' } } } };
    const secrets = new Set<string>();
    const resolved = await resolveSecretRefs(stored, source, secrets);
    expect(resolved.source.env).toEqual({ MODE: 'x', DB_PASS: 'Hunter2-from-file' });
    expect(secrets.has('Hunter2-from-file')).toBe(true);
    await expect(resolveSecretRefs({ ...stored, source: { ...stored.source, env: { K: { secretRef: 'db/none' } } } }, source, new Set())).rejects.toThrow(/^connection "pg-1" source\.env\.K: secretRef "db\/none" not found/);
    // Unresolved (the CLI asking for a spec), a reference is left out of the environment.
    expect(plainEnv(stored.source)).toEqual({ MODE: 'x' });
  });

  it('gives back the same connection when it has no reference', async () => {
    const stored = connection({ password: 'plain' });
    expect(await resolveSecretRefs(stored, undefined, new Set())).toBe(stored);
  });

  it('fails a missing reference as a permanent config_error naming the connection, field and reference', async () => {
    const err = await resolveSecretRefs(connection({ tunnel: { key: { secretRef: 'db/ssh-key' } } }), source, new Set()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretRefError);
    expect((err as TidepoolError).toFailure()).toMatchObject({ retryable: false, type: 'config_error', origin: 'runner' });
    expect((err as Error).message).toMatch(/^connection "pg-1" destination\.config\.tunnel\.key: secretRef "db\/ssh-key" not found: no key "ssh-key" in secret "db" \(files under /);
    await expect(resolveSecretRefs(connection({ pw: { secretRef: 'db/password' } }), undefined, new Set())).rejects.toThrow(/destination\.config\.pw: secretRef "db\/password" cannot be resolved: no secret source is configured/);
  });

  it('hands the resolved definition to the launcher only for the sync’s own definitions', async () => {
    const stored = connection({ password: { secretRef: 'db/password' } });
    const resolved = await resolveSecretRefs(stored, source, new Set());
    const seen: ConnectorRun[] = [];
    const inner: ConnectorLauncher = { kind: 'test', start: (run) => (seen.push(run), Promise.reject(new Error('not here'))) };
    const launcher = withResolvedConfigs(inner, stored, resolved);
    await launcher.start({ runId: 'r', role: 'destination', connector: stored.destination, command: 'check', files: { config: stored.destination.config } }).catch(() => undefined);
    await launcher.start({ runId: 'r', role: 'destination', connector: stored.destination, command: 'spec', files: {} }).catch(() => undefined);
    expect(seen[0]!.files.config).toEqual({ password: 'Hunter2-from-file' });
    expect(seen[0]!.connector).toBe(resolved.destination);
    expect(seen[1]!.files).toEqual({});
  });
});

describe('validating a config that holds references', () => {
  const spec = {
    connectionSpecification: {
      type: 'object',
      required: ['host', 'password', 'port'],
      additionalProperties: false,
      properties: {
        host: { type: 'string' },
        port: { type: 'integer', minimum: 1 },
        password: { type: 'string', minLength: 12, airbyte_secret: true },
        tunnel: { oneOf: [{ type: 'object', properties: { ssh_key: { type: 'string', pattern: '^-----BEGIN' } } }] },
      },
    },
  };

  it('takes a reference in place of a value of any type, and still judges the rest', () => {
    expect(validateConnectorConfig(spec, { host: 'db', port: { secretRef: 'db/port' }, password: { secretRef: 'db/password' }, tunnel: { ssh_key: { secretRef: 'ssh/key' } } })).toEqual([]);
    expect(validateConnectorConfig(spec, { host: 5, port: 1, password: { secretRef: 'db/password' } })).toEqual([{ path: 'host', message: 'must be string', severity: 'error' }]);
  });
});
