// What a connector's SPEC tells tidepool, and what tidepool does with it: which destination sync
// modes a destination implements, which config fields are secrets (`airbyte_secret`), and
// whether a config is valid for the connector before anything runs with it.
//
// Pure: no I/O. Running `spec` and caching it is runner/sync/spec.ts.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ConnectorSpecification, DestinationSyncMode } from './protocol.js';
import { collectSecretLeaves } from './redact.js';
import { findSecretRefs, isSecretRef } from './secret-ref.js';

/**
 * The destination sync modes a destination implements, from its SPEC. Never assumed beyond what
 * it says: a destination that lists its modes gets those; one that only says
 * `supportsIncremental` (the protocol's older field) gets `append` with it; one that says
 * neither — or gave no SPEC at all — gets the two modes every destination can do, overwrite and
 * append, and never `append_dedup`, which quietly becomes a plain append in a destination that
 * does not implement it (duplicate rows).
 */
export function destinationSyncModes(spec: ConnectorSpecification | undefined): DestinationSyncMode[] {
  const listed = spec?.supported_destination_sync_modes;
  if (Array.isArray(listed) && listed.length > 0) {
    return (['overwrite', 'append', 'append_dedup'] as const).filter((m) => listed.includes(m));
  }
  if (spec?.supportsIncremental === false) return ['overwrite'];
  return ['overwrite', 'append'];
}

/**
 * The paths (lists of property names) of every field the spec marks `airbyte_secret`, through
 * nested objects, `oneOf`/`anyOf`/`allOf` alternatives and arrays (an array's items share the
 * path of the array).
 */
export function secretPaths(schema: unknown): string[][] {
  const out: string[][] = [];
  const seen = new Set<string>();
  const walk = (node: unknown, path: string[], depth: number) => {
    if (!node || typeof node !== 'object' || depth > 32) return;
    const s = node as Record<string, unknown>;
    if (s.airbyte_secret === true) {
      const key = path.join('\u0000');
      if (!seen.has(key)) {
        seen.add(key);
        out.push(path);
      }
    }
    if (s.properties && typeof s.properties === 'object') {
      for (const [name, sub] of Object.entries(s.properties as Record<string, unknown>)) walk(sub, [...path, name], depth + 1);
    }
    for (const k of ['oneOf', 'anyOf', 'allOf'] as const) {
      if (Array.isArray(s[k])) for (const sub of s[k] as unknown[]) walk(sub, path, depth + 1);
    }
    if (s.items) for (const sub of Array.isArray(s.items) ? s.items : [s.items]) walk(sub, path, depth + 1);
  };
  walk(schema, [], 0);
  return out;
}

/** Every string or number in `config` at a secret path of the spec, for redacting free text. */
export function specSecretValues(config: unknown, spec: ConnectorSpecification | undefined, out: Set<string> = new Set()): Set<string> {
  if (!spec) return out;
  for (const path of secretPaths(spec.connectionSpecification)) {
    for (const value of valuesAt(config, path)) collectSecretLeaves(value, out);
  }
  return out;
}

/** A copy of `config` with the spec's secret fields replaced, safe to show. */
export function redactSpecSecrets<T>(config: T, spec: ConnectorSpecification | undefined): T {
  if (!spec) return config;
  const paths = secretPaths(spec.connectionSpecification);
  if (paths.length === 0) return config;
  const copy = structuredClone(config);
  for (const path of paths) replaceAt(copy, path);
  return copy;
}

function valuesAt(value: unknown, path: string[]): unknown[] {
  if (Array.isArray(value)) return value.flatMap((v) => valuesAt(v, path));
  if (path.length === 0) return value === undefined || value === null ? [] : [value];
  if (!value || typeof value !== 'object') return [];
  const [head, ...rest] = path as [string, ...string[]];
  return Object.hasOwn(value, head) ? valuesAt((value as Record<string, unknown>)[head], rest) : [];
}

function replaceAt(value: unknown, path: string[]): void {
  if (Array.isArray(value)) {
    for (const v of value) replaceAt(v, path);
    return;
  }
  if (!value || typeof value !== 'object' || path.length === 0) return;
  const [head, ...rest] = path as [string, ...string[]];
  const obj = value as Record<string, unknown>;
  if (!Object.hasOwn(obj, head)) return;
  if (rest.length === 0) {
    if (obj[head] !== null && obj[head] !== undefined && !isSecretRef(obj[head])) obj[head] = '[redacted]';
  } else {
    replaceAt(obj[head], rest);
  }
}

/** One thing wrong with a config, by the field's dotted path (`tunnel_method.ssh_key`). */
export interface ConfigIssue {
  path: string;
  message: string;
  /** A warning does not stop anything: a key the spec does not know, when it allows others. */
  severity: 'error' | 'warning';
}

/**
 * Keywords Airbyte adds to JSON Schema in connector specs (UI hints and secrecy). They are
 * declared so that the validator knows them, rather than being blind to every unknown keyword.
 */
const AIRBYTE_KEYWORDS = [
  'airbyte_secret',
  'airbyte_hidden',
  'always_show',
  'order',
  'group',
  'groups',
  'display_type',
  'multiline',
  'pattern_descriptor',
  'airbyte_type',
];

// strict: false because connector specs in the wild carry more UI keywords than anyone can list
// (and some use formats nobody registered): an unknown keyword must not reject a connector.
// Formats are not checked for the same reason; types, required fields, enums, ranges and
// patterns are.
function newValidator(draft2020: boolean): Ajv {
  const options = { strict: false, allErrors: true, validateFormats: false, logger: false } as const;
  const ajv = draft2020 ? new Ajv2020(options) : new Ajv(options);
  ajv.addVocabulary(AIRBYTE_KEYWORDS);
  return ajv;
}

const validators = new Map<string, ValidateFunction>();

function compile(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = validators.get(key);
  if (!validate) {
    const draft2020 = typeof schema.$schema === 'string' && schema.$schema.includes('2020-12');
    // $schema goes: some specs name drafts Ajv was not told about (draft-04, a URL typo), and
    // the keywords that matter read the same in each.
    const { $schema: _ignored, ...rest } = schema;
    validate = newValidator(draft2020).compile(rest);
    if (validators.size > 200) validators.clear();
    validators.set(key, validate);
  }
  return validate;
}

/**
 * Validates a connector config against its spec's connectionSpecification. Keys the spec does
 * not know are errors where the spec forbids extra keys, and warnings where it says nothing (a
 * misspelt key, otherwise, only shows up as a connector using a default at sync time).
 */
export function validateConnectorConfig(spec: ConnectorSpecification, config: unknown): ConfigIssue[] {
  // Typed as an object, but a spec is a connector's output: anything may be there.
  const schema = spec.connectionSpecification as Record<string, unknown> | null | undefined;
  if (!schema || typeof schema !== 'object') return [];
  let validate: ValidateFunction;
  try {
    validate = compile(schema);
  } catch (err) {
    return [{ path: '(spec)', message: `the connector's spec is not a usable JSON Schema: ${(err as Error).message}`, severity: 'warning' }];
  }
  // A secretRef stands in for a value the runner reads at sync time: its field is not judged
  // here (its type, pattern or length judge a value nobody here knows): the spec is relaxed
  // there, in every alternative that has the field, and the rest of the config judged as usual.
  const refPaths = findSecretRefs(config).refs.map((f) => f.path);
  if (refPaths.length > 0) {
    try {
      validate = compile(relaxedAt(schema, refPaths));
    } catch {
      // The spec compiled as given: relaxing it cannot break it, but if it did, judge as given.
    }
  }
  const skipped = new Set(refPaths.map((p) => p.join('.')));
  const issues: ConfigIssue[] = [];
  if (!validate(config)) for (const e of validate.errors ?? []) issues.push(describe(e));
  return issues.filter((i) => !skipped.has(i.path)).concat(unknownKeyIssues(schema, config));
}

/** A copy of `schema` that accepts anything at each of `paths`, through properties, array items and alternatives. */
function relaxedAt(schema: Record<string, unknown>, paths: string[][]): Record<string, unknown> {
  const copy = structuredClone(schema);
  const relax = (node: unknown, path: string[], depth: number): void => {
    if (!node || typeof node !== 'object' || path.length === 0 || depth > 32) return;
    const s = node as Record<string, unknown>;
    const [step, ...rest] = path as [string, ...string[]];
    const props = s.properties as Record<string, unknown> | undefined;
    if (props && typeof props === 'object' && Object.hasOwn(props, step)) {
      if (rest.length === 0) props[step] = {};
      else relax(props[step], rest, depth + 1);
    }
    if (s.items && typeof s.items === 'object' && !Array.isArray(s.items) && /^\d+$/.test(step)) {
      if (rest.length === 0) s.items = {};
      else relax(s.items, rest, depth + 1);
    }
    for (const k of ['oneOf', 'anyOf', 'allOf'] as const) {
      if (Array.isArray(s[k])) for (const alt of s[k] as unknown[]) relax(alt, path, depth + 1);
    }
  };
  for (const path of paths) relax(copy, path, 0);
  return copy;
}

/** Keys the spec does not know, as warnings, where it says nothing about other keys. */
function unknownKeyIssues(schema: Record<string, unknown>, config: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const properties = schema.properties;
  if (properties && typeof properties === 'object' && schema.additionalProperties === undefined && config && typeof config === 'object' && !Array.isArray(config)) {
    for (const key of Object.keys(config)) {
      if (!Object.hasOwn(properties, key)) {
        issues.push({ path: key, message: `not a setting of this connector (it has: ${Object.keys(properties).join(', ') || 'none'})`, severity: 'warning' });
      }
    }
  }
  return issues;
}

function describe(e: ErrorObject): ConfigIssue {
  // instancePath is a JSON Pointer ("/tunnel/port"); people read dotted paths.
  const at = e.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'required') return { path: [...at, String(params.missingProperty)].join('.'), message: 'is required', severity: 'error' };
  if (e.keyword === 'additionalProperties') {
    return { path: [...at, String(params.additionalProperty)].join('.'), message: 'is not a setting of this connector', severity: 'error' };
  }
  let message = e.message ?? e.keyword;
  if (e.keyword === 'enum' && Array.isArray(params.allowedValues)) message = `must be one of ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  // Never echo the value itself: it may be a secret given in the wrong field.
  return { path: at.length > 0 ? at.join('.') : '(config)', message, severity: 'error' };
}

/** The issues of both connector configs of a connection, paths from the connection (`source.config.port`). */
export function connectionConfigIssues(
  connection: { source: { config: unknown }; destination: { config: unknown } },
  specs: { source?: ConnectorSpecification | undefined; destination?: ConnectorSpecification | undefined },
): ConfigIssue[] {
  return (['source', 'destination'] as const).flatMap((role) => {
    const spec = specs[role];
    if (!spec) return [];
    return validateConnectorConfig(spec, connection[role].config).map((i) => ({ ...i, path: `${role}.config.${i.path}` }));
  });
}
