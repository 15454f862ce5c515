// Delivering the outbox (shared/store/outbox.ts): claim what is due, fan each new event out to
// the targets that want it (the installation's, then its connection's), POST each delivery
// (shared/notifications/send.ts), and settle it: done, due again after a jittered exponential
// backoff, or given up once its event is a day old.
//
// It runs in the scaler and works only while that scaler leads: one deliverer per installation,
// so one process's timeouts and backoff pace the calls to a receiver. The outbox's claims (a
// lease per item) make a leadership handover safe besides: the old leader's claimed items are
// not handed to the new one until their lease ends. A deliverer stopped mid-send (a restart)
// finishes what it holds first; one killed leaves its claims to come due again when the lease
// ends: at least once, never lost, and receivers dedupe on X-Tidepool-Event-Id.
import { backoffDelay, type BackoffOptions } from '../../shared/backoff.js';
import type { Logger } from '../../shared/logger.js';
import { redactObject, secretValues } from '../../shared/redact.js';
import type { NotificationEvent } from '../../shared/notifications/events.js';
import { sendEvent, shownUrl } from '../../shared/notifications/send.js';
import { wants, type Target } from '../../shared/notifications/targets.js';
import type { OutboxDelivery, OutboxEventItem, OutboxItem } from '../../shared/store/outbox.js';
import type { Store } from '../../shared/store/index.js';
import type { NotificationMetrics } from './metrics.js';

export interface DelivererOptions {
  store: Pick<Store, 'outbox' | 'connections'>;
  /** The installation's targets (the `notifications` setting). */
  targets: readonly Target[];
  logger: Logger;
  metrics?: NotificationMetrics;
  /** Whether this process delivers now (the scaler's leadership). */
  isLeader: () => boolean;
  pollMs?: number;
  /** One HTTP attempt's limit. */
  timeoutMs?: number;
  backoff?: BackoffOptions;
  /** A delivery still failing this long after its event is given up. */
  maxAgeMs?: number;
  /** Items claimed (and sent at once) per tick. */
  batch?: number;
}

const DEFAULTS = {
  pollMs: 1_000,
  timeoutMs: 10_000,
  backoff: { baseMs: 1_000, factor: 2, capMs: 10 * 60_000 },
  maxAgeMs: 24 * 3600_000,
  batch: 20,
};

export class Deliverer {
  private readonly o: Required<Omit<DelivererOptions, 'metrics'>> & Pick<DelivererOptions, 'metrics'>;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private ticking: Promise<unknown> = Promise.resolve();

  constructor(options: DelivererOptions) {
    this.o = { ...DEFAULTS, ...options };
    this.logger = options.logger.child({ component: 'notifications' });
  }

  start(): void {
    this.running = true;
    this.schedule(0);
  }

  /** Stops claiming; resolves once the deliveries under way are settled. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
  }

  private schedule(delay: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick()
        .catch((err: unknown) => this.logger.warn({ err: (err as Error).message }, 'notification delivery tick failed; trying again'))
        .finally(() => this.schedule(this.o.pollMs));
    }, delay);
  }

  /** One round: claim due items, fan out events, send deliveries. Returns how many items it handled. */
  async tick(): Promise<number> {
    const { outbox } = this.o.store;
    let handled = 0;
    if (this.o.isLeader()) {
      // A lease longer than one send can take: nobody else gets an item while it is being sent.
      const items = await outbox.claim(this.o.batch, this.o.timeoutMs * 2 + 5_000);
      await Promise.all(items.map((item) => this.handle(item)));
      handled = items.length;
    }
    this.o.metrics?.pending(await outbox.pending());
    return handled;
  }

  private async handle(item: OutboxItem): Promise<void> {
    try {
      if (item.kind === 'event') await this.fanOut(item);
      else await this.deliver(item);
    } catch (err) {
      // The store failed under us: the item's lease ends and it comes due again.
      this.logger.warn({ item: item.id, err: (err as Error).message }, 'could not settle a notification; it comes due again');
    }
  }

  /** The event, secrets redacted, as one delivery per target that wants it. */
  private async fanOut(item: OutboxEventItem): Promise<void> {
    const { event } = item;
    const connection = event.connectionId !== undefined ? await this.o.store.connections.get(event.connectionId) : undefined;
    const targets = [...this.o.targets, ...(connection?.notifications ?? [])].filter((t) => wants(t, event.type));
    const redacted = redactEvent(event, connection);
    const now = Date.now();
    const deliveries: OutboxDelivery[] = targets.map((target, i) => ({ kind: 'delivery', id: `delivery:${event.id}:${i}`, event: redacted, target, attempts: 0, createdAt: now }));
    await this.o.store.outbox.fanOut(item, deliveries, now);
    if (deliveries.length > 0) this.logger.debug({ event: event.type, eventId: event.id, targets: deliveries.length }, 'notification fanned out');
  }

  private async deliver(d: OutboxDelivery): Promise<void> {
    const { outbox } = this.o.store;
    const attempt = d.attempts + 1;
    const result = await sendEvent(d.event, d.target, { timeoutMs: this.o.timeoutMs, attempt });
    const log = { event: d.event.type, eventId: d.event.id, url: shownUrl(d.target.url), attempt };
    if (result.ok) {
      await outbox.done(d.id);
      this.o.metrics?.deliveredOne(d.event.type);
      this.logger.info({ ...log, status: result.status }, 'notification delivered');
      return;
    }
    this.o.metrics?.failedOne(d.event.type, result.reason);
    const failed: OutboxDelivery = { ...d, attempts: attempt, lastError: result.message };
    if (Date.now() - Date.parse(d.event.occurredAt) >= this.o.maxAgeMs) {
      await outbox.giveUp(failed);
      this.o.metrics?.failedOne(d.event.type, 'gave_up');
      this.logger.error({ ...log, reason: result.message }, 'notification given up: its receiver failed it for too long');
      return;
    }
    const delayMs = backoffDelay(d.attempts, this.o.backoff);
    await outbox.retry(failed, Date.now() + delayMs);
    this.logger.warn({ ...log, reason: result.message, retryInMs: delayMs }, 'notification delivery failed; retrying later');
  }
}

/**
 * The event as receivers see it: every string with the connection's secrets (its configs' and
 * its targets') hidden, values under secret names replaced, as `connections show` does.
 */
function redactEvent(event: NotificationEvent, connection: unknown): NotificationEvent {
  const secrets = secretValues(connection);
  secretValues(event, secrets);
  return redactObject(event, secrets);
}
