// TLS against the services' own TLS listeners, with a CA made by openssl: a RabbitMQ of the
// test's own that listens on amqps only and requires a client certificate (a container), and a
// private Redis on a TLS port with tls-auth-clients. A runner given the CA and its client
// certificate runs a sync end to end; one without the CA, trusting another CA, or without a
// client certificate stops at start within seconds, saying what to check, instead of retrying
// for minutes (finding M5: certificate errors were retried as transient). So does the scaler.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates, type TestCertificates } from '../../bench/support/tls-certs.js';
import { connectBroker } from '../../shared/broker/connection.js';
import { configEnv, type Config } from '../../shared/config.js';
import { createRedis, firstConnection } from '../../shared/store/redis.js';
import { CLI_PATH } from '../../shared/paths.js';
import { dockerAvailable } from '../../runner/launch/docker.js';
import { startTlsRabbitMq, type ServiceContainer } from '../helpers/containers.js';
import { freePort } from '../helpers/ports.js';
import { closeRunnerHarness, openRunnerHarness, publishSyncOf, runUntil, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';
import { testLogger, waitFor } from '../helpers/services.js';

/** A Redis of the test's own that speaks TLS only, and only to clients with a certificate of the CA. */
async function startTlsRedis(certs: TestCertificates): Promise<{ url: string; process: ChildProcess }> {
  const port = await freePort();
  const child = spawn('redis-server', [
    '--port', '0', '--bind', '127.0.0.1', '--tls-port', String(port),
    '--tls-cert-file', certs.serverCert, '--tls-key-file', certs.serverKey, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'yes',
    '--save', '', '--appendonly', 'no', '--dir', certs.dir,
  ], { stdio: 'ignore' });
  const url = `rediss://127.0.0.1:${port}`;
  const tls = { ca: await readFile(certs.ca), cert: await readFile(certs.clientCert), key: await readFile(certs.clientKey) };
  await waitFor('the TLS Redis to answer', async () => {
    const probe = new Redis(url, { tls, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } finally {
      probe.disconnect();
    }
  }, 20_000, 100);
  return { url, process: child };
}

/**
 * A proxy to `port` that, for its first `lose` connections, holds back what the server sends
 * for a moment and, when the server closes, resets the client instead of passing the held
 * bytes on: a TLS alert sent just before a close is lost, as when a reset overtakes it.
 */
async function startAlertLosingProxy(port: number, lose: number): Promise<{ port: number; connections(): number; close(): Promise<void> }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const losing = count++ < lose;
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream);
    client.on('close', () => upstream.destroy());
    if (!losing) {
      upstream.pipe(client);
      upstream.on('close', () => client.destroy());
      return;
    }
    const held = new Set<NodeJS.Timeout>();
    upstream.on('data', (chunk: Buffer) => {
      const timer = setTimeout(() => (held.delete(timer), client.write(chunk)), 30);
      held.add(timer);
    });
    upstream.on('close', () => {
      for (const timer of held) clearTimeout(timer);
      client.resetAndDestroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => count,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Outcome {
  code: number | null;
  ms: number;
  output: string;
}

/** Runs `tidepool <command>` with the test's settings plus `env` until it exits (at most `timeoutMs`). */
async function runTidepool(config: Config, command: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<Outcome> {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI_PATH, ...command], { env: { PATH: process.env.PATH ?? '', ...configEnv(config), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, ms: Date.now() - started, output };
}

describe.runIf(await dockerAvailable())('TLS to RabbitMQ and Redis with a CA of our own', () => {
  let dir: string;
  let certs: TestCertificates;
  let rabbit: ServiceContainer | undefined;
  let redis: { url: string; process: ChildProcess } | undefined;
  let h: RunnerHarness | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tidepool-sec-tls-'));
    certs = await makeTestCertificates(dir);
    [rabbit, redis] = await Promise.all([startTlsRabbitMq(certs), startTlsRedis(certs)]);
    h = await openRunnerHarness('sec-tls', {
      amqpUrl: rabbit.url,
      redisUrl: redis.url,
      amqpTlsCaFile: certs.ca,
      amqpTlsCertFile: certs.clientCert,
      amqpTlsKeyFile: certs.clientKey,
      redisTlsCaFile: certs.ca,
      redisTlsCertFile: certs.clientCert,
      redisTlsKeyFile: certs.clientKey,
      idleTimeout: '5s',
    });
    await h.services.store.connections.apply({
      id: 'over-tls',
      source: { connector: 'source-faker', config: { count: 25 } },
      destination: { connector: 'destination-jsonl', config: { destination_path: join(h.dir, 'out') } },
      streams: [{ name: 'users', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }],
    });
  }, 180_000);

  afterAll(async () => {
    await closeRunnerHarness(h);
    redis?.process.kill('SIGKILL');
    await rabbit?.stop();
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('a runner with the CA and its client certificate runs a sync end to end over amqps and rediss', async () => {
    const runner = spawnRunner(h!, 'tls-runner');
    const syncId = await publishSyncOf(h!, 'over-tls');
    const run = await runUntil(h!, syncId, 'the sync over TLS', (r) => r.status !== 'running', 60_000);
    expect(run).toMatchObject({ status: 'succeeded', records: 25 });
    // Idle, it leaves as usual (exit 0).
    expect(await runner.exited).toBe(0);
  }, 90_000);

  it('without the broker\'s CA the runner stops at start, saying so, instead of reconnecting', async () => {
    const out = await runTidepool(h!.config, ['runner', '--runner-id', 'tls-no-ca'], { TIDEPOOL_AMQP_TLS_CA_FILE: '' });
    expect(out.code).not.toBe(0);
    expect(out.code).not.toBeNull(); // exited by itself, not killed at the timeout
    expect(out.ms).toBeLessThan(15_000);
    expect(out.output).toMatch(/TLS verification failed for RabbitMQ \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\): check amqpTlsCaFile/);
    expect(out.output).not.toContain('broker not reachable yet');
  }, 40_000);

  it('trusting another CA for Redis, the runner stops at start, naming Redis and the setting', async () => {
    const out = await runTidepool(h!.config, ['runner', '--runner-id', 'tls-other-ca'], { TIDEPOOL_REDIS_TLS_CA_FILE: certs.otherCa });
    expect(out.code).not.toBe(0);
    expect(out.code).not.toBeNull();
    expect(out.ms).toBeLessThan(15_000);
    expect(out.output).toMatch(/TLS verification failed for Redis \([A-Z_]+\): check redisTlsCaFile/);
    expect(out.output).not.toContain('reconnecting');
  }, 40_000);

  it('Redis with tls-auth-clients refuses a client without a certificate, and the runner says which settings to check', async () => {
    const bare = new Redis(redis!.url, { tls: { ca: await readFile(certs.ca) }, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    bare.on('error', () => undefined);
    await expect(bare.connect().then(() => bare.ping())).rejects.toThrow();
    bare.disconnect();

    const out = await runTidepool(h!.config, ['runner', '--runner-id', 'tls-no-cert'], { TIDEPOOL_REDIS_TLS_CERT_FILE: '', TIDEPOOL_REDIS_TLS_KEY_FILE: '' });
    expect(out.code).not.toBe(0);
    expect(out.code).not.toBeNull();
    expect(out.ms).toBeLessThan(15_000);
    expect(out.output).toContain("Redis refused this client's certificate: check redisTlsCertFile and redisTlsKeyFile");
  }, 40_000);

  it('a refusal whose TLS alert a reset swallowed is still found on the next try, not taken for an outage', async () => {
    // Redis closes right after its alert; when that races the ready check the client has just
    // written, the client reads a reset and never sees the alert (about 1 try in 12 on
    // loopback). This proxy makes that happen to the first two tries, then forwards as is.
    const proxy = await startAlertLosingProxy(Number(new URL(redis!.url).port), 2);
    const client = createRedis(`rediss://127.0.0.1:${proxy.port}`, testLogger(), { tls: { ca: await readFile(certs.ca) } });
    try {
      await expect(firstConnection(client)).rejects.toThrow("Redis refused this client's certificate: check redisTlsCertFile and redisTlsKeyFile");
      expect(proxy.connections()).toBe(3);
    } finally {
      client.disconnect();
      await proxy.close();
    }
  }, 30_000);

  it('RabbitMQ requiring a client certificate refuses one without, and connecting gives up at once', async () => {
    const started = Date.now();
    const connecting = connectBroker({ url: rabbit!.url, tls: { ca: await readFile(certs.ca) }, logger: testLogger(), timeoutMs: 60_000 });
    await expect(connecting).rejects.toThrow(/TLS verification failed for RabbitMQ \([A-Z0-9_]+\): RabbitMQ refused this client's certificate: check amqpTlsCertFile and amqpTlsKeyFile/);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it('the scaler stops at start too', async () => {
    const out = await runTidepool(h!.config, ['scaler'], { TIDEPOOL_AMQP_TLS_CA_FILE: '' });
    expect(out.code).not.toBe(0);
    expect(out.code).not.toBeNull();
    expect(out.ms).toBeLessThan(15_000);
    expect(out.output).toMatch(/TLS verification failed for RabbitMQ \([A-Z_]+\): check amqpTlsCaFile/);
  }, 40_000);
});
