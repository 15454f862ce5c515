// Attack: the host's services as any local user (or a pod on the node) reaches them. With
// RabbitMQ's guest and a Redis without a password, a store write made the runner run a program
// of the writer's choosing, and `redis-cli get` printed connections' passwords. scripts/setup
// now gives both a generated `tidepool` user: guest and the password-less default user are
// refused, and the generated URLs are readable by their owner only.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { generatedCredentialsDir, loadConfig } from '../../shared/config.js';

/** What the CLI, the demo and the tests use when nothing is configured: setup's files. */
const config = loadConfig({});

/** The same service, as another user would try it. */
function as(url: string, username: string, password: string): string {
  const u = new URL(url);
  u.username = username;
  u.password = password;
  return u.toString();
}

describe("the host's services refuse strangers", () => {
  const clients: Redis[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });

  function redis(url: string): Redis {
    const client = new Redis(url, { lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  }

  it('tidepool is configured by default with the generated credentials', () => {
    expect(new URL(config.amqpUrl).username).toBe('tidepool');
    expect(new URL(config.redisUrl).username).toBe('tidepool');
    expect(new URL(config.amqpUrl).password.length).toBeGreaterThanOrEqual(32);
    expect(new URL(config.redisUrl).password.length).toBeGreaterThanOrEqual(32);
  });

  it('RabbitMQ refuses guest/guest (ACCESS_REFUSED) and takes the generated user', async () => {
    const error = await amqp.connect(as(config.amqpUrl, 'guest', 'guest')).then(
      (c) => c.close().then(() => undefined),
      (err: unknown) => err,
    );
    expect(String(error)).toMatch(/ACCESS.REFUSED/);
    const connection = await amqp.connect(config.amqpUrl);
    await connection.close();
  });

  it('RabbitMQ refuses the tidepool user with another password', async () => {
    const error = await amqp.connect(as(config.amqpUrl, 'tidepool', 'tidepool')).catch((err: unknown) => err);
    expect(String(error)).toMatch(/ACCESS.REFUSED/);
  });

  it('Redis refuses a client without a password (NOAUTH), whatever it asks', async () => {
    const u = new URL(config.redisUrl);
    const anonymous = redis(`redis://${u.host}`);
    await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
    await expect(anonymous.keys('*:connection:*')).rejects.toThrow(/NOAUTH/);
    await expect(anonymous.call('AUTH', 'default', '')).rejects.toThrow(/WRONGPASS/);
    await expect(anonymous.call('AUTH', 'tidepool', 'tidepool')).rejects.toThrow(/WRONGPASS/);
  });

  it('Redis takes the generated user', async () => {
    const client = redis(config.redisUrl);
    expect(await client.call('ACL', 'WHOAMI')).toBe('tidepool');
  });
});

describe('the generated credentials files', () => {
  const dir = generatedCredentialsDir();
  const uid = process.getuid!();

  it('live in a 0700 directory of their owner', () => {
    const st = statSync(dir);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(uid);
  });

  it.each(['amqp-url', 'redis-url'])('%s is 0600, its owner’s', (name) => {
    const st = statSync(join(dir, name));
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(uid);
  });
});
