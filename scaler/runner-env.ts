// What a runner the scaler launches inherits: the installation's settings as TIDEPOOL_*
// variables, less what belongs to the scaler alone. One rule for both launchers, so a setting
// added to the schema reaches local runners and runner Jobs alike, and a secret of the scaler's
// reaches neither.
import { configEnv, envName, type Config } from '../shared/config.js';

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

/** What a local runner inherits from the scaler's process environment besides tidepool's settings. */
const PASSED_THROUGH = ['PATH', 'HOME', 'LANG', 'TZ', 'NODE_OPTIONS'];

/**
 * The environment of a runner launched as a child process on the scaler's host (`local`) or as
 * a Job on the cluster (`pod`; the Job adds the pod's identity).
 */
export function runnerEnv(config: Config, where: 'local' | 'pod', processEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (where === 'pod') return configEnv(config, [...SCALER_ONLY, ...SCALER_PLACE]);
  const inherited: Record<string, string> = {};
  for (const key of PASSED_THROUGH) {
    const value = processEnv[key];
    if (value !== undefined) inherited[key] = value;
  }
  // Runners on one host cannot all listen on metricsPort (nor share the scaler's).
  return { ...inherited, ...configEnv(config, SCALER_ONLY), [envName('metricsPort')]: '0' };
}
