// What a runner the scaler launches inherits: the installation's settings as TIDEPOOL_*
// variables, less what belongs to the scaler alone. One rule for both launchers, so a setting
// added to the schema reaches local runners and runner Jobs alike, and a secret of the scaler's
// reaches neither.
import { configEnv, envName, type Config } from '../shared/config.js';
import { podTlsFileSettings } from '../shared/tls.js';
import { embeddedSecrets, isSecretKey } from '../shared/redact.js';

/**
 * The scaler's own settings, never handed to runners: the dashboard's token and the webhooks'
 * secrets would otherwise sit in every runner's environment (and, in Kubernetes, in plain text in every Job's spec).
 */
const SCALER_ONLY = ['dashboardPort', 'dashboardHost', 'dashboardToken', 'notifications'] as const;

/** A pod's own identity: a runner pod gets its own from the downward API (scaler/kubernetes-job.ts). */
export const POD_IDENTITY = ['podName', 'podUid', 'podIp'] as const;

/**
 * What describes where the scaler itself runs, not a runner pod: its pod, the address its pods
 * dial, its kubeconfig (a runner pod uses the in-cluster service account).
 */
const SCALER_PLACE = [...POD_IDENTITY, 'advertiseAddress', 'kubeconfig'] as const;

/**
 * What means nothing in a runner pod: runnerUser is the user a runner started as root drops to,
 * and runner pods never run as root (the image's user, runAsNonRoot).
 */
const HOST_ONLY = ['runnerUser'] as const;

/** What a local runner inherits from the scaler's process environment besides tidepool's settings. */
const PASSED_THROUGH = ['PATH', 'HOME', 'LANG', 'TZ', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS'];

/**
 * The environment of a runner launched as a child process on the scaler's host (`local`) or as
 * a Job on the cluster (`pod`; the Job adds the pod's identity).
 */
export function runnerEnv(config: Config, where: 'local' | 'pod', processEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (where === 'pod') {
    const env = configEnv(config, [...SCALER_ONLY, ...SCALER_PLACE, ...HOST_ONLY, ...(config.credentialsSecret ? CREDENTIALS : [])]);
    // The scaler's TLS file paths mean nothing in the pod: its files come from runnerTlsSecret.
    for (const [setting, path] of Object.entries(podTlsFileSettings(config))) env[envName(setting)] = path;
    return env;
  }
  const inherited: Record<string, string> = {};
  for (const key of PASSED_THROUGH) {
    const value = processEnv[key];
    if (value !== undefined) inherited[key] = value;
  }
  // Runners on one host cannot all listen on metricsPort (nor share the scaler's): none unless
  // the local launcher gives one its own (local-metrics-ports.ts).
  return { ...inherited, ...configEnv(config, SCALER_ONLY), [envName('metricsPort')]: '0' };
}

/**
 * The settings a runner Job takes from the credentials Secret instead of its spec, by the
 * Secret's key: the URLs that may hold the broker's and the store's passwords.
 */
const CREDENTIAL_KEYS = { amqpUrl: 'amqp-url', redisUrl: 'redis-url' } as const;
const CREDENTIALS = Object.keys(CREDENTIAL_KEYS) as Array<keyof typeof CREDENTIAL_KEYS>;

/** A runner Job's variables read from a Secret: variable → Secret name and key. */
export type SecretEnv = Record<string, { secret: string; key: string }>;

/** What a runner Job reads from the credentials Secret (none without one: then runnerEnv carries every setting). */
export function runnerSecretEnv(config: Pick<Config, 'credentialsSecret'>): SecretEnv {
  if (!config.credentialsSecret) return {};
  return Object.fromEntries(CREDENTIALS.map((k) => [envName(k), { secret: config.credentialsSecret, key: CREDENTIAL_KEYS[k] }]));
}

/**
 * Why runner Jobs cannot be launched with these settings: a credential would be a plain value
 * in every Job's spec (a URL with a password and no credentialsSecret). Undefined when none is.
 */
export function plainCredentialsProblem(config: Config): string | undefined {
  // credentialsSecret names a Secret; it holds none.
  const named = (name: string) => name !== envName('credentialsSecret') && isSecretKey(name);
  const plain = Object.entries(runnerEnv(config, 'pod')).filter(([name, value]) => value !== '' && (named(name) || embeddedSecrets(value).size > 0));
  if (plain.length === 0) return undefined;
  const names = plain.map(([name]) => name).join(', ');
  return config.credentialsSecret
    ? `${names} would be a plain value in every runner Job's spec: it holds a credential that the Secret ${config.credentialsSecret} cannot carry`
    : `${names} would be a plain value in every runner Job's spec, readable by anyone who can get jobs or pods: set ${envName('credentialsSecret')} to a Secret with keys ${Object.values(CREDENTIAL_KEYS).join(', ')} (see k8s/base/kustomization.yaml)`;
}
