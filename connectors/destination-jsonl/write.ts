import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describeStream, indexStreams, streamKey } from '../lib/catalog.js';
import type { WriteContext } from '../lib/cli.js';
import { ConfigError, ProtocolError } from '../lib/errors.js';
import { readLineBatches } from '../lib/input.js';
import { StreamFile } from './stream-file.js';

export interface JsonlConfig {
  destination_path: string;
}

/**
 * Appends each RECORD's data as one line of `<stream>.jsonl`. A STATE is echoed only once
 * every file is on disk, because the platform treats the echo as "everything before this
 * is stored" and will not resend it.
 */
export async function writeJsonl({ config, catalog, input, out }: WriteContext<JsonlConfig>): Promise<void> {
  await mkdir(config.destination_path, { recursive: true });
  const files = new Map<string, StreamFile>();
  try {
    const paths = new Set<string>();
    for (const [key, configured] of indexStreams(catalog)) {
      const path = join(config.destination_path, fileName(configured.stream.name, configured.stream.namespace));
      if (paths.has(path)) throw new ConfigError(`two configured streams would both write ${path}`);
      paths.add(path);
      files.set(key, await StreamFile.open(path, configured.destination_sync_mode === 'overwrite'));
    }

    let lineNumber = 0;
    for await (const lines of readLineBatches(input)) {
      for (const line of lines) {
        lineNumber += 1;
        const message = parseMessage(line, lineNumber);
        if (message === undefined) continue;
        if (message.type === 'RECORD') {
          const record = message.record;
          const file = files.get(streamKey(record.stream, record.namespace));
          if (!file) {
            throw new ProtocolError(
              `line ${lineNumber}: RECORD for stream ${describeStream({ name: record.stream, ...optionalNamespace(record.namespace) })}, which is not in the configured catalog`,
            );
          }
          const wait = file.append(JSON.stringify(record.data));
          if (wait) await wait;
        } else if (message.type === 'STATE') {
          await Promise.all([...files.values()].map((file) => file.sync()));
          void out.line(line);
          await out.flush();
        }
      }
    }
    await Promise.all([...files.values()].map((file) => file.sync()));
  } finally {
    await Promise.allSettled([...files.values()].map((file) => file.close()));
  }
}

type Parsed =
  | { type: 'RECORD'; record: { stream: string; namespace?: string; data: Record<string, unknown> } }
  | { type: 'STATE' }
  | { type: 'OTHER' };

/** Only RECORD and STATE matter here; other message types (LOG, TRACE, ...) are ignored. */
function parseMessage(line: string, lineNumber: number): Parsed | undefined {
  if (line.trim().length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ProtocolError(`line ${lineNumber} of stdin is not JSON: ${line.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null) {
    throw new ProtocolError(`line ${lineNumber} of stdin is not a message object: ${line.slice(0, 200)}`);
  }
  const message = value as { type?: unknown; record?: unknown };
  if (message.type === 'STATE') return { type: 'STATE' };
  if (message.type !== 'RECORD') return { type: 'OTHER' };
  const record = message.record as { stream?: unknown; namespace?: unknown; data?: unknown } | null | undefined;
  if (
    typeof record !== 'object' ||
    record === null ||
    typeof record.stream !== 'string' ||
    (record.namespace !== undefined && record.namespace !== null && typeof record.namespace !== 'string') ||
    typeof record.data !== 'object' ||
    record.data === null
  ) {
    throw new ProtocolError(`line ${lineNumber}: RECORD without stream and data object`);
  }
  return {
    type: 'RECORD',
    record: {
      stream: record.stream,
      ...optionalNamespace(record.namespace ?? undefined),
      data: record.data as Record<string, unknown>,
    },
  };
}

function optionalNamespace(namespace: string | undefined): { namespace?: string } {
  return namespace === undefined ? {} : { namespace };
}

/** `<namespace>.<stream>.jsonl`; names that could leave the directory are refused. */
export function fileName(name: string, namespace?: string): string {
  for (const part of namespace === undefined ? [name] : [namespace, name]) {
    if (part === '' || part === '.' || part === '..' || /[/\\\0]/.test(part)) {
      throw new ConfigError(`stream name ${JSON.stringify(part)} cannot be used as a file name`);
    }
  }
  return namespace === undefined ? `${name}.jsonl` : `${namespace}.${name}.jsonl`;
}
