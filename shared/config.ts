// All of tidepool's settings, in one zod schema. They come from an optional file (JSON or YAML,
// keys as below) overlaid by TIDEPOOL_* environment variables (TIDEPOOL_ + the key in
// SCREAMING_SNAKE_CASE: maxRunners → TIDEPOOL_MAX_RUNNERS). The result is parsed once, at start,
// into a frozen Config; nothing deeper reads process.env. A bad value stops the process before
// any connection is opened, with a message naming the variable.
import { existsSync, readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CONNECTOR_STDIO } from './connections.js';
import { isSecretKey } from './redact.js';
import { parseTargets } from './notifications/targets.js';
import { DEFAULT_DELIVERY_LIMIT, DEFAULT_MAX_ATTEMPTS } from './broker/topology.js';
import { PACKAGE_VERSION } from './paths.js';
import { tlsSettingProblems } from './tls.js';
import { KUBERNETES_QUANTITY, parseBytes, parseDuration } from './units.js';

// `docType` metadata names a building block's type in the settings reference (npm run docs, which
// reads it from the schema); each setting's meaning is in config-descriptions.ts.
const duration = z
  .union([z.number().int().nonnegative(), z.string()])
  .transform((v, ctx) => {
    if (typeof v === 'number') return v;
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a duration: "${v}" (use e.g. 500ms, 30s, 5m, 1h)` });
      return z.NEVER;
    }
    return ms;
  })
  .meta({ docType: 'duration' });

const bytes = z
  .union([z.number().int().positive(), z.string()])
  .transform((v, ctx) => {
    if (typeof v === 'number') return v;
    const n = parseBytes(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a size: "${v}" (use e.g. 512KiB, 64MiB)` });
      return z.NEVER;
    }
    return n;
  })
  .meta({ docType: 'size' });

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

/** A yes/no setting: true/false (YAML), or "true"/"false"/"1"/"0" (environment variables). */
const flag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0'], { error: 'expected true or false' })]).transform((v) => v === true || v === 'true' || v === '1')
  .meta({ docType: 'boolean' });

/** A Kubernetes resource quantity (250m, 0.5, 512Mi, 2Gi), or empty for none. */
const quantity = z.string().refine((v) => v === '' || KUBERNETES_QUANTITY.test(v), 'a Kubernetes quantity like 250m, 1, 512Mi, 2Gi (or empty for none)').meta({ docType: 'Kubernetes quantity' });

/** A Kubernetes namespace name (a DNS-1123 label). */
const kubeNamespace = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a Kubernetes namespace name').meta({ docType: 'namespace name' });

/**
 * A node selector as `key=value,key=value` (empty: none). Kept as text so it survives being
 * handed to runner pods as an environment variable; `parseNodeSelector` reads it.
 */
const nodeSelector = z.string().regex(/^$|^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*(,[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*)*$/, 'key=value pairs separated by commas').meta({ docType: '`key=value,…`' });

export function parseNodeSelector(text: string): Record<string, string> | undefined {
  if (!text) return undefined;
  return Object.fromEntries(text.split(',').map((pair) => pair.split('=', 2) as [string, string]));
}

/**
 * One entry of the connector allow-list: a program by its absolute path, every program under a
 * directory (an absolute path ending in `/`), an image repository (any tag or digest of it), or
 * one image by digest (`repo@sha256:…`, a tag before the digest is ignored).
 */
export type AllowedConnector =
  | { kind: 'program'; path: string }
  | { kind: 'directory'; path: string }
  | { kind: 'repository'; repository: string }
  | { kind: 'digest'; repository: string; digest: string };

// Docker's reference grammar, as far as the allow-list needs it: an optional registry host
// (with a port), path components, an optional tag, an optional sha256 digest.
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REGISTRY = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)';
/** `[registry/]path[:tag][@sha256:hex]`: groups 1 (the repository as written), 2 (tag), 3 (digest). */
export const IMAGE_REFERENCE = new RegExp(`^(${REGISTRY}?${COMPONENT}(?:/${COMPONENT})*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$`);

/** One entry's meaning, or why it has none. */
function allowListEntry(entry: string): AllowedConnector | string {
  if (entry.startsWith('/')) {
    if (entry.split('/').some((part) => part === '..' || part === '.')) return `${entry}: a path without . or .. parts`;
    return entry.endsWith('/') ? { kind: 'directory', path: entry } : { kind: 'program', path: entry };
  }
  const m = IMAGE_REFERENCE.exec(entry);
  if (!m) return `${entry}: neither an absolute path nor an image repository`;
  if (m[3]) return { kind: 'digest', repository: m[1]!, digest: m[3] };
  if (m[2]) return `${entry}: an image by tag (a tag can be moved to another build): give the repository (any tag) or repo@sha256:…`;
  return { kind: 'repository', repository: m[1]! };
}

/**
 * The connector allow-list, as comma-separated entries (empty: none). Kept as text, like the node
 * selectors, so that it reaches runners (processes, pods) as one environment variable.
 */
const allowList = z
  .string()
  .superRefine((text, ctx) => {
    for (const problem of parseAllowList(text).filter((e) => typeof e === 'string')) ctx.addIssue({ code: 'custom', message: problem });
  })
  .meta({ docType: 'comma-separated list' });

function parseAllowList(text: string): Array<AllowedConnector | string> {
  return text
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')
    .map(allowListEntry);
}

/** The entries of a valid allowedConnectors setting. */
export function parseAllowedConnectors(text: string): AllowedConnector[] {
  return parseAllowList(text).filter((e): e is AllowedConnector => typeof e !== 'string');
}

/** A PEM file's path (shared/tls.ts checks it at start); empty: none. */
const tlsFile = z.string().meta({ docType: 'file path' }).default('');

/**
 * The installation's webhook targets (shared/notifications/targets.ts), as JSON text: a list of
 * `{url, events?, format?, secret?|secretRef?}`. Kept as text like the allow-list; a config
 * file may give the list itself. Its errors never quote it: it may hold secrets.
 */
const notificationTargets = z.preprocess(
  (v) => (Array.isArray(v) ? JSON.stringify(v) : v),
  z.string().superRefine((text, ctx) => {
    try {
      parseTargets(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  }),
).meta({ docType: 'JSON list' });

const amqpUrl = z
  .string()
  .regex(/^amqps?:\/\//, 'must be an amqp:// or amqps:// URL');
const redisUrl = z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL');

export const configSchema = z
  .object({
    /** Names every queue, exchange and Redis key, so several installations (or tests) share a broker. */
    prefix: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, ".", "_" and "-"').default('tidepool'),
    amqpUrl: amqpUrl.default('amqp://guest:guest@127.0.0.1:5672'),
    redisUrl: redisUrl.default('redis://127.0.0.1:6379'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

    // Scaler
    pollInterval: duration.default(1000),
    minRunners: int(0).default(0),
    maxRunners: int(1).default(10),
    /**
     * Launches per second, sustained, and the burst allowed above it (a token bucket). A runner
     * takes seconds to start (a pod: 3-8 s), so the bucket bounds how fast a burst is answered:
     * in the scaling simulator (npm run bench:scaling-sim) 2/s with a burst of 4 added ~2 s to
     * the wait p95 of a 60-sync burst, 5/s with 10 nothing more than an unlimited rate.
     */
    launchRate: z.coerce.number().positive().default(5),
    launchBurst: int(1).default(10),
    /** A launched runner that has not sent its first heartbeat after this long is no longer counted as starting. */
    runnerStartTimeout: duration.default(120_000),
    runnerLauncher: z.enum(['local', 'kubernetes']).default('local'),
    /** Where the local launcher writes each runner's log. */
    runnerLogDir: z.string().default(join(tmpdir(), 'tidepool', 'runners')),
    /** How long the scaler's leader lock lives without renewal. */
    leaderTtl: duration.default(10_000),
    /** The scaler's dashboard, JSON API (/api/) and /metrics (`tidepool scaler --dashboard-port`); 0 = off. */
    dashboardPort: int(0, 65535).default(0),
    /** The dashboard's listening address: loopback unless configured otherwise; elsewhere dashboardToken is required. */
    dashboardHost: z.string().min(1).default('127.0.0.1'),
    /** A bearer token every dashboard request must carry (empty: none; required off loopback). Never passed to runners. */
    dashboardToken: z.string().refine((v) => v === '' || v.length >= 16, 'at least 16 characters (or empty for none)').default(''),
    /** A /metrics-only listener (Prometheus) in the scaler and in each runner; 0 = off. Local runners get the next ports, one each (scaler/local-metrics-ports.ts). */
    metricsPort: int(0, 65535).default(0),
    metricsHost: z.string().min(1).default('127.0.0.1'),

    /**
     * Webhooks for every connection's events (sync.failed, sync.dead_lettered, sync.succeeded,
     * schedule.missed), delivered by the leading scaler; connections add their own. The scaler's
     * alone: never handed to runners (they only queue events). Also TIDEPOOL_NOTIFICATIONS_FILE.
     */
    notifications: notificationTargets.default(''),

    // Runner
    concurrency: int(1, 64).default(2),
    idleTimeout: duration.default(30_000),
    /**
     * The adaptive leave rule (runner/idle.ts): an idle runner may leave after this long, before
     * idleTimeout, when the pool keeps the free slots recent arrivals need. 0 = off (every
     * runner waits out idleTimeout).
     */
    idleMinimum: duration.default(0),
    /** How long a launched runner takes to start consuming: idle runners keep the slots arrivals fill meanwhile. */
    runnerStartEstimate: duration.default(10_000),
    heartbeatInterval: duration.default(2_000),
    /** A runner whose heartbeat is older than this is considered gone. */
    heartbeatTtl: duration.default(10_000),
    lockTtl: duration.default(30_000),
    /** How long a sync waits for its connection's lock before it is handed back to the queue. */
    lockWait: duration.default(600_000),
    shutdownGrace: duration.default(30_000),
    /**
     * How long a runner that lost its broker connection keeps reconnecting (with jittered
     * backoff) before it gives up and exits 1. Its unacked syncs are redelivered either way.
     */
    brokerReconnectTimeout: duration.default(300_000),
    maxLineBytes: bytes.default(64 * 1024 * 1024),
    syncTimeout: duration.default(6 * 3600_000),
    /**
     * A connector the runner waits on that gives no sign of life for this long is hung and the
     * sync fails (Airbyte's heartbeat): a source that writes nothing on stdout, a destination
     * that neither takes its input nor writes anything (runner/sync/watchdog.ts). 0 = never.
     */
    messageTimeout: duration.default(30 * 60_000),
    /**
     * What a connection may run besides the reference connectors (`connector: <name>`, always
     * allowed): programs by absolute path or directory (`/opt/connectors/`), images by repository
     * or digest, comma-separated. Checked by the runner right before every launch, and at
     * `connections apply`: whoever can write the store can name a program, and the runner would
     * run it. Empty: the reference connectors only.
     */
    allowedConnectors: allowList.default(''),
    /**
     * The user a `tidepool runner` started as root drops to before it connects or launches
     * anything (runner/privileges.ts); its connectors inherit it. `root` (or 0) keeps root, with a
     * warning at every start. A runner not started as root runs as whoever started it.
     */
    runnerUser: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}$/, 'a user name or numeric uid').default('tidepool'),
    /**
     * Where `{"secretRef": "name/key"}` config values are read from: `<secretsDir>/<name>/<key>`,
     * one file per value (the layout of mounted Kubernetes Secrets). Empty: the Kubernetes
     * Secrets of the namespace when connectors run there, else none.
     */
    secretsDir: z.string().default(''),
    /** local: child processes, and `docker run -i` for connectors that name an image; docker: every connector from its image. */
    connectorLauncher: z.enum(['local', 'docker', 'kubernetes']).default('local'),
    /** Lines of each connector's stderr kept for the run record. */
    stderrTailLines: int(1, 10_000).default(50),
    /** Attempts a sync gets in all (the first and its retries) before a retryable failure is dead-lettered; 1 = no retries. */
    maxAttempts: int(1, 50).default(DEFAULT_MAX_ATTEMPTS),
    /** Wait before the first retry; each further one waits retryFactor times longer, up to retryMaxDelay (± 20 % jitter). */
    retryBaseDelay: duration.default(10_000),
    retryFactor: z.coerce.number().min(1).max(100).default(3),
    retryMaxDelay: duration.default(600_000),
    /**
     * The broker dead-letters a message delivered this many times without an ack (a runner that
     * crashes on it). An argument of the syncs queue: the broker refuses to redeclare a queue
     * with another value, so it is fixed when the queue is first declared.
     */
    deliveryLimit: int(1, 1000).default(DEFAULT_DELIVERY_LIMIT),
    /** Run records kept in Redis (the recent-runs index is trimmed to this). */
    runsKept: int(10).default(10_000),

    // TLS to the broker (amqps://) and the store (rediss://): the CA that signed its certificate,
    // and a client certificate with its unencrypted key for one that asks for it (shared/tls.ts).
    amqpTlsCaFile: tlsFile,
    amqpTlsCertFile: tlsFile,
    amqpTlsKeyFile: tlsFile,
    redisTlsCaFile: tlsFile,
    redisTlsCertFile: tlsFile,
    redisTlsKeyFile: tlsFile,
    /** The Secret runner pods mount those files from (keys amqp-ca.crt, amqp-client.crt, …: shared/tls.ts); required with them in kubernetes mode. */
    runnerTlsSecret: z.string().regex(/^$|^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'a Kubernetes Secret name').default(''),

    // Kubernetes mode
    /** Namespace of runner Jobs (and of connector pods, unless connectorNamespace is set). */
    namespace: kubeNamespace.default('tidepool'),
    /**
     * Namespace of connector pods and their per-run Secrets; empty = `namespace`. A namespace of
     * their own keeps third-party code away from the scaler's and runners' objects: the runner
     * may create pods and Secrets there and nowhere else (k8s/base/rbac.yaml), and an admission
     * policy bounds what those pods may be (k8s/base/admission-connectors.yaml).
     */
    connectorNamespace: z.union([z.literal(''), kubeNamespace]).default(''),
    /**
     * The Secret (in `namespace`) runner Jobs take their credentials from by secretKeyRef: keys
     * `amqp-url` and `redis-url`, the broker and store URLs with their passwords. Required when
     * the scaler launches runner Jobs and a URL holds a password: a plain value in a Job spec is
     * readable by anyone with `get jobs`.
     */
    credentialsSecret: z.union([z.literal(''), z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'a Kubernetes Secret name').max(253)]).default(''),
    /** Kubeconfig file; empty = in-cluster service account, else ~/.kube/config. */
    kubeconfig: z.string().default(''),
    /** Images: `<imagePrefix><name>:<imageTag>` for tidepool, socat and the reference connectors. */
    imagePrefix: z.string().default('tidepool/'),
    imageTag: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'an image tag').default(PACKAGE_VERSION),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
    /**
     * Connector images must be named by digest (repo@sha256:…): a tag can be moved to another
     * build, so the same connection would run other code than the one tested. Refused at
     * `connections apply`, and by runners at sync time (a connection written to the store some
     * other way) as a config_error.
     */
    requireDigests: flag.default(false),
    /** Port of the runner's stream server, which connector pods dial. */
    streamPort: int(0, 65535).default(7070),
    /** Address connector pods dial to reach this runner; the runner's pod IP in a cluster. */
    advertiseAddress: z.string().default(''),
    /** This runner's own pod (downward API), for ownerReferences of its connector pods. */
    podName: z.string().default(''),
    podUid: z.string().default(''),
    podIp: z.string().default(''),
    /** A connector pod is ended after this long whatever it is doing. */
    connectorDeadline: duration.default(6 * 3600_000),
    /** A runner Job is ended after this long (a stuck runner). */
    runnerDeadline: duration.default(12 * 3600_000),
    /** Finished runner Jobs are removed by Kubernetes after this long. */
    runnerJobTtl: duration.default(600_000),
    // Requests are what the scheduler packs the node by; a memory limit is what turns a runaway
    // connector into an OOMKilled pod (reported as such) instead of a starved node. Connectors
    // can override these per connection (`resources` in the connection's source/destination).
    runnerCpuRequest: quantity.default('100m'),
    runnerMemoryRequest: quantity.default('128Mi'),
    runnerCpuLimit: quantity.default(''),
    runnerMemoryLimit: quantity.default('1Gi'),
    runnerNodeSelector: nodeSelector.default(''),
    connectorCpuRequest: quantity.default('50m'),
    connectorMemoryRequest: quantity.default('128Mi'),
    connectorCpuLimit: quantity.default(''),
    connectorMemoryLimit: quantity.default('2Gi'),
    connectorNodeSelector: nodeSelector.default(''),
    /**
     * How connector pods carry stdio to the runner; a connector's own `stdio` overrides it.
     * Direct by default: one container, no copies, fewer API requests and a faster start; an
     * image without bash fails at once saying to choose the sidecar.
     */
    connectorStdio: z.enum(CONNECTOR_STDIO).default('direct'),
    /** Bound of a connector pod's /tmp, its only writable place: past it the pod is evicted, not the node's disk filled. */
    connectorTmpSizeLimit: quantity.refine((v) => v !== '', 'a Kubernetes quantity like 1Gi (a connector pod always has a bound)').default('1Gi'),
  })
  .strict();

export type Config = Readonly<z.output<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const ENV_PREFIX = 'TIDEPOOL_';

/** The variable naming the optional settings file. */
export const CONFIG_FILE_VARIABLE = `${ENV_PREFIX}CONFIG_FILE`;

export function envName(key: string): string {
  return ENV_PREFIX + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

const KEYS = Object.keys(configSchema.shape) as (keyof ConfigInput)[];

/**
 * Settings as the TIDEPOOL_* variables loadConfig reads back, less `leave`: how a process hands
 * its configuration to one it starts (the scaler to its runners, tests to the CLI).
 */
export function configEnv(config: Config, leave: readonly (keyof Config)[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) if (!leave.includes(key as keyof Config)) env[envName(key)] = String(value);
  return env;
}

/** One of tidepool's images (tidepool, socat) or a reference connector's: `<imagePrefix><name>:<imageTag>`. */
export function imageName(config: Pick<Config, 'imagePrefix' | 'imageTag'>, name: string): string {
  return `${config.imagePrefix}${name}:${config.imageTag}`;
}

/**
 * Reads settings from the environment (and TIDEPOOL_CONFIG_FILE, or `file`), validates them and
 * returns a frozen Config. Throws ConfigError naming every bad setting.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, file?: string, overrides: Partial<ConfigInput> = {}): Config {
  const fromFile = readConfigFile(file ?? env[`${ENV_PREFIX}CONFIG_FILE`]);
  const source: Record<string, unknown> = { ...fromFile.values };
  const origin = new Map<string, string>();
  for (const key of Object.keys(fromFile.values)) origin.set(key, `${key} in ${fromFile.path ?? ''}`);

  const known = new Set<string>([...KEYS.map(envName), ...FILE_FORMS.map(fileFormName), `${ENV_PREFIX}CONFIG_FILE`]);
  const unknown = Object.keys(env).filter((k) => k.startsWith(ENV_PREFIX) && !known.has(k) && !k.startsWith(`${ENV_PREFIX}TEST_`) && !k.startsWith(`${ENV_PREFIX}SETUP_`));
  if (unknown.length > 0) {
    throw new ConfigError(`unknown setting${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (known: ${[...known].join(', ')})`);
  }
  for (const key of KEYS) {
    const value = env[envName(key)];
    if (value !== undefined && value !== '') {
      source[key] = value;
      origin.set(key, envName(key));
    }
  }
  readFileForms(env, source, origin);
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) {
      source[key] = value;
      origin.set(key, `--${key.replace(/([A-Z])/g, '-$1').toLowerCase()}`);
    }
  }
  readGeneratedCredentials(source, origin);

  const parsed = configSchema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '');
      const name = origin.get(key) ?? (key ? envName(key) : 'configuration');
      const given = key && source[key] !== undefined ? shownValue(key, source[key]) : '';
      return `${name}: ${issue.message}${given}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const config = parsed.data;
  if (config.minRunners > config.maxRunners) {
    throw new ConfigError(`invalid configuration:\n  ${envName('minRunners')} (${config.minRunners}) is above ${envName('maxRunners')} (${config.maxRunners})`);
  }
  if (config.retryBaseDelay < 1 || config.retryMaxDelay < config.retryBaseDelay) {
    throw new ConfigError(`invalid configuration:\n  ${envName('retryBaseDelay')} must be at least 1ms and not above ${envName('retryMaxDelay')}`);
  }
  if (config.idleMinimum > config.idleTimeout) {
    throw new ConfigError(
      `invalid configuration:\n  ${envName('idleMinimum')} (${config.idleMinimum} ms) is above ${envName('idleTimeout')} (${config.idleTimeout} ms): an idle runner leaves at idleTimeout at the latest (0 turns early leaving off)`,
    );
  }
  if (config.idleMinimum > 0 && config.runnerStartEstimate <= 0) {
    throw new ConfigError(`invalid configuration:\n  ${envName('runnerStartEstimate')} must be above 0 when ${envName('idleMinimum')} is set`);
  }
  if (config.heartbeatTtl <= config.heartbeatInterval) {
    throw new ConfigError(`invalid configuration:\n  ${envName('heartbeatTtl')} must be longer than ${envName('heartbeatInterval')}`);
  }
  // The dashboard replays and purges dead letters and shows connectors' stderr: off loopback it
  // must not answer strangers.
  if (config.dashboardPort > 0 && config.dashboardToken === '' && !isLoopbackHost(config.dashboardHost)) {
    throw new ConfigError(
      `invalid configuration:\n  ${envName('dashboardToken')} is required when ${envName('dashboardHost')} (${config.dashboardHost}) is not a loopback address`,
    );
  }
  const tls = tlsSettingProblems(config, envName);
  if (tls.length > 0) throw new ConfigError(`invalid configuration:\n  ${tls.join('\n  ')}`);
  return Object.freeze(config);
}

// Secrets from files. A value in the environment is seen by anything that can read the
// process's environment (/proc, `docker inspect`, a Job spec): TIDEPOOL_AMQP_URL_FILE and the
// like name a file that holds it instead (a mounted Secret, a 0600 file). They are read here,
// into the value the schema parses, so the rest of tidepool (and configEnv, how the scaler hands
// settings to runners) sees only resolved values.

/** The settings that also have a `_FILE` form. */
export const FILE_FORMS = ['amqpUrl', 'redisUrl', 'dashboardToken', 'notifications'] as const;

export function fileFormName(key: string): string {
  return `${envName(key)}_FILE`;
}

/**
 * Where scripts/setup writes the service credentials it generates, one 0600 file per setting:
 * the default when neither a setting nor its _FILE form is given, so that the CLI, the demo and
 * the tests of the user who ran setup find them without configuration.
 */
export function generatedCredentialsDir(): string {
  const xdg = process.env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.config'), 'tidepool');
}

const GENERATED_FILES = { amqpUrl: 'amqp-url', redisUrl: 'redis-url' } as const;

function readSecretFile(setting: string, path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    // The error's own message names the path and the reason, never the content.
    throw new ConfigError(`${setting}: cannot read ${path}: ${(err as Error).message}`);
  }
}

function readFileForms(env: NodeJS.ProcessEnv, source: Record<string, unknown>, origin: Map<string, string>): void {
  for (const key of FILE_FORMS) {
    const path = env[fileFormName(key)];
    if (path === undefined || path === '') continue;
    if (env[envName(key)]) throw new ConfigError(`${envName(key)} and ${fileFormName(key)} are both set: give one or the other`);
    source[key] = readSecretFile(fileFormName(key), path);
    origin.set(key, fileFormName(key));
  }
}

function readGeneratedCredentials(source: Record<string, unknown>, origin: Map<string, string>): void {
  for (const [key, name] of Object.entries(GENERATED_FILES)) {
    const path = join(generatedCredentialsDir(), name);
    if (source[key] !== undefined || !existsSync(path)) continue;
    source[key] = readSecretFile(envName(key), path);
    origin.set(key, `${envName(key)} (from ${path})`);
  }
}

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}

/**
 * A bad setting's value, as an error quotes it: never a secret setting's (dashboardToken), and
 * never the credentials of a URL, even one malformed enough not to parse (`amqp//u:pass@h`).
 */
function shownValue(key: string, value: unknown): string {
  if (isSecretKey(key) || key === 'notifications') return ' (value not shown: a secret)';
  return ` (got ${maskUserinfo(JSON.stringify(value))})`;
}

function maskUserinfo(text: string): string {
  return text.replace(/[^\s"'/@]+@/g, '***@');
}

/**
 * A parser's error without the text it quotes: the file may hold credentials, and JSON.parse
 * quotes the start of it, yaml a code frame of the bad lines. Their first line says what and where.
 */
function parserWords(err: Error): string {
  const first = err.message.split('\n')[0]!.replace(/:$/, '');
  return maskUserinfo(first.replace(/^(.*?), (?:\.\.\.)?".*" is not valid JSON$/, '$1'));
}

function readConfigFile(path: string | undefined): { path?: string; values: Record<string, unknown> } {
  if (!path) return { values: {} };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${ENV_PREFIX}CONFIG_FILE: cannot read ${path}: ${(err as Error).message}`);
  }
  let values: unknown;
  try {
    values = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${ENV_PREFIX}CONFIG_FILE: ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${parserWords(err as Error)}`);
  }
  if (values === null || values === undefined) return { path, values: {} };
  if (typeof values !== 'object' || Array.isArray(values)) {
    throw new ConfigError(`${ENV_PREFIX}CONFIG_FILE: ${path} must hold a mapping of settings`);
  }
  return { path, values: values as Record<string, unknown> };
}
