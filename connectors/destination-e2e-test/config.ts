import { z } from 'zod';

export const MODES = ['echo', 'no_state', 'stop_reading', 'fail', 'hang'] as const;

// Strict: a misspelt key in a test's config would otherwise test the default behaviour silently.
export const configSchema = z.strictObject({
  mode: z.enum(MODES).default('echo').describe('How the destination behaves; none stores anything.'),
  stopAfterBytes: z
    .int()
    .min(0)
    .default(64 * 1024)
    .describe('mode=stop_reading: stdin bytes read before reading stops for good.'),
  failAfterRecords: z
    .int()
    .min(0)
    .default(0)
    .describe('mode=fail: records read (STATEs echoed meanwhile) before failing; at end of input at the latest.'),
  failureType: z
    .enum(['config_error', 'system_error', 'transient_error'])
    .default('system_error')
    .describe('mode=fail: failure_type of the error TRACE.'),
  message: z.string().default('e2e-test: told to fail').describe('mode=fail: message of the error TRACE.'),
  exitCode: z.int().min(0).max(255).default(1).describe('mode=fail: the exit code.'),
  catalogPath: z
    .string()
    .min(1)
    .optional()
    .describe('Write the configured catalog this destination was given to this file (what a test inspects).'),
});

const SYNC_MODES = ['overwrite', 'append', 'append_dedup'] as const;

/**
 * The destination sync modes the spec declares: all three, or the comma-separated list in
 * E2E_DESTINATION_SYNC_MODES (e.g. "overwrite,append", as a destination without dedup says).
 * The write itself is the same for every mode: nothing is stored.
 */
export function declaredSyncModes(env: string | undefined): Array<(typeof SYNC_MODES)[number]> {
  if (env === undefined || env.trim() === '') return [...SYNC_MODES];
  const listed = env.split(',').map((m) => m.trim());
  const unknown = listed.filter((m) => !(SYNC_MODES as readonly string[]).includes(m));
  if (unknown.length > 0) throw new Error(`E2E_DESTINATION_SYNC_MODES: unknown mode(s) ${unknown.join(', ')}; use ${SYNC_MODES.join(', ')}`);
  return SYNC_MODES.filter((m) => listed.includes(m));
}

export type E2eDestinationConfig = z.output<typeof configSchema>;
