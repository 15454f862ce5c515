#!/usr/bin/env node
// The destination-e2e-test program; what it does is in connector.ts.
import { runConnector } from '../lib/cli.js';
import { destinationE2eTest } from './connector.js';

const { connector, requestedExitCode } = destinationE2eTest(process.env);
const code = await runConnector(connector);
// An exit code, not process.exit(): stdout is never cut off.
process.exitCode = code === 0 ? requestedExitCode() : code;
