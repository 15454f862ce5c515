// The settings reference, from the zod schema of shared/config.ts: each setting's variable, its key
// in a settings file, its type (the building block's `docType`, an enum's values, a number's
// range), its default, and its meaning from shared/config-descriptions.ts. A setting without a
// description, or a description without a setting, is an error: the page must cover the schema.
import { tmpdir } from 'node:os';
import { z } from 'zod';
import { CONFIG_FILE_VARIABLE, FILE_FORMS, configSchema, envName, fileFormName } from '../../shared/config.js';
import { CONFIG_FILE_DESCRIPTION, FILE_FORM_DESCRIPTION, SETTING_DESCRIPTIONS, SHOWN_DEFAULTS } from '../../shared/config-descriptions.js';
import { cell, tablePage } from './markdown.js';

type Schema = z.core.$ZodType;
type Bound = { check: string; value?: number; inclusive?: boolean };
type Def = { type: string; innerType?: Schema; defaultValue?: unknown; options?: Schema[]; entries?: Record<string, string>; checks?: Array<{ _zod: { def: Bound } }> };

const defOf = (schema: Schema) => (schema as unknown as { _zod: { def: Def } })._zod.def;
const docType = (schema: Schema) => z.globalRegistry.get(schema as z.ZodType)?.docType as string | undefined;

/** The type a reader sets: a named building block, an enum's values, a number and its range, or a string. */
export function typeOf(schema: Schema): string {
  const named = docType(schema);
  if (named) return named;
  const def = defOf(schema);
  if (def.type === 'default' && def.innerType) return typeOf(def.innerType);
  if (def.type === 'enum') return Object.values(def.entries ?? {}).map((v) => `\`${v}\``).join(' | ');
  if (def.type === 'union') {
    const named = (def.options ?? []).map((o) => docType(o)).find(Boolean);
    return named ?? 'string';
  }
  if (def.type === 'number') return `${(schema as unknown as { isInt: boolean }).isInt ? 'integer' : 'number'}${numberRange(def.checks ?? [])}`;
  return def.type;
}

/** A number's bounds: ` 1–64`, ` ≥ 0`, ` > 0`, or nothing. */
function numberRange(checks: Array<{ _zod: { def: Bound } }>): string {
  const bounds = checks.map((c) => c._zod.def);
  const low = bounds.find((b) => b.check === 'greater_than');
  const high = bounds.find((b) => b.check === 'less_than' && (b.value ?? Infinity) < Number.MAX_SAFE_INTEGER);
  if (low && high && low.inclusive && high.inclusive) return ` ${low.value}–${high.value}`;
  const parts = [low && `${low.inclusive ? '≥' : '>'} ${low.value}`, high && `${high.inclusive ? '≤' : '<'} ${high.value}`].filter(Boolean);
  return parts.length > 0 ? ` ${parts.join(', ')}` : '';
}

const DURATION_UNITS: Array<[string, number]> = [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]];
const SIZE_UNITS: Array<[string, number]> = [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024], ['', 1]];

/** `value` in the largest unit that holds it whole, as a setting would be written. */
function inUnits(value: number, units: Array<[string, number]>): string {
  const [unit, size] = units.find(([, size]) => value % size === 0) ?? units[units.length - 1]!;
  return `${value / size}${unit}`;
}

/** A setting's default as it would be written; machine-dependent defaults as what they are. */
export function defaultOf(key: string, schema: Schema): string {
  const shown = SHOWN_DEFAULTS[key as keyof typeof SHOWN_DEFAULTS];
  if (shown !== undefined) return shown;
  const value = defOf(schema).defaultValue;
  if (value === undefined || value === '') return 'none';
  const type = typeOf(schema);
  if (typeof value === 'number' && value > 0 && type === 'duration') return `\`${inUnits(value, DURATION_UNITS)}\``;
  if (typeof value === 'number' && type === 'size') return `\`${inUnits(value, SIZE_UNITS)}\``;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return `\`${text.startsWith(tmpdir()) ? `$TMPDIR${text.slice(tmpdir().length)}` : text}\``;
}

/** The settings without a description, and the descriptions without a setting. */
export function descriptionProblems(): string[] {
  const keys = Object.keys(configSchema.shape);
  const described = Object.keys(SETTING_DESCRIPTIONS);
  return [
    ...keys.filter((k) => !described.includes(k)).map((k) => `${k} (${envName(k)}) has no description in shared/config-descriptions.ts`),
    ...described.filter((k) => !keys.includes(k)).map((k) => `${k} is described in shared/config-descriptions.ts but is no setting`),
  ];
}

/** docs/reference/settings.md. */
export function settingsPage(): string {
  const problems = descriptionProblems();
  if (problems.length > 0) throw new Error(`settings reference: ${problems.join('; ')}`);
  const rows: string[][] = [[`\`${CONFIG_FILE_VARIABLE}\``, '', 'file path', 'none', cell(CONFIG_FILE_DESCRIPTION)]];
  for (const [key, schema] of Object.entries(configSchema.shape) as Array<[keyof typeof SETTING_DESCRIPTIONS, Schema]>) {
    rows.push([`\`${envName(key)}\``, `\`${key}\``, cell(typeOf(schema)), cell(defaultOf(key, schema)), cell(SETTING_DESCRIPTIONS[key])]);
    if ((FILE_FORMS as readonly string[]).includes(key)) rows.push([`\`${fileFormName(key)}\``, '', 'file path', 'none', cell(FILE_FORM_DESCRIPTION)]);
  }
  return tablePage(
    'Settings reference',
    'the configuration schema (`shared/config.ts`) and its descriptions (`shared/config-descriptions.ts`)',
    [
      'Every setting is an environment variable, or a key of the settings file; how they are read and',
      'checked is in [Configuration](../configuration.md). Durations take `500ms`, `30s`, `5m`, `1h`;',
      'sizes take `64MiB`, `512KiB`; a yes/no setting takes `true`/`false` (or `1`/`0`).',
    ],
    ['variable', 'file key', 'type', 'default', 'meaning'],
    rows,
  );
}
