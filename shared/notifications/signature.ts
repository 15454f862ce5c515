// Signing a webhook, Stripe's way: HMAC-SHA256 over `<timestamp>.<body>` with the target's
// secret, sent as `X-Tidepool-Signature: sha256=<hex>` beside `X-Tidepool-Timestamp: <unix
// seconds>`. The timestamp inside the signed text lets a receiver refuse replays of an old
// delivery (GitHub's X-Hub-Signature-256 signs the body alone, and cannot).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-tidepool-signature';
export const TIMESTAMP_HEADER = 'x-tidepool-timestamp';

export function signature(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * What a receiver does: recompute, compare in constant time, and refuse a timestamp further than
 * `toleranceS` from now. Exported for tests and as the reference the example in docs/operations.md follows.
 */
export function verifySignature(secret: string, headers: { timestamp: string | undefined; signature: string | undefined }, body: string, nowS = Date.now() / 1000, toleranceS = 300): boolean {
  const timestamp = Number(headers.timestamp);
  if (!Number.isInteger(timestamp) || Math.abs(nowS - timestamp) > toleranceS || headers.signature === undefined) return false;
  const expected = Buffer.from(signature(secret, timestamp, body));
  const given = Buffer.from(headers.signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
