// Outages of the broker and of the store, with a RabbitMQ and a Redis of the test's own in a
// container (bench/support/containers.ts) that the test restarts under running syncs. What a
// user cares about afterwards: every sync succeeded exactly once, the destination has exactly
// the source's rows, each checkpoint was committed once, nothing is left in any queue — and
// the runners and the scaler are still there, reconnected, not replaced. Also: the copies an
// outage leaves behind (an ack lost, a publish repeated) are not run twice, and a publish is
// confirmed or fails saying why.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { newSyncRequest, type SyncRequest } from '../../shared/messages.js';
import { connectBroker, openConfirmChannel, queueDepth } from '../../shared/broker/connection.js';
import { replayDeadLetters } from '../../shared/broker/dead-letters.js';
import { PublishError, publishSync, publishSyncWithRetries } from '../../shared/broker/publisher.js';
import { topologyFor, type Topology } from '../../shared/broker/topology.js';
import { CLI_PATH } from '../../shared/paths.js';
import { createRedis } from '../../shared/store/redis.js';
import type { LaunchedRunner, RunnerLauncher } from '../../shared/ports/runner-launcher.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { dockerAvailable } from '../../runner/launch/docker.js';
import { LocalProcessRunnerLauncher } from '../../scaler/local-process.js';
import { configEnv } from '../../shared/config.js';
import { Scaler, type ScalerSnapshot } from '../../scaler/loop.js';
import { main as publishMain } from '../../cli/commands/publish.js';
import { startRabbitMq, startRedis, type ServiceContainer } from '../helpers/containers.js';
import { writeKeylessSource } from '../helpers/keyless-source.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { openTestServices, testConfig, testLogger, waitFor, type TestServices } from '../helpers/services.js';

const SYNCS = 20;
const RECORDS = 30;
const STATE_EVERY = 5;
/** Checkpoints of one complete read. Runs continue from the committed cursor, so however often a sync is interrupted, its connection's state version ends here — one more means a checkpoint committed twice. */
const CHECKPOINTS = RECORDS / STATE_EVERY;

const connectionIds = Array.from({ length: SYNCS }, (_, i) => `c${String(i + 1).padStart(2, '0')}`);
/** The connection of the sync published while the broker is down. */
const LATE = 'late';

async function allRuns(services: TestServices, requests: SyncRequest[]): Promise<(RunRecord | undefined)[]> {
  return services.store.runs.getMany(requests.map((r) => r.syncId));
}

/**
 * Publishes a sync of every connection, then waits for the moment an outage should hit: a few
 * syncs done and more running.
 */
async function publishBatchUntilMidway(config: Config, services: TestServices, topology: Topology, logger: Logger): Promise<SyncRequest[]> {
  const broker = await connectBroker({ url: config.amqpUrl, logger });
  const channel = await openConfirmChannel(broker, topology, logger);
  const requests = connectionIds.map((id) => newSyncRequest(id));
  for (const r of requests) await publishSync(channel, topology, r);
  await broker.close();
  await waitFor('a few syncs done and more running', async () => {
    const runs = await allRuns(services, requests);
    return runs.filter((r) => r?.status === 'succeeded').length >= 3 && runs.filter((r) => r?.status === 'running').length >= 2;
  }, 90_000, 100);
  return requests;
}

async function waitAllSucceeded(services: TestServices, requests: SyncRequest[], timeoutMs: number): Promise<RunRecord[]> {
  return waitFor(`all ${requests.length} syncs to succeed`, async () => {
    const runs = await allRuns(services, requests);
    return runs.every((r) => r?.status === 'succeeded') ? (runs as RunRecord[]) : undefined;
  }, timeoutMs, 250);
}

/** No sync ran twice to completion: a second success would have moved the first into the history. */
function expectSucceededOnce(runs: RunRecord[]): void {
  for (const run of runs) {
    expect(run.status).toBe('succeeded');
    expect((run.previousAttempts ?? []).filter((p) => p.status === 'succeeded')).toEqual([]);
  }
}

async function expectRowsExact(db: TestDatabase, ids: string[], table: (connectionId: string) => string, key: string): Promise<void> {
  for (const id of ids) {
    const { rows } = await db.pool.query<{ n: number; d: number; m: number }>(`SELECT count(*)::int AS n, count(DISTINCT ${key})::int AS d, max(${key})::int AS m FROM ${table(id)}`);
    expect({ connection: id, ...rows[0] }).toEqual({ connection: id, n: RECORDS, d: RECORDS, m: RECORDS });
  }
}

/** The keyless source emits no STATE when there is nothing new: each checkpoint is one cursor step, committed once. */
async function expectCheckpointsOnce(services: TestServices, ids: string[]): Promise<void> {
  for (const id of ids) {
    const state = await services.store.state.get(id);
    expect({ connection: id, version: state?.version }).toEqual({ connection: id, version: CHECKPOINTS });
  }
}

/**
 * source-e2e-test re-sends the committed cursor as a STATE when there is nothing new, so a
 * sync interrupted after its last checkpoint commits one more when it runs again. Each
 * earlier commit advanced the cursor by STATE_EVERY, so the last execution started from
 * STATE_EVERY × (commits before it) and committed the rest — a checkpoint committed twice
 * would break that arithmetic.
 */
function expectCheckpointsOnceE2e(state: { version: number } | undefined, run: RunRecord): void {
  expect(state?.version).toBe(run.stateVersion);
  const before = (state?.version ?? 0) - run.stateCommits;
  expect({ connection: run.connectionId, before: Math.min(before, CHECKPOINTS), last: run.stateCommits }).toEqual({
    connection: run.connectionId,
    before: Math.min(before, CHECKPOINTS),
    last: before >= CHECKPOINTS ? 1 : CHECKPOINTS - before,
  });
  expect(before).toBeLessThanOrEqual(CHECKPOINTS);
}

async function expectQueuesEmpty(url: string, topology: Topology): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    for (const q of [topology.syncsQueue, topology.deadQueue, ...topology.retryQueues]) {
      expect({ queue: q, ready: (await queueDepth(connection, q)).ready }).toEqual({ queue: q, ready: 0 });
    }
  } finally {
    await connection.close();
  }
}

/** A runner process's pid is in its heartbeat: how the test ends the runners the scaler launched. */
function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

const brokerAnswers = async (url: string): Promise<boolean> => {
  try {
    const c = await amqp.connect(url, { timeout: 1000 });
    await c.close();
    return true;
  } catch {
    return false;
  }
};

/** A launcher that starts nothing and remembers when it was asked: what a scaler decides, and when. */
class RecordingLauncher implements RunnerLauncher {
  readonly kind = 'recording';
  readonly launches: number[] = [];
  private readonly runners: LaunchedRunner[] = [];
  launch(count: number): Promise<string[]> {
    const ids = Array.from({ length: count }, (_, i) => `ghost-${this.runners.length + i}`);
    for (const runnerId of ids) {
      this.runners.push({ runnerId, phase: 'pending', launchedAt: Date.now() });
      this.launches.push(Date.now());
    }
    return Promise.resolve(ids);
  }
  list(): Promise<LaunchedRunner[]> {
    return Promise.resolve(this.runners.map((r) => ({ ...r })));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const hasDocker = await dockerAvailable();

describe.runIf(hasDocker)('outages: RabbitMQ restarted while runners consume a batch of syncs', () => {
  let rabbit: ServiceContainer;
  let config: Config;
  let services: TestServices;
  let db: TestDatabase;
  let dir: string;
  const pids = new Set<number>();

  beforeAll(async () => {
    rabbit = await startRabbitMq();
    dir = await mkdtemp(join(tmpdir(), 'tidepool-outage-broker-'));
    config = testConfig('outage-broker', {
      amqpUrl: rabbit.url,
      concurrency: 2,
      maxRunners: 3,
      launchRate: 100,
      launchBurst: 100,
      pollInterval: '300ms',
      // Long enough to sit through the outage: the same runners must be there afterwards.
      idleTimeout: '2m',
      heartbeatInterval: '300ms',
      heartbeatTtl: '3s',
      lockTtl: '5s',
      brokerReconnectTimeout: '2m',
      retryBaseDelay: '500ms',
      retryMaxDelay: '2s',
      runnerLogDir: join(dir, 'runners'),
      logLevel: 'info',
    });
    services = openTestServices(config);
    db = await createTestDatabase('outage_broker');
    const source = await writeKeylessSource(dir);
    for (const id of [...connectionIds, LATE]) {
      // Keyless, incremental, append: a row sent twice would stay twice.
      await services.store.connections.apply({
        id,
        // 150 ms a record, ~5 s a sync: RabbitMQ takes seconds to shut down, and syncs must
        // still be running when it finally drops its connections.
        source: { command: [source], config: { records: RECORDS, stateEvery: STATE_EVERY, delayMs: 150 } },
        destination: { connector: 'destination-postgres', config: { ...db.config, schema: id } },
        streams: [{ name: 'events', syncMode: 'incremental', destinationSyncMode: 'append' }],
      });
    }
  }, 180_000);

  afterAll(async () => {
    killPids([...pids]);
    await services.cleanup().catch(() => undefined);
    await db.drop();
    await rabbit.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('every sync succeeds exactly once with exact rows; runners and scaler reconnect; nothing launched blind', async () => {
    const topology = topologyFor(config.prefix, config);
    const logger = testLogger();
    const snapshots: ScalerSnapshot[] = [];
    const launchedAt: number[] = [];
    const local = new LocalProcessRunnerLauncher(config, logger);
    const launcher: RunnerLauncher = {
      kind: local.kind,
      launch: async (n) => {
        const ids = await local.launch(n);
        launchedAt.push(...ids.map(() => Date.now()));
        return ids;
      },
      list: () => local.list(),
      close: () => local.close(),
    };
    let tickFailures = 0;
    const scaler = new Scaler({ config, logger, launcher, store: services.store, onTick: (s) => snapshots.push(s), onTickFailed: () => tickFailures++ });
    // A second scaler of its own prefix that always wants a runner (minRunners 1, and its
    // launches never heartbeat): it launches whenever it can read the queue — so whether it
    // launches during the outage is exactly whether a scaler launches blind.
    const probeConfig = testConfig('outage-probe', { amqpUrl: rabbit.url, minRunners: 1, maxRunners: 1, runnerStartTimeout: '400ms', pollInterval: '200ms', launchRate: 100, launchBurst: 100 });
    const probeServices = openTestServices(probeConfig);
    const probeLauncher = new RecordingLauncher();
    const probe = new Scaler({ config: probeConfig, logger, launcher: probeLauncher, store: probeServices.store, leadership: () => ({ acquireOrRenew: () => Promise.resolve(true), resign: () => Promise.resolve() }) });

    try {
      await scaler.start();
      await probe.start();
      const requests = await publishBatchUntilMidway(config, services, topology, logger);
      const before = await waitFor('the three runners heartbeating', async () => {
        const alive = await services.store.runners.alive();
        return alive.length === 3 ? alive : undefined;
      }, 30_000);
      for (const h of before) pids.add(h.pid);

      // The moment the broker drops its connections (it stops accepting new ones a little
      // earlier): a connection open from before, like the scaler's, closes then.
      const watch = await amqp.connect(rabbit.url);
      watch.on('error', () => undefined);
      const dropped = new Promise<number>((resolve) => watch.once('close', () => resolve(Date.now())));
      const restarted = rabbit.restart(3000);
      await waitFor('the broker to go down', async () => !(await brokerAnswers(rabbit.url)), 30_000, 100);
      // Published while the broker is down: tried again until it is back, and confirmed.
      const late = newSyncRequest(LATE);
      const latePublish = publishSyncWithRetries(late, { url: rabbit.url, topology, logger, timeoutMs: 120_000 });
      const downAt = await dropped;
      await restarted;
      const upAt = Date.now();
      expect((await latePublish).tries).toBeGreaterThan(1);

      const runs = await waitAllSucceeded(services, [...requests, late], 120_000);
      expectSucceededOnce(runs);
      // The outage interrupted syncs in flight; they were recorded as requeued and ran again.
      const interrupted = runs.flatMap((r) => (r.previousAttempts ?? []).filter((p) => p.status === 'requeued'));
      expect(interrupted.length).toBeGreaterThan(0);
      for (const p of interrupted) expect(p.error?.message).toMatch(/lost its broker connection/);
      await expectRowsExact(db, [...connectionIds, LATE], (id) => `${id}.events`, 'id');
      await expectCheckpointsOnce(services, [...connectionIds, LATE]);

      // The same three runners, reconnected — not replaced: nothing was launched after the start.
      const after = await services.store.runners.alive();
      expect(after.map((h) => h.runnerId).sort()).toEqual(before.map((h) => h.runnerId).sort());
      expect(launchedAt).toHaveLength(3);
      // A runner that had nothing left to do may still be in its backoff when the others have
      // finished every sync (its next try is up to 10 s away): wait for its log to say so.
      for (const h of before) {
        const log = await waitFor(`runner ${h.runnerId} to reconnect`, async () => {
          const text = await readFile(join(config.runnerLogDir, `${h.runnerId}.log`), 'utf8');
          return /broker connection restored: topology declared, consuming again/.test(text) ? text : undefined;
        }, 30_000, 250);
        expect(log).toMatch(/broker connection lost/);
      }
      // The scaler's loop went on: its ticks failed during the outage (counted), and it
      // observes again after it.
      expect(tickFailures).toBeGreaterThan(0);
      await waitFor('a scaler tick after the outage', () => snapshots.some((s) => s.at > upAt), 30_000);
      // The probe launched before and after the outage, never while the queue was unreadable.
      // A second of slack at each end: for a tick that read the depth just before the
      // connections went, and for one that read it once the broker answered again — upAt is when
      // restart() saw it answer, which polls every 250 ms and, on a loaded machine, returns later
      // still, while the probe polls every 200 ms.
      await waitFor('the probe to launch again', () => probeLauncher.launches.some((t) => t > upAt), 30_000);
      expect(probeLauncher.launches.some((t) => t < downAt)).toBe(true);
      expect(probeLauncher.launches.filter((t) => t > downAt + 1000 && t < upAt - 1000)).toEqual([]);

      killPids([...pids]);
      await expectQueuesEmpty(rabbit.url, topology);
    } finally {
      await scaler.stop();
      await probe.stop();
      await probeServices.cleanup().catch(() => undefined);
    }
  }, 180_000);
});

describe.runIf(hasDocker)('outages: Redis restarted during syncs', () => {
  let redis: ServiceContainer;
  let config: Config;
  let services: TestServices;
  let db: TestDatabase;
  const runners: ChildProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    config = testConfig('outage-store', {
      redisUrl: redis.url,
      concurrency: 2,
      idleTimeout: '2m',
      heartbeatInterval: '300ms',
      heartbeatTtl: '3s',
      // About as long as the outage: some locks outlive it, some expire and their syncs fail
      // (lock lost, retryable) and are retried.
      lockTtl: '4s',
      retryBaseDelay: '500ms',
      retryMaxDelay: '2s',
      logLevel: 'info',
    });
    services = openTestServices(config);
    db = await createTestDatabase('outage_store');
    for (const id of connectionIds) {
      // source-e2e-test's items have a primary key: a destination upsert by id. Rows sent
      // twice after a lost lock (the destination had them, the fenced state did not) are
      // at-least-once by design; distinct ids and state versions are what must be exact.
      await services.store.connections.apply({
        id,
        source: { connector: 'source-e2e-test', config: { records: RECORDS, stateEvery: STATE_EVERY, delayMs: 100 } },
        destination: { connector: 'destination-postgres', config: { ...db.config, schema: id } },
        streams: [{ name: 'items', syncMode: 'incremental', destinationSyncMode: 'append_dedup', primaryKey: [['id']] }],
      });
    }
  }, 120_000);

  afterAll(async () => {
    for (const r of runners) if (r.exitCode === null && r.signalCode === null) r.kill('SIGKILL');
    await services.cleanup().catch(() => undefined);
    await db.drop();
    await redis.stop();
  });

  it('every sync ends succeeded (some after retries), each checkpoint committed once, nothing lost', async () => {
    const topology = topologyFor(config.prefix, config);
    const logger = testLogger();
    for (const id of ['store-r1', 'store-r2', 'store-r3']) {
      const child = spawn(process.execPath, [CLI_PATH, 'runner', '--runner-id', id], { env: { PATH: process.env.PATH ?? '', ...configEnv(config) }, stdio: ['ignore', 'pipe', 'pipe'] });
      const log: string[] = [];
      child.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
      child.stderr?.resume();
      Object.assign(child, { log });
      runners.push(child);
    }
    await waitFor('three runners', async () => (await services.store.runners.alive()).length === 3, 30_000);

    const requests = await publishBatchUntilMidway(config, services, topology, logger);
    await redis.restart(3000);

    const runs = await waitAllSucceeded(services, requests, 120_000);
    expectSucceededOnce(runs);
    await expectRowsExact(db, connectionIds, (id) => `${id}.items`, 'id');
    for (const run of runs) expectCheckpointsOnceE2e(await services.store.state.get(run.connectionId), run);
    // The runners rode it out: none exited, and they noticed.
    for (const r of runners) expect(r.exitCode).toBeNull();
    const logs = runners.map((r) => (r as ChildProcess & { log: string[] }).log.join('')).join('');
    expect(logs).toMatch(/redis connection lost; reconnecting/);
    expect(logs).toMatch(/redis connection restored/);
    for (const r of runners) r.kill('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 500));
    await expectQueuesEmpty(config.amqpUrl, topology);
  }, 180_000);

  it('a state commit sent twice (its reply lost, ioredis sends it again) makes one version', async () => {
    const lock = await services.store.locks.tryAcquire('twice', 'test', 10_000);
    expect(lock).toBeDefined();
    const commit = (services.store.redis as unknown as Record<string, (...args: string[]) => Promise<number>>)['tpStateCommit']!.bind(services.store.redis);
    const args = [services.store.keys.lock('twice'), services.store.keys.state('twice'), lock!.value, '[]', new Date().toISOString(), 'sync-1'];
    expect(await commit(...args, 'commit-a')).toBe(1);
    expect(await commit(...args, 'commit-a')).toBe(1);
    expect(await commit(...args, 'commit-b')).toBe(2);
    expect((await services.store.state.get('twice'))?.version).toBe(2);
  });
});

describe('a broker that stays away (a TCP proxy cut in front of the local broker)', () => {
  it('a runner gives up after brokerReconnectTimeout (exit 1); one with nothing left to do leaves at its idle timeout (exit 0); the interrupted sync is not lost', async () => {
    const base = testConfig('outage-away', { heartbeatInterval: '300ms', heartbeatTtl: '3s', logLevel: 'info' });
    const target = new URL(base.amqpUrl);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
    const viaProxy = `${target.protocol}//${target.username}:${target.password}@127.0.0.1:${proxy.port}`;
    const services = openTestServices(base);
    const topology = topologyFor(base.prefix, base);
    const logger = testLogger();
    const children: ChildProcess[] = [];
    const start = (id: string, overrides: Partial<Record<'brokerReconnectTimeout' | 'idleTimeout', string>>, url = viaProxy) => {
      const env = { PATH: process.env.PATH ?? '', ...configEnv(base), TIDEPOOL_AMQP_URL: url, ...(overrides.brokerReconnectTimeout ? { TIDEPOOL_BROKER_RECONNECT_TIMEOUT: overrides.brokerReconnectTimeout } : {}), ...(overrides.idleTimeout ? { TIDEPOOL_IDLE_TIMEOUT: overrides.idleTimeout } : {}) };
      const child = spawn(process.execPath, [CLI_PATH, 'runner', '--runner-id', id], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const log: string[] = [];
      child.stdout.on('data', (d: Buffer) => log.push(d.toString()));
      child.stderr.resume();
      children.push(child);
      const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.once('exit', (code) => resolve({ code, at: Date.now() })));
      return { child, log, exited };
    };
    try {
      await services.store.connections.apply({ id: 'slow', source: { connector: 'source-e2e-test', config: { records: 80, stateEvery: 10, delayMs: 100 } }, destination: { connector: 'destination-e2e-test', config: { mode: 'echo' } } });
      const broker = await connectBroker({ url: base.amqpUrl, logger });
      const channel = await openConfirmChannel(broker, topology, logger);
      const request = newSyncRequest('slow');
      await publishSync(channel, topology, request);
      await broker.close();

      // B takes the (8 s) sync; A, started after, has nothing to do.
      const b = start('idler', { idleTimeout: '3s', brokerReconnectTimeout: '2m' });
      await waitFor('B to run the sync', async () => (await services.store.runs.get(request.syncId))?.status === 'running', 30_000);
      const a = start('quitter', { idleTimeout: '2m', brokerReconnectTimeout: '3s' });
      await waitFor('A to consume', () => a.log.join('').includes('runner consuming'), 30_000);

      await proxy.down();
      const downAt = Date.now();
      const [exitA, exitB] = await Promise.all([a.exited, b.exited]);
      // A: tried for the whole brokerReconnectTimeout (3 s), then gave up (not at the first
      // backoff step that would overshoot it).
      expect(exitA.code).toBe(1);
      expect(exitA.at - downAt).toBeGreaterThanOrEqual(2_900);
      expect(exitA.at - downAt).toBeLessThan(15_000);
      expect(a.log.join('')).toMatch(/giving up/);
      // B: its sync interrupted (requeued, not failed), then idle for 3 s: a clean exit.
      expect(exitB.code).toBe(0);
      expect(b.log.join('')).toMatch(/"reason":"idle"/);
      const interrupted = await services.store.runs.get(request.syncId);
      expect(interrupted).toMatchObject({ status: 'requeued', runnerId: 'idler', error: { type: 'cancelled' } });
      expect(interrupted?.error?.message).toMatch(/lost its broker connection/);

      // The broker kept the message: another runner finishes it once the broker is reachable.
      await proxy.up();
      start('next', {}, base.amqpUrl);
      const done = await waitFor('the sync to succeed', async () => {
        const r = await services.store.runs.get(request.syncId);
        return r?.status === 'succeeded' ? r : undefined;
      }, 60_000);
      expect(done).toMatchObject({ attempt: 1, runnerId: 'next' });
      expect(done.previousAttempts?.map((p) => [p.runnerId, p.status])).toEqual([['idler', 'requeued']]);
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await proxy.close();
      await services.cleanup();
    }
  }, 120_000);
});

describe('a Redis cut off by a partition (a TCP proxy that goes silent, closing nothing)', () => {
  it('a command on the silent connection is given up after the socket timeout, sent again on a new one, and answered once Redis is reachable', async () => {
    const config = testConfig('outage-partition');
    const target = new URL(config.redisUrl);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
    const viaProxy = new URL(config.redisUrl);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const redis = createRedis(viaProxy.toString(), testLogger(), { socketTimeoutMs: 1_000 });
    const key = `${config.prefix}:partition`;
    let reconnects = 0;
    redis.on('reconnecting', () => reconnects++);
    try {
      await redis.set(key, 'kept', 'EX', 60);
      proxy.blackhole();
      const sentAt = Date.now();
      const answer = redis.get(key);
      // Without a socket timeout this waits for the kernel's retransmission timeout (~15 min).
      await waitFor('the silent connection to be given up', () => reconnects > 0, 10_000, 20);
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(900);
      // Still partitioned: the new connection is silent too, and is given up in turn.
      await waitFor('a second try to be given up', () => reconnects > 1, 15_000, 20);
      proxy.heal();
      expect(await answer).toBe('kept');
      expect(redis.status).toBe('ready');
    } finally {
      await redis.del(key).catch(() => undefined);
      redis.disconnect();
      await proxy.close();
    }
  }, 60_000);
});

describe('duplicate deliveries: a copy of a settled sync is acked without running; a replay runs', () => {
  it('dead-lettered, copied, replayed, copied again', async () => {
    const config = testConfig('outage-duplicates', { idleTimeout: '60s', heartbeatInterval: '300ms', heartbeatTtl: '3s', logLevel: 'info' });
    const services = openTestServices(config);
    const topology = topologyFor(config.prefix, config);
    const logger = testLogger();
    const broker = await connectBroker({ url: config.amqpUrl, logger });
    const channel = await openConfirmChannel(broker, topology, logger);
    const runner = spawn(process.execPath, [CLI_PATH, 'runner', '--runner-id', 'dedup'], { env: { PATH: process.env.PATH ?? '', ...configEnv(config) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const log: string[] = [];
    runner.stdout.on('data', (d: Buffer) => log.push(d.toString()));
    runner.stderr.resume();
    const destination = { connector: 'destination-e2e-test', config: { mode: 'echo' } };
    const dead = async () => (await queueDepth(broker, topology.deadQueue)).ready;
    try {
      await services.store.connections.apply({ id: 'dup', source: { connector: 'source-e2e-test', config: { records: 0, then: 'exit', exitCode: 1, failureType: 'config_error', message: 'bad password' } }, destination });
      const request = newSyncRequest('dup');
      await publishSync(channel, topology, request);
      await waitFor('the dead letter', async () => (await services.store.runs.get(request.syncId))?.status === 'dead_lettered' && (await dead()) === 1, 30_000);

      // A second copy of the same request (a publisher that retried after a lost confirm):
      // acked unrun — no second dead letter, the record untouched.
      const settled = await services.store.runs.get(request.syncId);
      await publishSync(channel, topology, request);
      await waitFor('the copy to be acked', () => log.join('').includes('duplicate delivery of a settled sync'), 30_000);
      await waitFor('the syncs queue to be empty', async () => (await queueDepth(broker, topology.syncsQueue)).ready === 0, 10_000);
      expect(await dead()).toBe(1);
      expect(await services.store.runs.get(request.syncId)).toEqual(settled);

      // The operator fixes the connection and replays: that one runs.
      await services.store.connections.apply({ id: 'dup', source: { connector: 'source-e2e-test', config: { records: 3 } }, destination });
      expect((await replayDeadLetters(broker, topology, { all: true })).replayed).toHaveLength(1);
      const done = await waitFor('the replay to succeed', async () => {
        const r = await services.store.runs.get(request.syncId);
        return r?.status === 'succeeded' ? r : undefined;
      }, 30_000);
      expect(done.previousAttempts?.map((p) => p.status)).toEqual(['dead_lettered']);

      // And a copy after that success is acked unrun too.
      await publishSync(channel, topology, request);
      await waitFor('the second copy to be acked', () => log.join('').split('duplicate delivery of a settled sync').length === 3, 30_000);
      expect(await services.store.runs.get(request.syncId)).toEqual(done);
      expect(await dead()).toBe(0);
    } finally {
      runner.kill('SIGKILL');
      await broker.close();
      await services.cleanup();
    }
  }, 90_000);
});

describe('publishing: confirmed, or a clear error', () => {
  it('a broker that never answers: PublishError after the timeout, saying nothing was queued', async () => {
    const started = Date.now();
    const error = await publishSyncWithRetries(newSyncRequest('c01'), { url: 'amqp://guest:guest@127.0.0.1:1', topology: topologyFor('t-unreachable'), logger: testLogger(), timeoutMs: 2_000 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PublishError);
    expect(error).toMatchObject({ maybeQueued: false, retryable: true });
    expect((error as Error).message).toMatch(/not published within 2 s \(\d+ tries\): cannot connect to RabbitMQ .*ECONNREFUSED.*nothing was queued/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it('wrong credentials: PublishError at once, not retried', async () => {
    const started = Date.now();
    const config = testConfig('publish-denied');
    const url = config.amqpUrl.replace(/\/\/[^@]*@/, '//guest:not-the-password@');
    const error = await publishSyncWithRetries(newSyncRequest('c01'), { url, topology: topologyFor(config.prefix), logger: testLogger(), timeoutMs: 30_000 }).catch((err: unknown) => err);
    expect(error).toMatchObject({ name: 'PublishError', retryable: false });
    expect((error as Error).message).toMatch(/ACCESS.REFUSED/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('tidepool publish with the broker unreachable: exit 1 and why, after --timeout', async () => {
    const config = testConfig('publish-cli-down');
    const services = openTestServices(config);
    try {
      await services.store.connections.apply({ id: 'somewhere', source: { connector: 'source-faker', config: {} }, destination: { connector: 'destination-jsonl', config: { destination_path: '/tmp' } } });
      const out: string[] = [];
      const err: string[] = [];
      const env = { ...configEnv(config), TIDEPOOL_AMQP_URL: 'amqp://guest:guest@127.0.0.1:1', TIDEPOOL_LOG_LEVEL: 'silent' };
      const code = await publishMain(['somewhere', '--timeout', '1500ms'], env, { out: (t) => out.push(t), err: (t) => err.push(t) });
      expect(code).toBe(1);
      expect(out).toEqual([]);
      expect(err.join('\n')).toMatch(/^error: sync \S+ \(connection "somewhere"\) not published within 2 s .*ECONNREFUSED.*nothing was queued/);
    } finally {
      await services.cleanup();
    }
  });
});
