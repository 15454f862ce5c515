// A connection config value given by reference: `{"secretRef": "name/key"}` instead of the value.
// The store (and so anyone who can read Redis) holds the reference only; the runner resolves it
// right before a connector gets its config (runner/secrets/), from a directory of files or a
// Kubernetes Secret. `name` is a Secret's name, `key` one of its keys: the same shape in both,
// so a connection moves from a host to a cluster unchanged.

/** A Kubernetes Secret name: a DNS-1123 subdomain. It has no "/", and no ".." (no empty label). */
const SECRET_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A Secret key, as Kubernetes takes them: never "." or "..", nor starting with "..". */
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const NAME_MAX = 253;

export interface SecretRef {
  name: string;
  key: string;
}

/** One reference inside a config: where (`password`, `tunnel.ssh_key`) and to what. */
export interface FoundRef {
  path: string[];
  ref: SecretRef;
}

export const SECRET_REF_RULE = 'written "name/key": name a Kubernetes Secret name (lowercase letters, digits, "-" and "."), key of letters, digits, "-", "_" and "."';

/** An object with a `secretRef` key: meant as a reference, whether or not it is a good one. */
export function isSecretRef(value: unknown): value is { secretRef: unknown } {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && Object.hasOwn(value, 'secretRef');
}

/** The reference `text` names, or why it names none. */
export function parseSecretRef(text: unknown): SecretRef | string {
  if (typeof text !== 'string') return `secretRef must be a string ${SECRET_REF_RULE}`;
  const slash = text.indexOf('/');
  const name = slash < 0 ? '' : text.slice(0, slash);
  const key = slash < 0 ? '' : text.slice(slash + 1);
  const keyOk = SECRET_KEY.test(key) && key !== '.' && !key.startsWith('..') && key.length <= NAME_MAX;
  if (!SECRET_NAME.test(name) || name.length > NAME_MAX || !keyOk) return `secretRef ${JSON.stringify(text.slice(0, 80))} is not ${SECRET_REF_RULE}`;
  return { name, key };
}

export function formatSecretRef(ref: SecretRef): string {
  return `${ref.name}/${ref.key}`;
}

/**
 * Every reference in a config, and every problem with one: an object with `secretRef` must have
 * nothing else, and a reference of the right shape. Paths are property names (array indexes as
 * numbers in text), from the config's root.
 */
export function findSecretRefs(config: unknown): { refs: FoundRef[]; problems: Array<{ path: string[]; message: string }> } {
  const refs: FoundRef[] = [];
  const problems: Array<{ path: string[]; message: string }> = [];
  const walk = (value: unknown, path: string[], depth: number): void => {
    if (depth > 64 || value === null || typeof value !== 'object') return;
    if (isSecretRef(value)) {
      const extra = Object.keys(value).filter((k) => k !== 'secretRef');
      const parsed = parseSecretRef(value.secretRef);
      if (extra.length > 0) problems.push({ path, message: `a secretRef stands alone: remove ${extra.join(', ')}` });
      else if (typeof parsed === 'string') problems.push({ path: [...path, 'secretRef'], message: parsed });
      else refs.push({ path, ref: parsed });
      return;
    }
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, String(i)], depth + 1));
    else for (const [k, v] of Object.entries(value)) walk(v, [...path, k], depth + 1);
  };
  walk(config, [], 0);
  return { refs, problems };
}

/**
 * A copy of `config` with each reference replaced by `valueOf(found)`: the resolved value, by the
 * runner. (`connections apply` validates against the spec with the referenced fields left out,
 * not filled in: a stand-in value failed `pattern`s inside `oneOf` branches.)
 */
export function replaceSecretRefs(config: unknown, valueOf: (found: FoundRef) => unknown): unknown {
  const walk = (value: unknown, path: string[]): unknown => {
    if (value === null || typeof value !== 'object') return value;
    if (isSecretRef(value)) {
      const ref = parseSecretRef(value.secretRef);
      return typeof ref === 'string' ? value : valueOf({ path, ref });
    }
    if (Array.isArray(value)) return value.map((v, i) => walk(v, [...path, String(i)]));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, [...path, k])]));
  };
  return walk(config, []);
}
