// The configuration compiled into each component's options: a Config in, options out. What a
// launched runner inherits is checked setting by setting: everything it reads, and nothing of
// the scaler's own (its dashboard token above all).
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { configEnv, configSchema, envName, loadConfig, type Config } from '../../shared/config.js';
import { advertiseAddress, builtinImage, kubernetesPodOptions } from '../../runner/launch/launchers.js';
import { StreamServer } from '../../runner/launch/stream-server.js';
import { kubernetesJobOptions, leaseOptions } from '../../scaler/launchers.js';
import { KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import { plainCredentialsProblem, runnerEnv, runnerSecretEnv } from '../../scaler/runner-env.js';
import { scalerSettings } from '../../scaler/settings.js';
import { testLogger } from '../helpers/services.js';

/** An installation with every secret and every per-host setting set, as a scaler in a pod has them. */
const config = loadConfig({}, undefined, {
  prefix: 'prod.eu_1',
  amqpUrl: 'amqps://tidepool:broker-secret@rabbit:5671',
  redisUrl: 'rediss://:redis-secret@redis:6380',
  dashboardPort: 8080,
  dashboardHost: '0.0.0.0',
  dashboardToken: 'dashboard-token-0123456789',
  metricsPort: 9464,
  kubeconfig: '/etc/scaler/kubeconfig',
  advertiseAddress: '10.0.0.9',
  podName: 'tidepool-scaler-0',
  podUid: 'uid-scaler',
  podIp: '10.0.0.9',
  namespace: 'data',
  imagePrefix: 'registry.example/tp/',
  imageTag: '1.2.3',
  imagePullPolicy: 'Always',
  runnerDeadline: '2h',
  runnerJobTtl: '90s',
  runnerCpuRequest: '200m',
  runnerCpuLimit: '',
  runnerMemoryLimit: '2Gi',
  runnerNodeSelector: 'pool=runners',
  connectorDeadline: '30m',
  connectorCpuLimit: '2',
  connectorNodeSelector: 'pool=connectors,disk=ssd',
  leaderTtl: '15s',
  pollInterval: '2s',
  runnerStartTimeout: '90s',
  concurrency: 3,
  minRunners: 1,
  maxRunners: 7,
  launchRate: 0.5,
  launchBurst: 2,
});

const KEYS = Object.keys(configSchema.shape) as (keyof Config)[];
const SCALER_ONLY: (keyof Config)[] = ['dashboardPort', 'dashboardHost', 'dashboardToken', 'notifications'];
const SCALER_PLACE: (keyof Config)[] = ['podName', 'podUid', 'podIp', 'advertiseAddress', 'kubeconfig'];
/** Settings for runners on a host only: a runner pod never runs as root, so it drops to nobody. */
const HOST_ONLY: (keyof Config)[] = ['runnerUser'];

describe('configEnv', () => {
  it('writes every setting as the variable loadConfig reads it back from', () => {
    const env = configEnv(config);
    expect(Object.keys(env)).toEqual(KEYS.map(envName));
    expect(loadConfig(env)).toEqual(config);
  });
  it('leaves out the settings it is told to', () => {
    expect(configEnv(config, ['dashboardToken'])).not.toHaveProperty('TIDEPOOL_DASHBOARD_TOKEN');
  });
});

describe('runnerEnv', () => {
  it('gives a runner Job every setting but the scaler\'s own and where the scaler runs', () => {
    const env = runnerEnv(config, 'pod');
    expect(Object.keys(env)).toEqual(KEYS.filter((k) => !SCALER_ONLY.includes(k) && !SCALER_PLACE.includes(k) && !HOST_ONLY.includes(k)).map(envName));
    for (const [name, value] of Object.entries(env)) expect(value).toBe(configEnv(config)[name]);
    // The runner reads back the installation's settings; its pod, address and service account are its own.
    const read = loadConfig(env);
    for (const key of KEYS.filter((k) => !SCALER_ONLY.includes(k) && !SCALER_PLACE.includes(k) && !HOST_ONLY.includes(k))) expect(read[key], key).toEqual(config[key]);
    expect(read).toMatchObject({ kubeconfig: '', advertiseAddress: '', podName: '', dashboardToken: '' });
  });

  it('never hands the dashboard token to a runner, nor anything of the scaler\'s environment to a Job', () => {
    for (const env of [runnerEnv(config, 'pod'), runnerEnv(config, 'local', { PATH: '/bin' })]) {
      expect(Object.values(env)).not.toContain(config.dashboardToken);
      expect(Object.keys(env).filter((k) => k.startsWith('TIDEPOOL_DASHBOARD'))).toEqual([]);
    }
    expect(runnerEnv(config, 'pod')).not.toHaveProperty('PATH');
  });

  it('gives a local runner the host\'s settings, a few of the scaler\'s variables, and no metrics port', () => {
    const processEnv = { PATH: '/usr/bin', HOME: '/home/tp', LANG: 'C.UTF-8', AWS_SECRET_ACCESS_KEY: 'aws', TIDEPOOL_CONFIG_FILE: '/etc/tp.yaml' };
    const env = runnerEnv(config, 'local', processEnv);
    expect(env).toMatchObject({ PATH: '/usr/bin', HOME: '/home/tp', LANG: 'C.UTF-8', TIDEPOOL_METRICS_PORT: '0' });
    expect(env).not.toHaveProperty('AWS_SECRET_ACCESS_KEY');
    expect(env).not.toHaveProperty('TIDEPOOL_CONFIG_FILE');
    // Same host: the kubeconfig and the address its connector pods dial still hold.
    expect(env).toMatchObject({ TIDEPOOL_KUBECONFIG: '/etc/scaler/kubeconfig', TIDEPOOL_ADVERTISE_ADDRESS: '10.0.0.9', TIDEPOOL_AMQP_URL: config.amqpUrl });
    expect(loadConfig(Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('TIDEPOOL_')))).metricsPort).toBe(0);
  });
});

describe('runner Job options', () => {
  it('compiles the Job from the runner settings', () => {
    const options = kubernetesJobOptions(config);
    expect(options).toEqual({
      namespace: 'data',
      image: 'registry.example/tp/tidepool:1.2.3',
      imagePullPolicy: 'Always',
      serviceAccountName: 'tidepool-runner',
      env: runnerEnv(config, 'pod'),
      secretEnv: {},
      selector: { 'tidepool.io/prefix': 'prod.eu_1' },
      activeDeadlineSeconds: 7200,
      resources: { requests: { cpu: '200m', memory: '128Mi' }, limits: { memory: '2Gi' } },
      nodeSelector: { pool: 'runners' },
      ttlSecondsAfterFinished: 90,
      namePrefix: 'prod-eu-1-runner',
      metricsPort: 9464,
    });
  });

  it('takes the broker and store URLs from the credentials Secret: no password in the Job', () => {
    const withSecret = loadConfig(configEnv(config), undefined, { credentialsSecret: 'tidepool-credentials' });
    expect(runnerEnv(withSecret, 'pod')).not.toHaveProperty('TIDEPOOL_AMQP_URL');
    expect(runnerEnv(withSecret, 'pod')).not.toHaveProperty('TIDEPOOL_REDIS_URL');
    expect(runnerSecretEnv(withSecret)).toEqual({
      TIDEPOOL_AMQP_URL: { secret: 'tidepool-credentials', key: 'amqp-url' },
      TIDEPOOL_REDIS_URL: { secret: 'tidepool-credentials', key: 'redis-url' },
    });
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const job = new KubernetesJobRunnerLauncher(kc, kubernetesJobOptions(withSecret), testLogger()).jobManifest('prod-runner-1');
    const text = JSON.stringify(job);
    expect(text).not.toContain('broker-secret');
    expect(text).not.toContain('redis-secret');
    expect(job.spec!.template.spec!.containers[0]!.env).toContainEqual({ name: 'TIDEPOOL_AMQP_URL', valueFrom: { secretKeyRef: { name: 'tidepool-credentials', key: 'amqp-url' } } });
    expect(plainCredentialsProblem(withSecret)).toBeUndefined();
  });

  it('refuses to put a URL with a password in a Job spec', () => {
    expect(plainCredentialsProblem(config)).toMatch(/^TIDEPOOL_AMQP_URL, TIDEPOOL_REDIS_URL would be a plain value in every runner Job's spec.*set TIDEPOOL_CREDENTIALS_SECRET/);
    const noPasswords = loadConfig({}, undefined, { amqpUrl: 'amqp://rabbit:5672', redisUrl: 'redis://redis:6379' });
    expect(plainCredentialsProblem(noPasswords)).toBeUndefined();
  });

  it('leads by one Lease per installation', () => {
    expect(leaseOptions(config)).toEqual({ namespace: 'data', name: 'prod.eu_1-scaler', ttlMs: 15_000 });
  });
});

describe('connector pod options', () => {
  const server = new StreamServer(testLogger(), { host: '127.0.0.1', port: 0 });

  it('compiles one runner\'s connector pods from the connector settings', () => {
    const options = kubernetesPodOptions(config, { runnerId: 'r1', server, advertiseAddress: '10.0.0.5' });
    expect(options).toMatchObject({
      namespace: 'data',
      runnerId: 'r1',
      advertiseAddress: '10.0.0.5',
      sidecarImage: 'registry.example/tp/socat:1.2.3',
      imagePullPolicy: 'Always',
      owner: { name: 'tidepool-scaler-0', uid: 'uid-scaler' },
      activeDeadlineSeconds: 1800,
      resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '2', memory: '2Gi' } },
      nodeSelector: { pool: 'connectors', disk: 'ssd' },
      selector: { 'tidepool.io/prefix': 'prod.eu_1' },
    });
    expect(options.server).toBe(server);
    expect(options.builtinImage('source-faker')).toBe('registry.example/tp/source-faker:1.2.3');
  });

  it('owns the pods only when the runner knows its own pod', () => {
    const onHost = { ...config, podName: '', podUid: '' };
    expect(kubernetesPodOptions(onHost, { runnerId: 'r1', server, advertiseAddress: '10.0.0.5' })).not.toHaveProperty('owner');
  });

  it('has pods dial the advertised address, else the runner pod\'s IP, and refuses neither', () => {
    expect(advertiseAddress({ advertiseAddress: '10.0.0.5', podIp: '10.0.0.6' })).toBe('10.0.0.5');
    expect(advertiseAddress({ advertiseAddress: '', podIp: '10.0.0.6' })).toBe('10.0.0.6');
    expect(() => advertiseAddress({ advertiseAddress: '', podIp: '' })).toThrow(/TIDEPOOL_ADVERTISE_ADDRESS/);
  });

  it('names reference connector images after the installation\'s images', () => {
    expect(builtinImage({ imagePrefix: 'tidepool/', imageTag: '0.1.0' })('destination-jsonl')).toBe('tidepool/destination-jsonl:0.1.0');
  });
});

describe('scaler settings', () => {
  it('compiles what the loop reads, in its units', () => {
    expect(scalerSettings(config)).toEqual({
      pollIntervalMs: 2000,
      runnerStartTimeoutMs: 90_000,
      limits: { concurrency: 3, minRunners: 1, maxRunners: 7 },
      launchRate: { perSecond: 0.5, burst: 2 },
      leaderTtlMs: 15_000,
    });
  });
});
