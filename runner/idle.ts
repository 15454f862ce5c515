// The runner's idle timer: it leaves after `timeoutMs` with nothing to do. The clock restarts
// when a sync *finishes* (not when it starts) and never runs while a sync is in flight — a
// runner must not leave in the middle of a long sync, nor right after one.

export class IdleTimer {
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private stopped = false;

  constructor(private readonly timeoutMs: number, private readonly onIdle: () => void) {}

  start(): void {
    this.arm();
  }

  syncStarted(): void {
    this.inFlight++;
    this.disarm();
  }

  syncFinished(): void {
    this.inFlight--;
    if (this.inFlight === 0) this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private arm(): void {
    this.disarm();
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      if (this.inFlight === 0 && !this.stopped) this.onIdle();
    }, this.timeoutMs);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
