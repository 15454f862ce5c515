// source-e2e-test: a source that misbehaves on purpose (hangs, crashes, floods, emits garbage),
// so tests can prove how tidepool handles broken connectors. Airbyte has one of the same name.
// main.ts runs it; the docs generator asks it for its spec in-process.
import type { Connector } from '../lib/cli.js';
import { configSchema } from './config.js';
import { runEnding } from './endings.js';
import { emitRecords, ITEMS } from './records.js';

/**
 * The connector, and the exit code its read asked for: runConnector only knows 0 and 1, and the
 * source may be told to end with another.
 */
export function sourceE2eTest(): { connector: Connector<typeof configSchema>; requestedExitCode: () => number } {
  let requestedExitCode = 0;
  const connector: Connector<typeof configSchema> = {
    name: 'source-e2e-test',
    configSchema,
    spec: { supportsIncremental: true },
    check: () => Promise.resolve({ status: 'SUCCEEDED' }),
    discover: () => Promise.resolve({ streams: [ITEMS] }),
    async read({ config, catalog, state, out }) {
      const lastId = await emitRecords(config, catalog, state, out);
      requestedExitCode = await runEnding(config, out, lastId);
    },
  };
  return { connector, requestedExitCode: () => requestedExitCode };
}
