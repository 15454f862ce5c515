#!/usr/bin/env node
// destination-e2e-test: a destination that stores nothing and misbehaves on purpose (never
// echoes state, stops reading, fails, hangs), so tests can prove how tidepool handles it.
import { runConnector } from '../lib/cli.js';
import { configSchema, declaredSyncModes } from './config.js';
import { writeE2e } from './write.js';

// runConnector only knows 0 and 1; the exit code the destination was told to end with comes from write.
let requestedExitCode = 0;

const code = await runConnector({
  name: 'destination-e2e-test',
  configSchema,
  // From the environment, not the config: `spec` is asked without one.
  spec: { supported_destination_sync_modes: declaredSyncModes(process.env.E2E_DESTINATION_SYNC_MODES) },
  check: () => Promise.resolve({ status: 'SUCCEEDED' }),
  async write(context) {
    requestedExitCode = await writeE2e(context);
  },
});
// An exit code, not process.exit(): stdout is never cut off.
process.exitCode = code === 0 ? requestedExitCode : code;
