// Scaling, measured: one seeded trace (bench/support/scaling-trace.ts, the simulator's) replayed
// on the test cluster through each scaler in turn — tidepool's own scaler with the runner-Job
// launcher, and KEDA's ScaledJob (scripts/keda) in its 12 configurations — with the same runner
// image, settings, connectors and RBAC (the ScaledJob's Job is tidepool's runner Job):
//
//   npm run bench:scaling -- [--json] [--seed 1] [--trace cluster|issue] [--compress F]
//                            [--scalers default|all|keda|NAME,...] [--max-runners 8]
//                            [--idle-window 20s] [--drain-limit 4m] [--time-limit D] [--connector-pods]
//                            [--keep]
//
// Each scaler gets a fresh namespace (k8s/base's RBAC, the credentials Secret) and prefix, one
// connection per sync of the trace (source-e2e-test, `records` × `delayMs` long, catalog and
// checks cached), and is set up before its window opens: tidepool's scaler runs in this process
// (Lease leadership, as bench:k8s), a ScaledJob is applied and Ready. Then the trace is
// published in real time, and the window closes once every sync is final and every runner has
// exited. Per scaler, the figures of bench/support/scaling-figures.ts, as the simulator defines them:
// wait p50/p95/max (publish → run start, from the run records in Redis), runner-seconds (runner
// pod lifetimes, from a watch on the runner Jobs and pods), efficiency, Jobs launched, duplicate
// launches (runners that exited having run nothing: run records carry the runner id), syncs lost;
// and the API server's own request count over the window, less the cluster's idle rate (measured
// once, with KEDA's operator up and nothing of ours running) and the bench's own lists.
//
// Connectors run as processes inside the runner pod by default (the runner image carries them):
// with connector pods, each sync's two pod starts would swamp both a 2-core node and the API
// counts with work that is the same whoever scales. --connector-pods runs them as shipped.
//
// Prints one JSON object (--json) or the table on stdout; the table and progress go to stderr.
// Every row is also printed as a progress line when its scaler is done, so a run cut short
// still says what it measured. Exits 1 if a sync was lost or a scaler's replay failed.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubernetesObjectApi } from '@kubernetes/client-node';
import type { Redis } from 'ioredis';
import { sleep } from '../shared/backoff.js';
import { loadConfig, type Config } from '../shared/config.js';
import type { Connection } from '../shared/connections.js';
import { kubeErrorMessage, loadKubeConfig } from '../shared/kube.js';
import { createLogger } from '../shared/logger.js';
import type { AirbyteCatalog } from '../shared/protocol.js';
import { createRedis } from '../shared/store/redis.js';
import { createStore, type Store } from '../shared/store/index.js';
import { FINAL_STATUSES, type RunRecord } from '../shared/store/runs.js';
import { formatDuration } from '../shared/units.js';
import { KubernetesLease } from '../scaler/leadership/lease.js';
import { Scaler } from '../scaler/loop.js';
import { apiCost, measureIdle, scrapeApiRequests, subtract, type Counters } from './support/api-requests.js';
import { applyWithCache, discoverLocally } from './support/catalogs.js';
import { cleanUpOnSignal, durationOption, integerOption, progress, readArgs, runBench } from './support/cli.js';
import { CLUSTER, createRunnerNamespace, deleteNamespaceAndWait, inClusterSettings, runnerJobLauncher, SYSTEM_NAMESPACES } from './support/cluster.js';
import { deleteScaledJob, kedaHost, kedaRunning, kedaTriggerAuth, scaledJob, waitScaledJobReady } from './support/keda.js';
import { openSyncPublisher, type SyncPublisher } from './support/publisher.js';
import { RunnerWatch } from './support/runner-watch.js';
import { pickScalers, scalingTable, summarizeRows, type ClusterScaler, type ScalerRow } from './support/scaling-report.js';
import { clusterOutcome, figures, type ObservedRun } from './support/scaling-figures.js';
import { CLUSTER_TRACE_SHAPE, compressShape, DEFAULT_TRACE_SHAPE, generateTrace, type ScalingTrace, type TraceSync } from './support/scaling-trace.js';
import { deletePrefix } from './support/services.js';
import { median } from './support/stats.js';
import { foreignSeconds, foreignTicks } from './support/cpu.js';

const USAGE = `usage: npm run bench:scaling -- [--json] [--seed N] [--trace cluster|issue] [--compress F]
                                [--scalers LIST] [--max-runners N] [--idle-window D]
                                [--drain-limit D] [--time-limit D] [--connector-pods] [--keep]

Replays one seeded trace on the scripts/cluster cluster through tidepool's scaler and KEDA's
ScaledJob (scripts/keda up) in 12 configurations, one after the other; per scaler: wait
p50/p95/max, runner-seconds, efficiency, Jobs launched, duplicate launches, API requests, syncs lost.

  --seed N          the trace's seed (default 1)
  --trace T         cluster: ${CLUSTER_TRACE_SHAPE.syncs} syncs over ${CLUSTER_TRACE_SHAPE.spanMs / 1000} s, sized for a 2-core node (default);
                    issue: issue 14's ${DEFAULT_TRACE_SHAPE.syncs} syncs over ${DEFAULT_TRACE_SHAPE.spanMs / 60_000} min (use --max-runners 40)
  --compress F      play the trace F times faster: span, bursts and durations divided by F (default 1)
  --scalers LIST    comma-separated: default (tidepool and the 12 KEDA configs), all (and tidepool
                    with TIDEPOOL_IDLE_MINIMUM=5s), keda (the 12), or names such as tidepool,
                    tidepool-idle-minimum-5s, keda-default-amqp-30s, keda-eager-http-1s
  --max-runners N   tidepool's maxRunners and the ScaledJob's maxReplicaCount (default 8)
  --idle-window D   how long the cluster's idle API request rate is measured (default 20s)
  --drain-limit D   how long past the trace's span a replay may take before its unfinished
                    syncs count as lost (default 4m)
  --time-limit D    start no replay that would end (at the pace so far) more than D after the
                    bench started; the JSON lists those not run (default: no limit)
  --connector-pods  connectors in pods of their own, as shipped (default: processes in the runner pod)
  --json            print one JSON object on stdout
  --keep            keep each scaler's namespace, queues and Redis keys`;

interface Options {
  seed: number;
  trace: 'cluster' | 'issue';
  compress: number;
  scalers: ClusterScaler[];
  maxRunners: number;
  idleWindowMs: number;
  drainLimitMs: number;
  timeLimitMs: number | undefined;
  connectorPods: boolean;
  json: boolean;
  keep: boolean;
}

function parseOptions(argv: string[]): Options | undefined {
  const values = readArgs(argv, {
    seed: 'string',
    trace: 'string',
    compress: 'string',
    scalers: 'string',
    'max-runners': 'string',
    'idle-window': 'string',
    'drain-limit': 'string',
    'time-limit': 'string',
    'connector-pods': 'boolean',
    json: 'boolean',
    keep: 'boolean',
  });
  if (!values) return undefined;
  const trace = values.trace ?? 'cluster';
  if (trace !== 'cluster' && trace !== 'issue') throw new Error(`--trace must be cluster or issue (got ${trace})`);
  const compress = Number(values.compress ?? 1);
  if (!(compress >= 1)) throw new Error(`--compress must be a number ≥ 1 (got ${values.compress ?? ''})`);
  return {
    seed: integerOption('seed', values.seed, 1, 0),
    trace,
    compress,
    scalers: pickScalers(values.scalers ?? 'default'),
    maxRunners: integerOption('max-runners', values['max-runners'], 8, 1),
    idleWindowMs: durationOption('idle-window', values['idle-window'], 20_000),
    drainLimitMs: durationOption('drain-limit', values['drain-limit'], 4 * 60_000),
    timeLimitMs: values['time-limit'] === undefined ? undefined : durationOption('time-limit', values['time-limit'], 0),
    connectorPods: values['connector-pods'] ?? false,
    json: values.json ?? false,
    keep: values.keep ?? false,
  };
}

/** The runners' concurrency: the trigger's messages per Job too. */
const CONCURRENCY = 2;
const IDLE_TIMEOUT = '30s';
const SCALED_JOB = 'tidepool-runners';
const TRIGGER_AUTH = 'keda-rabbitmq';
/** A replay is over once every sync is final and no runner is alive for this long (a Job created meanwhile shows in the watch). */
const SETTLED_MS = 5_000;
/** Runner pods failed before a replay gives up: a runner image older than this code refuses settings it does not know. */
const FAILED_RUNNERS_LIMIT = 3;
const PROGRESS_EVERY_MS = 15_000;

/** Everything one scaler's replay uses; removed by teardown. */
interface Replay {
  scaler: ClusterScaler;
  namespace: string;
  config: Config;
  store: Store;
  publisher: SyncPublisher;
  watch: RunnerWatch;
  /** Stops tidepool's scaler or deletes the ScaledJob: nothing launches after. */
  stopScaling: () => Promise<void>;
}

class ScalingBench {
  readonly id = randomBytes(3).toString('hex');
  private readonly kc = loadKubeConfig(CLUSTER.kubeconfig);
  private readonly core = this.kc.makeApiClient(CoreV1Api);
  private readonly logger = createLogger({ level: 'warn', destination: 2 });
  /** The host's broker and store (the bench's side); runner pods get them at the node address. */
  private readonly host = loadConfig({});
  private readonly redis: Redis;
  readonly trace: ScalingTrace;
  private dir = '';
  private catalog: AirbyteCatalog | undefined;
  private idle: { idle: Counters; idleMs: number } | undefined;
  /** What the replay under way made, to undo (prepare fills it). */
  private undo: (() => Promise<void>)[] = [];

  constructor(private readonly options: Options) {
    this.redis = createRedis(this.host.redisUrl, this.logger);
    const shape = compressShape(options.trace === 'issue' ? DEFAULT_TRACE_SHAPE : CLUSTER_TRACE_SHAPE, options.compress);
    this.trace = generateTrace(options.seed, shape);
  }

  /** The cluster answers, KEDA runs (when a KEDA row is asked for), the source's catalog, the idle API rate. */
  async setup(): Promise<void> {
    try {
      await this.core.listNamespace({ limit: 1 });
    } catch (err) {
      throw new Error(`the cluster (${CLUSTER.kubeconfig}) does not answer: ${kubeErrorMessage(err)}; run scripts/cluster up`, { cause: err });
    }
    if (this.options.scalers.some((s) => s.keda)) await kedaRunning();
    this.dir = await mkdtemp(join(tmpdir(), `tidepool-bench-scaling-${this.id}-`));
    this.catalog = await discoverLocally('source-e2e-test', {}, this.dir);
    progress(`run ${this.id}: measuring the cluster's idle API request rate for ${formatDuration(this.options.idleWindowMs)}…`);
    this.idle = await measureIdle(this.kc, this.options.idleWindowMs);
    const rate = [...this.idle.idle.values()].reduce((a, b) => a + b, 0) / (this.idle.idleMs / 1000);
    progress(`idle rate ${rate.toFixed(2)} requests/s`);
  }

  /** The settings of one scaler's runners (and of tidepool's scaler): the same for every scaler but the opt-in leave rule. */
  private configFor(index: number, scaler: ClusterScaler): Config {
    return loadConfig({}, undefined, {
      prefix: `scaling-${this.id}-${index}`,
      namespace: `tp-scaling-${this.id}-${index}`,
      ...inClusterSettings(this.host),
      ...(this.options.connectorPods ? {} : { connectorLauncher: 'local' as const }),
      credentialsSecret: 'tidepool-credentials',
      concurrency: CONCURRENCY,
      maxRunners: this.options.maxRunners,
      idleTimeout: IDLE_TIMEOUT,
      ...(scaler.idleMinimum ? { idleMinimum: scaler.idleMinimum } : {}),
      logLevel: 'warn',
    });
  }

  /** One connection per sync of the trace: each its own duration (records × delayMs). */
  private connectionOf(sync: TraceSync): Connection {
    return {
      id: `${sync.connectionId}-${sync.syncId}`,
      description: 'tidepool scaling bench',
      source: { connector: 'source-e2e-test', config: { records: sync.records, delayMs: sync.delayMs, stateEvery: 50 } },
      destination: { connector: 'destination-e2e-test', config: {} },
      streams: [{ name: 'items', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }],
    };
  }

  /**
   * Namespace, connections, publisher (which declares the queue), the watch, and the scaler up
   * and waiting. What is made is undone by teardown in reverse order, a failure halfway included.
   */
  private async prepare(index: number, scaler: ClusterScaler): Promise<Replay> {
    const config = this.configFor(index, scaler);
    const namespace = config.namespace;
    const undo: (() => Promise<void>)[] = [];
    this.undo = undo;
    undo.push(() => this.removeEnvironment(config));
    await createRunnerNamespace(this.kc, namespace, config);
    const store = createStore(this.redis, config);
    for (const s of this.trace.syncs) await applyWithCache(store, this.connectionOf(s), this.catalog!);
    const publisher = await openSyncPublisher(this.host.amqpUrl, config, this.logger, 'bench-scaling');
    undo.push(publisher.close);
    const watch = new RunnerWatch(this.kc, namespace, this.logger);
    undo.push(() => watch.stop().catch(() => undefined));
    await watch.start();
    const replay: Replay = { scaler, namespace, config, store, publisher, watch, stopScaling: () => Promise.resolve() };
    const stop = scaler.keda ? await this.startKeda(replay) : await this.startTidepool(replay);
    let stopped: Promise<void> | undefined;
    replay.stopScaling = () => (stopped ??= stop());
    undo.push(replay.stopScaling);
    return replay;
  }

  private async startTidepool({ config, store, namespace }: Replay): Promise<() => Promise<void>> {
    const launcher = runnerJobLauncher(this.kc, config, 'tp-runner', this.logger);
    const scaler = new Scaler({ config, logger: this.logger, launcher, store, leadership: (id) => new KubernetesLease(this.kc, namespace, `${config.prefix}-scaler`, id, 10_000) });
    await launcher.start();
    await scaler.start();
    return async () => {
      await scaler.stop().catch((err: unknown) => progress(`warning: stopping the scaler: ${(err as Error).message}`));
      await launcher.close().catch(() => undefined);
    };
  }

  private async startKeda({ scaler, config, namespace, publisher }: Replay): Promise<() => Promise<void>> {
    const keda = scaler.keda!;
    const objects = this.kc.makeApiClient(KubernetesObjectApi);
    for (const o of kedaTriggerAuth(TRIGGER_AUTH, namespace, kedaHost(this.host.amqpUrl, keda.mode))) await objects.create(o);
    const launcher = runnerJobLauncher(this.kc, config, 'keda-runner', this.logger);
    await objects.create(
      scaledJob(launcher, {
        name: SCALED_JOB,
        namespace,
        strategy: keda.strategy,
        mode: keda.mode,
        pollingIntervalS: keda.pollingIntervalS,
        maxReplicaCount: this.options.maxRunners,
        value: CONCURRENCY,
        queueName: publisher.topology.syncsQueue,
        authenticationRef: TRIGGER_AUTH,
      }),
    );
    await waitScaledJobReady(this.kc, namespace, SCALED_JOB);
    return () => deleteScaledJob(this.kc, namespace, SCALED_JOB).catch((err: unknown) => progress(`warning: deleting the ScaledJob: ${kubeErrorMessage(err)}`));
  }

  /** Publishes the trace in real time from `t0`, adding each sync id to `syncIds` as it goes out. */
  private publishTrace(replay: Replay, t0: number, syncIds: string[]): Promise<void> {
    return (async () => {
      for (const s of this.trace.syncs) {
        const wait = t0 + s.atMs - Date.now();
        if (wait > 0) await sleep(wait);
        syncIds.push((await replay.publisher.publish(this.connectionOf(s).id)).syncId);
      }
    })();
  }

  /** Replays the trace through one scaler and measures it; the namespace and prefix go afterwards. */
  async replay(index: number, scaler: ClusterScaler): Promise<ScalerRow> {
    const label = `[${index + 1}/${this.options.scalers.length}] ${scaler.name}`;
    const setupT0 = Date.now();
    try {
      const replay = await this.prepare(index, scaler);
      progress(`${label}: ready in ${((Date.now() - setupT0) / 1000).toFixed(1)} s (namespace ${replay.namespace}); replaying ${this.trace.syncs.length} syncs over ${formatDuration(this.trace.spanMs)}`);
      return await this.measure(label, replay);
    } finally {
      await this.teardown();
    }
  }

  private async measure(label: string, replay: Replay): Promise<ScalerRow> {
    const { watch, store } = replay;
    const othersBefore = await this.otherNamespaces();
    const listsBefore = watch.lists;
    const before = await scrapeApiRequests(this.kc);
    const cpuBefore = await foreignTicks();
    const t0 = Date.now();
    const syncIds: string[] = [];
    let published = false;
    let publishFailed: Error | undefined;
    const publishing = this.publishTrace(replay, t0, syncIds).then(
      () => void (published = true),
      (err: unknown) => void (publishFailed = err as Error),
    );
    const deadline = t0 + this.trace.spanMs + this.options.drainLimitMs;
    let settledSince: number | undefined;
    let lastReport = t0;
    let runs: (RunRecord | undefined)[] = [];
    for (;;) {
      await sleep(1000);
      if (publishFailed) throw new Error(`publishing the trace: ${publishFailed.message}`);
      runs = await store.runs.getMany(syncIds);
      const final = runs.filter((r) => r && FINAL_STATUSES.has(r.status)).length;
      const now = Date.now();
      if (now - lastReport >= PROGRESS_EVERY_MS) {
        lastReport = now;
        progress(`${label}: ${Math.round((now - t0) / 1000)} s: published ${syncIds.length}/${this.trace.syncs.length}, final ${final}, runners alive ${watch.alive()}, launched ${watch.launched}`);
      }
      const failed = watch.failedPods();
      if (failed.length >= FAILED_RUNNERS_LIMIT) throw new Error(`${failed.length} runner pods failed: ${await this.logTail(replay.namespace, failed[0]!)}`);
      const done = published && final === syncIds.length && watch.allEnded();
      settledSince = done ? (settledSince ?? now) : undefined;
      if (settledSince !== undefined && now - settledSince >= SETTLED_MS) break;
      if (now > deadline) {
        progress(`${label}: warning: --drain-limit reached with ${syncIds.length - final} sync(s) not final and ${watch.alive()} runner(s) alive`);
        break;
      }
    }
    // The window ends where the pool was last seen empty, not SETTLED_MS later.
    const endAt = settledSince ?? Date.now();
    const after = await scrapeApiRequests(this.kc);
    const windowMs = Date.now() - t0;
    const otherCpu = foreignSeconds(cpuBefore, await foreignTicks());
    await replay.stopScaling();
    await publishing;
    const othersAfter = await this.otherNamespaces();
    const observed = runs.map((r): ObservedRun | undefined => r && { requestedAt: Date.parse(r.requestedAt), status: r.status, runnerId: r.runnerId, startedAt: Date.parse(r.startedAt), finishedAt: r.finishedAt ? Date.parse(r.finishedAt) : undefined });
    const lostUnpublished = this.trace.syncs.length - syncIds.length;
    const outcome = clusterOutcome([...observed, ...Array<undefined>(lostUnpublished).fill(undefined)], watch.observed(), endAt);
    const own = watch.lists - listsBefore + 1; // the watches' relists, and the closing scrape
    const cost = apiCost(subtract(after, before), this.idle!.idle, windowMs / this.idle!.idleMs, own, 1);
    return {
      scaler: replay.scaler.name,
      family: replay.scaler.family,
      ...figures(outcome, CONCURRENCY),
      apiRequests: Math.round(cost.netRequests),
      apiRequestsByResource: Object.fromEntries(Object.entries(cost.byCategory).map(([k, v]) => [k, Math.round(v)])),
      peakRunners: watch.peakRunners,
      podStartP50S: Math.round(median(watch.startTimes()) / 100) / 10,
      otherCpuSeconds: Math.round(otherCpu.seconds),
      poolEmptyAfterS: Math.round((endAt - t0) / 100) / 10,
      otherNamespaces: [...new Set([...othersBefore, ...othersAfter])],
    };
  }

  private async logTail(namespace: string, pod: string): Promise<string> {
    const tail = await this.core.readNamespacedPodLog({ name: pod, namespace, tailLines: 5 }).catch((err: unknown) => `(no log: ${kubeErrorMessage(err)})`);
    return `the end of ${pod}'s log:\n${tail.slice(0, 2000)}`;
  }

  /** Namespaces that are neither the cluster's nor this run's: someone else's work, in the API figures. */
  private async otherNamespaces(): Promise<string[]> {
    const list = await this.core.listNamespace();
    return list.items.map((n) => n.metadata?.name ?? '').filter((n) => n && !SYSTEM_NAMESPACES.has(n) && !n.startsWith(`tp-scaling-${this.id}-`));
  }

  /** Undoes what the current replay's prepare made, last first. */
  private async teardown(): Promise<void> {
    const undo = this.undo;
    this.undo = [];
    for (const step of undo.reverse()) await step();
  }

  private async removeEnvironment(config: Config): Promise<void> {
    if (this.options.keep) {
      progress(`--keep: namespace ${config.namespace}, prefix ${config.prefix}`);
      return;
    }
    const t0 = Date.now();
    // Waited for: the next scaler's window must not hold this namespace's deletion.
    await deleteNamespaceAndWait(this.kc, config.namespace).catch((err: unknown) => progress(`warning: ${kubeErrorMessage(err)}`));
    await deletePrefix(config).catch((err: unknown) => progress(`warning: prefix ${config.prefix}: ${(err as Error).message}`));
    progress(`namespace ${config.namespace} and prefix removed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  /** On a signal or a failure outside a replay: what the current replay made, the temp dir, the store connection. */
  async cleanup(): Promise<void> {
    await this.teardown().catch((err: unknown) => progress(`warning: cleanup: ${(err as Error).message}`));
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

async function main(opts: Options): Promise<number> {
  const started = Date.now();
  const bench = new ScalingBench(opts);
  const signals = cleanUpOnSignal(() => bench.cleanup());
  const rows: ScalerRow[] = [];
  const notRun: string[] = [];
  try {
    await bench.setup();
    const replaysFrom = Date.now();
    for (const [i, scaler] of opts.scalers.entries()) {
      // A replay takes about what the ones before took: one that would end past --time-limit is not started.
      const perReplay = i > 0 ? (Date.now() - replaysFrom) / i : 0;
      if (opts.timeLimitMs !== undefined && Date.now() + perReplay > started + opts.timeLimitMs) {
        notRun.push(...opts.scalers.slice(i).map((s) => s.name));
        progress(`--time-limit: not replaying ${notRun.join(', ')} (a replay takes ~${formatDuration(perReplay)})`);
        break;
      }
      try {
        rows.push(await bench.replay(i, scaler));
      } catch (err) {
        progress(`${scaler.name}: FAILED: ${(err as Error).message}`);
        rows.push({ scaler: scaler.name, family: scaler.family, error: (err as Error).message });
      }
      progress(`row: ${JSON.stringify(rows.at(-1))}`);
    }
  } catch (err) {
    process.stderr.write(`bench: FAILED: ${(err as Error).message}\n`);
    return 1;
  } finally {
    if (!signals.interrupted()) await bench.cleanup();
  }
  const summary = summarizeRows(rows);
  const table = scalingTable(rows, summary);
  const result = {
    seed: opts.seed,
    trace: { name: opts.trace, compress: opts.compress, syncs: bench.trace.syncs.length, spanMs: bench.trace.spanMs },
    settings: { concurrency: CONCURRENCY, maxRunners: opts.maxRunners, idleTimeout: IDLE_TIMEOUT, connectors: opts.connectorPods ? 'pods' : 'runner pod processes' },
    rows,
    ...(notRun.length > 0 ? { notRun } : {}),
    ...summary,
    benchDurationMs: Date.now() - started,
  };
  process.stderr.write(`${table}\n`);
  process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${table}\n`);
  return rows.some((r) => 'error' in r || (r.lost ?? 0) > 0) ? 1 : 0;
}

const code = await runBench(USAGE, parseOptions, main);
// Informers, sockets or a hung call left by a failure must not keep the process alive.
process.exit(code);
