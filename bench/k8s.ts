// Kubernetes benchmark, on the real single-node cluster of scripts/cluster:
//
//   npm run bench:k8s -- [--batches 10,40] [--users 300] [--records 300000] [--rounds 3]
//                        [--stdio direct|sidecar] [--idle-window 20s] [--retries 2] [--timeout 20m]
//                        [--json] [--keep]
//
// 1. Latency and API cost. For each batch size N (10, then 40): a fresh namespace (runner RBAC
//    exactly as k8s/base/rbac.yaml ships it) and TIDEPOOL prefix; N connections source-faker
//    (--users users) → destination-e2e-test, one sync each, catalogs cached as in steady state
//    (no discover pod), connector specs carried over from the batch before (no spec pods but
//    in the first batch). N syncs are published, then a scaler starts in this process with the
//    kubernetes-job RunnerLauncher and Lease leadership (maxRunners 4, concurrency 2, runners
//    leave after 5 s idle); the batch is done when every run record is final, every runner Job
//    finished and no connector pod is left. publish → first record (run.firstRecordMs) is
//    pooled over every sync of every batch for p50/p95.
//    API requests are the API server's own counters (sum of every apiserver_request_total
//    sample of GET /metrics) scraped before publishing and once the batch is done. The cluster's
//    own components (kubelet, controllers, scheduler, leader leases) make requests all the time,
//    so their rate is measured first over --idle-window with nothing of ours running, and
//    idle rate × batch duration is subtracted (per resource and verb, which gives the
//    breakdown). The bench's own few requests inside the window are subtracted too. Other work
//    on the cluster meanwhile (someone's test namespace) is reported: it skews these figures.
// 2. Orphans: connector pods (app.kubernetes.io/component=connector) left in each batch's
//    namespace once its runners are gone (after up to 30 s for pods still terminating).
// 3. Throughput: one sync of --records source-faker users → destination-jsonl, (a) through a
//    runner Job whose connectors run in pods (stdio as --stdio says, to the runner's stream port) writing
//    the pod's /tmp emptyDir, and (b) through a local `tidepool runner` process with local
//    connector processes writing a temp dir; --rounds of each, alternately (the first mode
//    alternates per round); medians. A mode's throughput is records / (finishedAt − (requestedAt + firstRecordMs)): the steady
//    state after the first record, so pod start-up is not in it; the k8s run's firstRecordMs
//    (Job, runner pod, connector pods, first record) is reported as podStartupMs.
//    This VM has 2 cores and is shared: before each round the bench waits (up to 30 s) for the
//    CPU to be quiet, and it counts the CPU time other people's processes used during the round
//    (every process but this one's descendants, the cluster's binaries, containerd, runc,
//    anything in a kubepods cgroup, kernel threads); a disturbed round is run again, up to
//    --retries times, and the least disturbed attempt is kept (bench/support/rounds.ts).
//    Pods of someone else's test on the same cluster count as ours: the API figures name them.
//
// Everything is removed at the end, on failure too (namespaces, queues and Redis keys of every
// prefix, the temp dir), unless --keep. The whole run is bounded by --timeout.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import type { ConfirmChannel } from 'amqplib';
import type { Redis } from 'ioredis';
import { sleep } from '../shared/backoff.js';
import { loadConfig, type Config, type ConfigInput } from '../shared/config.js';
import { CONNECTOR_STDIO, type Connection, type ConnectorStdio } from '../shared/connections.js';
import { isNotFound, kubeErrorMessage, loadKubeConfig } from '../shared/kube.js';
import { createLogger } from '../shared/logger.js';
import { newSyncRequest } from '../shared/messages.js';
import type { AirbyteCatalog } from '../shared/protocol.js';
import { publishSync } from '../shared/broker/publisher.js';
import type { Topology } from '../shared/broker/topology.js';
import { createRedis } from '../shared/store/redis.js';
import type { CachedSpec } from '../shared/store/specs.js';
import { createStore, type Store } from '../shared/store/index.js';
import { FINAL_STATUSES, type RunPhases, type RunRecord } from '../shared/store/runs.js';
import { formatDuration } from '../shared/units.js';
import { KubernetesLease } from '../scaler/leadership/lease.js';
import { configEnv } from '../shared/config.js';
import { Scaler } from '../scaler/loop.js';
import { apiCost, measureIdle, scrapeApiRequests, subtract, total, type Counters } from './support/api-requests.js';
import { cleanUpOnSignal, durationOption, integerOption, progress, readArgs, runBench } from './support/cli.js';
import { CLUSTER, clusterStdio, createRunnerNamespace, inClusterSettings, runnerJobLauncher, SYSTEM_NAMESPACES } from './support/cluster.js';
import { openSyncPublisher } from './support/publisher.js';
import { applyWithCache, discoverLocally } from './support/catalogs.js';
import { countLines } from './support/count-lines.js';
import { foreignSeconds, foreignTicks, QUIET_BUSY_SHARE, waitForQuietCpu } from './support/cpu.js';
import { disturbed, INTERFERENCE, leastDisturbed } from './support/rounds.js';
import { spawnLoggedRunner } from './support/runner-process.js';
import { deletePrefix } from './support/services.js';
import { WaitTimeout, waitFor } from './support/wait.js';
import { fmtRate, median, percentile, rate } from './support/stats.js';

const KUBECONFIG = CLUSTER.kubeconfig;
const CONNECTOR_SELECTOR = 'app.kubernetes.io/component=connector';
const STATE_EVERY = 100_000;
/** How long connector pods still terminating after the runners left may take before they count as orphans. */
const ORPHAN_GRACE_MS = 30_000;
/** Longest wait for a quiet CPU before a batch, before a throughput round, and before a round run again. */
const QUIET_WAIT_MS = { batch: 60_000, round: 30_000, retry: 5_000 };
/** No round is run again once less than this is left of --timeout. */
const RETRY_RESERVE_MS = 3 * 60_000;

const USAGE = `usage: node dist/bench/k8s.js [--batches 10,40] [--users U] [--records N] [--rounds R]
                          [--stdio direct|sidecar] [--idle-window D] [--retries K] [--timeout D] [--first-syncs] [--json] [--keep]

On the scripts/cluster cluster: publish→first-record latency and API server requests per
sync for batches of syncs through a scaler with runner Jobs and connector pods, connector pods
left behind, and one big sync's throughput in a runner Job vs a local runner.

  --batches L      batch sizes, in order (default 10,40); apiRequestsPerSync is the last one's
  --users U        source-faker users per latency sync (default 300)
  --records N      records of the throughput sync (default 300000)
  --rounds R       throughput rounds of each mode (default 3)
  --stdio S        how connector pods carry stdio: direct or sidecar (default: TIDEPOOL_CONNECTOR_STDIO, else the default)
  --idle-window D  how long the cluster's idle request rate is measured before each batch (default 20s)
  --retries K      run a throughput round again, up to K times, when other people's processes
                   used more than ${INTERFERENCE.baseS} CPU-s + ${INTERFERENCE.share * 100}% of a core during it (default 2)
  --timeout D      give up (and clean up) after D in all (default 20m)
  --first-syncs    measure each connection's first sync: nothing cached, so the runner runs
                   discover on the source and check on both connectors (pods of their own)
                   before the sync; by default the catalog and the checks are cached, as for
                   every later sync of a connection
  --json           print one JSON object on stdout (progress goes to stderr either way)
  --keep           keep namespaces, queues, Redis keys and the temp dir for debugging`;

interface Options {
  batches: number[];
  users: number;
  records: number;
  rounds: number;
  stdio: ConnectorStdio;
  idleWindowMs: number;
  retries: number;
  timeoutMs: number;
  firstSyncs: boolean;
  json: boolean;
  keep: boolean;
}

function parseOptions(argv: string[]): Options | undefined {
  const values = readArgs(argv, {
    batches: 'string',
    users: 'string',
    records: 'string',
    rounds: 'string',
    stdio: 'string',
    'idle-window': 'string',
    retries: 'string',
    timeout: 'string',
    'first-syncs': 'boolean',
    json: 'boolean',
    keep: 'boolean',
  });
  if (!values) return undefined;
  const batches = (values.batches ?? '10,40').split(',').map((s) => integerOption('batches', s.trim(), 0, 1));
  if (batches.length === 0) throw new Error('--batches: at least one batch size');
  return {
    batches,
    users: integerOption('users', values.users, 300, 1),
    records: integerOption('records', values.records, 300_000, 1),
    rounds: integerOption('rounds', values.rounds, 3, 1),
    stdio: stdioOption(values.stdio),
    idleWindowMs: durationOption('idle-window', values['idle-window'], 20_000),
    retries: integerOption('retries', values.retries, 2, 0),
    timeoutMs: durationOption('timeout', values.timeout, 20 * 60_000),
    firstSyncs: values['first-syncs'] ?? false,
    json: values.json ?? false,
    keep: values.keep ?? false,
  };
}

function stdioOption(value: string | undefined): ConnectorStdio {
  if (value === undefined) return clusterStdio();
  if (!(CONNECTOR_STDIO as readonly string[]).includes(value)) throw new Error(`--stdio: ${CONNECTOR_STDIO.join(' or ')}, not ${JSON.stringify(value)}`);
  return value as ConnectorStdio;
}

class BenchTimeout extends Error {}

/** A batch's progress line, and the first failures if some syncs did not succeed. */
function reportBatch(label: string, result: BatchResult, runs: RunRecord[], syncsDoneMs: number): void {
  const failed = runs.filter((r) => r.status !== 'succeeded');
  if (failed.length > 0) progress(`${label}: ${failed.length} sync(s) did not succeed: ${failed.slice(0, 3).map((r) => `${r.connectionId}: ${r.error?.message ?? r.status}`).join('; ')}`);
  const others = result.otherNamespaces;
  progress(
    `${label}: ${result.succeeded}/${result.syncs} succeeded in ${(syncsDoneMs / 1000).toFixed(1)} s (window ${(result.durationMs / 1000).toFixed(1)} s), ${result.runners} runner(s), ` +
      `${result.grossRequests} API requests − ${result.idleRequests} idle − ${result.ownRequests} ours = ${result.netRequests} → ${result.perSync}/sync; ` +
      `orphan connector pods ${result.orphans}${others.length > 0 ? `; warning: other namespaces on the cluster meanwhile (their requests are in the figure): ${others.join(', ')}` : ''}`,
  );
}

// --- Setup (the rest comes from bench/support/cluster.ts: RBAC, runner Jobs) ---------------------

/** Settings of one batch: runners in pods reach RabbitMQ and Redis at the node address. */
function clusterConfig(prefix: string, namespace: string, overrides: Partial<ConfigInput>): Config {
  return loadConfig({}, undefined, { prefix, namespace, ...inClusterSettings(), logLevel: 'warn', ...overrides });
}

// --- Results -----------------------------------------------------------------------------------

interface BatchResult {
  syncs: number;
  succeeded: number;
  firstRecordMs: number[];
  /** publish → a runner took the sync (startedAt), and from there to the first record (connector pods starting). */
  queueWaitMs: number[];
  startToFirstRecordMs: number[];
  /** The run records' phases: where each connector pod's start went. */
  phases: RunPhases[];
  durationMs: number;
  runners: number;
  peakRunners: number;
  grossRequests: number;
  idleRequests: number;
  ownRequests: number;
  netRequests: number;
  perSync: number;
  /** Net requests per sync by category, and the largest "resource verb" entries. */
  byCategory: Record<string, number>;
  top: [string, number][];
  orphans: number;
  otherNamespaces: string[];
  /** Event requests per sync by the events' reason (Scheduled, Pulled, Killing...). */
  eventsByReason: Record<string, number>;
}

interface Round {
  mode: 'k8s' | 'local';
  steadyMs: number;
  firstRecordMs: number;
  totalMs: number;
  /** CPU seconds other people's processes used during the round. */
  otherCpuS: number;
  /** The run record's phases: where the steady part went (reading, committing, finishing). */
  phases: RunPhases;
}

// --- The bench -----------------------------------------------------------------------------------

class Bench {
  readonly id = randomBytes(3).toString('hex');
  private readonly kc = loadKubeConfig(KUBECONFIG);
  private readonly core = this.kc.makeApiClient(CoreV1Api);
  private readonly logger = createLogger({ level: 'warn', destination: 2 });
  private readonly redis: Redis;
  private readonly deadline: number;
  private dir = '';
  private catalog: AirbyteCatalog | undefined;
  /** What cleanup removes. */
  private readonly namespaces = new Set<string>();
  private readonly prefixes: Config[] = [];
  private readonly stoppers = new Set<() => Promise<void>>();
  private readonly children = new Set<ChildProcess>();
  private readonly otherNamespacesSeen = new Set<string>();

  constructor(private readonly options: Options) {
    this.deadline = Date.now() + options.timeoutMs;
    this.redis = createRedis(inClusterSettings().redisUrl!, this.logger);
  }

  /** Polls `check` until it returns a value, within `timeoutMs` and the overall --timeout. */
  async waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 500): Promise<T> {
    const overall = this.left() <= timeoutMs;
    try {
      return await waitFor(what, check, Math.min(timeoutMs, this.left()), everyMs);
    } catch (err) {
      if (overall && err instanceof WaitTimeout) throw new BenchTimeout(`--timeout ${formatDuration(this.options.timeoutMs)} reached while waiting for ${what}${err.reason}`);
      throw err;
    }
  }

  private left(): number {
    return Math.max(0, this.deadline - Date.now());
  }

  async setup(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), `tidepool-bench-k8s-${this.id}-`));
    progress(`run ${this.id}, temp dir ${this.dir}`);
    try {
      await this.core.listNamespace({ limit: 1 });
    } catch (err) {
      throw new Error(`the cluster (${KUBECONFIG}) does not answer: ${kubeErrorMessage(err)}; run scripts/cluster up`, { cause: err });
    }
    // source-faker's catalog does not depend on its config.
    this.catalog = await discoverLocally('source-faker', { count: 1 }, this.dir);
  }

  /** A namespace with the runner RBAC, a prefix, and a store over it; all removed by cleanup. */
  private async environment(name: string, overrides: Partial<ConfigInput>): Promise<{ config: Config; store: Store; namespace: string }> {
    const namespace = `tp-bench-${this.id}-${name}`;
    const config = clusterConfig(`bench-k8s-${this.id}-${name}`, namespace, { connectorStdio: this.options.stdio, ...overrides });
    this.prefixes.push(config);
    this.namespaces.add(namespace);
    await createRunnerNamespace(this.kc, namespace);
    return { config, store: createStore(this.redis, config), namespace };
  }

  /**
   * Applies `connection` with source-faker's catalog cached and both connectors' checks passed,
   * as for every sync but a connection's first (unless --first-syncs).
   */
  private async apply(store: Store, connection: Connection): Promise<void> {
    if (this.options.firstSyncs) {
      await store.connections.apply(connection);
      return;
    }
    await applyWithCache(store, connection, this.catalog!);
  }

  /**
   * Connector SPECs are cached per program, not per connection: after the first sync of a
   * program anywhere they are never asked again. Each batch has a fresh prefix, so the specs its
   * runners cached (in their pods: the fingerprint is computed where the program runs) are
   * carried to the next batch, which then measures later syncs rather than a spec pod storm.
   */
  private readonly specs = new Map<string, CachedSpec>();

  private async seedSpecs(store: Store): Promise<void> {
    for (const [fingerprint, spec] of this.specs) await store.specs.put(fingerprint, spec);
  }

  private async keepSpecs(store: Store): Promise<void> {
    const prefix = store.keys.spec('');
    for (const key of await this.redis.keys(`${prefix}*`)) {
      const fingerprint = key.slice(prefix.length);
      const spec = await store.specs.get(fingerprint);
      if (spec) this.specs.set(fingerprint, spec);
    }
  }

  /** A confirm channel on `config`'s topology to publish syncs on; cleanup closes it if close() was not. */
  private async publisher(config: Config): Promise<{ topology: Topology; channel: ConfirmChannel; close: () => Promise<void> }> {
    const { topology, channel, close } = await openSyncPublisher(config.amqpUrl, config, this.logger);
    this.stoppers.add(close);
    return { topology, channel, close };
  }

  /** Waits up to `maxMs` for the machine to be quiet; returns the share of the CPU busy at the end. */
  private async quietCpu(label: string, maxMs: number): Promise<number> {
    const busy = await waitForQuietCpu(Math.min(maxMs, this.left()), 500);
    if (busy > QUIET_BUSY_SHARE) progress(`${label}: warning: ${Math.round(busy * 100)}% of the CPU still busy with other work after waiting ${maxMs / 1000} s; timings will be skewed`);
    return busy;
  }

  /**
   * Connector pods left in `namespace` once its runners are gone, after up to ORPHAN_GRACE_MS
   * for pods still terminating; `onList` counts each list, a request of the bench's own.
   */
  private async connectorPodsLeft(namespace: string, onList: () => void): Promise<V1Pod[]> {
    const list = async () => {
      onList();
      return (await this.core.listNamespacedPod({ namespace, labelSelector: CONNECTOR_SELECTOR })).items;
    };
    let pods = await list();
    for (const until = Date.now() + ORPHAN_GRACE_MS; pods.length > 0 && Date.now() < until; ) {
      await sleep(2000);
      pods = await list();
    }
    return pods;
  }

  /**
   * The event requests of a batch by reason: each event object is one POST, and each repeat of
   * it (its `count` past 1) one PATCH. Which reactions of the cluster the requests are.
   */
  private async eventsByReason(namespace: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const e of (await this.core.listNamespacedEvent({ namespace })).items) {
      const reason = e.reason ?? '?';
      out[reason] = (out[reason] ?? 0) + Math.max(1, e.count ?? e.series?.count ?? 1);
    }
    return out;
  }

  /** The API requests the cluster makes on its own, over --idle-window with nothing of ours running. */
  private async idleRequests(label: string): Promise<{ idle: Counters; idleMs: number }> {
    const { idle, idleMs } = await measureIdle(this.kc, Math.min(this.options.idleWindowMs, this.left()));
    progress(`${label}: idle rate ${(total(idle) / (idleMs / 1000)).toFixed(2)} requests/s`);
    return { idle, idleMs };
  }

  /**
   * Waits (up to a minute) for namespaces being deleted (an earlier run's, a test's) to be gone:
   * the namespace controller deleting their contents would count in the next measurement.
   */
  private async settleNamespaces(label: string): Promise<void> {
    const terminating = async () => (await this.core.listNamespace()).items.filter((n) => n.status?.phase === 'Terminating').map((n) => n.metadata?.name ?? '?');
    let names = await terminating();
    if (names.length === 0) return;
    progress(`${label}: waiting for namespace(s) being deleted to go: ${names.join(', ')}`);
    for (const until = Date.now() + Math.min(60_000, this.left()); names.length > 0 && Date.now() < until; ) {
      await sleep(2000);
      names = await terminating();
    }
    if (names.length > 0) progress(`${label}: warning: still being deleted after a minute: ${names.join(', ')}`);
  }

  private async otherNamespaces(own: string): Promise<string[]> {
    const list = await this.core.listNamespace();
    const others = list.items.map((n) => n.metadata?.name ?? '').filter((n) => n && n !== own && !SYSTEM_NAMESPACES.has(n));
    for (const n of others) this.otherNamespacesSeen.add(n);
    return others;
  }

  /** Deletes a namespace and waits until it is gone, so its deletion is in no later measurement. */
  private async deleteNamespace(namespace: string): Promise<void> {
    if (this.options.keep) return;
    await this.core.deleteNamespace({ name: namespace }).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
    const started = Date.now();
    try {
      await this.waitFor(`namespace ${namespace} to be deleted`, async () => {
        try {
          await this.core.readNamespace({ name: namespace });
          return false;
        } catch (err) {
          if (isNotFound(err)) return true;
          throw err;
        }
      }, 180_000, 1000);
      this.namespaces.delete(namespace);
      progress(`namespace ${namespace} deleted in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } catch (err) {
      if (err instanceof BenchTimeout) throw err;
      progress(`warning: ${(err as Error).message}; later API figures may include its deletion`);
    }
  }

  // --- 1 + 2: latency, API requests, orphans ---------------------------------------------------

  async batch(n: number): Promise<BatchResult> {
    const label = `batch of ${n}`;
    const { config, store, namespace } = await this.environment(`n${n}`, {
      maxRunners: 4,
      concurrency: 2,
      idleTimeout: '5s',
      heartbeatInterval: '1s',
      heartbeatTtl: '6s',
      pollInterval: '1s',
      connectorDeadline: '10m',
    });
    const connections: Connection[] = Array.from({ length: n }, (_, i) => ({
      id: `lat-${i + 1}`,
      description: 'tidepool k8s benchmark: latency',
      source: { connector: 'source-faker', config: { seed: i + 1, count: this.options.users, purchasesPerUser: 0 } },
      destination: { connector: 'destination-e2e-test', config: {} },
      streams: [{ name: 'users', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }],
    }));
    if (!this.options.firstSyncs) await this.seedSpecs(store);
    for (const c of connections) await this.apply(store, c);
    const { topology, channel, close: closePublisher } = await this.publisher(config);

    await this.settleNamespaces(label);
    const busy = await this.quietCpu(label, QUIET_WAIT_MS.batch);
    const othersBefore = await this.otherNamespaces(namespace);
    progress(`${label}: namespace ${namespace}; CPU ${Math.round(busy * 100)}% busy; measuring the cluster's idle API request rate for ${formatDuration(this.options.idleWindowMs)}…`);
    const { idle, idleMs } = await this.idleRequests(label);

    // The window: from here until the batch is done, every request the API server answers counts.
    const before = await scrapeApiRequests(this.kc);
    const t0 = Date.now();
    let ownRequests = 0;
    const syncIds: string[] = [];
    for (const c of connections) {
      const request = newSyncRequest(c.id, { requestedBy: 'bench' });
      await publishSync(channel, topology, request);
      syncIds.push(request.syncId);
    }
    const launcher = runnerJobLauncher(this.kc, config, 'bench-runner', this.logger);
    let peakRunners = 0;
    const scaler = new Scaler({
      config,
      logger: this.logger,
      launcher,
      store,
      leadership: (id) => new KubernetesLease(this.kc, namespace, `${config.prefix}-scaler`, id, 10_000),
      onTick: (s) => (peakRunners = Math.max(peakRunners, s.running + s.starting)),
    });
    const stopScaler = () => scaler.stop().catch((err: unknown) => progress(`warning: stopping the scaler: ${(err as Error).message}`));
    this.stoppers.add(stopScaler);
    await launcher.start();
    await scaler.start();
    progress(`${label}: ${n} syncs published, scaler started`);

    let lastReport = 0;
    const runs = await this.waitFor(`the ${n} syncs of the ${label} to finish`, async () => {
      const r = await store.runs.getMany(syncIds);
      const done = r.filter((x) => x && FINAL_STATUSES.has(x.status)).length;
      if (Date.now() - lastReport > 15_000) {
        lastReport = Date.now();
        progress(`${label}: ${done}/${n} syncs final, ${scaler.last?.running ?? 0} runner(s) up`);
      }
      return done === n ? (r as RunRecord[]) : undefined;
    }, 15 * 60_000, 500);
    const syncsDoneMs = Date.now() - t0;
    await this.waitFor(`every runner Job of the ${label} to finish`, async () => {
      const list = await launcher.list();
      return list.length > 0 && list.every((r) => r.phase === 'finished') ? list : undefined;
    }, 180_000, 500);
    const pods = await this.connectorPodsLeft(namespace, () => ownRequests++);
    ownRequests++;
    const eventsByReason = await this.eventsByReason(namespace);
    const after = await scrapeApiRequests(this.kc);
    const durationMs = Date.now() - t0;
    await stopScaler();
    this.stoppers.delete(stopScaler);
    const othersAfter = await this.otherNamespaces(namespace);
    if (pods.length > 0) progress(`${label}: ${pods.length} connector pod(s) left: ${pods.map((p) => `${p.metadata?.name ?? '?'} (${p.status?.phase ?? '?'}${p.metadata?.deletionTimestamp ? ', terminating' : ''})`).join(', ')}`);

    const gross = subtract(after, before);
    const { idleRequests, netRequests, byCategory, top } = apiCost(gross, idle, durationMs / idleMs, ownRequests, n);
    const otherNamespaces = [...new Set([...othersBefore, ...othersAfter])];
    const result: BatchResult = {
      syncs: n,
      succeeded: runs.filter((r) => r.status === 'succeeded').length,
      firstRecordMs: runs.flatMap((r) => (r.firstRecordMs === undefined ? [] : [r.firstRecordMs])),
      queueWaitMs: runs.map((r) => Date.parse(r.startedAt) - Date.parse(r.requestedAt)),
      startToFirstRecordMs: runs.flatMap((r) => (r.firstRecordMs === undefined ? [] : [r.firstRecordMs - (Date.parse(r.startedAt) - Date.parse(r.requestedAt))])),
      phases: runs.flatMap((r) => (r.phases ? [r.phases] : [])),
      durationMs,
      runners: new Set(runs.map((r) => r.runnerId)).size,
      peakRunners,
      grossRequests: total(gross),
      idleRequests: Math.round(idleRequests),
      ownRequests,
      netRequests: Math.round(netRequests),
      perSync: round(netRequests / n, 1),
      byCategory: Object.fromEntries(Object.entries(byCategory).map(([k, v]) => [k, round(v, 1)])),
      top,
      orphans: pods.length,
      otherNamespaces,
      eventsByReason: Object.fromEntries(Object.entries(eventsByReason).map(([k, v]) => [k, round(v / n, 2)])),
    };
    reportBatch(label, result, runs, syncsDoneMs);
    await this.keepSpecs(store);
    await closePublisher();
    await this.deleteNamespace(namespace);
    return result;
  }

  // --- 3: throughput, runner Job + connector pods vs local runner ------------------------------

  async throughput(): Promise<Round[]> {
    const { records, rounds } = this.options;
    const { config, store } = await this.environment('tput', { concurrency: 1, idleTimeout: '3s', heartbeatInterval: '1s', heartbeatTtl: '6s', connectorDeadline: '20m' });
    const source = { connector: 'source-faker', config: { seed: 42, count: records, purchasesPerUser: 0, stateEvery: STATE_EVERY } };
    const streams = [{ name: 'users', syncMode: 'full_refresh' as const, destinationSyncMode: 'overwrite' as const }];
    const localOut = join(this.dir, 'local-out');
    const k8s: Connection = { id: 'tput-k8s', source, destination: { connector: 'destination-jsonl', config: { destination_path: '/tmp/tidepool-bench-out' } }, streams };
    const local: Connection = { id: 'tput-local', source, destination: { connector: 'destination-jsonl', config: { destination_path: localOut } }, streams };
    await this.apply(store, k8s);
    await this.apply(store, local);
    const { topology, channel, close: closePublisher } = await this.publisher(config);
    const launcher = runnerJobLauncher(this.kc, config, 'bench-tput', this.logger);
    const closeLauncher = () => launcher.close().catch(() => undefined);
    this.stoppers.add(closeLauncher);
    await launcher.start();
    // The local runner: the same settings but local connectors, and the host's own addresses.
    // It keeps root (runnerUser): its destination writes into this bench's 0700 temp dir.
    const host = loadConfig({});
    const localEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? this.dir,
      LANG: process.env.LANG ?? 'C.UTF-8',
      ...configEnv(loadConfig({}, undefined, { ...config, amqpUrl: host.amqpUrl, redisUrl: host.redisUrl, connectorLauncher: 'local', runnerLauncher: 'local', runnerUser: 'root', idleTimeout: '1s', logLevel: 'info', runnerLogDir: this.dir })),
    };

    const finalRun = (syncId: string, what: string) =>
      this.waitFor(what, async () => {
        const run = await store.runs.get(syncId);
        if (run && (run.status === 'failed' || run.status === 'retrying')) throw new Error(`sync ${run.status}: ${run.error?.message ?? '?'}`);
        return run && FINAL_STATUSES.has(run.status) ? run : undefined;
      }, this.left(), 250);
    const check = (run: RunRecord, label: string): Round['steadyMs'] => {
      if (run.status !== 'succeeded' || !run.finishedAt || run.firstRecordMs === undefined) throw new Error(`${label}: sync ${run.status}: ${run.error?.message ?? 'no finishedAt / firstRecordMs'}`);
      if (run.records !== records) throw new Error(`${label}: expected ${records} records, the run record counts ${run.records}`);
      return Date.parse(run.finishedAt) - (Date.parse(run.requestedAt) + run.firstRecordMs);
    };
    const sample = (mode: Round['mode'], run: RunRecord, steadyMs: number): Round => ({
      mode,
      steadyMs,
      firstRecordMs: run.firstRecordMs ?? 0,
      totalMs: Date.parse(run.finishedAt ?? run.startedAt) - Date.parse(run.requestedAt),
      otherCpuS: 0,
      phases: run.phases ?? {},
    });

    const k8sRound = async (label: string): Promise<Round> => {
      const request = newSyncRequest(k8s.id, { requestedBy: 'bench' });
      await publishSync(channel, topology, request);
      const [name] = await launcher.launch(1);
      let run: RunRecord;
      try {
        run = await finalRun(request.syncId, `${label}: the sync in runner Job ${name ?? '?'}`);
      } catch (err) {
        if (err instanceof BenchTimeout) throw err;
        throw new Error(`${label}: ${(err as Error).message}`, { cause: err });
      }
      await this.waitFor(`${label}: runner Job ${name ?? '?'} to finish`, async () => (await launcher.list()).find((r) => r.runnerId === name && r.phase === 'finished'), 120_000, 250);
      return sample('k8s', run, check(run, label));
    };

    let seq = 0;
    const localRound = async (label: string): Promise<Round> => {
      await rm(localOut, { recursive: true, force: true });
      const request = newSyncRequest(local.id, { requestedBy: 'bench' });
      await publishSync(channel, topology, request);
      const runnerId = `bench-local-${this.id}-${++seq}`;
      const logPath = join(this.dir, `${runnerId}.log`);
      const runner = spawnLoggedRunner(runnerId, { env: localEnv, logPath, onError: (err) => progress(`${label}: runner failed to start: ${err.message}`) });
      const { child, exited } = runner;
      this.children.add(child);
      const logTail = () => runner.logTail(10);
      let run: RunRecord;
      try {
        run = await finalRun(request.syncId, `${label}: the sync in local runner ${runnerId}`);
        const code = await Promise.race([exited, sleep(Math.min(60_000, this.left())).then(() => 'still running' as const)]);
        if (code !== 0) throw new Error(`${label}: runner ${code === 'still running' ? 'still running a minute after the sync' : `exited with code ${String(code)}`}\n${await logTail()}`);
      } catch (err) {
        if (err instanceof BenchTimeout) throw err;
        throw new Error(`${(err as Error).message}\nrunner log (${logPath}):\n${await logTail()}`, { cause: err });
      } finally {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
        this.children.delete(child);
      }
      const steady = check(run, label);
      const lines = await countLines(join(localOut, 'users.jsonl'));
      if (lines !== records) throw new Error(`${label}: ${join(localOut, 'users.jsonl')} has ${lines} lines, expected ${records}`);
      await rm(localOut, { recursive: true, force: true });
      return sample('local', run, steady);
    };

    const out = await this.alternateRounds(records, rounds, (mode, label) => (mode === 'k8s' ? k8sRound(label) : localRound(label)));
    await closeLauncher();
    this.stoppers.delete(closeLauncher);
    await closePublisher();
    return out;
  }

  /**
   * `rounds` rounds of each mode, alternately (the first mode alternates per round). A round
   * another process's burst lands on is run again (up to --retries times); the least disturbed
   * attempt is kept.
   */
  private async alternateRounds(records: number, rounds: number, runRound: (mode: Round['mode'], label: string) => Promise<Round>): Promise<Round[]> {
    const out: Round[] = [];
    for (let i = 1; i <= rounds; i++) {
      const order = i % 2 === 1 ? (['k8s', 'local'] as const) : (['local', 'k8s'] as const);
      for (const mode of order) {
        const label = `throughput round ${i}/${rounds} ${mode}`;
        const best = await leastDisturbed(label, async (attempt) => {
          const busy = await this.quietCpu(label, attempt === 0 ? QUIET_WAIT_MS.round : QUIET_WAIT_MS.retry);
          progress(`${label}: ${records} records (CPU ${Math.round(busy * 100)}% busy before)…`);
          const before = await foreignTicks();
          const t0 = Date.now();
          const r = await runRound(mode, label);
          const other = foreignSeconds(before, await foreignTicks());
          r.otherCpuS = round(other.seconds, 2);
          const wall = (Date.now() - t0) / 1000;
          const secs = (ms: number | undefined) => (ms === undefined ? '-' : (ms / 1000).toFixed(2));
          const { reading, committing, finishing } = r.phases;
          const note =
            `${fmtRate(rate(records, r.steadyMs))} steady (${(r.steadyMs / 1000).toFixed(2)} s after the first record at ${(r.firstRecordMs / 1000).toFixed(2)} s: ` +
            `reading ${secs(reading)}, committing ${secs(committing)}, finishing ${secs(finishing)} s); other processes used ${r.otherCpuS.toFixed(2)} CPU-s in ${wall.toFixed(1)} s`;
          if (disturbed(r.otherCpuS, wall)) progress(`${label}: largest other processes: ${other.top}`);
          return { sample: r, otherCpuS: r.otherCpuS, wallS: wall, seconds: r.steadyMs / 1000, note };
        }, (attempt) => attempt < this.options.retries && this.left() > RETRY_RESERVE_MS);
        out.push(best);
      }
    }
    return out;
  }

  async cleanup(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    for (const stop of this.stoppers) await stop();
    this.stoppers.clear();
    if (this.options.keep) {
      progress(`kept: namespaces ${[...this.namespaces].join(', ') || '-'}; prefixes ${this.prefixes.map((c) => c.prefix).join(', ') || '-'}; ${this.dir}`);
      this.redis.disconnect();
      return;
    }
    for (const namespace of this.namespaces) {
      // Not waited for: nothing is measured after this.
      await this.core.deleteNamespace({ name: namespace }).then(
        () => progress(`deleting namespace ${namespace}`),
        (err: unknown) => (isNotFound(err) ? undefined : progress(`warning: could not delete namespace ${namespace}: ${kubeErrorMessage(err)}`)),
      );
    }
    for (const config of this.prefixes) {
      try {
        await deletePrefix(config);
        progress(`removed the queues and Redis keys of ${config.prefix}`);
      } catch (err) {
        progress(`warning: could not delete the queues and keys of ${config.prefix}: ${(err as Error).message}`);
      }
    }
    await this.redis.quit().catch(() => this.redis.disconnect());
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  get clusterNeighbours(): string[] {
    return [...this.otherNamespacesSeen];
  }
}

const round = (x: number, digits = 0): number => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Where pod start went, over every sync of every batch: the median of each connector's start
 * steps (ms from the launcher's start() call: pod bound to the node, connector container
 * running, stdout sidecar connected to the runner) and of the run's `starting` phase (both pods
 * launched → the source's first byte). A step no run reported is left out.
 */
function podStartPhases(phases: RunPhases[]) {
  const med = (xs: Array<number | undefined>) => {
    const known = xs.filter((x): x is number => x !== undefined);
    return known.length > 0 ? round(median(known)) : undefined;
  };
  const steps = (role: 'source' | 'destination') => {
    const of = phases.map((p) => p.connectorStart?.[role]);
    return { scheduled: med(of.map((s) => s?.scheduledMs)), started: med(of.map((s) => s?.startedMs)), connected: med(of.map((s) => s?.connectedMs)) };
  };
  return { source: steps('source'), destination: steps('destination'), starting: med(phases.map((p) => p.starting)), runs: phases.length };
}

/** The JSON result (docs/benchmarks.md documents its fields); the text report is made from it too. */
function summarize(batches: BatchResult[], rounds: Round[], opts: Options, started: number, clusterNeighbours: string[]) {
  const firstRecord = batches.flatMap((b) => b.firstRecordMs);
  const last = batches[batches.length - 1]!;
  const k8sRounds = rounds.filter((r) => r.mode === 'k8s');
  const localRounds = rounds.filter((r) => r.mode === 'local');
  const k8sRate = median(k8sRounds.map((r) => rate(opts.records, r.steadyMs)));
  const localRate = median(localRounds.map((r) => rate(opts.records, r.steadyMs)));
  const bySyncs = <T>(f: (b: BatchResult) => T): Record<string, T> => Object.fromEntries(batches.map((b) => [String(b.syncs), f(b)]));
  return {
    syncs: batches.reduce((a, b) => a + b.syncs, 0),
    firstSyncs: opts.firstSyncs,
    stdio: opts.stdio,
    succeeded: batches.reduce((a, b) => a + b.succeeded, 0),
    publishToFirstRecordP50Ms: round(percentile(firstRecord, 0.5)),
    publishToFirstRecordP95Ms: round(percentile(firstRecord, 0.95)),
    apiRequestsPerSync: last.perSync,
    orphanPodsAfter: batches.reduce((a, b) => a + b.orphans, 0),
    throughputRatioVsLocal: round(k8sRate / localRate, 3),
    apiRequestsPerSyncBySyncs: bySyncs((b) => b.perSync),
    [`apiRequestsPerSyncByResource${last.syncs}`]: last.byCategory,
    [`apiRequestsPerSyncTop${last.syncs}`]: Object.fromEntries(last.top),
    [`eventRequestsPerSyncByReason${last.syncs}`]: last.eventsByReason,
    apiRequestsBySyncs: bySyncs((b) => ({ gross: b.grossRequests, idle: b.idleRequests, bench: b.ownRequests, net: b.netRequests })),
    batchDurationMsBySyncs: bySyncs((b) => b.durationMs),
    runnersBySyncs: bySyncs((b) => b.runners),
    publishToFirstRecordP50MsBySyncs: bySyncs((b) => round(percentile(b.firstRecordMs, 0.5))),
    publishToFirstRecordP95MsBySyncs: bySyncs((b) => round(percentile(b.firstRecordMs, 0.95))),
    queueWaitP50MsBySyncs: bySyncs((b) => round(percentile(b.queueWaitMs, 0.5))),
    startToFirstRecordP50MsBySyncs: bySyncs((b) => round(percentile(b.startToFirstRecordMs, 0.5))),
    podStartPhasesMs: podStartPhases(batches.flatMap((b) => b.phases)),
    records: opts.records,
    k8sRecordsPerSec: Math.round(k8sRate),
    localRecordsPerSec: Math.round(localRate),
    k8sSteadyMsRounds: k8sRounds.map((r) => r.steadyMs),
    // Where each round's steady part went: its run record's reading, committing and finishing phases.
    steadyPhasesMsRounds: { k8s: k8sRounds.map(steadyPhases), local: localRounds.map(steadyPhases) },
    localSteadyMsRounds: localRounds.map((r) => r.steadyMs),
    otherCpuSecondsRounds: { k8s: k8sRounds.map((r) => r.otherCpuS), local: localRounds.map((r) => r.otherCpuS) },
    podStartupMs: Math.round(median(k8sRounds.map((r) => r.firstRecordMs))),
    localFirstRecordMs: Math.round(median(localRounds.map((r) => r.firstRecordMs))),
    k8sSyncTotalMs: Math.round(median(k8sRounds.map((r) => r.totalMs))),
    localSyncTotalMs: Math.round(median(localRounds.map((r) => r.totalMs))),
    otherNamespacesOnCluster: clusterNeighbours,
    benchDurationMs: Date.now() - started,
  };
}

const steadyPhases = (r: Round) => ({ reading: r.phases.reading, committing: r.phases.committing, finishing: r.phases.finishing });

function textReport(result: ReturnType<typeof summarize>, batches: BatchResult[], rounds: Round[], opts: Options): string {
  const last = batches[batches.length - 1]!;
  const k8sRounds = rounds.filter((r) => r.mode === 'k8s');
  const localRounds = rounds.filter((r) => r.mode === 'local');
  const lines = [
    `kubernetes benchmark (${formatDuration(result.benchDurationMs)}), connector pods with ${result.stdio} stdio`,
    `  syncs ${result.syncs} (${opts.firstSyncs ? "each its connection's first: discover and checks included" : "catalog and checks cached, as after a connection's first sync"}), succeeded ${result.succeeded}; publish → first record p50 ${result.publishToFirstRecordP50Ms} ms, p95 ${result.publishToFirstRecordP95Ms} ms`,
    ...batches.map(
      (b) =>
        `  batch of ${b.syncs}: ${b.perSync} API requests/sync (${b.grossRequests} − ${b.idleRequests} idle − ${b.ownRequests} bench, over ${(b.durationMs / 1000).toFixed(1)} s), ` +
        `${b.runners} runner(s), publish → first record p50/p95 ${round(percentile(b.firstRecordMs, 0.5))}/${round(percentile(b.firstRecordMs, 0.95))} ms ` +
        `(p50 queue wait ${round(percentile(b.queueWaitMs, 0.5))} ms, runner → first record ${round(percentile(b.startToFirstRecordMs, 0.5))} ms), orphan pods ${b.orphans}`,
    ),
    `  API requests per sync by resource (batch of ${last.syncs}): ${Object.entries(last.byCategory).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `  largest (per sync): ${last.top.map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `  pod start (medians, ms from each pod's create): ${(['source', 'destination'] as const).map((r) => `${r} scheduled ${result.podStartPhasesMs[r].scheduled ?? '-'}, started ${result.podStartPhasesMs[r].started ?? '-'}, connected ${result.podStartPhasesMs[r].connected ?? '-'}`).join('; ')}; starting phase (launch → first byte) ${result.podStartPhasesMs.starting ?? '-'}`,
    `  orphan connector pods after: ${result.orphanPodsAfter} (target 0)`,
    `  throughput, ${opts.records.toLocaleString('en-US')} records, steady state after the first record, medians of ${opts.rounds}:`,
    `    runner Job + connector pods ${fmtRate(result.k8sRecordsPerSec).padStart(16)}   (rounds: ${k8sRounds.map((r) => (r.steadyMs / 1000).toFixed(2)).join(', ')} s)`,
    `    local runner + processes    ${fmtRate(result.localRecordsPerSec).padStart(16)}   (rounds: ${localRounds.map((r) => (r.steadyMs / 1000).toFixed(2)).join(', ')} s)`,
    `    ratio ${result.throughputRatioVsLocal} (target ≥ 0.5: ${result.throughputRatioVsLocal >= 0.5 ? 'met' : 'NOT met'}); pod start-up (publish → first record) ${result.podStartupMs} ms vs ${result.localFirstRecordMs} ms locally`,
    ...(result.otherNamespacesOnCluster.length > 0 ? [`  warning: other namespaces were on the cluster meanwhile (${result.otherNamespacesOnCluster.join(', ')}); API figures include their requests`] : []),
    '',
  ];
  return lines.join('\n');
}

async function main(opts: Options): Promise<number> {
  const started = Date.now();
  const bench = new Bench(opts);
  const signals = cleanUpOnSignal(() => bench.cleanup());

  // The waits inside stop at the deadline; this catches a call that hangs outside them.
  let timer: NodeJS.Timeout | undefined;
  const overall = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BenchTimeout(`--timeout ${formatDuration(opts.timeoutMs)} reached`)), opts.timeoutMs + 30_000);
  });
  try {
    const work = (async () => {
      await bench.setup();
      const batches: BatchResult[] = [];
      for (const n of opts.batches) batches.push(await bench.batch(n));
      const rounds = await bench.throughput();
      return { batches, rounds };
    })();
    const { batches, rounds } = await Promise.race([work, overall]);
    const result = summarize(batches, rounds, opts, started, bench.clusterNeighbours);
    process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : textReport(result, batches, rounds, opts));
    return 0;
  } catch (err) {
    process.stderr.write(`bench: FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    clearTimeout(timer);
    if (!signals.interrupted()) {
      // Cleanup is bounded too: a cluster that stopped answering must not hang the bench.
      await Promise.race([bench.cleanup(), sleep(120_000).then(() => progress('warning: cleanup did not finish in 120 s'))]);
    }
  }
}

const code = await runBench(USAGE, parseOptions, main);
// Informers, sockets or a hung call left by a failure must not keep the process alive.
process.exit(code);
