// A connection: which source feeds which destination, with their configs and stream choices.
// Users write these as YAML or JSON (`tidepool connections apply -f`); they live in Redis.
import { z } from 'zod';
import { KUBERNETES_QUANTITY } from './units.js';

export const BUILTIN_CONNECTORS = ['source-faker', 'source-postgres', 'source-e2e-test', 'destination-jsonl', 'destination-postgres', 'destination-e2e-test'] as const;

const quantity = z.string().regex(KUBERNETES_QUANTITY, 'a Kubernetes quantity like 250m, 1, 512Mi, 2Gi');

const connectorSchema = z
  .object({
    /** A reference connector shipped with tidepool, by name. */
    connector: z.string().min(1).optional(),
    /** Any program that speaks the Airbyte Protocol: argv before the protocol command. */
    command: z.array(z.string().min(1)).min(1).optional(),
    /** A container image (docker launcher; one pod per run in Kubernetes mode). */
    image: z.string().min(1).optional(),
    config: z.record(z.string(), z.unknown()).default({}),
    env: z.record(z.string(), z.string()).optional(),
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

export const connectionSchema = z
  .object({
    id: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$/, 'letters, digits, ".", "_" and "-", up to 128'),
    description: z.string().optional(),
    source: connectorSchema,
    destination: connectorSchema,
    /** Streams to sync; omitted = every stream the source discovers, with defaults. */
    streams: z.array(streamSchema).min(1).optional(),
  })
  .strict();

export type ConnectorDefinition = z.output<typeof connectorSchema>;
export type StreamSelection = z.output<typeof streamSchema>;
export type Connection = z.output<typeof connectionSchema>;

/** Accepts one connection, a list of them, or `{ connections: [...] }`. */
export const connectionFileSchema = z.union([
  connectionSchema.transform((c) => [c]),
  z.array(connectionSchema),
  z.object({ connections: z.array(connectionSchema) }).transform((f) => f.connections),
]);
