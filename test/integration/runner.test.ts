// A real runner process against the real broker and store: what happens to good syncs, bad
// messages, failing connectors, and a runner told to stop.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChannelModel, ConfirmChannel, GetMessage } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Config, ConfigInput } from '../../shared/config.js';
import { HEADERS } from '../../shared/broker/envelope.js';
import { newSyncRequest } from '../../shared/messages.js';
import { connectBroker, openConfirmChannel, queueDepth } from '../../shared/broker/connection.js';
import { confirmPublish, publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { CLI_PATH } from '../../shared/paths.js';
import { configEnv } from '../../shared/config.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';

interface Harness {
  config: Config;
  services: TestServices;
  broker: ChannelModel;
  channel: ConfirmChannel;
  runners: ChildProcess[];
  out: string;
}

async function harness(name: string, overrides: Partial<ConfigInput> = {}): Promise<Harness> {
  const config = testConfig(name, { idleTimeout: '1s', heartbeatInterval: '300ms', heartbeatTtl: '3s', ...overrides });
  const services = openTestServices(config);
  const broker = await connectBroker({ url: config.amqpUrl, logger: services.logger });
  const channel = await openConfirmChannel(broker, topologyFor(config.prefix), services.logger);
  return { config, services, broker, channel, runners: [], out: join(tmpdir(), `${config.prefix}-out`) };
}

function startRunner(h: Harness, id: string): ChildProcess & { exited: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI_PATH, 'runner', '--runner-id', id], {
    env: { PATH: process.env.PATH ?? '', ...configEnv(h.config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { exited: Promise<number | null> };
  child.stdout?.resume();
  child.stderr?.resume();
  child.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  h.runners.push(child);
  return child;
}

async function getDead(h: Harness, timeoutMs = 30_000): Promise<GetMessage> {
  return waitFor('a dead letter', async () => {
    const m = await h.channel.get(topologyFor(h.config.prefix).deadQueue, { noAck: false });
    if (m) h.channel.ack(m);
    return m || undefined;
  }, timeoutMs, 200);
}

async function close(h: Harness) {
  for (const r of h.runners) if (r.exitCode === null) r.kill('SIGKILL');
  await h.broker.close().catch(() => undefined);
  await h.services.cleanup();
  await rm(h.out, { recursive: true, force: true });
}

describe('runner: bad input is dead-lettered with its reason, nothing is lost', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness('runner-dead-letters');
    await h.services.store.connections.apply({
      id: 'failing-source',
      // A config its spec accepts, refused by the connector itself at run time (a config that
      // the spec refuses never gets that far: see connector-contract.test.ts).
      source: { connector: 'source-e2e-test', config: { records: 1, then: 'exit', exitCode: 1, failureType: 'config_error', message: 'count must be positive' } },
      destination: { connector: 'destination-jsonl', config: { destination_path: h.out } },
      streams: [{ name: 'items', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }],
    });
    await h.services.store.connections.apply({
      id: 'silent-destination',
      source: { connector: 'source-faker', config: { count: 10 } },
      // Reads everything, acknowledges nothing: its state must not be committed.
      destination: { command: ['sh', '-c', 'cat > /dev/null; echo "flushed nothing" >&2'], config: {} },
      streams: [{ name: 'users', syncMode: 'incremental', destinationSyncMode: 'append' }],
    });
    startRunner(h, 'dl-runner');
  });
  afterAll(() => close(h));

  it('a message that is not JSON', async () => {
    const t = topologyFor(h.config.prefix);
    await confirmPublish(h.channel, t.exchange, t.syncRoutingKey, Buffer.from('{not json'), { messageId: 'garbage-1' });
    const dead = await getDead(h);
    expect(dead.content.toString()).toBe('{not json');
    expect(dead.properties.headers?.[HEADERS.reason]).toMatch(/not JSON/);
    expect(dead.properties.headers?.[HEADERS.type]).toBe('config_error');
  });

  it('a message that is not a sync request', async () => {
    const t = topologyFor(h.config.prefix);
    await confirmPublish(h.channel, t.exchange, t.syncRoutingKey, Buffer.from(JSON.stringify({ hello: 'world' })), {});
    const dead = await getDead(h);
    expect(dead.properties.headers?.[HEADERS.reason]).toMatch(/not a sync request.*connectionId/s);
  });

  it('a sync of an unknown connection', async () => {
    const request = newSyncRequest('no-such-connection');
    await publishSync(h.channel, topologyFor(h.config.prefix), request);
    const dead = await getDead(h);
    expect(dead.properties.messageId).toBe(request.syncId);
    expect(dead.properties.headers?.[HEADERS.reason]).toBe('unknown connection "no-such-connection"');
    expect(await h.services.store.runs.get(request.syncId)).toMatchObject({ status: 'dead_lettered', error: { retryable: false } });
  });

  it('a failing connector: reason, origin and its stderr tail in the dead letter and the run record', async () => {
    const request = newSyncRequest('failing-source');
    await publishSync(h.channel, topologyFor(h.config.prefix), request);
    const dead = await getDead(h);
    expect(dead.properties.messageId).toBe(request.syncId);
    const headers = dead.properties.headers ?? {};
    expect(headers[HEADERS.origin]).toBe('source');
    expect(headers[HEADERS.type]).toBe('config_error');
    expect(headers[HEADERS.reason]).toMatch(/count/);
    expect(JSON.parse(String(headers[HEADERS.stderrSource])).length).toBeGreaterThan(0);
    const run = await h.services.store.runs.get(request.syncId);
    expect(run).toMatchObject({ status: 'dead_lettered', error: { origin: 'source', type: 'config_error' } });
    expect(run?.error?.stderr?.source?.length).toBeGreaterThan(0);
  });

  it('a destination that never confirms a STATE: the sync fails and no state is committed', async () => {
    const request = newSyncRequest('silent-destination');
    await publishSync(h.channel, topologyFor(h.config.prefix), request);
    const dead = await getDead(h);
    expect(dead.properties.headers?.[HEADERS.reason]).toMatch(/destination confirmed none of the source's \d+ STATE messages/);
    expect(JSON.parse(String(dead.properties.headers?.[HEADERS.stderrDestination]))).toContain('flushed nothing');
    expect(await h.services.store.state.get('silent-destination')).toBeUndefined();
  });
});

describe('runner: what the destination reads', () => {
  let h: Harness;
  let dir: string;
  afterEach(async () => {
    await close(h);
    await rm(dir, { recursive: true, force: true });
  });

  it('STREAM_STATUS STARTED for every stream before the records, COMPLETE after them, then EOF', async () => {
    h = await harness('runner-stream-status');
    dir = await mkdtemp(join(tmpdir(), 'tidepool-stream-status-'));
    const input = join(dir, 'input.jsonl');
    await h.services.store.connections.apply({
      id: 'recorded',
      source: { connector: 'source-faker', config: { count: 30, purchasesPerUser: 1, stateEvery: 10 } },
      // Keeps its input as it arrived and echoes every STATE.
      destination: { command: ['sh', '-c', `tee "$0" | grep --line-buffered '"type":"STATE"'`, input], config: {} },
      streams: [
        { name: 'users', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' },
        { name: 'purchases', syncMode: 'incremental', destinationSyncMode: 'append' },
      ],
    });
    const request = newSyncRequest('recorded');
    await publishSync(h.channel, topologyFor(h.config.prefix), request);
    startRunner(h, 'status-runner');
    await waitFor('the sync', async () => (await h.services.store.runs.get(request.syncId))?.status === 'succeeded', 30_000);

    const lines = (await readFile(input, 'utf8')).split('\n').filter((line) => line.length > 0);
    const status = (line: string | undefined) => {
      const m = JSON.parse(line ?? 'null') as { type?: string; trace?: { type?: string; stream_status?: { stream_descriptor: { name: string }; status: string } } } | null;
      return m?.type === 'TRACE' && m.trace?.type === 'STREAM_STATUS' ? `${m.trace.stream_status?.stream_descriptor.name}:${m.trace.stream_status?.status}` : m?.type;
    };
    expect(lines.slice(0, 2).map(status)).toEqual(['users:STARTED', 'purchases:STARTED']);
    expect(lines.slice(-2).map(status)).toEqual(['users:COMPLETE', 'purchases:COMPLETE']);
    const middle = lines.slice(2, -2).map(status);
    expect(middle.filter((type) => type === 'RECORD')).toHaveLength(60);
    expect(new Set(middle)).toEqual(new Set(['RECORD', 'STATE']));
  });
});

describe('runner: stopping', () => {
  let h: Harness;
  afterEach(() => close(h));

  const longSync = async (h: Harness, count: number) => {
    await h.services.store.connections.apply({
      id: 'long',
      source: { connector: 'source-faker', config: { count } },
      destination: { connector: 'destination-jsonl', config: { destination_path: h.out } },
      streams: [{ name: 'users', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }],
    });
    const request = newSyncRequest('long');
    await publishSync(h.channel, topologyFor(h.config.prefix), request);
    return request;
  };

  it('on SIGTERM finishes the in-flight sync within the grace period, then exits 0', async () => {
    h = await harness('runner-sigterm-drain', { shutdownGrace: '60s', idleTimeout: '60s' });
    const request = await longSync(h, 400_000);
    const runner = startRunner(h, 'drainer');
    await waitFor('the sync to start', async () => (await h.services.store.runs.get(request.syncId))?.status === 'running', 30_000);
    runner.kill('SIGTERM');
    expect(await runner.exited).toBe(0);
    expect(await h.services.store.runs.get(request.syncId)).toMatchObject({ status: 'succeeded', records: 400_000 });
    const broker = await connectBroker({ url: h.config.amqpUrl, logger: h.services.logger });
    expect((await queueDepth(broker, topologyFor(h.config.prefix).syncsQueue)).ready).toBe(0);
    await broker.close();
  });

  it('leaves a sync that cannot finish within the grace period unacked, for another runner', async () => {
    h = await harness('runner-sigterm-requeue', { shutdownGrace: '500ms', idleTimeout: '60s' });
    const request = await longSync(h, 50_000_000);
    const runner = startRunner(h, 'impatient');
    await waitFor('the sync to start', async () => (await h.services.store.runs.get(request.syncId))?.status === 'running', 30_000);
    runner.kill('SIGTERM');
    expect(await runner.exited).toBe(0);
    expect(await h.services.store.runs.get(request.syncId)).toMatchObject({ status: 'requeued', error: { type: 'cancelled' } });
    const broker = await connectBroker({ url: h.config.amqpUrl, logger: h.services.logger });
    await waitFor('the message back in the queue', async () => (await queueDepth(broker, topologyFor(h.config.prefix).syncsQueue)).ready === 1, 10_000);
    await broker.close();
    expect(await h.services.store.locks.holder('long')).toBeUndefined();
  });

  it('exits 0 by itself after the idle timeout, and removes its heartbeat', async () => {
    h = await harness('runner-idle', { idleTimeout: '800ms' });
    const runner = startRunner(h, 'idler');
    await waitFor('a heartbeat', async () => (await h.services.store.runners.alive()).length === 1, 20_000);
    expect(await runner.exited).toBe(0);
    expect(await h.services.store.runners.alive()).toEqual([]);
  });
});

describe('runner: the adaptive leave rule (idleMinimum)', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    if (h) await close(h);
    h = undefined;
  });

  it('leaves long before idleTimeout when no sync started lately: the pool needs no warm slot', async () => {
    h = await harness('runner-early-leave', { idleTimeout: '60s', idleMinimum: '500ms' });
    const started = Date.now();
    const runner = startRunner(h, 'surplus');
    expect(await runner.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(await h.services.store.runners.alive()).toEqual([]);
  });

  it('stays past idleMinimum while recent arrivals need its slots (the last warm runner)', async () => {
    h = await harness('runner-stays-warm', { idleTimeout: '60s', idleMinimum: '500ms' });
    const now = new Date().toISOString();
    // A sync started a moment ago: one per minute needs ceil(1/60 × 10 s) = 1 warm slot.
    await h.services.store.runs.put({ syncId: 'recent', connectionId: 'c', status: 'succeeded', attempt: 1, runnerId: 'earlier', fullRefresh: false, requestedAt: now, startedAt: now, records: 0, bytes: 0, streams: {}, stateCommits: 0 });
    const runner = startRunner(h, 'warm');
    await waitFor('a heartbeat', async () => (await h!.services.store.runners.alive()).length === 1, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(runner.exitCode).toBeNull();
    runner.kill('SIGTERM');
    expect(await runner.exited).toBe(0);
  });
});

describe('runner: a source that fails mid-read', () => {
  let h: Harness;
  let db: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    // A source dying with exit 3 is retryable; one attempt sends it straight to the dead queue
    // (retries have their own tests in retries.test.ts).
    h = await harness('runner-source-fails', { maxAttempts: 1 });
    db = await createTestDatabase('runner_source_fails');
    dir = await mkdtemp(join(tmpdir(), 'tidepool-failing-source-'));
    // A source that sends one record and dies: the destination must not take its EOF as the
    // end of a complete full refresh.
    const script = join(dir, 'source.sh');
    await writeFile(
      script,
      `#!/bin/sh
case "$1" in
  discover) echo '{"type":"CATALOG","catalog":{"streams":[{"name":"users","json_schema":{"type":"object","properties":{"id":{"type":"integer"}}},"supported_sync_modes":["full_refresh"],"source_defined_primary_key":[["id"]]}]}}' ;;
  read) echo '{"type":"RECORD","record":{"stream":"users","data":{"id":1},"emitted_at":0}}'; echo 'lost the database connection' >&2; exit 3 ;;
  *) exit 1 ;;
esac
`,
    );
    await chmod(script, 0o755);
    const destination = { connector: 'destination-postgres', config: { ...db.config, schema: 'shared' } };
    await h.services.store.connections.apply({ id: 'good', source: { connector: 'source-faker', config: { count: 50 } }, destination, streams: [{ name: 'users', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }] });
    await h.services.store.connections.apply({ id: 'bad', source: { command: [script], config: {} }, destination, streams: [{ name: 'users', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }] });
    startRunner(h, 'source-fails-runner');
  });
  afterAll(async () => {
    await close(h);
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the rows of the last complete overwrite, and reports the source with its stderr', async () => {
    const good = newSyncRequest('good');
    await publishSync(h.channel, topologyFor(h.config.prefix), good);
    await waitFor('the first sync', async () => (await h.services.store.runs.get(good.syncId))?.status === 'succeeded', 30_000);
    const bad = newSyncRequest('bad');
    await publishSync(h.channel, topologyFor(h.config.prefix), bad);
    const dead = await getDead(h);
    expect(dead.properties.messageId).toBe(bad.syncId);
    expect(dead.properties.headers?.[HEADERS.reason]).toMatch(/^source exited with code 3: lost the database connection/);
    const { rows } = await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM shared.users');
    expect(rows[0]?.n).toBe('50');
  });
});
