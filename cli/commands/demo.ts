// `tidepool demo`: the whole loop on one machine, visibly. Registers demo connections, publishes
// a batch of syncs, runs a scaler with local runners, shows the pool grow from 0, drain the
// queue and shrink back to 0 as runners hit their idle timeout, then prints a summary.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { Config } from '../../shared/config.js';
import type { Connection } from '../../shared/connections.js';
import { createLogger } from '../../shared/logger.js';
import { newSyncRequest } from '../../shared/messages.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { createRedis } from '../../shared/store/redis.js';
import { tlsFiles } from '../../shared/tls.js';
import { createStore, type Store } from '../../shared/store/index.js';
import { FINAL_STATUSES, type RunRecord } from '../../shared/store/runs.js';
import { parseDuration } from '../../shared/units.js';
import { PACKAGE_ROOT } from '../../shared/paths.js';
import { sleep } from '../../shared/backoff.js';
import { closedAncestor, droppedRunnerUser, giveToRunnerUser } from '../../runner/privileges.js';
import { LocalProcessRunnerLauncher } from '../../scaler/local-process.js';
import { Scaler, type ScalerSnapshot } from '../../scaler/loop.js';
import { CONFIG_OPTION, UsageError, config, openBroker, parse, run, stdio, type Io } from '../common.js';

const USAGE = `usage: tidepool demo [--syncs N] [--max-runners N] [--idle-timeout D] [--json] [options]

Runs tidepool end to end on this machine: registers demo connections (fake data → JSON-lines
files, fake data → PostgreSQL, PostgreSQL → PostgreSQL incremental), publishes N syncs, and
runs a scaler that launches local runners. Shows queue depth, runners, syncs done and records
moved while it runs, then a summary.

  --syncs N          syncs to publish (default 24)
  --max-runners N    pool ceiling (default 4)
  --idle-timeout D   how long a runner waits with nothing to do before it leaves (default 3s)
  --pg-url URL       PostgreSQL for the demo databases (default postgres://tidepool:tidepool@127.0.0.1:5432)
  --out DIR          where the JSON-lines destination writes (default ./.tidepool/demo)
  --timeout D        give up after D (default 10m)
  --json             print only the summary, as one JSON object, on stdout
                     {"published","succeeded","failed","deadLettered","maxRunners","runnersAtEnd","records","seconds"}

The demo uses its own prefix (default "tidepool-demo") so it never mixes with real syncs.`;

export interface DemoSummary {
  published: number;
  succeeded: number;
  /** Syncs that did not succeed (in issue-2 tidepool every such sync is dead-lettered). */
  failed: number;
  deadLettered: number;
  maxRunners: number;
  runnersAtEnd: number;
  records: number;
  seconds: number;
}

const SOURCE_DB = 'tidepool_demo_source';
const DEST_DB = 'tidepool_demo_dest';

interface DemoOptions {
  syncs: number;
  timeoutMs: number;
  cfg: Config;
  pgUrl: string;
  outDir: string;
  json: boolean;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io = stdio): Promise<number> {
  return run(io, USAGE, async () => {
    const options = demoOptions(argv, env);
    if (!options) {
      io.out(USAGE);
      return 0;
    }
    const { syncs, cfg, pgUrl, outDir, json } = options;
    const say = (text: string) => (json ? io.err(text) : io.out(text));
    const logger = createLogger({ level: cfg.logLevel, destination: 2 });

    say(`tidepool demo: ${syncs} syncs, up to ${cfg.maxRunners} runners (concurrency ${cfg.concurrency}, idle timeout ${cfg.idleTimeout} ms), prefix "${cfg.prefix}"`);
    checkRunnerUser(cfg);
    const connections = await prepareDemo(pgUrl, outDir);
    await prepareOutput(connections, outDir, cfg);
    say(`prepared PostgreSQL databases ${SOURCE_DB} → ${DEST_DB}, JSON-lines files in ${outDir}`);

    const redis = createRedis(cfg.redisUrl, logger, { tls: tlsFiles(cfg, 'redis') });
    const store = createStore(redis, cfg);
    const broker = await openBroker(cfg, logger);
    const launcher = new LocalProcessRunnerLauncher(cfg, logger);
    const pool = new PoolWatch();
    const scaler = new Scaler({ config: cfg, logger, launcher, store, onTick: (s) => pool.saw(s) });
    const started = Date.now();
    try {
      for (const c of connections) await store.connections.apply(c);
      say(`registered ${connections.length} connections: ${connections.map((c) => c.id).join(', ')}`);
      const ids = await publishDemoSyncs(broker, connections, syncs);
      say(`published ${syncs} syncs; starting the scaler (poll every ${cfg.pollInterval} ms)`);
      await scaler.start();
      const { done, ...summary } = await watchDemo({ ...options, store, launcher, pool, ids, started, say });
      io.out(json ? JSON.stringify(summary) : describeSummary(summary, cfg));
      const complete = done === syncs && summary.runnersAtEnd === 0;
      if (!complete) io.err(`demo did not finish within ${options.timeoutMs} ms`);
      return complete && summary.succeeded === syncs ? 0 : 1;
    } finally {
      await scaler.stop();
      await broker.close();
      await redis.quit().catch(() => redis.disconnect());
    }
  });
}

/** The demo's options, or undefined for --help. */
function demoOptions(argv: string[], env: NodeJS.ProcessEnv): DemoOptions | undefined {
  const { values } = parse(argv, {
    ...CONFIG_OPTION,
    syncs: { type: 'string' },
    'max-runners': { type: 'string' },
    'idle-timeout': { type: 'string' },
    'pg-url': { type: 'string' },
    out: { type: 'string' },
    timeout: { type: 'string' },
    prefix: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) return undefined;
  const syncs = Number(values.syncs ?? 24);
  if (!Number.isInteger(syncs) || syncs < 1 || syncs > 10_000) throw new UsageError('--syncs must be an integer from 1 to 10000');
  const timeoutMs = parseDuration(values.timeout ?? '10m');
  if (timeoutMs === undefined) throw new UsageError('--timeout: not a duration');
  const cfg = config(env, values.config, {
    prefix: values.prefix ?? 'tidepool-demo',
    maxRunners: values['max-runners'] ?? 4,
    idleTimeout: values['idle-timeout'] ?? '3s',
    ...(env.TIDEPOOL_LOG_LEVEL ? {} : { logLevel: 'warn' as const }),
  });
  return {
    syncs,
    timeoutMs,
    cfg,
    pgUrl: values['pg-url'] ?? 'postgres://tidepool:tidepool@127.0.0.1:5432',
    outDir: resolve(values.out ?? '.tidepool/demo'),
    json: values.json ?? false,
  };
}

/** The pool as the scaler last saw it, and the largest it has been. */
class PoolWatch {
  last: ScalerSnapshot | undefined;
  max = 0;
  saw(s: ScalerSnapshot): void {
    this.last = s;
    this.max = Math.max(this.max, s.running + s.starting);
  }
}

/** Publishes `syncs` syncs round-robin over the connections; returns their ids. */
async function publishDemoSyncs(broker: Awaited<ReturnType<typeof openBroker>>, connections: Connection[], syncs: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < syncs; i++) {
    const connection = connections[i % connections.length]!;
    const request = newSyncRequest(connection.id, { requestedBy: 'demo' });
    await publishSync(broker.channel, broker.topology, request);
    ids.push(request.syncId);
  }
  return ids;
}

interface Watch extends DemoOptions {
  store: Store;
  launcher: LocalProcessRunnerLauncher;
  pool: PoolWatch;
  ids: string[];
  started: number;
  say: (text: string) => void;
}

/** Shows progress once a second until every sync ended and the pool is back to 0 (or the timeout). */
async function watchDemo(w: Watch): Promise<DemoSummary & { done: number }> {
  const tally = { done: 0, succeeded: 0, deadLettered: 0, records: 0 };
  const tty = !w.json && process.stdout.isTTY;
  const progress = () => {
    const s = w.pool.last;
    const line = `[${((Date.now() - w.started) / 1000).toFixed(1).padStart(5)}s] queue ${String(s?.ready ?? '?').padStart(4)} ready | runners ${s?.running ?? 0} running, ${s?.starting ?? 0} starting | syncs ${tally.done}/${w.syncs} done (${tally.deadLettered} dead-lettered) | records ${tally.records.toLocaleString('en-US')}`;
    if (tty) process.stdout.write(`\r${line}\x1b[K`);
    else w.say(line);
  };
  const deadline = w.started + w.timeoutMs;
  let runnersAtEnd = -1;
  while (Date.now() < deadline) {
    await sleep(1000);
    Object.assign(tally, countRuns(await w.store.runs.getMany(w.ids)));
    progress();
    const pool = (w.pool.last?.running ?? 1) + (w.pool.last?.starting ?? 1);
    const alive = (await w.launcher.list()).filter((r) => r.phase !== 'finished').length;
    if (tally.done === w.syncs && pool === 0 && alive === 0) {
      runnersAtEnd = 0;
      break;
    }
  }
  if (tty) process.stdout.write('\n');
  if (runnersAtEnd < 0) runnersAtEnd = (w.pool.last?.running ?? 0) + (w.pool.last?.starting ?? 0);
  return {
    published: w.syncs,
    succeeded: tally.succeeded,
    failed: w.syncs - tally.succeeded,
    deadLettered: tally.deadLettered,
    maxRunners: w.pool.max,
    runnersAtEnd,
    records: tally.records,
    seconds: Math.round((Date.now() - w.started) / 100) / 10,
    done: tally.done,
  };
}

function countRuns(runs: (RunRecord | undefined)[]): { done: number; succeeded: number; deadLettered: number; records: number } {
  const tally = { done: 0, succeeded: 0, deadLettered: 0, records: 0 };
  for (const r of runs) {
    if (!r) continue;
    tally.records += r.records;
    if (!FINAL_STATUSES.has(r.status)) continue;
    tally.done++;
    if (r.status === 'succeeded') tally.succeeded++;
    else tally.deadLettered++;
  }
  return tally;
}

function describeSummary(summary: DemoSummary, cfg: Config): string {
  return [
    '',
    `summary: ${summary.succeeded}/${summary.published} syncs succeeded, ${summary.deadLettered} dead-lettered, ${summary.records.toLocaleString('en-US')} records moved in ${summary.seconds} s`,
    `         pool grew from 0 to ${summary.maxRunners} runners and ended at ${summary.runnersAtEnd}`,
    `         see: tidepool runs --limit 10   (with TIDEPOOL_PREFIX=${cfg.prefix})`,
    `         runner logs: ${cfg.runnerLogDir}`,
  ].join('\n');
}

/**
 * Started as root, the demo's runners run as the runner user (runner/privileges.ts), which must
 * reach tidepool's files (a checkout under /root is closed to it): said now, not after every
 * runner the scaler launches has stopped at start.
 */
function checkRunnerUser(cfg: Config): void {
  const user = droppedRunnerUser(cfg);
  const closed = user && closedAncestor(join(PACKAGE_ROOT, 'dist'), user);
  if (closed) {
    throw new Error(`tidepool is in ${PACKAGE_ROOT}, under ${closed}, which the runner user ${user.name} cannot enter: put the checkout where it can (e.g. /opt/tidepool), or set TIDEPOOL_RUNNER_USER=root to keep root for the demo's runners`);
  }
}

/**
 * Makes the JSON-lines destinations' directories, each given to the user the demo's runners run
 * as (runner/privileges.ts): started as root, the demo runs its runners as another user, whose
 * connectors write there.
 */
async function prepareOutput(connections: Connection[], outDir: string, cfg: Config): Promise<void> {
  const dirs = connections.filter((c) => c.destination.connector === 'destination-jsonl').map((c) => String(c.destination.config.destination_path));
  for (const dir of [outDir, ...dirs]) {
    await mkdir(dir, { recursive: true });
    try {
      giveToRunnerUser(dir, cfg);
    } catch (err) {
      throw new Error(`${(err as Error).message}: give --out a directory it can reach (e.g. /tmp/tidepool-demo)`);
    }
  }
}

/** Creates the demo databases (idempotently), adds fresh source rows, and returns the connections. */
async function prepareDemo(pgUrl: string, outDir: string): Promise<Connection[]> {
  const url = new URL(pgUrl);
  const urlFor = (database: string) => Object.assign(new URL(url.href), { pathname: `/${database}` }).href;
  const admin = new pg.Client({ connectionString: urlFor('postgres') });
  await admin.connect().catch((err: unknown) => {
    throw new Error(`cannot connect to PostgreSQL at ${url.host} as ${url.username}: ${(err as Error).message} (scripts/setup starts it and creates the role)`);
  });
  try {
    for (const db of [SOURCE_DB, DEST_DB]) {
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db]);
      if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${db}`);
    }
  } finally {
    await admin.end();
  }
  const source = new pg.Client({ connectionString: urlFor(SOURCE_DB) });
  await source.connect();
  try {
    await source.query(`CREATE TABLE IF NOT EXISTS orders (
      id bigserial PRIMARY KEY,
      customer text NOT NULL,
      amount numeric(10,2) NOT NULL,
      status text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now())`);
    // Every demo adds rows, so the incremental connection has something new to move.
    await source.query(`INSERT INTO orders (customer, amount, status, updated_at)
      SELECT 'customer-' || (g % 97), round((random() * 500)::numeric, 2), (ARRAY['new','paid','shipped'])[1 + g % 3],
             now() + (g || ' milliseconds')::interval
      FROM generate_series(1, 2000) AS g`);
  } finally {
    await source.end();
  }
  const pgConfig = (database: string, schema: string) => ({
    host: url.hostname,
    port: Number(url.port || 5432),
    database,
    username: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    schema,
  });
  const connections: Connection[] = [];
  for (let i = 1; i <= 4; i++) {
    connections.push({
      id: `demo-faker-jsonl-${i}`,
      description: 'fake users and purchases → JSON-lines files (full refresh)',
      source: { connector: 'source-faker', config: { seed: i, count: 2000, purchasesPerUser: 2 } },
      destination: { connector: 'destination-jsonl', config: { destination_path: `${outDir}/faker-${i}` } },
      streams: [
        { name: 'users', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' },
        { name: 'purchases', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' },
      ],
    });
  }
  for (let i = 1; i <= 2; i++) {
    connections.push({
      id: `demo-faker-postgres-${i}`,
      description: 'fake users → PostgreSQL (upsert by id)',
      source: { connector: 'source-faker', config: { seed: 100 + i, count: 3000 } },
      destination: { connector: 'destination-postgres', config: pgConfig(DEST_DB, `faker_${i}`) },
      streams: [{ name: 'users', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }],
    });
  }
  for (let i = 1; i <= 2; i++) {
    connections.push({
      id: `demo-postgres-postgres-${i}`,
      description: 'orders table → PostgreSQL, incremental by updated_at',
      source: { connector: 'source-postgres', config: pgConfig(SOURCE_DB, 'public') },
      destination: { connector: 'destination-postgres', config: pgConfig(DEST_DB, `mirror_${i}`) },
      streams: [{ name: 'orders', syncMode: 'incremental', cursorField: ['updated_at'], destinationSyncMode: 'append_dedup' }],
    });
  }
  return connections;
}
