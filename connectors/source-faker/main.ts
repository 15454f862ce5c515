#!/usr/bin/env node
// The source-faker program; what it does is in connector.ts, which tests also run in-process.
import { startConnector } from '../lib/cli.js';
import { sourceFaker } from './connector.js';

await startConnector(sourceFaker);
