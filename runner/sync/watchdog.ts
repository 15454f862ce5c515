// Hung connectors. Like Airbyte's heartbeat ("no message for N"), a connector that gives no
// sign of life for messageTimeout while the runner waits on it is considered hung, and the sync
// fails instead of sitting there until syncTimeout (6 h).
//
// What a sign of life is depends on the role (runner/sync/sync.ts samples it):
// - a source: any bytes on stdout (a LOG line counts; stderr does not). Its silence is held
//   against it only while the runner reads it: while the pump waits for the destination to
//   take input, a source blocked on a full pipe is not hung.
// - a destination may rightly be silent for long while it consumes. It is hung when the runner
//   waits on it — input is queued for it, or its input has ended and it has not exited — and it
//   neither takes any of that input nor writes anything on stdout.
//
// The runner samples counters once per tick (a second at most), so the record path pays one
// addition per chunk, not a timestamp per line.

/** One sample of a connector. */
export interface Activity {
  /** Grows whenever the connector does something that counts (bytes written, input taken). */
  progress: number;
  /** Whether the runner is waiting on it right now; when not, its silence is not counted. */
  expected: boolean;
}

/** How long a connector has been silent while expected to act. Pure: time comes in. */
export class SilenceClock {
  private last: number | undefined;
  private since: number;

  constructor(now: number) {
    this.since = now;
  }

  /** Milliseconds of silence so far: 0 right after progress, or while it is not expected to act. */
  observe(now: number, activity: Activity): number {
    if (!activity.expected || activity.progress !== this.last) {
      this.last = activity.progress;
      this.since = now;
      return 0;
    }
    return now - this.since;
  }
}

export interface Watched {
  sample(): Activity;
  /** Called once, for the first connector silent for the timeout; the watch stops then. */
  onHung(): void;
}

/** The sampling period: fine enough to catch a hang within ~10 % of the timeout, at most once a second. */
export function tickFor(timeoutMs: number): number {
  return Math.max(10, Math.min(1000, Math.floor(timeoutMs / 10)));
}

/**
 * Samples every subject each tick until stopped, or until one has been silent while expected
 * for timeoutMs (then its onHung runs and the watch stops). timeoutMs 0 watches nothing.
 * Returns stop().
 */
export function watchConnectors(timeoutMs: number, subjects: Watched[], now: () => number = Date.now): () => void {
  if (timeoutMs <= 0 || subjects.length === 0) return () => undefined;
  const clocks = subjects.map(() => new SilenceClock(now()));
  const timer = setInterval(() => {
    const t = now();
    for (let i = 0; i < subjects.length; i++) {
      const subject = subjects[i]!;
      if (clocks[i]!.observe(t, subject.sample()) >= timeoutMs) {
        clearInterval(timer);
        subject.onHung();
        return;
      }
    }
  }, tickFor(timeoutMs));
  timer.unref();
  return () => clearInterval(timer);
}
