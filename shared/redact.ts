// Keeping secrets out of logs, run records and error messages.

const SECRET_KEY = /pass(word)?|secret|token|api[_-]?key|credential|private[_-]?key/i;

/** amqp://user:pass@host → amqp://user:***@host */
export function maskUrlCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)([^@\s]+)(@)/gi, '$1***$3');
}

/** Every string value under a secret-looking key, at any depth (e.g. a connector's password). */
export function secretValues(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) secretValues(v, out);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (SECRET_KEY.test(k)) {
        collectSecretLeaves(v, out);
      } else {
        secretValues(v, out);
      }
    }
  }
  return out;
}

/**
 * Every string or number under a secret key, however nested (a list of API keys, say). Values
 * shorter than 3 characters are left: they would redact every "1" and "ab" in a log line, and
 * say nothing secret.
 */
export function collectSecretLeaves(value: unknown, out: Set<string>): void {
  if (typeof value === 'string' || typeof value === 'number') {
    if (String(value).length >= 3) out.add(String(value));
  } else if (Array.isArray(value)) {
    for (const v of value) collectSecretLeaves(v, out);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) collectSecretLeaves(v, out);
  }
}

/** A copy of a config object with secret-looking values replaced, safe to show or log. */
export function redactObject<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v: unknown) => redactObject(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) && v !== null && v !== undefined ? '[redacted]' : redactObject(v);
    }
    return out as T;
  }
  return value;
}

/** Replaces each known secret in free text (a connector's stderr line, an error message). */
export function redactText(text: string, secrets: ReadonlySet<string>): string {
  let out = maskUrlCredentials(text);
  // Longest first: a secret that contains a shorter one must go whole, not leave its rest.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) if (out.includes(s)) out = out.split(s).join('[redacted]');
  return out;
}
