// A connection: which source feeds which destination, with their configs and stream choices.
// Users write these as YAML or JSON (`tidepool connections apply -f`); they live in Redis.
import { z } from 'zod';
import { idSchema, quoteValue } from './ids.js';
import { findSecretRefs } from './secret-ref.js';
import { scheduleSchema } from './schedule.js';
import { KUBERNETES_QUANTITY, parseDuration } from './units.js';
import { targetSchema } from './notifications/targets.js';

export const BUILTIN_CONNECTORS = ['source-faker', 'source-postgres', 'source-e2e-test', 'destination-jsonl', 'destination-postgres', 'destination-e2e-test'] as const;

/** What each reference connector is for, in a line (`tidepool connectors list`). */
export const BUILTIN_CONNECTOR_SUMMARIES: Record<(typeof BUILTIN_CONNECTORS)[number], string> = {
  'source-faker': 'fake users (and purchases), deterministic by seed; incremental by id',
  'source-postgres': 'the tables of a PostgreSQL schema; incremental by a cursor column',
  'source-e2e-test': 'numbered records that misbehave on purpose (fail, hang, flood), for tests',
  'destination-jsonl': 'one JSON Lines file per stream',
  'destination-postgres': 'one typed table per stream, upserted by primary key, committed at each STATE',
  'destination-e2e-test': 'stores nothing and misbehaves on purpose (no state, stops reading, fails), for tests',
};

const quantity = z.string().regex(KUBERNETES_QUANTITY, 'a Kubernetes quantity like 250m, 1, 512Mi, 2Gi');

// Docker's reference grammar (distribution/reference): [domain[:port]/]path[/path...][:tag][@digest],
// path components lowercase. Anything else is refused before it reaches `docker run` or a pod
// spec: an image "name" starting with "-" would be read by docker as an option.
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
export const IMAGE_REFERENCE = new RegExp(`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::${TAG})?(?:@${DIGEST})?$`);
/** Docker's limit is 255 for the name; a tag and a digest come on top. */
const IMAGE_REFERENCE_MAX = 512;

/** How a connector pod carries stdio to its runner (runner/launch/pod-scripts.ts). */
export const CONNECTOR_STDIO = ['direct', 'sidecar'] as const;
export type ConnectorStdio = (typeof CONNECTOR_STDIO)[number];

const connectorSchema = z
  .object({
    /** A reference connector shipped with tidepool, by name. */
    connector: z.string().min(1).optional(),
    /** Any program that speaks the Airbyte Protocol: argv before the protocol command. */
    command: z
      .array(z.string().min(1, 'an empty argument'), { error: 'expected an array of strings, e.g. [/opt/venvs/source-faker/bin/source-faker]' })
      .min(1, 'needs the program, at least')
      .optional(),
    /** A container image (docker launcher; one pod per run in Kubernetes mode). */
    image: z
      .string()
      .max(IMAGE_REFERENCE_MAX)
      .regex(IMAGE_REFERENCE, { error: (issue) => `image ${quoteValue(String(issue.input))} is not an image reference: name[:tag][@digest] such as airbyte/source-faker:7.2.1, with no leading "-", spaces or control characters` })
      .optional(),
    /**
     * The version of a `command` connector (e.g. the PyPI release in its venv), recorded with
     * each run. Informational: the program's file is fingerprinted whatever this says.
     */
    version: z.string().min(1).max(128).optional(),
    /** Any value may be `{"secretRef": "name/key"}` (shared/secret-ref.ts): resolved by the runner, never stored. */
    config: z
      .record(z.string(), z.unknown())
      .superRefine((config, ctx) => {
        for (const p of findSecretRefs(config).problems) ctx.addIssue({ code: 'custom', message: p.message, path: p.path });
      })
      .default({}),
    /** Environment of the connector; a value may be `{"secretRef": "name/key"}` like a config value. */
    env: z
      .record(z.string(), z.union([z.string(), z.object({ secretRef: z.unknown() }).strict()], { error: 'expected a string or {secretRef: name/key}' }))
      .superRefine((env, ctx) => {
        for (const p of findSecretRefs(env).problems) ctx.addIssue({ code: 'custom', message: p.message, path: p.path });
      })
      .optional(),
    /**
     * Kubernetes mode: how this connector's pod carries its stdio to the runner, over the
     * installation's TIDEPOOL_CONNECTOR_STDIO: `direct` (the image's bash dials the runner itself:
     * one container, no copies) or `sidecar` (a socat sidecar through named pipes: any image with sh).
     */
    stdio: z.enum(CONNECTOR_STDIO).optional(),
    /** Kubernetes mode: this connector's pod resources, over the installation's defaults. */
    resources: z
      .object({
        requests: z.object({ cpu: quantity.optional(), memory: quantity.optional() }).strict().optional(),
        limits: z.object({ cpu: quantity.optional(), memory: quantity.optional() }).strict().optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((c) => [c.connector, c.command, c.image].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of connector, command or image',
  })
  .refine((c) => c.connector === undefined || (BUILTIN_CONNECTORS as readonly string[]).includes(c.connector), {
    message: `connector must be one of ${BUILTIN_CONNECTORS.join(', ')} (or use command/image)`,
    path: ['connector'],
  });

const streamSchema = z
  .object({
    name: z.string().min(1),
    namespace: z.string().optional(),
    syncMode: z.enum(['full_refresh', 'incremental']).optional(),
    destinationSyncMode: z.enum(['overwrite', 'append', 'append_dedup']).optional(),
    cursorField: z.array(z.string()).min(1).optional(),
    primaryKey: z.array(z.array(z.string()).min(1)).optional(),
  })
  .strict();

/** A sync of the connection that runs longer than this is stopped and ends as `timeout`. */
const syncTimeoutSchema = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? v : parseDuration(v);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `syncTimeout: not a duration: "${String(v)}" (use e.g. 30s, 30m, 2h)` });
    return z.NEVER;
  }
  return ms;
});

export const connectionSchema = z
  .object({
    /** The connection's name everywhere (Redis keys, messages, metrics, file names): the id rule of ids.ts. */
    id: idSchema('id'),
    description: z.string().optional(),
    source: connectorSchema,
    destination: connectorSchema,
    /** Streams to sync; omitted = every stream the source discovers, with defaults. */
    streams: z.array(streamSchema).min(1).optional(),
    /** Webhooks for this connection's events, beside the installation's (shared/notifications/targets.ts). */
    notifications: z.array(targetSchema).max(20).optional(),
    /** This connection's syncTimeout (a duration: "30m", or milliseconds), over the runner's. */
    syncTimeout: syncTimeoutSchema.optional(),
    /** When the leading scaler publishes syncs of it by itself (shared/schedule.ts); none = only on request. */
    schedule: scheduleSchema.optional(),
  })
  .strict();

export type ConnectorDefinition = z.output<typeof connectorSchema>;

/** `repo@sha256:<64 hex>` or `repo:tag@sha256:<64 hex>`: an image pinned to one build. */
export const IMAGE_DIGEST = /@sha256:[0-9a-f]{64}$/;

export function isPinnedImage(image: string): boolean {
  return IMAGE_DIGEST.test(image);
}
/**
 * A definition's environment as text: a secretRef the runner has not replaced by its value (the
 * CLI asking a connector for its spec) is left out, never passed on as an object.
 */
export function plainEnv(definition: Pick<ConnectorDefinition, 'env'>): Record<string, string> {
  return Object.fromEntries(Object.entries(definition.env ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

export type StreamSelection = z.output<typeof streamSchema>;
export type Connection = z.output<typeof connectionSchema>;

/** A connection file that does not hold valid connections; `issues` has one line per problem. */
export class ConnectionFileError extends Error {
  override readonly name = 'ConnectionFileError';
  constructor(readonly issues: string[]) {
    super(issues.join('\n'));
  }
}

/**
 * The connections of a file: one connection, a list of them, or `{ connections: [...] }`. Each
 * is checked on its own, so that every problem names its place in the file and the connection's
 * id (`connections[2].destination.command: expected an array of strings (connection "pg-1")`),
 * where one schema for the three shapes could only say that the input matched none of them.
 */
export function parseConnectionFile(doc: unknown): Connection[] {
  let items: Array<{ at: string; value: unknown }>;
  if (Array.isArray(doc)) {
    items = (doc as unknown[]).map((value, i) => ({ at: `[${i}]`, value }));
  } else if (doc && typeof doc === 'object' && 'connections' in doc) {
    const list = doc.connections;
    const extra = Object.keys(doc).filter((k) => k !== 'connections');
    if (!Array.isArray(list)) throw new ConnectionFileError(['connections: expected a list of connections']);
    if (extra.length > 0) throw new ConnectionFileError([`${extra.join(', ')}: unknown key beside "connections"`]);
    items = (list as unknown[]).map((value, i) => ({ at: `connections[${i}]`, value }));
  } else if (doc && typeof doc === 'object') {
    items = [{ at: '', value: doc }];
  } else {
    throw new ConnectionFileError(['expected a connection, a list of connections, or {connections: [...]}']);
  }
  const issues: string[] = [];
  const connections: Connection[] = [];
  for (const { at, value } of items) {
    const parsed = connectionSchema.safeParse(value);
    if (parsed.success) {
      connections.push(parsed.data);
      continue;
    }
    const id = value && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'string' ? (value as { id: string }).id : undefined;
    for (const issue of parsed.error.issues) {
      const path = [at, ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))].join('').replace(/^\./, '');
      issues.push(`${path || '(connection)'}: ${issue.message}${id !== undefined ? ` (connection ${quoteValue(id)})` : ''}`);
    }
  }
  if (issues.length > 0) throw new ConnectionFileError(issues);
  const ids = connections.map((c) => c.id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup !== undefined) throw new ConnectionFileError([`connection ${quoteValue(dup)} is defined twice`]);
  return connections;
}
