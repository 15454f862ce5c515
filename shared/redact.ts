// Keeping secrets out of logs, run records, dead letters, the API and error messages.
//
// Which values are secret: every value under a secret-looking name (isSecretKey), the values a
// connector's spec marks `airbyte_secret` (shared/connector-spec.ts), and the credentials inside
// any string (a URL's userinfo, a `password=` parameter). Each is hidden in every form it takes in
// text: as is, JSON-escaped (a connector echoing its config), URL-encoded. Text is redacted before
// it is cut short (quote); text that arrived cut has a secret's beginning at its end dropped too
// (redactCut), so no cut ever leaves half a secret. A `{"secretRef": "name/key"}` in place of a
// value is no secret: it is shown as is, and its text is never redacted (errors name it).
import { isSecretRef } from './secret-ref.js';

const MARK = '[redacted]';

/** Names with a secret word anywhere in them (`PGPASSWORD`, `client_secret`, `accessToken`). */
const SECRET_WORD = /password|passwd|pwd|passphrase|secret|token|credential|authorization|cookie/;
/** Names that are secret as a whole word only (`db_pass`, `dsn`; not `bypass`). */
const SECRET_WORDS = new Set(['pass', 'dsn']);
/** `*key` written as one word: `apikey`, `SSHKey`, `accesskey`. */
const COMPACT_KEY = /^(api|access|secret|private|ssh|client|master|signing|encryption|auth|account|app|license|consumer|service|sas|subscription)keys?$/;
/** `*_key` names that name columns or objects, not credentials. */
const NOT_SECRET_KEYS = new Set(['primary_key', 'cursor_key', 'partition_key', 'sort_key', 'foreign_key', 'dedup_key', 'merge_key', 'join_key', 'distribution_key', 'cluster_key']);

/**
 * Whether a field's name says its value is secret: password/passwd/pwd, secret*, *token*,
 * credentials, dsn, and `*_key`/`*Key` (api_key, ssh_key, access_key, private_key) except the
 * few that name columns (primary_key, cursor_key...).
 */
export function isSecretKey(name: string): boolean {
  const snake = name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  if (SECRET_WORD.test(snake)) return true;
  const words = snake.split(/[^a-z0-9]+/).filter(Boolean);
  if (words.some((w) => SECRET_WORDS.has(w) || COMPACT_KEY.test(w))) return true;
  const last = words.at(-1);
  return words.length > 1 && (last === 'key' || last === 'keys') && !NOT_SECRET_KEYS.has(`${words.at(-2)}_key`);
}

/** scheme://user:password@ — the userinfo and the password. */
const URL_USERINFO = /[a-z][a-z0-9+.-]*:\/\/(([^:/@\s]*):([^@\s]+?))@/gi;
/** name=value, as in a query string or a libpq DSN (`host=db password='x y'`). */
const NAMED_VALUE = /(?:^|[\s?&;])([A-Za-z_][\w.-]*)=('[^']*'|"[^"]*"|[^\s&;'"#]+)/g;

/** Credentials inside one string: a URL's password and whole userinfo, values of secret-named parameters. */
export function embeddedSecrets(text: string, out: Set<string> = new Set()): Set<string> {
  if (!text.includes('=') && !text.includes('@')) return out;
  for (const m of text.matchAll(URL_USERINFO)) {
    addSecret(m[1]!, out);
    addSecret(m[3]!, out);
  }
  for (const m of text.matchAll(NAMED_VALUE)) {
    // Closing punctuation after an unquoted value is the text's (`connect(token=abc)`), not the value's.
    if (isSecretKey(m[1]!)) addSecret(/^['"]/.test(m[2]!) ? m[2]!.slice(1, -1) : m[2]!.replace(/[)\]},.]+$/, ''), out);
  }
  return out;
}

/**
 * A secret, and its URL-decoded reading when it is written encoded (`p%40ss` is `p@ss`). Values
 * shorter than 3 characters are left: they would redact every "1" and "ab" in a log line, and
 * say nothing secret.
 */
function addSecret(value: string, out: Set<string>): void {
  if (value.length < 3) return;
  out.add(value);
  try {
    const decoded = decodeURIComponent(value);
    if (decoded !== value && decoded.length >= 3) out.add(decoded);
  } catch {
    // Not URL-encoded after all.
  }
}

/** Every secret of a config (or a whole connection): values under secret names, at any depth, and credentials inside any string. */
export function secretValues(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (typeof value === 'string') {
    embeddedSecrets(value, out);
  } else if (Array.isArray(value)) {
    for (const v of value) secretValues(v, out);
  } else if (value && typeof value === 'object' && !isSecretRef(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (isSecretKey(k)) collectSecretLeaves(v, out);
      else secretValues(v, out);
    }
  }
  return out;
}

/** Every string or number under a secret key, however nested (a list of API keys, say), and the credentials inside each. */
export function collectSecretLeaves(value: unknown, out: Set<string>): void {
  if (typeof value === 'string' || typeof value === 'number') {
    addSecret(String(value), out);
    if (typeof value === 'string') embeddedSecrets(value, out);
  } else if (Array.isArray(value)) {
    for (const v of value) collectSecretLeaves(v, out);
  } else if (value && typeof value === 'object' && !isSecretRef(value)) {
    for (const v of Object.values(value)) collectSecretLeaves(v, out);
  }
}

/**
 * A copy of a config (or a connection) safe to show or log: values under secret names replaced,
 * and every secret of the whole value hidden wherever else it appears (a password repeated in a
 * DSN, an `args` entry). `secrets`: the value's own (the default) and any others known, such as
 * the values its connectors' specs mark secret.
 */
export function redactObject<T>(value: T, secrets: ReadonlySet<string> = secretValues(value)): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactText(v, secrets);
    if (Array.isArray(v)) return v.map(walk);
    if (isSecretRef(v)) return v;
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = isSecretKey(k) && x !== null && x !== undefined && !isSecretRef(x) ? MARK : walk(x);
      return out;
    }
    return v;
  };
  return walk(value) as T;
}

/** amqp://user:pass@host → amqp://user:***@host */
export function maskUrlCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)([^@\s]+)(@)/gi, '$1***$3');
}

/** How each secret can appear in text: as is, JSON-escaped (once and twice: JSON quoted in JSON), URL-encoded. */
function formsOf(secret: string): string[] {
  const json = JSON.stringify(secret).slice(1, -1);
  const url = encodeURIComponent(secret);
  return [secret, json, JSON.stringify(json).slice(1, -1), url, url.replace(/%20/g, '+')];
}

interface Compiled {
  size: number;
  forms: string[];
  pattern: RegExp | undefined;
}

// The secrets of a sync only grow (the specs' secrets join those of the names): recompiled when
// a set's size changed, not for every line redacted.
const compiled = new WeakMap<ReadonlySet<string>, Compiled>();

function compile(secrets: ReadonlySet<string>): Compiled {
  let c = compiled.get(secrets);
  if (c?.size === secrets.size) return c;
  // Longest first: a secret that contains a shorter one goes whole, not leaving its rest.
  const forms = [...new Set([...secrets].flatMap(formsOf))].sort((a, b) => b.length - a.length);
  const pattern = forms.length > 0 ? new RegExp(forms.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g') : undefined;
  c = { size: secrets.size, forms, pattern };
  compiled.set(secrets, c);
  return c;
}

/** Replaces each known secret, in each of its forms, in free text (a stderr line, an error message), and masks URL passwords. */
export function redactText(text: string, secrets: ReadonlySet<string>): string {
  const { pattern } = compile(secrets);
  // One pass over all forms: a replacement is never searched again.
  const out = pattern ? text.replace(pattern, MARK) : text;
  return out.includes('://') ? maskUrlCredentials(out) : out;
}

/**
 * redactText for text that was cut short before it could be redacted (a line cut by a byte
 * bound): when `cut`, the beginning of a secret left at its end is dropped too, and so is a URL
 * password whose `@` was cut off.
 */
export function redactCut(text: string, secrets: ReadonlySet<string>, cut: boolean): string {
  let out = redactText(text, secrets);
  if (!cut) return out;
  // A character cut in the middle of its bytes decodes as U+FFFD: it may be a secret's.
  out = out.replace(/\uFFFD+$/, '').replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*$/i, '$1***');
  let drop = 0;
  for (const form of compile(secrets).forms) {
    // The longest end of `out` that begins this form.
    for (let p = Math.max(0, out.length - form.length + 1); p < out.length - drop; p++) {
      p = out.indexOf(form[0]!, p);
      if (p < 0 || p >= out.length - drop) break;
      if (form.startsWith(out.slice(p))) {
        drop = out.length - p;
        break;
      }
    }
  }
  return out.slice(0, out.length - drop);
}

/**
 * Connector output quoted in an error or a stderr tail: redacted first, then cut to `maxChars`
 * ("…" marks a cut, here or before: `cut` says the text given is already the start of a longer one).
 */
export function quote(text: string, secrets: ReadonlySet<string>, maxChars: number, cut = false): string {
  const redacted = redactCut(text, secrets, cut);
  if (redacted.length > maxChars) return `${redacted.slice(0, maxChars)}…`;
  return cut ? `${redacted}…` : redacted;
}
