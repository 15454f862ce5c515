// The containers the outage tests use: a broker and a store of their own that keep their data
// and their address across a restart.
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { startRabbitMq, startRedis, type ServiceContainer } from '../helpers/containers.js';
import { dockerAvailable } from '../../runner/launch/docker.js';

describe.runIf(await dockerAvailable())('test containers (testcontainers, images from scripts/images)', () => {
  const started: ServiceContainer[] = [];
  afterAll(async () => {
    for (const c of started) await c.stop();
  });

  it('a RabbitMQ that keeps a durable quorum queue and its messages across a restart', async () => {
    const rabbit = await startRabbitMq();
    started.push(rabbit);
    const c1 = await amqp.connect(rabbit.url);
    const ch = await c1.createConfirmChannel();
    await ch.assertQueue('q', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    ch.sendToQueue('q', Buffer.from('kept'), { persistent: true });
    await ch.waitForConfirms();
    const closed = new Promise((resolve) => c1.once('close', resolve));
    c1.on('error', () => undefined);
    await rabbit.restart();
    await closed;
    const c2 = await amqp.connect(rabbit.url);
    const m = await (await c2.createChannel()).get('q', { noAck: true });
    expect(m && m.content.toString()).toBe('kept');
    await c2.close();
  }, 240_000);

  it('a Redis that keeps acknowledged writes across a restart', async () => {
    const redis = await startRedis();
    started.push(redis);
    const r1 = new Redis(redis.url, { lazyConnect: true });
    await r1.connect();
    await r1.set('k', 'v');
    r1.disconnect();
    await redis.restart();
    const r2 = new Redis(redis.url, { lazyConnect: true });
    await r2.connect();
    expect(await r2.get('k')).toBe('v');
    r2.disconnect();
  }, 120_000);
});
