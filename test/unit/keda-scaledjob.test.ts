// The ScaledJob the KEDA bench applies: its Job must be tidepool's runner Job but for what KEDA
// owns (the name), and its trigger must point at the right queue and mode.
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import { kedaHost, kedaTriggerAuth, runnerJobTemplate, scaledJob } from '../../bench/support/keda.js';
import { testLogger } from '../helpers/services.js';

function launcher(): KubernetesJobRunnerLauncher {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  return new KubernetesJobRunnerLauncher(
    kc,
    {
      namespace: 'ns',
      image: 'tidepool/tidepool:1',
      serviceAccountName: 'tidepool-runner',
      env: { TIDEPOOL_PREFIX: 'p', TIDEPOOL_CONCURRENCY: '2' },
      secretEnv: { TIDEPOOL_AMQP_URL: { secret: 'creds', key: 'amqp-url' } },
      selector: { 'tidepool.io/prefix': 'p' },
      activeDeadlineSeconds: 60,
      ttlSecondsAfterFinished: 30,
      namePrefix: 'p-runner',
    },
    testLogger(),
  );
}

describe('KEDA ScaledJob', () => {
  it("runs tidepool's runner Job, the runner named after its pod", () => {
    const l = launcher();
    const { spec, labels } = runnerJobTemplate(l);
    const original = l.jobManifest('x').spec!;
    const pod = spec.template.spec!;
    const container = pod.containers[0]!;
    expect(container.args).toEqual(['runner', '--runner-id', '$(TIDEPOOL_POD_NAME)']);
    // Everything else as tidepool launches it: image, settings, Secret references, account, security.
    const same = original.template.spec!.containers[0]!;
    same.args = container.args!;
    expect(container).toEqual(same);
    expect(pod.serviceAccountName).toBe('tidepool-runner');
    expect(pod.securityContext).toEqual(original.template.spec!.securityContext);
    expect(spec.backoffLimit).toBe(0);
    expect(spec.activeDeadlineSeconds).toBe(60);
    expect(labels).toEqual({ 'tidepool.io/prefix': 'p', 'app.kubernetes.io/name': 'tidepool', 'app.kubernetes.io/component': 'runner' });
    expect(spec.template.metadata?.labels).toEqual(labels);
  });

  it.each([
    ['default', 'amqp', 30],
    ['eager', 'http', 1],
  ] as const)('%s strategy, %s trigger, polling every %i s', (strategy, mode, pollingIntervalS) => {
    const sj = scaledJob(launcher(), { name: 'r', namespace: 'ns', strategy, mode, pollingIntervalS, maxReplicaCount: 40, value: 2, queueName: 'p.syncs', authenticationRef: 'auth' });
    expect(sj.metadata?.labels).toMatchObject({ 'tidepool.io/prefix': 'p' });
    expect(sj.spec).toMatchObject({
      pollingInterval: pollingIntervalS,
      maxReplicaCount: 40,
      scalingStrategy: { strategy },
      triggers: [{ type: 'rabbitmq', metadata: { protocol: mode, queueName: 'p.syncs', mode: 'QueueLength', value: '2' }, authenticationRef: { name: 'auth' } }],
    });
  });

  it("gives the trigger the broker's AMQP URL, or its management API with the same user and vhost", () => {
    expect(kedaHost('amqp://tidepool:pw@127.0.0.1:5672', 'amqp')).toBe('amqp://tidepool:pw@127.0.0.1:5672');
    expect(kedaHost('amqp://tidepool:p%2Fw@127.0.0.1:5672', 'http', 15672)).toBe('http://tidepool:p%2Fw@127.0.0.1:15672/');
    expect(kedaHost('amqp://tidepool:pw@127.0.0.1:5672/my%2Fvhost', 'http', 15672)).toBe('http://tidepool:pw@127.0.0.1:15672/my%2Fvhost');
    const [secret, auth] = kedaTriggerAuth('a', 'ns', 'amqp://x');
    expect(secret).toMatchObject({ kind: 'Secret', stringData: { host: 'amqp://x' } });
    expect(auth).toMatchObject({ kind: 'TriggerAuthentication', spec: { secretTargetRef: [{ parameter: 'host', name: 'a', key: 'host' }] } });
  });
});
