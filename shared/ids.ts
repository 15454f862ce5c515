// The one rule for the ids that name things across tidepool: connection ids and sync ids. They
// become Redis keys, message headers, metrics labels, log fields, file and pod names, and
// table cells, and they arrive from files, command lines, HTTP requests and raw broker messages:
// a small alphabet keeps every one of those uses safe without each having to escape them.
import { z } from 'zod';

export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const ID_RULE = 'letters, digits, ".", "_" and "-", starting with a letter or digit, up to 128 characters';

/** Longest part of a refused value quoted back in an error (the rest is elided). */
const QUOTED_MAX = 80;

export function isValidId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

/** A value as a quoted, JSON-escaped string of bounded length: control characters cannot reach a terminal or a log line. */
export function quoteValue(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  return JSON.stringify(text.length > QUOTED_MAX ? `${text.slice(0, QUOTED_MAX)}…` : text);
}

/** Why `value` is no valid id for `field`, naming both; undefined when it is valid. */
export function idProblem(field: string, value: unknown): string | undefined {
  if (isValidId(value)) return undefined;
  if (typeof value !== 'string') return `${field} must be a string id (${ID_RULE})`;
  return `${field} ${quoteValue(value)} is not a valid id (${ID_RULE})`;
}

/** A zod string checked against the id rule; the message names the value. */
export function idSchema(field: string) {
  return z.string().superRefine((value, ctx) => {
    const problem = idProblem(field, value);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });
}
