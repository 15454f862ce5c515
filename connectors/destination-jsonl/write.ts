import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describeStream, indexStreams, streamKey } from '../lib/catalog.js';
import type { WriteContext } from '../lib/cli.js';
import { ConfigError, ProtocolError } from '../lib/errors.js';
import { parseInputMessage, readLineBatches } from '../lib/input.js';
import { StreamStatuses } from '../lib/stream-status.js';
import { StreamFile } from './stream-file.js';

export interface JsonlConfig {
  destination_path: string;
}

/**
 * Appends each RECORD's data as one line of `<stream>.jsonl`. A STATE is echoed only once
 * every file is on disk, because the platform treats the echo as "everything before this
 * is stored" and will not resend it.
 *
 * Files are finalized only for a complete input (lib/stream-status.ts): an overwrite is
 * written beside the file and renamed over it at the end, and when the input is cut short
 * (announced streams without COMPLETE at EOF, a killed runner) or the write fails, appended
 * files go back to their size at the last echoed STATE and overwritten ones stay as they were.
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
      files.set(key, await StreamFile.open(path, configured.destination_sync_mode === 'overwrite' ? 'overwrite' : 'append'));
    }

    const statuses = new StreamStatuses();
    let lineNumber = 0;
    for await (const lines of readLineBatches(input)) {
      for (const line of lines) {
        lineNumber += 1;
        const message = parseInputMessage(line, lineNumber);
        if (message === undefined) continue;
        if (message.type === 'RECORD') {
          const record = message.record;
          const file = files.get(streamKey(record.stream, record.namespace));
          if (!file) {
            throw new ProtocolError(
              `line ${lineNumber}: RECORD for stream ${describeStream({ name: record.stream, ...optionalNamespace(record.namespace) })}, which is not in the configured catalog`,
            );
          }
          if (statuses.isComplete(record.stream, record.namespace)) {
            throw new ProtocolError(
              `line ${lineNumber}: RECORD for stream ${describeStream({ name: record.stream, ...optionalNamespace(record.namespace) })} after its STREAM_STATUS COMPLETE`,
            );
          }
          const wait = file.append(JSON.stringify(record.data));
          if (wait) await wait;
        } else if (message.type === 'STATE') {
          await Promise.all([...files.values()].map((file) => file.sync()));
          void out.line(line);
          await out.flush();
        } else if (message.type === 'TRACE' && message.streamStatus) {
          statuses.observe(message.streamStatus);
        }
      }
    }
    statuses.assertComplete();
  } catch (err) {
    await Promise.allSettled([...files.values()].map((file) => file.abandon()));
    throw err;
  }
  await Promise.all([...files.values()].map((file) => file.finish()));
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
