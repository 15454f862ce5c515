#!/usr/bin/env node
// The destination-jsonl program; what it does is in connector.ts, which tests also run in-process.
import { startConnector } from '../lib/cli.js';
import { destinationJsonl } from './connector.js';

await startConnector(destinationJsonl);
