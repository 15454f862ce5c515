// The deliverer's metrics, on the scaler's registry.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { FailureReason } from '../../shared/notifications/send.js';

export class NotificationMetrics {
  private readonly delivered: Counter<'event'>;
  private readonly failed: Counter<'event' | 'reason'>;
  private readonly pendingGauge: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.delivered = new Counter({ name: 'tidepool_notifications_delivered_total', help: 'Webhook deliveries a target accepted (2xx), by event type.', labelNames: ['event'], registers });
    this.failed = new Counter({
      name: 'tidepool_notifications_failed_total',
      help: 'Webhook delivery attempts that failed (each is retried with backoff), by event type and reason: timeout, network, http_4xx, http_5xx, http_other, secret (its secretRef not readable); gave_up when a delivery is dropped, still failing a day after its event.',
      labelNames: ['event', 'reason'],
      registers,
    });
    this.pendingGauge = new Gauge({ name: 'tidepool_notifications_pending_messages', help: 'Notifications waiting in the outbox (events not yet fanned out, deliveries not yet accepted).', registers });
  }

  deliveredOne(event: string): void {
    this.delivered.inc({ event });
  }

  failedOne(event: string, reason: FailureReason | 'gave_up'): void {
    this.failed.inc({ event, reason });
  }

  pending(count: number): void {
    this.pendingGauge.set(count);
  }
}
