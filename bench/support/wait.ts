// Waiting for a condition, for tests and benches alike: they follow processes they do not
// control (a runner, a broker coming back, a Job), so they poll for the outcome instead of
// sleeping a fixed time that is either too short on a busy machine or wasted on an idle one.
import { formatDuration } from '../../shared/units.js';

/** A wait that ran out of time; `reason` is the last error the check threw, if it threw. */
export class WaitTimeout extends Error {
  override readonly name = 'WaitTimeout';
  readonly reason: string;

  constructor(
    readonly what: string,
    timeoutMs: number,
    lastError: unknown,
  ) {
    const reason = lastError ? ` (last error: ${(lastError as Error).message})` : '';
    super(`timed out after ${formatDuration(timeoutMs)} waiting for ${what}${reason}`);
    this.reason = reason;
  }
}

/**
 * Polls `check` every `everyMs` until it returns a value other than undefined/false, and
 * returns that value. A check that throws is asked again (a service still starting refuses
 * connections); after `timeoutMs` this throws a WaitTimeout naming `what` and the last error.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new WaitTimeout(what, timeoutMs, last);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
