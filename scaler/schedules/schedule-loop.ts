// The schedule planner's own timer inside the scaler: it wakes when the next slot is due rather
// than on the scaler's poll (a seconds pattern would otherwise be late by up to a poll), and it
// does not depend on the broker-reading tick: a broker outage at a slot still claims the slot on
// time, and the publish is tried again until the broker is back. Only the leader plans.
import type { Logger } from '../../shared/logger.js';
import type { SchedulePlanner } from './planner.js';

/** The wait before another pass when work is left over: a publish to try again, a long catch-up walked in steps. */
export const MIN_WAIT_MS = 200;

export class ScheduleLoop {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private passing: Promise<unknown> = Promise.resolve();
  private failing = false;

  constructor(
    private readonly planner: SchedulePlanner,
    /** True while this scaler leads (renews its leadership, as the scaler's tick does). */
    private readonly leading: () => Promise<boolean>,
    private readonly logger: Logger,
    /** Longest wait between passes: connections applied or resumed are seen within it. */
    private readonly maxWaitMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.running = true;
    this.wake(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.passing;
  }

  /** One pass: plan if leading; the wait until the next. Exposed for tests. */
  async pass(): Promise<number> {
    try {
      if (!(await this.leading())) return this.maxWaitMs;
      const nextDue = await this.planner.step();
      if (this.failing) this.logger.info('schedule passes succeed again');
      this.failing = false;
      if (nextDue === undefined) return this.maxWaitMs;
      // Due already: something to try again (a publish, the rest of a long catch-up).
      const wait = nextDue - this.now();
      return wait <= 0 ? MIN_WAIT_MS : Math.min(this.maxWaitMs, wait);
    } catch (err) {
      // Once per streak: the store away must not log every pass.
      this.logger[this.failing ? 'debug' : 'warn']({ err: (err as Error).message }, 'schedule pass failed (store unreachable?); trying again');
      this.failing = true;
      return this.maxWaitMs;
    }
  }

  private wake(delay: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      const passing = this.pass().then((wait) => this.wake(wait));
      this.passing = passing;
    }, delay);
  }
}
