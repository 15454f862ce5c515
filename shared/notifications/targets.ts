// Where notifications go: webhook targets, from the installation's `notifications` setting
// (every connection's events) and from a connection's own `notifications` list (its events).
// A target's HMAC secret is given inline (`secret`, stored like the connection's own passwords
// and redacted wherever a connection is shown: its name is a secret name) or by reference
// (`secretRef`: an environment variable or a file of the delivering process — a mounted
// Secret), so that it need not sit in the store at all.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const EVENT_TYPES = ['sync.failed', 'sync.dead_lettered', 'sync.succeeded', 'schedule.missed', 'notification.test'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** What a target gets when it names no events: failures, not successes (those are opt-in). */
export const DEFAULT_EVENTS: readonly EventType[] = ['sync.failed', 'sync.dead_lettered', 'schedule.missed'];

const secretRefSchema = z.union([
  z.object({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') }).strict(),
  z.object({ file: z.string().startsWith('/', 'an absolute path') }).strict(),
]);

export const targetSchema = z
  .object({
    url: z
      .string()
      .max(2048)
      .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'an http:// or https:// URL'),
    events: z.array(z.enum(EVENT_TYPES.filter((t) => t !== 'notification.test') as [EventType, ...EventType[]])).min(1).optional(),
    /** json: the event as JSON, signed; slack: `{ "text": "..." }` for a Slack (or compatible) incoming webhook. */
    format: z.enum(['json', 'slack']).default('json'),
    secret: z.string().min(16, 'at least 16 characters').optional(),
    secretRef: secretRefSchema.optional(),
  })
  .strict()
  .refine((t) => t.secret === undefined || t.secretRef === undefined, { message: 'give secret or secretRef, not both' });

export type Target = z.output<typeof targetSchema>;
export const targetsSchema = z.array(targetSchema);

/** Whether `target` wants events of `type` (a test event goes to every target it is sent to). */
export function wants(target: Target, type: EventType): boolean {
  return type === 'notification.test' || (target.events ?? DEFAULT_EVENTS).includes(type);
}

/**
 * The installation's targets from the `notifications` setting (JSON text: a list of targets).
 * Throws a message that never quotes the text: it may hold secrets.
 */
export function parseTargets(text: string): Target[] {
  if (text.trim() === '') return [];
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error('not valid JSON: expected a list of {url, events?, format?, secret?|secretRef?}');
  }
  const parsed = targetsSchema.safeParse(doc);
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(list)'}: ${i.message}`).join('; '));
  }
  return parsed.data;
}

/** The key a target signs with, if any; reads a secretRef now (a rotated Secret is picked up at the next delivery). */
export function signingSecret(target: Pick<Target, 'secret' | 'secretRef'>, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (target.secret !== undefined) return target.secret;
  const ref = target.secretRef;
  if (!ref) return undefined;
  if ('env' in ref) {
    const value = env[ref.env];
    if (!value) throw new Error(`secretRef: environment variable ${ref.env} is not set`);
    return value;
  }
  try {
    return readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    // The error names the path and the reason, never the content.
    throw new Error(`secretRef: cannot read ${ref.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
