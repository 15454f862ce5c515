import { z } from 'zod';
import type {
  ConfiguredAirbyteCatalog,
  ConfiguredAirbyteStream,
  StreamDescriptor,
} from '../../shared/protocol.js';
import { describeIssues } from './config.js';
import { ConfigError } from './errors.js';

const syncMode = z.enum(['full_refresh', 'incremental']);
const fieldPath = z.array(z.string());

// Only what the connectors rely on is checked; anything else in the file passes through.
const configuredCatalogSchema = z.object({
  streams: z.array(
    z.looseObject({
      stream: z.looseObject({
        name: z.string().min(1),
        namespace: z.string().optional(),
        json_schema: z.record(z.string(), z.unknown()),
        supported_sync_modes: z.array(syncMode).optional(),
        source_defined_cursor: z.boolean().optional(),
        default_cursor_field: fieldPath.optional(),
        source_defined_primary_key: z.array(fieldPath).optional(),
      }),
      sync_mode: syncMode,
      destination_sync_mode: z.enum(['overwrite', 'append', 'append_dedup']).default('append'),
      cursor_field: fieldPath.optional(),
      primary_key: z.array(fieldPath).optional(),
    }),
  ),
});

export function parseCatalog(raw: unknown): ConfiguredAirbyteCatalog {
  const result = configuredCatalogSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(`invalid configured catalog: ${describeIssues(result.error)}`, { cause: result.error });
  }
  // The shape is checked; the cast only bridges zod's `x?: T | undefined` and the protocol's
  // `x?: T` (parsed JSON never holds an explicit undefined).
  return result.data as ConfiguredAirbyteCatalog;
}

/** One key per (namespace, name): the NUL separator cannot occur in either part from JSON input that matters. */
export function streamKey(name: string, namespace?: string): string {
  return `${namespace ?? ''}\u0000${name}`;
}

export function descriptorOf(configured: ConfiguredAirbyteStream): StreamDescriptor {
  const { name, namespace } = configured.stream;
  return namespace === undefined ? { name } : { name, namespace };
}

export function describeStream(descriptor: StreamDescriptor): string {
  return descriptor.namespace === undefined ? descriptor.name : `${descriptor.namespace}.${descriptor.name}`;
}

/** Rejects duplicate configured streams, which would otherwise be read or written twice. */
export function indexStreams(catalog: ConfiguredAirbyteCatalog): Map<string, ConfiguredAirbyteStream> {
  const byKey = new Map<string, ConfiguredAirbyteStream>();
  for (const configured of catalog.streams) {
    const key = streamKey(configured.stream.name, configured.stream.namespace);
    if (byKey.has(key)) {
      throw new ConfigError(`configured catalog lists stream ${describeStream(descriptorOf(configured))} twice`);
    }
    byKey.set(key, configured);
  }
  return byKey;
}

/** The primary key as top-level column names; nested paths are not supported by these connectors. */
export function primaryKeyOf(configured: ConfiguredAirbyteStream): string[] {
  const paths =
    configured.primary_key && configured.primary_key.length > 0
      ? configured.primary_key
      : (configured.stream.source_defined_primary_key ?? []);
  return paths.map((path) => {
    const [column, ...rest] = path;
    if (column === undefined || rest.length > 0) {
      throw new ConfigError(
        `stream ${configured.stream.name}: primary key path ${JSON.stringify(path)} must name exactly one top-level field`,
      );
    }
    return column;
  });
}
