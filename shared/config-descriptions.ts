// What each setting of shared/config.ts means, for the people who set it: the one source of the
// settings reference (docs/reference/settings.md, written by `npm run docs`). Keyed by the
// schema's keys, so a setting added without a description fails the typecheck, and the generator
// refuses a key the schema no longer has. Markdown; links are relative to docs/reference/.
import type { ConfigInput } from './config.js';

export const SETTING_DESCRIPTIONS = {
  prefix: 'Names every queue, exchange and Redis key, so several installations (or tests) share a broker and a Redis.',
  amqpUrl:
    'RabbitMQ. When neither this nor `TIDEPOOL_AMQP_URL_FILE` is given, the `amqp-url` file `scripts/setup` wrote (`${XDG_CONFIG_HOME:-~/.config}/tidepool/amqp-url`) if there is one, else the default.',
  redisUrl: 'Redis. When neither this nor `TIDEPOOL_REDIS_URL_FILE` is given, the `redis-url` file `scripts/setup` wrote if there is one, else the default.',
  logLevel: 'pino level.',
  pollInterval: "The scaler loop's period (KEDA's default is 30 s).",
  minRunners: 'The pool\'s lower bound: runners kept whatever the queue holds.',
  maxRunners: "The pool's upper bound.",
  launchRate:
    'Launches per second, sustained (a token bucket with `TIDEPOOL_LAUNCH_BURST`). A pod takes 3-8 s to start, so the bucket bounds how fast a burst is answered: in the [scaling simulator](../benchmarks.md#scaling-policy) 2/s with a burst of 4 added ~2 s to the wait p95; 5/s with 10 does as well as no limit.',
  launchBurst: 'Launches allowed at once above `TIDEPOOL_LAUNCH_RATE` (the token bucket\'s size).',
  runnerStartTimeout: 'A launched runner with no heartbeat after this stops counting as starting.',
  runnerLauncher: 'How the scaler starts runners: `local` processes or `kubernetes` Jobs.',
  runnerLogDir:
    "Local runners' log files: the directory is made 0700 and each file 0600; one that exists owned by another user, writable by others, or a symbolic link is refused.",
  leaderTtl: "The scaler's leader lock lifetime without renewal.",
  dashboardPort: "The scaler's [dashboard](../operations.md#dashboard), JSON API and `/metrics` (`scaler --dashboard-port N`); 0 = off.",
  dashboardHost: 'Its listening address; anywhere but loopback `TIDEPOOL_DASHBOARD_TOKEN` is required (the scaler refuses to start without it, exit 78).',
  dashboardToken: 'A bearer token (≥ 16 characters) every dashboard request must carry; empty: none. Never passed to runners. Also `TIDEPOOL_DASHBOARD_TOKEN_FILE`.',
  metricsPort:
    'A `/metrics`-only listener in the scaler and in each runner; 0 = off. Local runners serve on the next ports, one each ([Monitoring stack](../metrics.md#monitoring-stack)).',
  metricsHost: "That listener's address.",
  notifications:
    "The installation's webhooks, a JSON list (in a config file, the list itself; the `_FILE` form names a file holding the JSON, e.g. a mounted Secret): [Notifications](../operations.md#notifications). The scaler's alone, never passed to runners; an invalid value is refused without being quoted.",
  concurrency: 'Syncs per runner (= prefetch).',
  idleTimeout: 'A runner with nothing to do for this long exits 0.',
  idleMinimum:
    'The adaptive leave rule: an idle runner may exit 0 after this long, before the idle timeout, when the pool keeps the free slots recent arrivals need ([Scaling policy](../benchmarks.md#scaling-policy)); `5s` is what the simulator measured. Not above `TIDEPOOL_IDLE_TIMEOUT` (refused, naming both). 0 = off, the default: a long idle timeout is a promise some deployments rely on (runners kept warm through an outage, counters kept for a scrape).',
  runnerStartEstimate:
    'How long a launched runner takes to start consuming; with the leave rule on, idle runners keep free the slots the last minute\'s arrival rate fills in that time (above 0).',
  heartbeatInterval: 'How often a runner writes its heartbeat.',
  heartbeatTtl: 'A runner whose heartbeat is older than this is considered gone (longer than `TIDEPOOL_HEARTBEAT_INTERVAL`).',
  lockTtl: 'The per-connection lock (renewed every third of it while a sync runs).',
  lockWait: "How long a sync waits for its connection's lock before it is put back through the first delay queue.",
  shutdownGrace: 'Time in-flight syncs get after SIGTERM.',
  brokerReconnectTimeout: 'How long a runner that lost the broker keeps reconnecting before it exits 1 ([Outages](../failures.md#outages)).',
  maxLineBytes: 'The longest protocol line accepted from a connector.',
  syncTimeout: "A sync running longer is failed (a connection's own `syncTimeout` overrides it).",
  messageTimeout:
    "A connector the runner waits on that gives no sign of life this long is hung: the sync fails (`timeout`, retryable) and both connectors are killed — like Airbyte's heartbeat. A source must write something on stdout (a `LOG` counts, stderr does not; not counted while it is blocked behind the destination); a destination must take some of the input waiting for it, write something, or, once its input ended, exit. 0 = never.",
  allowedConnectors:
    'Programs (absolute path, or a directory ending in `/`) and images (repository, or `repo@sha256:…`) connections may run besides the reference connectors, comma-separated; empty: the reference connectors only. Checked by runners before every launch and at `connections apply` ([Allow what may run](../connectors.md#running-real-airbyte-connectors)).',
  runnerUser:
    'The user a `tidepool runner` started as root runs as, and so its connectors ([Not as root](../connectors.md#running-real-airbyte-connectors)); `root` keeps root, with a warning at every start; a runner not started as root is left as it is.',
  secretsDir:
    'Where runners read [`secretRef`](../connections.md#secrets-by-reference) values: `<dir>/<name>/<key>`; empty on Kubernetes: the Secrets of `TIDEPOOL_NAMESPACE`, else none.',
  connectorLauncher: '`local` (child processes; `docker run -i` for connectors naming an image), `docker` (every connector from its image), or `kubernetes`.',
  stderrTailLines: 'Connector stderr lines kept with a failure.',
  maxAttempts: 'Attempts of a sync (first + retries) before a retryable failure is dead-lettered; 1 = no retries.',
  retryBaseDelay: 'Delay before retry *n*: base × factor^(n−1), capped at `TIDEPOOL_RETRY_MAX_DELAY`, ± 20 % ([Retries](../failures.md#failures-and-retries)).',
  retryFactor: 'How much longer each further retry waits.',
  retryMaxDelay: 'The longest delay before a retry.',
  deliveryLimit: '`x-delivery-limit` of the syncs queue: a message delivered this many times without an ack is dead-lettered. Fixed once the queue exists.',
  runsKept: 'Run records kept in Redis.',
  amqpTlsCaFile:
    "PEM file for an `amqps://` URL: the CA that signed RabbitMQ's certificate (none: the system's CAs). Checked at start: a file unreadable or not PEM, or a file for an `amqp://` URL, stops the process (exit 78). A certificate that fails verification, ours or the broker's, is not retried: runners and the scaler exit 1 at start with `TLS verification failed for RabbitMQ (<code>): check amqpTlsCaFile …`.",
  amqpTlsCertFile: 'A client certificate (PEM) for a broker that asks for one; needs `TIDEPOOL_AMQP_TLS_KEY_FILE` (a certificate without its key, or with another\'s, is refused).',
  amqpTlsKeyFile: "The client certificate's unencrypted key (PEM).",
  redisTlsCaFile: 'The same as `TIDEPOOL_AMQP_TLS_CA_FILE`, for a `rediss://` URL (`TLS verification failed for Redis …`).',
  redisTlsCertFile: 'A client certificate (PEM) for a Redis that asks for one.',
  redisTlsKeyFile: "The Redis client certificate's unencrypted key (PEM).",
  runnerTlsSecret:
    "Kubernetes: the Secret runner pods mount the TLS files from, read-only at `/etc/tidepool/tls`, with keys `amqp-ca.crt`, `amqp-client.crt`, `amqp-client.key`, `redis-ca.crt`, `redis-client.crt`, `redis-client.key` (those of the settings set); required with any TLS file when `TIDEPOOL_RUNNER_LAUNCHER` is `kubernetes`. Local runners get the scaler's paths, and its `NODE_EXTRA_CA_CERTS`.",
  namespace: 'Kubernetes namespace of runner Jobs (and of connector pods, unless `TIDEPOOL_CONNECTOR_NAMESPACE` is set).',
  connectorNamespace:
    'Namespace of connector pods and their per-run Secrets; empty: `TIDEPOOL_NAMESPACE`. `k8s/base` sets `tidepool-connectors` ([Kubernetes mode](../kubernetes.md#kubernetes-mode)).',
  credentialsSecret:
    'The Secret (keys `amqp-url`, `redis-url`) runner Jobs read the broker and store URLs from by `secretKeyRef`; a scaler launching Jobs whose URLs hold a password refuses to start without it.',
  kubeconfig: 'Kubernetes client configuration; empty: in-cluster, else `~/.kube/config`.',
  imagePrefix: 'Images are `<prefix>tidepool`, `<prefix>socat`, `<prefix><connector>`.',
  imageTag: 'The tag of those images; the default is the package version.',
  imagePullPolicy: 'For runner and connector pods.',
  requireDigests:
    'Connector images must be pinned to a digest (`repo@sha256:…`): a tag is refused at `connections apply` and by runners ([Versions](../connections.md#versions-pinning-and-rollback)).',
  streamPort: "The runner's port that connector pods dial.",
  advertiseAddress: 'The address connector pods dial; empty: the pod IP.',
  podName: "The runner's own pod name (set from the downward API by the runner Job), for the ownerReferences and labels of its connector pods.",
  podUid: "The runner's own pod UID (downward API), for its connector pods' ownerReferences.",
  podIp: "The runner's own pod IP (downward API): the address connector pods dial unless `TIDEPOOL_ADVERTISE_ADDRESS` is set.",
  connectorDeadline: '`activeDeadlineSeconds` of connector pods (a destination gets 60 s more, to drain after its source).',
  runnerDeadline: '`activeDeadlineSeconds` of runner Jobs (a stuck runner).',
  runnerJobTtl: '`ttlSecondsAfterFinished` of runner Jobs.',
  runnerCpuRequest: 'Runner pod CPU request (empty = not set).',
  runnerMemoryRequest: 'Runner pod memory request (empty = not set).',
  runnerCpuLimit: 'Runner pod CPU limit (empty = not set).',
  runnerMemoryLimit: 'Runner pod memory limit (empty = not set).',
  runnerNodeSelector: 'Node selector of runner pods.',
  connectorCpuRequest: "Connector container CPU request; a connection overrides the connector resources per connector with `resources: {requests, limits}`.",
  connectorMemoryRequest: 'Connector container memory request.',
  connectorCpuLimit: 'Connector container CPU limit (empty = not set).',
  connectorMemoryLimit: "Connector container memory limit. A connector over its memory limit ends as `OOMKilled`, which the sync's error says.",
  connectorNodeSelector: 'Node selector of connector pods.',
  connectorStdio:
    "How a connector pod carries stdin, stdout and stderr to its runner. `direct`: one container; the image's bash dials the runner and the connector writes into the connection itself (no copies; needs `bash` and `sleep` in the image). `sidecar`: a socat sidecar copies through named pipes (any image with `sh`). A connector's `stdio` overrides it ([Kubernetes](../kubernetes.md#connector-pods)).",
  connectorTmpSizeLimit:
    "Bound of a connector pod's `/tmp` (an emptyDir, its only writable place): past it the pod is evicted and the run fails saying so, instead of the node's disk filling.",
} as const satisfies Record<keyof ConfigInput, string>;

/** What the `_FILE` form of a setting does, for the settings that have one. */
export const FILE_FORM_DESCRIPTION =
  'A file holding the value (one trailing newline ignored), e.g. a mounted Secret: a value in the environment is readable wherever the environment is. Setting both a variable and its `_FILE` form is an error.';

/** TIDEPOOL_CONFIG_FILE. */
export const CONFIG_FILE_DESCRIPTION = 'A settings file, YAML (or JSON when it ends in `.json`), keys in camelCase as in the *file key* column; the environment overrides it. Also `--config FILE`.';

/** Defaults computed where the process runs, shown as what they are rather than one machine's value. */
export const SHOWN_DEFAULTS: Partial<Record<keyof ConfigInput, string>> = {
  runnerLogDir: '`$TMPDIR/tidepool/runners`',
  imageTag: 'the package version',
};
