#!/usr/bin/env node
// The source-postgres program; what it does is in connector.ts, which tests also run in-process.
import { startConnector } from '../lib/cli.js';
import { sourcePostgres } from './connector.js';

await startConnector(sourcePostgres);
