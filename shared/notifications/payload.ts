// The body a target receives: the event as JSON, or for `format: slack` a Slack incoming
// webhook's `{ "text": ... }` (Mattermost, Rocket.Chat and Discord's /slack endpoint take it too).
import type { NotificationEvent } from './events.js';
import type { Target } from './targets.js';

export function renderBody(event: NotificationEvent, format: Target['format']): string {
  return JSON.stringify(format === 'slack' ? { text: slackText(event) } : event);
}

const HEADLINES: Record<NotificationEvent['type'], string> = {
  'sync.failed': 'sync failed',
  'sync.dead_lettered': 'sync dead-lettered (waiting for an operator)',
  'sync.succeeded': 'sync succeeded',
  'schedule.missed': 'scheduled sync missed',
  'notification.test': 'test notification',
};

/** One line saying what happened, then the details that matter: which sync, which attempt, why. */
export function slackText(event: NotificationEvent): string {
  const about = [event.connectionId && `connection \`${event.connectionId}\``, event.syncId && `sync \`${event.syncId}\``].filter(Boolean).join(', ');
  const lines = [`tidepool: ${HEADLINES[event.type]}${about ? ` — ${about}` : ''}`];
  const run = event.run;
  if (run) {
    lines.push(`attempt ${run.attempt}, status ${run.status}, ${run.records} records${run.durationMs !== undefined ? ` in ${(run.durationMs / 1000).toFixed(1)} s` : ''}`);
    if (run.error) lines.push(`${run.error.type} (${run.error.origin}): ${run.error.message.slice(0, 500)}`);
    if (run.retryAt) lines.push(`next attempt at ${run.retryAt}`);
  }
  if (event.data) {
    for (const [k, v] of Object.entries(event.data)) lines.push(`${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return lines.join('\n');
}
