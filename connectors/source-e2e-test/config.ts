import { z } from 'zod';

const MiB = 1024 * 1024;

/** What the source does once its records are out; each mode provokes one failure a runner must handle. */
export const ENDINGS = [
  'exit',
  'hang',
  'allocate',
  'garbage',
  'not_protocol',
  'huge_line',
  'stderr_flood',
  'transient',
] as const;

export const FAILURE_TYPES = ['config_error', 'system_error', 'transient_error'] as const;

// Strict: a misspelt key in a test's config would otherwise test the default behaviour silently.
export const configSchema = z
  .strictObject({
    records: z.int().min(0).default(10).describe('Records of the items stream, ids 1..records.'),
    stateEvery: z.int().min(1).default(5).describe('Emit a STATE every this many records, and one at the end.'),
    delayMs: z.int().min(0).default(0).describe('Sleep this long before each record; records are flushed one by one.'),
    then: z.enum(ENDINGS).default('exit').describe('What happens after the records.'),
    exitCode: z.int().min(0).max(255).default(0).describe('then=exit: the exit code.'),
    failureType: z
      .enum(FAILURE_TYPES)
      .optional()
      .describe('then=exit with exitCode ≠ 0: emit an error TRACE of this failure type first.'),
    message: z.string().default('e2e-test: told to fail').describe('The message of the error TRACE.'),
    garbageLine: z
      .string()
      .regex(/^[^\n]*$/, 'must be one line')
      .default('this is not json')
      .describe('then=garbage: the line written to stdout.'),
    hugeLineBytes: z.int().min(1).default(100 * MiB).describe('then=huge_line: bytes of the one RECORD line, newline excluded.'),
    stderrBytes: z.int().min(0).default(50 * MiB).describe('then=stderr_flood: bytes of numbered lines written to stderr.'),
    counterFile: z.string().min(1).optional().describe('then=transient: file counting the attempts; required.'),
    failTimes: z.int().min(0).default(2).describe('then=transient: attempts that fail before one succeeds.'),
  })
  .refine((config) => config.then !== 'transient' || config.counterFile !== undefined, {
    message: 'then "transient" needs counterFile',
    path: ['counterFile'],
  });

export type E2eSourceConfig = z.output<typeof configSchema>;
