import { describe, expect, it } from 'vitest';
import { ConnectionFileError, parseConnectionFile } from '../../shared/connections.js';
import { isValidId } from '../../shared/ids.js';
import { scheduleSchema, type Schedule } from '../../shared/schedule.js';
import { catchUpFates, overlapVerdict, type CatchUpInput } from '../../scaler/schedules/policy.js';
import { scheduledSyncId, slotJitterMs, SlotClock } from '../../scaler/schedules/schedule.js';

const schedule = (s: Partial<Schedule> & { cron: string }): Schedule => scheduleSchema.parse(s);

describe('SlotClock', () => {
  it('gives the slots of a pattern in its time zone, oldest first, strictly after the start', () => {
    const clock = new SlotClock('c', schedule({ cron: '0 * * * *', timezone: 'Europe/Berlin' }));
    const start = Date.parse('2026-06-01T10:00:00Z');
    expect(clock.between(start, start + 3 * 3_600_000, 10)).toEqual({ slots: [1, 2, 3].map((h) => start + h * 3_600_000), truncated: false });
    // Berlin is UTC+2 in summer: "0 9 * * *" is 07:00 UTC.
    const daily = new SlotClock('c', schedule({ cron: '0 9 * * *', timezone: 'Europe/Berlin' }));
    expect(new Date(daily.next(start)!).toISOString()).toBe('2026-06-02T07:00:00.000Z');
  });

  it('supports a seconds field and says when the bounded scan was cut short', () => {
    const clock = new SlotClock('c', schedule({ cron: '*/2 * * * * *' }));
    const { slots, truncated } = clock.between(0, 60_000, 5);
    expect(slots).toEqual([2000, 4000, 6000, 8000, 10_000]);
    expect(truncated).toBe(true);
  });

  it('follows croner across DST: a fixed time in the spring gap runs after it, once; an interval job skips the gap', () => {
    // Europe/Berlin, 2026-03-29: 02:00 → 03:00.
    const fixed = new SlotClock('c', schedule({ cron: '30 2 * * *', timezone: 'Europe/Berlin' }));
    const before = Date.parse('2026-03-28T12:00:00Z');
    expect(new Date(fixed.between(before, before + 24 * 3_600_000, 5).slots[0]!).toISOString()).toBe('2026-03-29T01:00:00.000Z');
    const hourly = new SlotClock('c', schedule({ cron: '30 * * * *', timezone: 'Europe/Berlin' }));
    const night = hourly.between(Date.parse('2026-03-28T23:00:00Z'), Date.parse('2026-03-29T03:00:00Z'), 10).slots.map((t) => new Date(t).toISOString());
    // 00:30 and 01:30 UTC+1, then 03:30 UTC+2: no 02:30 that day.
    expect(night).toEqual(['2026-03-28T23:30:00.000Z', '2026-03-29T00:30:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-29T02:30:00.000Z']);
    // Autumn, 2026-10-25: 03:00 → 02:00; an interval job runs on both passes through 02:30.
    const autumn = hourly.between(Date.parse('2026-10-24T23:00:00Z'), Date.parse('2026-10-25T02:00:00Z'), 10).slots.map((t) => new Date(t).toISOString());
    expect(autumn).toEqual(['2026-10-24T23:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-25T01:30:00.000Z']);
  });

  it('jitters each slot the same for everyone, within the bound', () => {
    const clock = new SlotClock('c', schedule({ cron: '* * * * *', jitter: '30s' }));
    const dues = [0, 60_000, 120_000, 180_000].map((t) => clock.dueAt(t) - t);
    for (const d of dues) expect(d).toBeGreaterThanOrEqual(0);
    for (const d of dues) expect(d).toBeLessThan(30_000);
    expect(new Set(dues).size).toBeGreaterThan(1);
    expect(slotJitterMs('c', 60_000, 30_000)).toBe(dues[1]);
    expect(slotJitterMs('c', 60_000, 0)).toBe(0);
  });
});

describe('scheduledSyncId', () => {
  it('is one id per connection and slot, valid by the id rule, even for the longest connection id', () => {
    const slot = Date.parse('2026-12-05T01:03:00Z');
    expect(scheduledSyncId('orders', slot)).toBe('sched-20261205T010300Z-orders');
    expect(scheduledSyncId('orders', slot)).toBe(scheduledSyncId('orders', slot));
    expect(scheduledSyncId('orders', slot + 1000)).not.toBe(scheduledSyncId('orders', slot));
    const long = 'a'.repeat(128);
    const id = scheduledSyncId(long, slot + 5);
    expect(isValidId(id)).toBe(true);
    expect(id).not.toBe(scheduledSyncId(`${'a'.repeat(127)}b`, slot + 5));
  });
});

describe('catchUpFates', () => {
  const now = 1_000_000;
  const late = (n: number) => Array.from({ length: n }, (_, i) => ({ due: now - 100_000 + i * 1000, claimed: false }));
  const input = (o: Partial<CatchUpInput>): CatchUpInput => ({ slots: [], now, lateAfterMs: 5000, catchUp: 'latest', catchUpMax: 3, truncated: false, ...o });

  it('leaves slots due within lateAfterMs, or claimed on time, to the overlap rule', () => {
    expect(catchUpFates(input({ slots: [{ due: now - 4000, claimed: false }, { due: now - 60_000, claimed: true }], catchUp: 'none' }))).toEqual(['on_time', 'on_time']);
  });

  it('none: every late slot missed; latest: the last one; all: the last catchUpMax', () => {
    const slots = [...late(5), { due: now, claimed: false }];
    expect(catchUpFates(input({ slots, catchUp: 'none' }))).toEqual(['missed', 'missed', 'missed', 'missed', 'missed', 'on_time']);
    expect(catchUpFates(input({ slots, catchUp: 'latest' }))).toEqual(['missed', 'missed', 'missed', 'missed', 'catch_up', 'on_time']);
    expect(catchUpFates(input({ slots, catchUp: 'all' }))).toEqual(['missed', 'missed', 'catch_up', 'catch_up', 'catch_up', 'on_time']);
  });

  it('does not decide what a truncated scan cannot tell', () => {
    expect(catchUpFates(input({ slots: late(5), catchUp: 'all', truncated: true }))).toEqual(['missed', 'missed', 'undecided', 'undecided', 'undecided']);
    expect(catchUpFates(input({ slots: late(2), catchUp: 'latest', truncated: true }))).toEqual(['missed', 'undecided']);
  });
});

describe('overlapVerdict', () => {
  it.each([
    ['allow', true, 3, true],
    ['skip', false, 0, true],
    ['skip', true, 0, false],
    ['skip', false, 1, false],
    ['buffer_one', true, 0, true],
    ['buffer_one', true, 1, false],
    ['buffer_one', false, 1, false],
  ] as const)('%s, running %s, waiting %d: publish %s', (policy, running, waiting, publish) => {
    expect(overlapVerdict(policy, { running, waiting }).publish).toBe(publish);
  });
});

describe('schedule validation', () => {
  const connection = (schedule: unknown) => ({ id: 'hourly', source: { connector: 'source-faker' }, destination: { connector: 'destination-jsonl' }, schedule });
  const problems = (schedule: unknown): string[] => {
    try {
      parseConnectionFile([connection(schedule)]);
      return [];
    } catch (err) {
      return (err as ConnectionFileError).issues;
    }
  };

  it('fills in the defaults', () => {
    expect(parseConnectionFile(connection({ cron: '0 * * * *' }))[0]!.schedule).toEqual({ cron: '0 * * * *', timezone: 'UTC', overlap: 'skip', catchUp: 'latest' });
  });

  it('names the connection and the field of each problem', () => {
    expect(problems({ cron: 'every hour' })).toEqual([expect.stringMatching(/^\[0\]\.schedule\.cron: cron "every hour" is not a cron pattern.*\(connection "hourly"\)$/)]);
    expect(problems({ cron: '0 0 30 2 *' })).toEqual([expect.stringMatching(/^\[0\]\.schedule\.cron: cron "0 0 30 2 \*" never fires \(connection "hourly"\)$/)]);
    expect(problems({ cron: '0 * * * *', timezone: 'Mars/Olympus' })).toEqual([expect.stringMatching(/^\[0\]\.schedule\.timezone: timezone "Mars\/Olympus" is not an IANA time zone/)]);
    expect(problems({ cron: '0 * * * *', overlap: 'queue' })[0]).toMatch(/^\[0\]\.schedule\.overlap: .*"skip".*\(connection "hourly"\)$/);
    expect(problems({ cron: '0 * * * *', catchUp: 'some' })[0]).toMatch(/^\[0\]\.schedule\.catchUp: /);
    expect(problems({ cron: '0 * * * *', jitter: 'soon' })).toEqual([expect.stringMatching(/^\[0\]\.schedule\.jitter: jitter "soon" is not a duration/)]);
    expect(problems({ cron: '0 * * * *', jitter: '2h' })[0]).toMatch(/jitter "2h"/);
    expect(problems({ cron: '0 * * * *', every: '1h' })[0]).toMatch(/^\[0\]\.schedule: .*every/);
  });
});
