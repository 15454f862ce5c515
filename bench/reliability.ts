// Reliability under chaos, in local mode: every published sync must end in exactly one of two
// places — succeeded, or in the dead-letter queue with the reason it should have — while runners
// are killed with SIGKILL at random and the broker and the store are each restarted once.
//
//   npm run bench:reliability -- [--syncs 500] [--kills 10] [--timeout 15m] [--json] [--keep]
//
// The mix: 2 % malformed messages (not JSON: dead-lettered at once as such), 5 % syncs of
// connections whose source fails permanently (a config_error TRACE: dead-lettered at once),
// 10 % of connections whose source fails transiently twice and then works (retried through the
// delay queues, succeed on attempt 3), the rest ordinary incremental syncs of
// source-e2e-test → destination-postgres (append_dedup). A scaler process launches runner
// processes (at most 4); the bench kills one of them every few seconds, restarts RabbitMQ when
// 30 % of the syncs are settled and Redis at 60 %. RabbitMQ and Redis are containers of the
// bench's own (bench/support/containers.ts, images from scripts/images), so nothing else on the
// machine is disturbed; PostgreSQL is the local one.
//
// It prints {"published","succeeded","deadLettered","lost","duplicateRows","runnersKilled",
// "brokerRestarts","storeRestarts"} and more: `lost` = published syncs (and malformed messages)
// that are neither succeeded nor in the dead-letter queue; `duplicateRows` = rows in the
// destination tables beyond one per primary key; `wrongReasons` = dead letters whose reason is
// not the one their connection should produce (listed in `problems`).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../shared/backoff.js';
import { loadConfig, type Config } from '../shared/config.js';
import type { Connection } from '../shared/connections.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { newSyncRequest } from '../shared/messages.js';
import { CLI_PATH } from '../shared/paths.js';
import { connectBroker, openConfirmChannel } from '../shared/broker/connection.js';
import { listDeadLetters, type DeadLetter } from '../shared/broker/dead-letters.js';
import { confirmPublish, publishSync } from '../shared/broker/publisher.js';
import { topologyFor, type Topology } from '../shared/broker/topology.js';
import { createRedis } from '../shared/store/redis.js';
import { createStore, type Store } from '../shared/store/index.js';
import { FINAL_STATUSES, type RunRecord } from '../shared/store/runs.js';
import { configEnv } from '../shared/config.js';
import { durationOption, integerOption, readArgs, runBench } from './support/cli.js';
import { startRabbitMq, startRedis, type ServiceContainer } from './support/containers.js';
import { createTestDatabase, type TestDatabase } from './support/pg.js';

const USAGE = `usage: node dist/bench/reliability.js [--syncs N] [--kills K] [--timeout D] [--json] [--keep]

Publishes N syncs (2% malformed, 5% permanently failing, 10% transiently failing, the rest
ordinary) to a broker and store of its own, runs a scaler, kills up to K runners with SIGKILL,
restarts RabbitMQ once and Redis once, and checks that every sync succeeded or was
dead-lettered with the reason it should have.`;

const NORMAL_CONNECTIONS = 30;
const RECORDS = 60;
const PERMANENT_CONNECTIONS = 5;

type Kind = 'normal' | 'transient' | 'permanent' | 'malformed';

interface Published {
  id: string;
  kind: Kind;
  connectionId?: string;
}

const say = (text: string) => process.stderr.write(`reliability: ${text}\n`);

interface Options {
  total: number;
  maxKills: number;
  timeoutMs: number;
  json: boolean;
  keep: boolean;
}

function parseOptions(argv: string[]): Options | undefined {
  const values = readArgs(argv, { syncs: 'string', kills: 'string', timeout: 'string', json: 'boolean', keep: 'boolean' });
  if (!values) return undefined;
  return {
    total: integerOption('syncs', values.syncs, 500, 50),
    maxKills: integerOption('kills', values.kills, 10, 0),
    timeoutMs: durationOption('timeout', values.timeout, 15 * 60_000),
    json: values.json ?? false,
    keep: values.keep ?? false,
  };
}

async function main(options: Options): Promise<number> {
  const t0 = Date.now();
  say('starting a RabbitMQ and a Redis of the bench\'s own');
  const [rabbit, redisContainer] = await Promise.all([startRabbitMq(), startRedis()]);
  const work = await mkdtemp(join(tmpdir(), 'tidepool-reliability-'));
  const dest = await createTestDatabase('reliability');
  let scaler: ChildProcess | undefined;
  try {
    const config = loadConfig({}, undefined, {
      prefix: `rel-${randomBytes(3).toString('hex')}`,
      amqpUrl: rabbit.url,
      redisUrl: redisContainer.url,
      logLevel: 'info',
      maxRunners: 4,
      concurrency: 2,
      idleTimeout: '5s',
      heartbeatInterval: '500ms',
      heartbeatTtl: '4s',
      lockTtl: '4s',
      lockWait: '2m',
      runnerStartTimeout: '20s',
      launchRate: 4,
      retryBaseDelay: '1s',
      retryFactor: 2,
      retryMaxDelay: '10s',
      maxAttempts: 5,
      shutdownGrace: '10s',
      runnerLogDir: join(work, 'runners'),
      // Runners keep root: the sources' counter files are in this bench's 0700 work dir.
      runnerUser: 'root',
    });
    const { total, maxKills, timeoutMs } = options;
    const result = await run(config, { total, maxKills, timeoutMs, rabbit, redis: redisContainer, dest, work, onScaler: (p) => (scaler = p) });
    const report = { ...result, seconds: Math.round((Date.now() - t0) / 1000) };
    if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else process.stdout.write(`${formatReport(report)}\n`);
    const ok = report.lost === 0 && report.duplicateRows === 0 && report.succeeded + report.deadLettered === report.published && report.wrongReasons === 0;
    if (!ok) say(`FAILED: logs of the scaler and runners are in ${work}${options.keep ? '' : ' (removed; use --keep)'}`);
    return ok ? 0 : 1;
  } finally {
    scaler?.kill('SIGKILL');
    await killRunners(work);
    if (!options.keep) {
      await Promise.all([rabbit.stop(), redisContainer.stop(), dest.drop()]).catch(() => undefined);
      await rm(work, { recursive: true, force: true });
    }
  }
}

interface RunOptions {
  total: number;
  maxKills: number;
  timeoutMs: number;
  rabbit: ServiceContainer;
  redis: ServiceContainer;
  dest: TestDatabase;
  work: string;
  onScaler: (p: ChildProcess) => void;
}

async function run(config: Config, o: RunOptions) {
  const logger = createLogger({ level: 'silent' });
  const redis = createRedis(config.redisUrl, logger);
  const store = createStore(redis, config);
  const topology = topologyFor(config.prefix, config);

  const mix = syncMix(o.total);
  const connections = connectionsFor(o, mix.transient);
  for (const c of connections) await store.connections.apply(c);
  const published = await publishAll(config, topology, logger, mix);
  say(`published ${published.length}: ${mix.normal} ordinary, ${mix.transient} transient, ${mix.permanent} permanent, ${mix.malformed} malformed`);

  const scaler = spawn(process.execPath, [CLI_PATH, 'scaler'], { env: { PATH: process.env.PATH ?? '', ...configEnv(config) }, stdio: ['ignore', 'pipe', 'pipe'] });
  o.onScaler(scaler);
  const syncIds = published.filter((p) => p.kind !== 'malformed').map((p) => p.id);
  const chaos = await untilSettled(scaler, store, syncIds, o);

  // Let in-flight retries and the last runners finish before reading the dead-letter queue.
  scaler.kill('SIGTERM');
  const runs = await store.runs.getMany(syncIds);
  const byId = new Map(runs.map((r, i) => [syncIds[i]!, r]));
  const broker = await connectBroker({ url: config.amqpUrl, logger });
  const { letters } = await listDeadLetters(broker, topology);
  await broker.close();
  const outcomes = checkOutcomes(published, byId, letters);
  const { rows, duplicateRows } = await countRows(connections, o.dest, outcomes.problems);
  await redis.quit().catch(() => redis.disconnect());
  const transientSucceeded = published.filter((p) => p.kind === 'transient' && byId.get(p.id)?.status === 'succeeded').length;
  return {
    published: published.length,
    succeeded: outcomes.succeeded,
    deadLettered: outcomes.deadLettered,
    lost: outcomes.lost,
    duplicateRows,
    ...chaos,
    wrongReasons: outcomes.wrongReasons,
    rows,
    transientMeanAttempts: transientSucceeded > 0 ? Number((outcomes.transientAttempts / transientSucceeded).toFixed(2)) : 0,
    problems: outcomes.problems.slice(0, 30),
  };
}

type Mix = Record<Kind, number>;

/** How many syncs of each kind: 2 % malformed, 5 % permanent, 10 % transient, the rest ordinary. */
function syncMix(total: number): Mix {
  const malformed = Math.round(total * 0.02);
  const permanent = Math.round(total * 0.05);
  const transient = Math.round(total * 0.1);
  return { normal: total - malformed - permanent - transient, transient, permanent, malformed };
}

/**
 * Ordinary connections, one per transient sync (each counts its own failures), and a few that
 * always fail with a config error.
 */
function connectionsFor(o: RunOptions, transient: number): Connection[] {
  const destination = (schema: string): Connection['destination'] => ({ connector: 'destination-postgres', config: { ...o.dest.config, schema } });
  const streams: Connection['streams'] = [{ name: 'items', syncMode: 'incremental', cursorField: ['id'], destinationSyncMode: 'append_dedup', primaryKey: [['id']] }];
  const connections: Connection[] = [];
  for (let i = 0; i < NORMAL_CONNECTIONS; i++) {
    connections.push({ id: `normal-${i}`, source: { connector: 'source-e2e-test', config: { records: RECORDS, stateEvery: 10, delayMs: 15 } }, destination: destination(`normal_${i}`), streams });
  }
  for (let i = 0; i < PERMANENT_CONNECTIONS; i++) {
    connections.push({ id: `permanent-${i}`, source: { connector: 'source-e2e-test', config: { records: 0, then: 'exit', exitCode: 1, failureType: 'config_error', message: 'bad credentials (told to fail)' } }, destination: destination(`permanent_${i}`), streams });
  }
  for (let i = 0; i < transient; i++) {
    connections.push({ id: `transient-${i}`, source: { connector: 'source-e2e-test', config: { records: 10, then: 'transient', failTimes: 2, counterFile: join(o.work, `transient-${i}.count`) } }, destination: destination(`transient_${i}`), streams });
  }
  return connections;
}

/** Publishes every sync before any runner starts, shuffled, so the failures are spread over the run. */
async function publishAll(config: Config, topology: Topology, logger: Logger, mix: Mix): Promise<Published[]> {
  const plan: Kind[] = [...Array<Kind>(mix.normal).fill('normal'), ...Array<Kind>(mix.transient).fill('transient'), ...Array<Kind>(mix.permanent).fill('permanent'), ...Array<Kind>(mix.malformed).fill('malformed')];
  for (let i = plan.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [plan[i], plan[j]] = [plan[j]!, plan[i]!];
  }
  const published: Published[] = [];
  const broker = await connectBroker({ url: config.amqpUrl, logger });
  const channel = await openConfirmChannel(broker, topology, logger);
  let transient = 0;
  for (const kind of plan) {
    if (kind === 'malformed') {
      const messageId = `malformed-${randomBytes(4).toString('hex')}`;
      await confirmPublish(channel, topology.exchange, topology.syncRoutingKey, Buffer.from(`{"this is": not json ${messageId}`), { messageId });
      published.push({ id: messageId, kind });
      continue;
    }
    const connectionId = kind === 'normal' ? `normal-${published.length % NORMAL_CONNECTIONS}` : kind === 'permanent' ? `permanent-${published.length % PERMANENT_CONNECTIONS}` : `transient-${transient++}`;
    const request = newSyncRequest(connectionId, { requestedBy: 'bench:reliability' });
    await publishSync(channel, topology, request);
    published.push({ id: request.syncId, kind, connectionId });
  }
  await broker.close();
  return published;
}

/**
 * The chaos, until every sync is settled or --timeout: runners killed every few seconds (up to
 * --kills), RabbitMQ restarted once 30 % of the syncs are settled and Redis at 60 %.
 */
async function untilSettled(scaler: ChildProcess, store: Store, syncIds: string[], o: RunOptions) {
  let scalerLog = '';
  scaler.stdout?.on('data', (b: Buffer) => (scalerLog = (scalerLog + b.toString()).slice(-200_000)));
  scaler.stderr?.on('data', (b: Buffer) => (scalerLog = (scalerLog + b.toString()).slice(-200_000)));
  let runnersKilled = 0;
  let brokerRestarts = 0;
  let storeRestarts = 0;
  let nextKillAt = Date.now() + 3000;
  const deadline = Date.now() + o.timeoutMs;
  let settled = 0;
  let lastReport = 0;
  for (;;) {
    if (scaler.exitCode !== null) throw new Error(`the scaler exited (${scaler.exitCode}):\n${scalerLog.slice(-4000)}`);
    const runs = await store.runs.getMany(syncIds).catch(() => undefined); // the store may be restarting
    if (runs) settled = runs.filter((r) => r && FINAL_STATUSES.has(r.status)).length;
    if (Date.now() - lastReport > 5000) {
      say(`${settled}/${syncIds.length} syncs settled; ${runnersKilled} runners killed, ${brokerRestarts} broker and ${storeRestarts} store restarts`);
      lastReport = Date.now();
    }
    if (settled === syncIds.length) break;
    if (Date.now() > deadline) {
      say(`timed out after ${o.timeoutMs} ms with ${syncIds.length - settled} syncs not settled`);
      break;
    }
    if (brokerRestarts === 0 && settled >= syncIds.length * 0.3) {
      say('restarting RabbitMQ (down ~3 s)');
      await o.rabbit.restart(3000);
      brokerRestarts++;
    } else if (storeRestarts === 0 && settled >= syncIds.length * 0.6) {
      say('restarting Redis (down ~2 s)');
      await o.redis.restart(2000);
      storeRestarts++;
    } else if (runnersKilled < o.maxKills && Date.now() >= nextKillAt) {
      const pids = await runnerPids(scaler.pid);
      const victim = pids[Math.floor(Math.random() * pids.length)];
      if (victim !== undefined) {
        process.kill(victim, 'SIGKILL');
        runnersKilled++;
      }
      nextKillAt = Date.now() + 2000 + Math.random() * 4000;
    }
    await sleep(500);
  }
  return { runnersKilled, brokerRestarts, storeRestarts };
}

/** Each published sync's fate against what its kind should have had. */
function checkOutcomes(published: Published[], byId: Map<string, RunRecord | undefined>, letters: DeadLetter[]) {
  const lettersById = new Map<string, DeadLetter[]>();
  for (const l of letters) lettersById.set(l.id, [...(lettersById.get(l.id) ?? []), l]);
  const problems: string[] = [];
  let succeeded = 0;
  let deadLettered = 0;
  let lost = 0;
  let wrongReasons = 0;
  let transientAttempts = 0;
  for (const p of published) {
    const run = byId.get(p.id);
    const dead = lettersById.get(p.id) ?? (p.kind === 'malformed' ? letters.filter((l) => l.messageId === p.id) : []);
    const ok = run?.status === 'succeeded';
    if (ok) succeeded++;
    if (dead.length > 0) deadLettered++;
    if (!ok && dead.length === 0) {
      lost++;
      problems.push(`${p.kind} ${p.id} (${p.connectionId ?? ''}): neither succeeded nor dead-lettered (run: ${run?.status ?? 'none'})`);
    }
    if (ok && dead.length > 0) problems.push(`${p.kind} ${p.id}: succeeded AND dead-lettered`);
    if (dead.length > 1) problems.push(`${p.kind} ${p.id}: ${dead.length} dead letters`);
    const expected = expectedOutcome(p.kind);
    if (expected === 'succeeded' && dead.length > 0) {
      wrongReasons++;
      problems.push(`${p.kind} ${p.id} should have succeeded; dead-lettered: ${dead[0]!.reason}`);
    }
    if (expected === 'dead' && ok) problems.push(`${p.kind} ${p.id} should have been dead-lettered; it succeeded`);
    for (const l of dead) {
      const why = reasonProblem(p.kind, l);
      if (why) {
        wrongReasons++;
        problems.push(`${p.kind} ${p.id}: ${why} (reason: ${l.reason})`);
      }
    }
    if (p.kind === 'transient' && ok) transientAttempts += run.attempt;
  }
  return { succeeded, deadLettered, lost, wrongReasons, transientAttempts, problems };
}

/** Rows in the destination tables, and those beyond one per primary key; adds to `problems`. */
async function countRows(connections: Connection[], dest: TestDatabase, problems: string[]): Promise<{ rows: number; duplicateRows: number }> {
  let duplicateRows = 0;
  let rows = 0;
  for (const c of connections) {
    const schema = (c.destination.config as { schema: string }).schema;
    const r = await dest.pool.query<{ n: string; d: string }>(`SELECT count(*) n, count(DISTINCT id) d FROM ${schema}.items`).catch(() => undefined);
    if (!r) continue; // never written (the permanent ones)
    rows += Number(r.rows[0]!.n);
    duplicateRows += Number(r.rows[0]!.n) - Number(r.rows[0]!.d);
  }
  // Every ordinary connection that had a successful sync holds exactly its records once.
  for (let i = 0; i < NORMAL_CONNECTIONS; i++) {
    const r = await dest.pool.query<{ d: string }>(`SELECT count(DISTINCT id) d FROM normal_${i}.items`).catch(() => undefined);
    if (r && Number(r.rows[0]!.d) !== RECORDS) problems.push(`normal-${i}: ${r.rows[0]!.d} distinct rows, expected ${RECORDS}`);
  }
  return { rows, duplicateRows };
}

function expectedOutcome(kind: Kind): 'succeeded' | 'dead' {
  return kind === 'normal' || kind === 'transient' ? 'succeeded' : 'dead';
}

/** Why a dead letter's reason is not the one its kind of sync should produce (undefined: it is). */
function reasonProblem(kind: Kind, letter: DeadLetter): string | undefined {
  if (kind === 'malformed') return letter.type === 'config_error' && /JSON/i.test(letter.reason) ? undefined : 'a malformed message should be dead-lettered as not JSON (config_error)';
  if (kind === 'permanent') {
    return letter.type === 'config_error' && letter.origin === 'source' && letter.attempts === 1 && letter.reason.includes('bad credentials')
      ? undefined
      : 'a permanent failure should be dead-lettered at once as the source\'s config_error';
  }
  return undefined;
}

/** Runner processes of this scaler: its children running `tidepool runner`. */
async function runnerPids(scalerPid: number | undefined): Promise<number[]> {
  if (scalerPid === undefined) return [];
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== scalerPid) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes('\0runner\0')) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Runners outlive the scaler (detached): end the ones whose logs are in this run's directory. */
async function killRunners(work: string): Promise<void> {
  const ids = new Set((await readdir(join(work, 'runners')).catch(() => [] as string[])).map((f) => f.replace(/\.log$/, '')));
  if (ids.size === 0) return;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const id = /\0--runner-id\0([^\0]+)/.exec(cmdline)?.[1];
    if (id && ids.has(id)) {
      try {
        process.kill(Number(entry), 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
}

function formatReport(r: Record<string, unknown>): string {
  return Object.entries(r)
    .map(([k, v]) => `${k.padEnd(22)} ${Array.isArray(v) ? (v.length === 0 ? '-' : `\n  ${v.join('\n  ')}`) : String(v)}`)
    .join('\n');
}

process.exitCode = await runBench(USAGE, parseOptions, main);
