// source-faker: deterministic fake users and purchases, for demos, tests and benchmarks.
import { z } from 'zod';
import type { Connector } from '../lib/cli.js';
import { readFake } from './read.js';
import { FAKE_STREAMS } from './streams.js';

const configSchema = z.object({
  seed: z.int().default(42).describe('Same seed, same data.'),
  count: z.int().min(0).default(1000).describe('Number of users.'),
  purchasesPerUser: z.int().min(0).default(0).describe('Purchases per user; purchases has count × this rows.'),
  stateEvery: z.int().min(1).default(1000).describe('Emit a STATE message every this many records.'),
});

export const sourceFaker: Connector<typeof configSchema> = {
  name: 'source-faker',
  configSchema,
  spec: { supportsIncremental: true },
  check: () => Promise.resolve({ status: 'SUCCEEDED' }),
  discover: () => Promise.resolve({ streams: [...FAKE_STREAMS.values()].map((stream) => stream.definition) }),
  read: readFake,
};
