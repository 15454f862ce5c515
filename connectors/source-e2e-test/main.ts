#!/usr/bin/env node
// The source-e2e-test program; what it does is in connector.ts.
import { runConnector } from '../lib/cli.js';
import { sourceE2eTest } from './connector.js';

const { connector, requestedExitCode } = sourceE2eTest();
const code = await runConnector(connector);
// An exit code, not process.exit(): stdout is never cut off.
process.exitCode = code === 0 ? requestedExitCode() : code;
