#!/usr/bin/env node
// source-e2e-test: a source that misbehaves on purpose (hangs, crashes, floods, emits garbage),
// so tests can prove how tidepool handles broken connectors. Airbyte has one of the same name.
import { runConnector } from '../lib/cli.js';
import { configSchema } from './config.js';
import { runEnding } from './endings.js';
import { emitRecords, ITEMS } from './records.js';

// runConnector only knows 0 and 1; the exit code the source was told to end with comes from read.
let requestedExitCode = 0;

const code = await runConnector({
  name: 'source-e2e-test',
  configSchema,
  spec: { supportsIncremental: true },
  check: () => Promise.resolve({ status: 'SUCCEEDED' }),
  discover: () => Promise.resolve({ streams: [ITEMS] }),
  async read({ config, catalog, state, out }) {
    const lastId = await emitRecords(config, catalog, state, out);
    requestedExitCode = await runEnding(config, out, lastId);
  },
});
// An exit code, not process.exit(): stdout is never cut off.
process.exitCode = code === 0 ? requestedExitCode : code;
