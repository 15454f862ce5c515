// destination-jsonl: one JSON Lines file per stream, each line a record's data.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Connector } from '../lib/cli.js';
import { errorMessage } from '../lib/errors.js';
import { writeJsonl } from './write.js';

const configSchema = z.object({
  destination_path: z.string().min(1).describe('Directory for the files; created if missing.'),
});

export const destinationJsonl: Connector<typeof configSchema> = {
  name: 'destination-jsonl',
  configSchema,
  // No append_dedup: the files are appended to, never deduplicated, and a destination that
  // listed it would have tidepool choose it and the rows come out twice.
  spec: { supported_destination_sync_modes: ['overwrite', 'append'] },
  async check(config) {
    const probe = join(config.destination_path, `.tidepool-check-${process.pid}`);
    try {
      await mkdir(config.destination_path, { recursive: true });
      await writeFile(probe, 'ok\n');
      await rm(probe);
      return { status: 'SUCCEEDED' };
    } catch (err) {
      return { status: 'FAILED', message: `cannot write to ${config.destination_path}: ${errorMessage(err)}` };
    }
  },
  write: writeJsonl,
};
