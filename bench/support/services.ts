// Isolation for tests and benches: each gets a prefix of its own, so its queues and Redis keys
// are its own; tests run in parallel against the one local RabbitMQ and Redis without seeing
// each other's messages, and a failed one leaves its keys behind to look at until its cleanup.
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { loadConfig, type Config, type ConfigInput } from '../../shared/config.js';
import { createLogger, type Logger } from '../../shared/logger.js';
import { DEFAULT_MAX_ATTEMPTS, topologyFor } from '../../shared/broker/topology.js';
import { createRedis } from '../../shared/store/redis.js';
import { createStore, type Store } from '../../shared/store/index.js';
import { tlsFiles } from '../../shared/tls.js';
import { airbyteVenvsRoot } from './airbyte.js';

export function testPrefix(name: string): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 30);
  return `t-${slug}-${randomBytes(3).toString('hex')}`;
}

/**
 * A full Config for a test, on the local services, under its own prefix. Its runners keep root
 * (runnerUser): tests run as root in CI and give runners scripts and files in their own 0700 temp
 * dirs, which the runner user could not reach. test/security/runner-drops-root.test.ts and the
 * local-mode end-to-end test run with the default instead.
 */
export function testConfig(name: string, overrides: Partial<ConfigInput> = {}): Config {
  const prefix = overrides.prefix ?? testPrefix(name);
  return loadConfig({}, undefined, { prefix, logLevel: 'warn', allowedConnectors: testAllowedConnectors(prefix), runnerUser: 'root', ...overrides });
}

/**
 * What tests run besides the reference connectors (TIDEPOOL_ALLOWED_CONNECTORS): the scripts they
 * write under the temp dir, `sh -c` connectors, the PyPI connectors scripts/airbyte-connectors
 * installs, the reference and PyPI images by repository, and the test registry's images of this
 * prefix. Runners spawned with configEnv(config) inherit it; a test of the allow-list sets its own.
 */
export function testAllowedConnectors(prefix: string, env: NodeJS.ProcessEnv = process.env): string {
  const registry = `127.0.0.1:${env['TIDEPOOL_TEST_REGISTRY_PORT'] || '5005'}`;
  return [
    join(tmpdir(), '/'),
    '/bin/sh',
    join(airbyteVenvsRoot(env), '/'),
    'tidepool/source-faker',
    'tidepool/airbyte-source-faker',
    `${registry}/${prefix}/source-faker`,
  ].join(',');
}

export function testLogger(): Logger {
  return createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', destination: 2 });
}

export interface TestServices {
  config: Config;
  store: Store;
  logger: Logger;
  /** Deletes the prefix's queues, exchanges and keys, and closes connections. */
  cleanup(): Promise<void>;
}

export function openTestServices(config: Config): TestServices {
  const logger = testLogger();
  const redis = createRedis(config.redisUrl, logger, { tls: tlsFiles(config, 'redis') });
  const store = createStore(redis, config);
  return {
    config,
    store,
    logger,
    cleanup: async () => {
      await deletePrefix(config);
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/**
 * Retry levels deleted whatever the config says: a test with maxAttempts 1 may still declare the
 * default topology somewhere (a publisher's topologyFor(prefix)), and its delay queues must not
 * outlive it. Leaked quorum queues are not harmless: each reserves 3 of RabbitMQ's file handles,
 * and ~300 of them under the default 1024-file limit left no handle for a new connection
 * (every client hung in the AMQP handshake).
 */
const RETRY_LEVELS_DELETED = Math.max(DEFAULT_MAX_ATTEMPTS, 10) - 1;

/** Deletes the prefix's queues, exchanges and Redis keys; returns how many keys there were. */
export async function deletePrefix(config: Config): Promise<number> {
  const t = topologyFor(config.prefix, { ...config, maxAttempts: Math.max(config.maxAttempts, RETRY_LEVELS_DELETED + 1) });
  const connection = await amqp.connect(config.amqpUrl, tlsFiles(config, 'amqp'));
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    // Deleting a queue that does not exist is not an error in RabbitMQ.
    for (const q of [t.syncsQueue, t.deadQueue, t.legacyDeadQueue, ...t.retryQueues]) await channel.deleteQueue(q).catch(() => undefined);
    for (const x of [t.exchange, t.deadExchange]) await channel.deleteExchange(x).catch(() => undefined);
    await channel.close().catch(() => undefined);
  } finally {
    await connection.close().catch(() => undefined);
  }
  const redis = createRedis(config.redisUrl, testLogger(), { tls: tlsFiles(config, 'redis') });
  try {
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}
