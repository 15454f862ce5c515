// A broker or store of a test's or a bench's own, in a container (testcontainers), for those
// that stop and restart it. Images are built locally from Debian's packages by scripts/images
// (no registry here); TIDEPOOL_TEST_RABBITMQ_IMAGE / TIDEPOOL_TEST_REDIS_IMAGE name public ones
// instead (rabbitmq:3.13, redis:7) where a registry is reachable.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort } from './ports.js';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import type { TestCertificates } from './tls-certs.js';
import { waitFor } from './wait.js';

// Ryuk (testcontainers' reaper) is an image from Docker Hub, which cannot be pulled here;
// containers are removed by stop() instead. Published ports are on loopback (dockerd --ip).
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';

export const RABBITMQ_IMAGE = process.env.TIDEPOOL_TEST_RABBITMQ_IMAGE ?? 'tidepool/test-rabbitmq:bookworm';
export const REDIS_IMAGE = process.env.TIDEPOOL_TEST_REDIS_IMAGE ?? 'tidepool/test-redis:bookworm';

const docker = promisify(execFile);

export interface ServiceContainer {
  url: string;
  /** Stops the service (its clients see it go), waits `downMs`, starts it on the same port, resolves once it answers. */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Resolves once `probe` succeeds: a container's port is open well before its service answers. */
function untilAnswers(what: string, probe: () => Promise<void>): Promise<true> {
  return waitFor(`${what} to answer`, async () => {
    await probe();
    return true as const;
  }, 120_000, 250);
}

/** A file put in the container before it starts (its configuration, certificates). */
interface ContainerFile {
  target: string;
  content: string | Buffer;
}

async function start(image: string, containerPort: number, url: (port: number) => string, probe: (url: string) => Promise<void>, files: ContainerFile[] = []): Promise<ServiceContainer> {
  const { GenericContainer } = await import('testcontainers');
  const port = await freePort();
  // Readable by the service's own user; these are a throw-away test's files.
  const copied = files.map((f) => ({ ...f, mode: 0o644 }));
  const container = await new GenericContainer(image).withExposedPorts({ container: containerPort, host: port }).withCopyContentToContainer(copied).start();
  const address = url(port);
  await untilAnswers(image, () => probe(address));
  return {
    url: address,
    async restart(downMs = 0) {
      // docker stop/start, not testcontainers' stop (which removes the container and its data).
      await docker('docker', ['stop', '-t', '10', container.getId()]);
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await docker('docker', ['start', container.getId()]);
      await untilAnswers(image, () => probe(address));
    },
    async stop() {
      await container.stop({ timeout: 5 });
    },
  };
}

export function startRabbitMq(): Promise<ServiceContainer> {
  return start(RABBITMQ_IMAGE, 5672, (port) => `amqp://guest:guest@127.0.0.1:${port}`, async (url) => {
    const connection = await amqp.connect(url);
    await connection.close();
  });
}

export function startRedis(): Promise<ServiceContainer> {
  return start(REDIS_IMAGE, 6379, (port) => `redis://127.0.0.1:${port}`, async (url) => {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => undefined); // a refused probe is an answer ("not yet"), not a crash
    try {
      await redis.connect();
      await redis.ping();
    } finally {
      redis.disconnect();
    }
  });
}

/**
 * A RabbitMQ that speaks AMQP over TLS only (port 5671, no plain listener), with a server
 * certificate signed by `certs.ca`, and that refuses a client without a certificate signed by it.
 */
export function startTlsRabbitMq(certs: TestCertificates): Promise<ServiceContainer> {
  const conf = [
    'loopback_users = none',
    'listeners.tcp = none',
    'listeners.ssl.default = 5671',
    'ssl_options.cacertfile = /etc/rabbitmq/tls/ca.crt',
    'ssl_options.certfile = /etc/rabbitmq/tls/server.crt',
    'ssl_options.keyfile = /etc/rabbitmq/tls/server.key',
    'ssl_options.verify = verify_peer',
    'ssl_options.fail_if_no_peer_cert = true',
    'log.console = true',
    'log.console.level = info',
    'log.file = false',
  ].join('\n');
  const files = [
    { target: '/etc/rabbitmq/rabbitmq.conf', content: `${conf}\n` },
    { target: '/etc/rabbitmq/tls/ca.crt', content: readFileSync(certs.ca) },
    { target: '/etc/rabbitmq/tls/server.crt', content: readFileSync(certs.serverCert) },
    { target: '/etc/rabbitmq/tls/server.key', content: readFileSync(certs.serverKey) },
  ];
  const client = { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) };
  return start(RABBITMQ_IMAGE, 5671, (port) => `amqps://guest:guest@127.0.0.1:${port}`, async (url) => {
    const connection = await amqp.connect(url, client);
    await connection.close();
  }, files);
}
