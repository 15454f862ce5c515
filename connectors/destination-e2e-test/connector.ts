// destination-e2e-test: a destination that stores nothing and misbehaves on purpose (never
// echoes state, stops reading, fails, hangs), so tests can prove how tidepool handles it.
// main.ts runs it; the docs generator asks it for its spec in-process.
import type { Connector } from '../lib/cli.js';
import { configSchema, declaredSyncModes } from './config.js';
import { writeE2e } from './write.js';

/**
 * The connector, and the exit code its write asked for (runConnector only knows 0 and 1). The
 * sync modes its spec declares come from E2E_DESTINATION_SYNC_MODES in `env`, not the config:
 * `spec` is asked without one.
 */
export function destinationE2eTest(env: NodeJS.ProcessEnv): { connector: Connector<typeof configSchema>; requestedExitCode: () => number } {
  let requestedExitCode = 0;
  const connector: Connector<typeof configSchema> = {
    name: 'destination-e2e-test',
    configSchema,
    spec: { supported_destination_sync_modes: declaredSyncModes(env.E2E_DESTINATION_SYNC_MODES) },
    check: () => Promise.resolve({ status: 'SUCCEEDED' }),
    async write(context) {
      requestedExitCode = await writeE2e(context);
    },
  };
  return { connector, requestedExitCode: () => requestedExitCode };
}
