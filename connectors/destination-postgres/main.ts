#!/usr/bin/env node
// The destination-postgres program; what it does is in connector.ts, which tests also run in-process.
import { startConnector } from '../lib/cli.js';
import { destinationPostgres } from './connector.js';

await startConnector(destinationPostgres);
