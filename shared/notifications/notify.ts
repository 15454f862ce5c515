// The one way to raise a notification: `notify(event)` writes it to the outbox and returns. It
// never throws and never waits on a receiver: a sync's result, or a schedule's, stands whatever
// happens to its notification. Delivery (fan-out to targets, HTTP, retries) is the deliverer's
// business, in the leading scaler (scaler/notifications/deliverer.ts).
import type { Logger } from '../logger.js';
import type { Outbox } from '../store/outbox.js';
import type { RunRecord } from '../store/runs.js';
import { newEvent, runEvents, type EventInput } from './events.js';

export class Notifier {
  constructor(
    private readonly outbox: Pick<Outbox, 'enqueue'>,
    private readonly logger: Logger,
  ) {}

  /** Queues one event for every target that wants it. Resolves once it is in the store (or failed to get there, logged). */
  async notify(input: EventInput): Promise<void> {
    const event = newEvent(input);
    try {
      const queued = await this.outbox.enqueue(event);
      if (!queued) this.logger.warn({ event: event.type, eventId: event.id }, 'notification outbox full (is a scaler delivering?): event dropped');
    } catch (err) {
      this.logger.warn({ event: event.type, eventId: event.id, err: (err as Error).message }, 'could not queue a notification; the sync result stands');
    }
  }

  /** The events of a run as settled (events.ts runEvents): a failed attempt, a dead letter, a success. */
  async runSettled(run: RunRecord): Promise<void> {
    for (const type of runEvents(run)) await this.notify({ type, connectionId: run.connectionId, syncId: run.syncId, run });
  }
}
