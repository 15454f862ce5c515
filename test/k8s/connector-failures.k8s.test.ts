// Connectors that go wrong in their pods, on the real cluster: one that exits 1, one the kernel
// OOM-kills under its memory limit, one that hangs until its pod deadline, one whose image has no
// bash for direct stdio, and a source that
// emits nothing (EOF must still travel source pod → runner → destination pod). A runner process
// on the host (outside the cluster, as a runner may be) runs every connector in a pod; the user
// sees the outcome in the run record and the dead-letter queue, and no pod or Secret is left.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../shared/connections.js';
import { loadKubeConfig } from '../../shared/kube.js';
import { HEADERS } from '../../shared/broker/envelope.js';
import { newSyncRequest } from '../../shared/messages.js';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { FINAL_STATUSES, type RunRecord } from '../../shared/store/runs.js';
import { CLI_PATH } from '../../shared/paths.js';
import { configEnv } from '../../shared/config.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';
import { CLUSTER, createNamespace, hostRunnerOnCluster } from './cluster.js';

describe('connector failures in pods', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `tp-fail-${randomBytes(3).toString('hex')}`;
  const config = testConfig('k8s-failures', {
    ...hostRunnerOnCluster(namespace),
    concurrency: 4,
    idleTimeout: '10m',
    // The hanging connector is ended by its pod's activeDeadlineSeconds.
    connectorDeadline: '25s',
    // Each failure here is retryable; one attempt shows how it is reported.
    maxAttempts: 1,
    logLevel: 'warn',
  });
  const topology = topologyFor(config.prefix);
  let services: TestServices;
  let broker: ChannelModel;
  let channel: ConfirmChannel;
  let runner: ChildProcess;
  let runnerLog = '';

  const connection = (id: string, source: Connection['source'], destination: Connection['destination'] = { connector: 'destination-e2e-test', config: {} }): Connection => ({
    id,
    source,
    destination,
    streams: [{ name: 'items' }],
  });

  beforeAll(async () => {
    services = openTestServices(config);
    await createNamespace(kc, namespace);
    for (const c of [
      connection('exits-1', { connector: 'source-e2e-test', config: { records: 3, then: 'exit', exitCode: 1, message: 'the source gave up' } }),
      connection('oom', { connector: 'source-e2e-test', config: { records: 1, then: 'allocate' }, resources: { limits: { memory: '96Mi' } } }),
      connection('hangs', { connector: 'source-e2e-test', config: { records: 2, then: 'hang' } }),
      connection('empty', { connector: 'source-e2e-test', config: { records: 0 } }),
      // An image without bash, as the kubelet sees it: no bash on the container's PATH.
      connection('no-bash', { connector: 'source-e2e-test', config: { records: 1 }, stdio: 'direct', env: { PATH: '/nonexistent' } }),
    ]) {
      await services.store.connections.apply(c);
    }
    broker = await connectBroker({ url: config.amqpUrl, logger: services.logger });
    channel = await openConfirmChannel(broker, topology, services.logger);
    runner = spawn(process.execPath, [CLI_PATH, 'runner', '--runner-id', `${config.prefix}-runner`], {
      env: { PATH: process.env.PATH ?? '', ...configEnv(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    runner.stdout?.on('data', (b: Buffer) => (runnerLog += b.toString()));
    runner.stderr?.on('data', (b: Buffer) => (runnerLog += b.toString()));
  });

  afterAll(async () => {
    runner?.kill('SIGKILL');
    await broker?.close().catch(() => undefined);
    await services?.cleanup();
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  async function sync(connectionId: string, timeoutMs: number): Promise<RunRecord> {
    const request = newSyncRequest(connectionId);
    await publishSync(channel, topology, request);
    return waitFor(`the ${connectionId} sync to finish`, async () => {
      if (runner.exitCode !== null) throw new Error(`runner exited ${runner.exitCode}:\n${runnerLog.slice(-3000)}`);
      const run = await services.store.runs.get(request.syncId);
      return run && FINAL_STATUSES.has(run.status) ? run : undefined;
    }, timeoutMs, 500);
  }

  async function deadLetter(syncId: string) {
    return waitFor('the dead letter', async () => {
      for (;;) {
        const m = await channel.get(topology.deadQueue, { noAck: false });
        if (!m) return undefined;
        channel.ack(m);
        if ((JSON.parse(m.content.toString()) as { syncId: string }).syncId === syncId) return m;
      }
    }, 15_000, 200);
  }

  async function nothingLeft() {
    await waitFor('every connector pod and Secret to be gone', async () => {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=connector' });
      const secrets = await core.listNamespacedSecret({ namespace, labelSelector: 'app.kubernetes.io/component=connector' });
      return pods.items.length === 0 && secrets.items.length === 0;
    }, 30_000, 500);
  }

  it('a source that exits 1: the sync fails with the exit code and the source stderr, dead-lettered', async () => {
    const run = await sync('exits-1', 180_000);
    expect(run.status).toBe('dead_lettered');
    expect(run.error?.origin).toBe('source');
    expect(run.error?.message).toMatch(/exit(ed)? (with )?(code )?1/);
    expect(run.error?.stderr?.source?.join('\n')).toContain('the source gave up');
    const letter = await deadLetter(run.syncId);
    expect(String(letter.properties.headers?.[HEADERS.origin])).toBe('source');
    expect(String(letter.properties.headers?.[HEADERS.stderrSource])).toContain('the source gave up');
    await nothingLeft();
  });

  it('direct stdio in an image without bash: fails at once as a config error that says what to do', async () => {
    const run = await sync('no-bash', 120_000);
    expect(run.status).toBe('dead_lettered');
    expect(run.error).toMatchObject({ type: 'config_error', origin: 'source' });
    expect(run.error?.message).toContain('bash');
    expect(run.error?.message).toContain('"stdio": "sidecar"');
    await nothingLeft();
  });

  it('a source over its memory limit: OOMKilled, and the sync says so', async () => {
    const run = await sync('oom', 180_000);
    expect(run.status).toBe('dead_lettered');
    expect(run.error?.origin).toBe('source');
    expect(run.error?.message).toContain('OOMKilled');
    await nothingLeft();
  });

  it('a source that hangs: its pod deadline ends it, and the sync fails naming the deadline', async () => {
    const started = Date.now();
    const run = await sync('hangs', 180_000);
    expect(run.status).toBe('dead_lettered');
    expect(run.error?.origin).toBe('source');
    expect(run.error?.message).toMatch(/DeadlineExceeded/);
    // Ended by the 25 s deadline, not by the test's timeout.
    expect(Date.now() - started).toBeLessThan(120_000);
    await nothingLeft();
  });

  it('a source that emits nothing: EOF reaches the destination pod, which exits 0; the sync succeeds with 0 records', async () => {
    const run = await sync('empty', 180_000);
    expect(run.error?.message).toBeUndefined();
    expect(run.status).toBe('succeeded');
    expect(run.records).toBe(0);
    await nothingLeft();
  });
});
