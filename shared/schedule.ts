// What a connection's `schedule` says, checked where connections are parsed (`connections
// apply`): a cron pattern in a time zone, what to do when a slot comes while a sync of the
// connection is still queued or running (overlap), what to do with the slots no scaler was there
// to publish (catchUp), and a random delay spreading many connections' syncs off the same second
// (jitter). The leading scaler acts on it (scaler/schedules/).
//
// The cron pattern is croner's (a maintained library with a seconds field, time zones and
// documented daylight-saving rules), never a parser of our own: the check here is the very
// library that will compute the slots, so a pattern accepted here is one the scaler can run.
import { Cron } from 'croner';
import { z } from 'zod';
import { quoteValue } from './ids.js';
import { parseDuration } from './units.js';

export const OVERLAP_POLICIES = ['skip', 'buffer_one', 'allow'] as const;
export const CATCH_UP_POLICIES = ['none', 'latest', 'all'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];
export type CatchUpPolicy = (typeof CATCH_UP_POLICIES)[number];

/** The longest jitter accepted: a schedule's slots should not drift further than this. */
export const MAX_JITTER_MS = 3_600_000;

/** A cron pattern croner accepts: 5 fields (minute first) or 6 (seconds first). */
export function cronProblem(cron: string, timezone: string): string | undefined {
  let job: Cron;
  try {
    job = new Cron(cron, { timezone, mode: '5-or-6-parts' });
  } catch (err) {
    // croner's message names the pattern; ours quotes it escaped, bounded.
    return `cron ${quoteValue(cron)} is not a cron pattern: ${(err as Error).message.replace(/^CronPattern: /, '').replace(/\('.*'\)/, '')}`;
  }
  try {
    if (job.nextRun() === null) return `cron ${quoteValue(cron)} never fires`;
  } catch (err) {
    return `cron ${quoteValue(cron)} cannot be computed: ${(err as Error).message}`;
  }
  return undefined;
}

/** True for an IANA time zone name the runtime knows (Europe/Berlin, UTC). */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export const scheduleSchema = z
  .object({
    /** `m h dom mon dow`, or with a leading seconds field. */
    // Checked on its own (in UTC: time zones change when a pattern fires, not whether it parses),
    // so that its problem is reported beside the other fields' ones.
    cron: z
      .string()
      .min(1)
      .max(200)
      .superRefine((cron, ctx) => {
        const problem = cronProblem(cron, 'UTC');
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      }),
    timezone: z
      .string()
      .max(100)
      .refine(isTimeZone, { error: (issue) => `timezone ${quoteValue(String(issue.input))} is not an IANA time zone such as Europe/Berlin or UTC` })
      .default('UTC'),
    /** A slot due while a sync of the connection is queued or running: skip it, keep one waiting, or publish anyway. */
    overlap: z.enum(OVERLAP_POLICIES).default('skip'),
    /** Slots that passed while no scaler led: record them missed, publish the latest, or publish them all (bounded). */
    catchUp: z.enum(CATCH_UP_POLICIES).default('latest'),
    /** Up to this much random delay after each slot ("30s"); the same for a slot whichever scaler publishes it. */
    jitter: z
      .string()
      .refine((text) => {
        const ms = parseDuration(text);
        return ms !== undefined && ms <= MAX_JITTER_MS;
      }, { error: (issue) => `jitter ${quoteValue(String(issue.input))} is not a duration up to 1h such as 30s or 500ms` })
      .optional(),
  })
  .strict();

export type Schedule = z.output<typeof scheduleSchema>;

/** The schedule's jitter in milliseconds (0 when none). */
export function jitterMsOf(schedule: Pick<Schedule, 'jitter'>): number {
  return schedule.jitter === undefined ? 0 : (parseDuration(schedule.jitter) ?? 0);
}
