// KEDA smoke test, on the test cluster with the operator of scripts/keda:
//
//   npm run keda:smoke -- [--syncs 4] [--strategy default] [--mode amqp] [--polling-interval 1]
//                         [--timeout 5m] [--keep]
//
// A namespace of its own with tidepool's runner RBAC as shipped, a fresh prefix, --syncs
// connections (source-faker → destination-e2e-test, catalogs and checks cached as in steady
// state). A ScaledJob launching tidepool's runner Job (bench/support/keda.ts) on the prefix's
// syncs queue is applied and, once KEDA reports it Ready, the syncs are published: KEDA alone
// must launch runners that take every sync to `succeeded` (run records in Redis). Prints one
// JSON object: publish → first Job created, Jobs launched, runners that ran nothing.
//
// Exits non-zero when KEDA is not running (there is no skipping: a smoke test that passes
// without KEDA proves nothing), when a sync does not succeed, or after --timeout. Not part of
// .ci/run: KEDA is built for the scaling bench (see docs/kubernetes.md). Everything it made is removed
// at the end, on failure too, unless --keep.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchV1Api, CoreV1Api, KubernetesObjectApi, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '../shared/config.js';
import type { Connection } from '../shared/connections.js';
import { isNotFound, kubeErrorMessage, loadKubeConfig } from '../shared/kube.js';
import { createLogger } from '../shared/logger.js';
import { topologyFor } from '../shared/broker/topology.js';
import { createRedis } from '../shared/store/redis.js';
import { createStore } from '../shared/store/index.js';
import { FINAL_STATUSES, type RunRecord } from '../shared/store/runs.js';
import { applyWithCache, discoverLocally } from './support/catalogs.js';
import { cleanUpOnSignal, durationOption, integerOption, progress, readArgs, runBench } from './support/cli.js';
import { CLUSTER, createRunnerNamespace, deleteNamespaceAndWait, inClusterSettings, runnerJobLauncher } from './support/cluster.js';
import { deleteScaledJob, kedaHost, kedaRunning, kedaTriggerAuth, SCALED_JOB_LABEL, scaledJob, waitScaledJobReady, type KedaTriggerMode } from './support/keda.js';
import { openSyncPublisher } from './support/publisher.js';
import type { KedaStrategy } from './support/scaler-models.js';
import { deletePrefix } from './support/services.js';
import { waitFor } from './support/wait.js';

const USAGE = `usage: node dist/bench/keda-smoke.js [--syncs N] [--strategy default|accurate|eager] [--mode amqp|http]
                                  [--polling-interval S] [--timeout D] [--keep]

KEDA (scripts/keda up) launches tidepool's runner Jobs from a ScaledJob on a syncs queue; every
sync must succeed. Exits 1 if KEDA is not running or a sync fails.

  --syncs N             syncs published (default 4)
  --strategy S          the ScaledJob's scaling strategy (default default)
  --mode M              the RabbitMQ trigger's protocol: amqp (ready messages) or http
                        (ready + unacked, from the management API) (default amqp)
  --polling-interval S  seconds between KEDA's looks at the queue (default 1)
  --timeout D           give up (and clean up) after D in all (default 5m)
  --keep                keep the namespace, queues and Redis keys for debugging`;

interface Options {
  syncs: number;
  strategy: KedaStrategy;
  mode: KedaTriggerMode;
  pollingIntervalS: number;
  timeoutMs: number;
  keep: boolean;
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`--${name} must be one of ${allowed.join(', ')} (got ${value})`);
  return value as T;
}

function parseOptions(argv: string[]): Options | undefined {
  const values = readArgs(argv, { syncs: 'string', strategy: 'string', mode: 'string', 'polling-interval': 'string', timeout: 'string', keep: 'boolean' });
  if (!values) return undefined;
  return {
    syncs: integerOption('syncs', values.syncs, 4, 1),
    strategy: oneOf('strategy', values.strategy, ['default', 'accurate', 'eager'], 'default'),
    mode: oneOf('mode', values.mode, ['amqp', 'http'], 'amqp'),
    pollingIntervalS: integerOption('polling-interval', values['polling-interval'], 1, 1),
    timeoutMs: durationOption('timeout', values.timeout, 5 * 60_000),
    keep: values.keep ?? false,
  };
}

/** The runners' concurrency: the trigger's messages per Job. */
const CONCURRENCY = 2;
const SCALED_JOB = 'tidepool-runners';
const TRIGGER_AUTH = 'keda-rabbitmq';
/** Runner Jobs failed before the smoke gives up on them. */
const FAILED_JOBS_LIMIT = 3;

class Smoke {
  readonly id = randomBytes(3).toString('hex');
  readonly namespace = `tidepool-keda-smoke-${this.id}`;
  private readonly kc: KubeConfig = loadKubeConfig(CLUSTER.kubeconfig);
  private readonly logger = createLogger({ level: 'warn', destination: 2 });
  /** The host's broker and store (the bench's side); runner pods get them at the node address. */
  private readonly host = loadConfig({});
  readonly config: Config;
  private readonly redis: Redis;
  private dir = '';
  private created = false;

  constructor(private readonly options: Options) {
    this.config = loadConfig({}, undefined, {
      prefix: `keda-smoke-${this.id}`,
      namespace: this.namespace,
      ...inClusterSettings(this.host),
      // The runner Job reads the URLs (with their passwords) from this Secret, as shipped.
      credentialsSecret: 'tidepool-credentials',
      concurrency: CONCURRENCY,
      idleTimeout: '5s',
      heartbeatInterval: '1s',
      heartbeatTtl: '6s',
      logLevel: 'warn',
    });
    this.redis = createRedis(this.host.redisUrl, this.logger);
  }

  /** The namespace with tidepool's RBAC, the runners' credentials, and the trigger's. */
  async setup(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), `tidepool-keda-smoke-${this.id}-`));
    this.created = true;
    await createRunnerNamespace(this.kc, this.namespace, this.config);
    // The operator runs on this host: it reaches the broker at the host's own address.
    const objects = this.kc.makeApiClient(KubernetesObjectApi);
    for (const o of kedaTriggerAuth(TRIGGER_AUTH, this.namespace, kedaHost(this.host.amqpUrl, this.options.mode))) await objects.create(o);
  }

  /** --syncs connections whose catalogs and checks are cached, as for every sync but a connection's first. */
  async connections(): Promise<Connection[]> {
    const store = createStore(this.redis, this.config);
    const catalog = await discoverLocally('source-faker', { count: 1 }, this.dir);
    const connections: Connection[] = Array.from({ length: this.options.syncs }, (_, i) => ({
      id: `keda-${i + 1}`,
      description: 'tidepool KEDA smoke test',
      source: { connector: 'source-faker', config: { seed: i + 1, count: 50, purchasesPerUser: 0 } },
      destination: { connector: 'destination-e2e-test', config: {} },
      streams: [{ name: 'users', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }],
    }));
    for (const c of connections) await applyWithCache(store, c, catalog);
    return connections;
  }

  /** Applies the ScaledJob and waits until KEDA has taken it up (its Ready condition). */
  async applyScaledJob(): Promise<void> {
    const launcher = runnerJobLauncher(this.kc, this.config, 'keda-runner', this.logger);
    const body = scaledJob(launcher, {
      name: SCALED_JOB,
      namespace: this.namespace,
      strategy: this.options.strategy,
      mode: this.options.mode,
      pollingIntervalS: this.options.pollingIntervalS,
      maxReplicaCount: this.options.syncs,
      value: CONCURRENCY,
      queueName: topologyFor(this.config.prefix, this.config).syncsQueue,
      authenticationRef: TRIGGER_AUTH,
    });
    await this.kc.makeApiClient(KubernetesObjectApi).create(body);
    await waitScaledJobReady(this.kc, this.namespace, SCALED_JOB);
  }

  /**
   * A publisher on the prefix's topology, declared now: the trigger finds no queue (and the
   * ScaledJob is not Ready) before. `publish` sends one sync per connection and returns the
   * moment of the first publish and the sync ids.
   */
  async publisher(): Promise<{ publish: (connections: Connection[]) => Promise<{ t0: number; syncIds: string[] }>; close: () => Promise<void> }> {
    const publisher = await openSyncPublisher(this.host.amqpUrl, this.config, this.logger, 'keda-smoke');
    const publish = async (connections: Connection[]) => {
      const t0 = Date.now();
      const syncIds: string[] = [];
      for (const c of connections) syncIds.push((await publisher.publish(c.id)).syncId);
      return { t0, syncIds };
    };
    return { publish, close: publisher.close };
  }

  /** The names of the Jobs KEDA made for the ScaledJob so far. */
  async jobs(): Promise<string[]> {
    return (await this.listJobs()).map((j) => j.metadata?.name ?? '?');
  }

  private async listJobs(): Promise<V1Job[]> {
    const list = await this.kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: this.namespace, labelSelector: `${SCALED_JOB_LABEL}=${SCALED_JOB}` });
    return list.items;
  }

  /**
   * An error once FAILED_JOBS_LIMIT runner Jobs failed, with the end of one's log: KEDA would
   * launch failing runners until the timeout (a runner image older than this code refuses
   * settings it does not know, for one).
   */
  async runnersFailing(): Promise<Error | undefined> {
    const failed = (await this.listJobs()).filter((j) => (j.status?.failed ?? 0) > 0).map((j) => j.metadata?.name ?? '?');
    if (failed.length < FAILED_JOBS_LIMIT) return undefined;
    const core = this.kc.makeApiClient(CoreV1Api);
    const pods = await core.listNamespacedPod({ namespace: this.namespace, labelSelector: `job-name=${failed[0]}` });
    const pod = pods.items[0]?.metadata?.name;
    const tail = pod ? await core.readNamespacedPodLog({ name: pod, namespace: this.namespace, tailLines: 5 }).catch((err: unknown) => `(no log: ${kubeErrorMessage(err)})`) : '(no pod)';
    return new Error(`${failed.length} runner Jobs failed; the end of ${pod ?? failed[0]}'s log:\n${tail.slice(0, 2000)}`);
  }

  /** Each runner pod's Job: runner ids are pod names here. */
  async podJobs(): Promise<Map<string, string>> {
    const list = await this.kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: this.namespace, labelSelector: 'app.kubernetes.io/component=runner' });
    return new Map(list.items.map((p) => [p.metadata?.name ?? '?', p.metadata?.labels?.['job-name'] ?? '?']));
  }

  async runs(syncIds: string[]): Promise<(RunRecord | undefined)[]> {
    return createStore(this.redis, this.config).runs.getMany(syncIds);
  }

  /** The ScaledJob first (KEDA stops launching), then the namespace, the prefix, the temp dir. */
  async cleanup(): Promise<void> {
    if (this.options.keep) {
      progress(`--keep: namespace ${this.namespace}, prefix ${this.config.prefix}, temp dir ${this.dir}`);
      this.redis.disconnect();
      return;
    }
    const quietly = (what: string) => (err: unknown) => {
      if (!isNotFound(err)) progress(`warning: cleanup: ${what}: ${kubeErrorMessage(err)}`);
    };
    if (this.created) {
      await deleteScaledJob(this.kc, this.namespace, SCALED_JOB).catch(quietly('ScaledJob'));
      // Runners still idling would declare the prefix's queues again after deletePrefix.
      await deleteNamespaceAndWait(this.kc, this.namespace).catch((err: unknown) => progress(`warning: cleanup: namespace: ${kubeErrorMessage(err)}`));
    }
    await deletePrefix(this.config).catch((err: unknown) => progress(`warning: cleanup: prefix: ${(err as Error).message}`));
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.redis.disconnect();
  }
}

async function run(smoke: Smoke, opts: Options, deadline: number): Promise<Record<string, unknown>> {
  const left = () => Math.max(1000, deadline - Date.now());
  await smoke.setup();
  const connections = await smoke.connections();
  const publisher = await smoke.publisher();
  let published: { t0: number; syncIds: string[] };
  try {
    await smoke.applyScaledJob();
    progress(`ScaledJob ${SCALED_JOB} Ready in ${smoke.namespace} (${opts.strategy}, ${opts.mode}, polling ${opts.pollingIntervalS} s); publishing ${opts.syncs} syncs`);
    published = await publisher.publish(connections);
  } finally {
    await publisher.close();
  }
  const { t0, syncIds } = published;
  const firstJobMs = await waitFor('KEDA to create a runner Job', async () => ((await smoke.jobs()).length > 0 ? Date.now() - t0 : undefined), Math.min(120_000, left()), 100);
  progress(`first runner Job ${firstJobMs} ms after the first publish`);
  let lastReport = 0;
  const runs = await waitFor(`the ${opts.syncs} syncs to finish`, async () => {
    const failing = await smoke.runnersFailing();
    if (failing) return failing;
    const r = await smoke.runs(syncIds);
    const done = r.filter((x) => x && FINAL_STATUSES.has(x.status)).length;
    if (Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      progress(`${done}/${opts.syncs} syncs final, ${(await smoke.jobs()).length} Job(s)`);
    }
    return done === opts.syncs ? (r as RunRecord[]) : undefined;
  }, left(), 500);
  if (runs instanceof Error) throw runs;
  const syncsDoneMs = Date.now() - t0;
  const jobs = await smoke.jobs();
  const podJobs = await smoke.podJobs();
  const busyJobs = new Set(runs.map((r) => podJobs.get(r.runnerId)));
  const failed = runs.filter((r) => r.status !== 'succeeded');
  return {
    ok: failed.length === 0,
    strategy: opts.strategy,
    mode: opts.mode,
    pollingIntervalS: opts.pollingIntervalS,
    syncs: opts.syncs,
    succeeded: runs.length - failed.length,
    firstJobMs,
    syncsDoneMs,
    jobsLaunched: jobs.length,
    runners: new Set(runs.map((r) => r.runnerId)).size,
    // So far: a Job still starting when the syncs were done may yet run nothing too.
    jobsThatRanNothing: jobs.filter((j) => !busyJobs.has(j)).length,
    waitMs: runs.map((r) => Date.parse(r.startedAt) - Date.parse(r.requestedAt)),
    ...(failed.length > 0 ? { failures: failed.slice(0, 3).map((r) => `${r.connectionId}: ${r.status}: ${r.error?.message ?? '?'}`) } : {}),
  };
}

async function main(opts: Options): Promise<number> {
  try {
    await kedaRunning();
  } catch (err) {
    process.stderr.write(`bench: FAILED: ${(err as Error).message}\n`);
    return 1;
  }
  const smoke = new Smoke(opts);
  const signals = cleanUpOnSignal(() => smoke.cleanup());
  try {
    const result = await run(smoke, opts, Date.now() + opts.timeoutMs);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    if (!result.ok) process.stderr.write('bench: FAILED: not every sync succeeded\n');
    return result.ok ? 0 : 1;
  } catch (err) {
    process.stderr.write(`bench: FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    if (!signals.interrupted()) await smoke.cleanup();
  }
}

const code = await runBench(USAGE, parseOptions, main);
// Sockets or a hung call left by a failure must not keep the process alive.
process.exit(code);
