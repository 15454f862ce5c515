// Secrets by reference (issue 11, H1): the store holds `{"secretRef": "name/key"}`, never the
// value. A real runner, broker, store and PostgreSQL, and the built CLI: destination-postgres
// gets its username, password and schema from a secrets directory only (and source-faker an env
// value); the sync works, and no key of the installation's Redis, no run record and no runner
// log line holds a value. A reference that names nothing is dead-lettered at its first attempt,
// naming the field.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS } from '../../shared/broker/envelope.js';
import { configEnv } from '../../shared/config.js';
import { CLI_PATH } from '../../shared/paths.js';
import { createRedis } from '../../shared/store/redis.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { closeRunnerHarness, deadLetterOf, header, openRunnerHarness, publishSyncOf, runUntil, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';
import { testLogger } from '../helpers/services.js';

const exec = promisify(execFile);

/** Every value under the installation's prefix, whatever the key's type, as one text. */
async function redisDump(h: RunnerHarness): Promise<string> {
  const redis = createRedis(h.config.redisUrl, testLogger());
  try {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${h.config.prefix}:*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const type = await redis.type(key);
        if (type === 'string') out.push(key, (await redis.get(key)) ?? '');
        else if (type === 'list') out.push(key, ...(await redis.lrange(key, 0, -1)));
        else if (type === 'hash') out.push(key, JSON.stringify(await redis.hgetall(key)));
        else if (type === 'set') out.push(key, ...(await redis.smembers(key)));
        else if (type === 'zset') out.push(key, ...(await redis.zrange(key, 0, -1)));
        else out.push(key, `(${type})`);
      }
    } while (cursor !== '0');
    return out.join('\n');
  } finally {
    redis.disconnect();
  }
}

describe('secretRef from a secrets directory into destination-postgres', () => {
  let h: RunnerHarness;
  let dest: TestDatabase;
  let secretsDir: string;
  // A value no log line or key could hold by chance: the schema the destination writes into.
  const schema = `zq9ref_${randomBytes(5).toString('hex')}`;

  beforeAll(async () => {
    dest = await createTestDatabase('sec_refs');
    secretsDir = await mkdtemp(join(tmpdir(), 'tp-secrets-'));
    await mkdir(join(secretsDir, 'pg-creds'), { mode: 0o700 });
    await writeFile(join(secretsDir, 'pg-creds', 'username'), dest.config.username, { mode: 0o600 });
    await writeFile(join(secretsDir, 'pg-creds', 'password'), dest.config.password, { mode: 0o600 });
    await writeFile(join(secretsDir, 'pg-creds', 'schema'), schema, { mode: 0o600 });
    h = await openRunnerHarness('sec-refs', { maxAttempts: 3, secretsDir, logLevel: 'debug' });
    const file = join(h.dir, 'connections.json');
    const destination = {
      connector: 'destination-postgres',
      config: { host: dest.config.host, port: dest.config.port, database: dest.config.database, username: { secretRef: 'pg-creds/username' }, password: { secretRef: 'pg-creds/password' }, schema: { secretRef: 'pg-creds/schema' } },
    };
    const connections = [
      // An env value by reference too: the connector gets it, nothing else holds it.
      { id: 'refs', source: { connector: 'source-faker', config: { seed: 7, count: 25 }, env: { TP_SCHEMA: { secretRef: 'pg-creds/schema' } } }, destination, streams: [{ name: 'users' }] },
      { id: 'refs-missing', source: { connector: 'source-faker', config: { count: 5 } }, destination: { ...destination, config: { ...destination.config, password: { secretRef: 'pg-creds/no-such-key' } } }, streams: [{ name: 'users' }] },
    ];
    await writeFile(file, JSON.stringify(connections));
    // Applied through the CLI: the shape is checked and the config validated against the spec with the references in place.
    const applied = await exec(process.execPath, [CLI_PATH, 'connections', 'apply', '-f', file], { env: { PATH: process.env.PATH ?? '', ...configEnv(h.config) } });
    expect(applied.stdout).toContain('connection refs created');
    spawnRunner(h, 'sec-refs-runner');
  });

  afterAll(async () => {
    await closeRunnerHarness(h);
    await dest?.drop();
    if (secretsDir) await rm(secretsDir, { recursive: true, force: true });
  });

  it('syncs with credentials from the directory only; Redis, the run record and the runner log hold the references', async () => {
    const syncId = await publishSyncOf(h, 'refs');
    const run = await runUntil(h, syncId, 'the sync to end', (r) => r.status !== 'running', 60_000);
    expect(run.error?.message).toBeUndefined();
    expect(run.status).toBe('succeeded');
    const rows = await dest.pool.query(`SELECT count(*)::int AS n FROM "${schema}"."users"`);
    expect(rows.rows[0]).toEqual({ n: 25 });

    const stored = await h.services.store.connections.get('refs');
    expect(stored?.source.env).toEqual({ TP_SCHEMA: { secretRef: 'pg-creds/schema' } });
    expect(stored?.destination.config).toMatchObject({ username: { secretRef: 'pg-creds/username' }, password: { secretRef: 'pg-creds/password' }, schema: { secretRef: 'pg-creds/schema' } });
    const dump = await redisDump(h);
    expect(dump).toContain(`${h.config.prefix}:connection:refs`);
    expect(dump).toContain('"password":{"secretRef":"pg-creds/password"}');
    expect(dump).not.toContain(schema);
    expect(dump).not.toMatch(/"password":"/);
    expect(JSON.stringify(run)).not.toContain(schema);
    const log = h.runners.map((r) => r.log.join('')).join('');
    expect(log).toContain('sync succeeded');
    expect(log).not.toContain(schema);
  });

  it('dead-letters a reference that names nothing at its first attempt, naming the field and the reference', async () => {
    const syncId = await publishSyncOf(h, 'refs-missing');
    const dead = await deadLetterOf(h, syncId);
    expect(Number(header(dead, HEADERS.attempt))).toBe(1);
    expect(header(dead, HEADERS.type)).toBe('config_error');
    expect(String(header(dead, HEADERS.reason))).toMatch(/^connection "refs-missing" destination\.config\.password: secretRef "pg-creds\/no-such-key" not found: no key "no-such-key" in secret "pg-creds" \(files under /);
    const run = await runUntil(h, syncId, 'the run to end', (r) => r.status === 'dead_lettered');
    expect(run.attempt).toBe(1);
  });
});
