// Pure parts of the Kubernetes adapters: reading exits from pod statuses, Job phases, names,
// and the lockdown of the pod spec. The adapters themselves are tested on the real cluster.
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { describeJob, KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import { CONNECTOR_TMP_SIZE_LIMIT, connectorExit, DESTINATION_DRAIN_SECONDS, KubernetesPodConnectorLauncher, podName } from '../../runner/launch/kubernetes-pod.js';
import { StreamServer } from '../../runner/launch/stream-server.js';
import { testLogger } from '../helpers/services.js';

const pod = (status: NonNullable<V1Pod['status']>): V1Pod => ({ status });

/** A client config that names a cluster; nothing here talks to it (only pure methods are used). */
function offlineKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  return kc;
}

describe('connectorExit', () => {
  it('is undefined while the connector runs', () => {
    expect(connectorExit(pod({ phase: 'Running', containerStatuses: [{ name: 'connector', image: 'x', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] }), false, 1000, 60_000)).toBeUndefined();
  });
  it('takes the exit code of the connector container, and OOMKilled as the reason', () => {
    const terminated = (exitCode: number, reason: string) => pod({ phase: 'Running', containerStatuses: [{ name: 'connector', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, reason } } }] });
    expect(connectorExit(terminated(0, 'Completed'), false, 1, 1)).toEqual({ code: 0, signal: null });
    expect(connectorExit(terminated(1, 'Error'), false, 1, 1)).toEqual({ code: 1, signal: null });
    expect(connectorExit(terminated(137, 'OOMKilled'), false, 1, 1)).toEqual({ code: 137, signal: null, reason: 'OOMKilled' });
  });
  it('says which build ran: the image id the kubelet resolved the tag to', () => {
    const ran = `docker.io/airbyte/source-faker@sha256:${'d'.repeat(64)}`;
    const done = pod({ phase: 'Succeeded', containerStatuses: [{ name: 'connector', image: 'airbyte/source-faker:7.2.1', imageID: ran, ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } }] });
    expect(connectorExit(done, false, 1, 1)).toEqual({ code: 0, signal: null, image: ran });
  });
  it('names the pod failure when the kubelet stopped the connector for it (deadline, eviction)', () => {
    const stopped = pod({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline', containerStatuses: [{ name: 'connector', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 143, reason: 'Error' } } }] });
    expect(connectorExit(stopped, false, 1, 1)).toEqual({ code: 143, signal: null, reason: 'pod failed: DeadlineExceeded (Pod was active on the node longer than the specified deadline)' });
  });
  it('reports a pod that failed without a connector exit (eviction, deadline)', () => {
    expect(connectorExit(pod({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'too long' }), false, 1, 1)?.reason).toBe('pod failed: DeadlineExceeded (too long)');
  });
  it('fails fast on an image that will never come, and on a pod pending too long', () => {
    const waiting = pod({ phase: 'Pending', containerStatuses: [{ name: 'connector', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ErrImageNeverPull', message: 'not present' } } }] });
    expect(connectorExit(waiting, false, 1, 60_000)).toEqual({ code: null, signal: null, reason: 'ErrImageNeverPull: not present', notStarted: true });
    // A container that cannot be created for another reason may have started before: not "never started".
    const broken = pod({ phase: 'Pending', containerStatuses: [{ name: 'connector', image: 'x', imageID: '', ready: false, restartCount: 1, state: { waiting: { reason: 'CreateContainerError', message: 'runc' } } }] });
    expect(connectorExit(broken, false, 1, 60_000)).toEqual({ code: null, signal: null, reason: 'CreateContainerError: runc' });
    // The kubelet's Secret watch not synced yet: it tries again by itself; a missing key does not come.
    const configError = (message: string) => pod({ phase: 'Pending', containerStatuses: [{ name: 'connector', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'CreateContainerConfigError', message } } }] });
    expect(connectorExit(configError('failed to sync secret cache: timed out waiting for the condition'), false, 1, 60_000)).toBeUndefined();
    expect(connectorExit(configError('failed to sync secret cache: timed out waiting for the condition'), false, 61_000, 60_000)?.reason).toMatch(/still pending after 61 s/);
    expect(connectorExit(configError('couldn\'t find key token in Secret ns/tp-src-x'), false, 1, 60_000)).toMatchObject({ notStarted: true, reason: expect.stringContaining("couldn't find key") });
    expect(connectorExit(pod({ phase: 'Pending' }), false, 61_000, 60_000)?.reason).toMatch(/still pending after 61 s/);
    expect(connectorExit(pod({ phase: 'Pending' }), false, 1000, 60_000)).toBeUndefined();
  });
  it('reports a command that could not start as never started, and for direct stdio without bash says what to do', () => {
    const message = 'failed to create containerd task: exec: "bash": executable file not found in $PATH: unknown';
    const failed = (command: string[]): V1Pod => ({
      spec: { containers: [{ name: 'connector', command }] },
      status: { phase: 'Failed', containerStatuses: [{ name: 'connector', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 128, reason: 'StartError', message } } }] },
    });
    const direct = connectorExit(failed(['bash', '-c', 'x']), false, 1, 1);
    expect(direct).toMatchObject({ code: null, notStarted: true });
    expect(direct?.reason).toContain(message);
    expect(direct?.reason).toContain('"stdio": "sidecar"');
    const sidecar = connectorExit(failed(['sh', '-c', 'x']), false, 1, 1);
    expect(sidecar).toEqual({ code: null, signal: null, reason: `StartError: ${message}`, notStarted: true });
  });
  it('treats a deleted pod as killed', () => {
    expect(connectorExit(pod({ phase: 'Running' }), true, 1, 1)).toEqual({ code: null, signal: 'SIGKILL', reason: 'pod deleted' });
  });
});

describe('runner Jobs', () => {
  it('reads phases from Job status', () => {
    expect(describeJob('j', { status: {} }).phase).toBe('pending');
    expect(describeJob('j', { status: { active: 1, ready: 0 } }).phase).toBe('pending');
    expect(describeJob('j', { status: { active: 1, ready: 1 } }).phase).toBe('running');
    expect(describeJob('j', { status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] } })).toMatchObject({ phase: 'finished', exitCode: 0 });
    expect(describeJob('j', { status: { failed: 1, conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' }] } })).toMatchObject({ phase: 'finished', exitCode: 1, reason: 'DeadlineExceeded' });
  });
  it('builds a Job the queue retries, not Kubernetes, with a locked-down pod', () => {
    const launcher = new KubernetesJobRunnerLauncher(offlineKubeConfig(), { namespace: 'ns', image: 'tidepool/tidepool:1', env: { TIDEPOOL_PREFIX: 'p' }, selector: { 'tidepool.io/prefix': 'p' }, activeDeadlineSeconds: 60, ttlSecondsAfterFinished: 30, namePrefix: 'p-runner' }, testLogger());
    const job = launcher.jobManifest('p-runner-1');
    expect(job.spec).toMatchObject({ backoffLimit: 0, activeDeadlineSeconds: 60, ttlSecondsAfterFinished: 30 });
    const spec = job.spec!.template.spec!;
    expect(spec.restartPolicy).toBe('Never');
    expect(spec.containers[0]!.args).toEqual(['runner', '--runner-id', 'p-runner-1']);
    expect(spec.containers[0]!.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(job.metadata!.labels).toMatchObject({ 'tidepool.io/prefix': 'p', 'tidepool.io/runner': 'p-runner-1' });
    expect(job.spec!.template.metadata!.annotations).toBeUndefined();
  });
  it('announces the runner\'s /metrics port to Prometheus when it has one', () => {
    const launcher = new KubernetesJobRunnerLauncher(offlineKubeConfig(), { namespace: 'ns', image: 'tidepool/tidepool:1', env: { TIDEPOOL_METRICS_PORT: '9464' }, selector: {}, activeDeadlineSeconds: 60, ttlSecondsAfterFinished: 30, namePrefix: 'p-runner', metricsPort: 9464 }, testLogger());
    const job = launcher.jobManifest('p-runner-2');
    expect(job.spec!.template.metadata!.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9464', 'prometheus.io/path': '/metrics' });
    expect(job.spec!.template.spec!.containers[0]!.ports).toEqual([{ name: 'metrics', containerPort: 9464, protocol: 'TCP' }]);
  });
});

describe('connector pods', () => {
  const adapter = new KubernetesPodConnectorLauncher(
    offlineKubeConfig(),
    { namespace: 'ns', runnerId: 'r1', server: new StreamServer(testLogger(), { host: '127.0.0.1', port: 0 }), advertiseAddress: '10.0.0.5', sidecarImage: 'tidepool/socat:1', stdio: 'sidecar', builtinImage: (n) => `tidepool/${n}:1`, imagePullPolicy: 'Never', owner: { name: 'runner-pod', uid: 'u1' }, activeDeadlineSeconds: 600, selector: { 'tidepool.io/prefix': 'p' } },
    testLogger(),
  );
  const connector = (pod: V1Pod) => pod.spec!.containers.find((c) => c.name === 'connector')!;
  const sidecar = (pod: V1Pod) => pod.spec!.containers.find((c) => c.name === 'streams')!;
  const run = { runId: 'sync-1-a1-destination', role: 'destination' as const, connector: { connector: 'destination-jsonl', config: {} }, command: 'write' as const, files: { config: { a: 1 }, catalog: { streams: [] } } };

  it('names pods uniquely and within DNS limits', () => {
    expect(podName(run)).toMatch(/^tp-dst-[0-9a-f]{20}$/);
    expect(podName({ ...run, runId: 'sync-2-a1-destination' })).not.toBe(podName(run));
  });

  it('builds a locked-down pod owned by the runner: the connector and one native sidecar carrying its streams', () => {
    const p = adapter.podManifest(run, 'tp-dst-x', { a: 'b' });
    const spec = p.spec!;
    expect(p.metadata!.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'runner-pod', uid: 'u1', blockOwnerDeletion: false }]);
    expect(spec).toMatchObject({ restartPolicy: 'Never', automountServiceAccountToken: false, shareProcessNamespace: true, activeDeadlineSeconds: 600 + DESTINATION_DRAIN_SECONDS });
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true });
    // The sidecar first: the kubelet starts containers in this order, in one pass.
    expect(spec.containers.map((c) => c.name)).toEqual(['streams', 'connector']);
    expect(spec.initContainers).toBeUndefined();
    // A destination's sidecar carries stdin too.
    expect(sidecar(p).command![2]).toContain('TIDEPOOL_RECEIVE');
    for (const c of spec.containers) {
      expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    }
    expect(connector(p).image).toBe('tidepool/destination-jsonl:1');
    expect(connector(p).command).toEqual(['sh', '-c', expect.stringContaining('"$PIPES/stdin"'), 'sh', 'write', '--config', '/config/config.json', '--catalog', '/config/catalog.json']);
    const env = Object.fromEntries(sidecar(p).env!.map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({ TIDEPOOL_RUNNER_HOST: '10.0.0.5', TIDEPOOL_TOKEN: { secretKeyRef: { name: 'tp-dst-x', key: 'token' } } });
    expect(spec.volumes!.find((v) => v.name === 'config')!.secret).toEqual({
      secretName: 'tp-dst-x',
      defaultMode: 0o440,
      items: [
        { key: 'config.json', path: 'config.json' },
        { key: 'catalog.json', path: 'catalog.json' },
      ],
    });
    // Every scratch volume is bounded: a connector cannot fill the node's disk or memory.
    expect(spec.volumes!.filter((v) => v.emptyDir).map((v) => [v.name, v.emptyDir!.sizeLimit])).toEqual([
      ['pipes', '1Mi'],
      ['tmp', CONNECTOR_TMP_SIZE_LIMIT],
    ]);
    expect(CONNECTOR_TMP_SIZE_LIMIT).toBe('1Gi');
  });

  it('puts the stream token and the connector env in the run\'s Secret, never in the pod spec', () => {
    const withEnv = { ...run, connector: { ...run.connector, env: { API_KEY: 'k-123456', 'odd.name': 'v' } } };
    const token = 'f'.repeat(64);
    const secret = adapter.secretManifest(withEnv, 'tp-dst-x', token, {});
    expect(secret.stringData).toEqual({ 'config.json': '{"a":1}', 'catalog.json': '{"streams":[]}', token, 'env.0': 'k-123456', 'env.1': 'v' });
    expect(secret.immutable).toBe(true);
    const pod = adapter.podManifest(withEnv, 'tp-dst-x', {});
    const text = JSON.stringify(pod);
    expect(text).not.toContain(token);
    expect(text).not.toContain('k-123456');
    expect(connector(pod).env).toEqual([
      { name: 'PIPES', value: '/pipes' },
      { name: 'API_KEY', valueFrom: { secretKeyRef: { name: 'tp-dst-x', key: 'env.0' } } },
      { name: 'odd.name', valueFrom: { secretKeyRef: { name: 'tp-dst-x', key: 'env.1' } } },
    ]);
    // `spec` has no files: nothing of the Secret is mounted.
    expect(adapter.podManifest({ ...run, command: 'spec', files: {} }, 'tp-dst-x', {}).spec!.volumes!.find((v) => v.name === 'config')).toEqual({ name: 'config', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
  });

  it('gives a source no stdin stream', () => {
    const p = adapter.podManifest({ ...run, role: 'source', command: 'read' }, 'tp-src-x', {});
    expect(p.spec!.containers.map((c) => c.name)).toEqual(['streams', 'connector']);
    expect(sidecar(p).command![2]).not.toContain('TIDEPOOL_RECEIVE');
    expect(sidecar(p).command![2]).not.toContain('$PIPES/stdin');
    expect(connector(p).command![2]).toContain('< /dev/null');
  });

  it('with direct stdio, runs one container: bash dials the runner for each stream and execs the connector on the sockets', () => {
    const direct = { ...run, connector: { ...run.connector, stdio: 'direct' as const, env: { API_KEY: 'k-123456' } } };
    const p = adapter.podManifest(direct, 'tp-dst-x', {});
    const spec = p.spec!;
    expect(spec.containers.map((c) => c.name)).toEqual(['connector']);
    expect(spec).toMatchObject({ shareProcessNamespace: true, automountServiceAccountToken: false });
    expect(connector(p).command).toEqual(['bash', '-c', expect.stringContaining('dial 5 stdin'), 'bash', 'write', '--config', '/config/config.json', '--catalog', '/config/catalog.json']);
    expect(connector(p).securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    // The runner's address and token come first, the connector's env after, each from the Secret.
    expect(connector(p).env).toEqual([
      { name: 'TIDEPOOL_RUNNER_HOST', value: '10.0.0.5' },
      { name: 'TIDEPOOL_RUNNER_PORT', value: '0' },
      { name: 'TIDEPOOL_TOKEN', valueFrom: { secretKeyRef: { name: 'tp-dst-x', key: 'token' } } },
      { name: 'API_KEY', valueFrom: { secretKeyRef: { name: 'tp-dst-x', key: 'env.0' } } },
    ]);
    expect(JSON.stringify(p)).not.toContain('k-123456');
    // No pipes: only the connector's /tmp is a scratch volume.
    expect(spec.volumes!.filter((v) => v.emptyDir).map((v) => v.name)).toEqual(['tmp']);
    expect(connector(p).volumeMounts!.map((m) => m.mountPath)).toEqual(['/config', '/tmp']);
    // A source dials no stdin and reads /dev/null.
    const source = adapter.podManifest({ ...direct, role: 'source', command: 'read' }, 'tp-src-x', {});
    expect(connector(source).command![2]).not.toContain('stdin');
    expect(connector(source).command![2]).toContain('</dev/null');
  });

  it('takes the installation\'s stdio unless the connector names its own', () => {
    const directByDefault = new KubernetesPodConnectorLauncher(
      offlineKubeConfig(),
      { namespace: 'ns', runnerId: 'r1', server: new StreamServer(testLogger(), { host: '127.0.0.1', port: 0 }), advertiseAddress: '10.0.0.5', sidecarImage: 's', stdio: 'direct', builtinImage: (n) => n, imagePullPolicy: 'Never', activeDeadlineSeconds: 1, selector: {} },
      testLogger(),
    );
    expect(directByDefault.podManifest(run, 'tp-dst-x', {}).spec!.containers.map((c) => c.name)).toEqual(['connector']);
    const sidecarOne = { ...run, connector: { ...run.connector, stdio: 'sidecar' as const } };
    expect(directByDefault.podManifest(sidecarOne, 'tp-dst-x', {}).spec!.containers.map((c) => c.name)).toEqual(['streams', 'connector']);
  });

  it('gives the connector container the installation resources, overridden per connector field by field', () => {
    const limited = new KubernetesPodConnectorLauncher(
      offlineKubeConfig(),
      {
        namespace: 'ns', runnerId: 'r1', server: new StreamServer(testLogger(), { host: '127.0.0.1', port: 0 }), advertiseAddress: '10.0.0.5', sidecarImage: 's', stdio: 'sidecar', builtinImage: (n) => n, imagePullPolicy: 'Never', activeDeadlineSeconds: 1, selector: {},
        resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '', memory: '2Gi' } },
        nodeSelector: { pool: 'connectors' },
        tmpSizeLimit: '8Gi',
      },
      testLogger(),
    );
    const plain = limited.podManifest(run, 'tp-dst-x', {}).spec!;
    expect(plain.volumes!.find((v) => v.name === 'tmp')!.emptyDir).toEqual({ sizeLimit: '8Gi' });
    expect(connector({ spec: plain }).resources).toEqual({ requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '2Gi' } });
    expect(plain.nodeSelector).toEqual({ pool: 'connectors' });
    const small = limited.podManifest({ ...run, connector: { ...run.connector, resources: { limits: { memory: '96Mi', cpu: '1' } } } }, 'tp-dst-x', {}).spec!;
    // A limit below the default request brings the request down with it (the API refuses request > limit).
    expect(connector({ spec: small }).resources).toEqual({ requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '96Mi', cpu: '1' } });
    // Without settings the container asks for nothing (the cluster's LimitRange, if any, applies).
    expect(connector(adapter.podManifest(run, 'tp-dst-x', {})).resources).toBeUndefined();
  });
});
