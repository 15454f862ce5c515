// bench:scaling's scalers, its rows, and what they say: which scalers a run replays (--scalers),
// issue 14's targets for each tidepool row against the fastest KEDA configuration, and the table.
import { fastestKeda, targets, type Figures, type Targets } from './scaling-figures.js';
import { KEDA_CONFIGS, kedaConfigName, type KedaConfig } from './scaling-configs.js';

/** A scaler on the cluster: tidepool's (with or without the adaptive leave rule) or a ScaledJob. */
export interface ClusterScaler {
  name: string;
  family: 'tidepool' | 'keda';
  keda?: KedaConfig;
  /** TIDEPOOL_IDLE_MINIMUM for the runners: the adaptive leave rule, opt-in. */
  idleMinimum?: string;
}

const TIDEPOOL: ClusterScaler = { name: 'tidepool', family: 'tidepool' };
const KEDA: ClusterScaler[] = KEDA_CONFIGS.map((keda) => ({ name: kedaConfigName(keda), family: 'keda', keda }));
/** The simulator's 5 s (bench/support/scaling-configs.ts). */
const TIDEPOOL_IDLE_MINIMUM: ClusterScaler = { name: 'tidepool + idleMinimum 5s', family: 'tidepool', idleMinimum: '5s' };

/** In replay order: tidepool as shipped, the 12 KEDA configurations, then tidepool with the opt-in leave rule. */
export const CLUSTER_SCALERS: readonly ClusterScaler[] = [TIDEPOOL, ...KEDA, TIDEPOOL_IDLE_MINIMUM];

/** A scaler's name as --scalers takes it: "keda default amqp 30s" → keda-default-amqp-30s. */
export const scalerSlug = (name: string): string =>
  name
    .replace(/([a-z])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

/**
 * --scalers: a comma-separated list of slugs and groups — default (tidepool and the 12 KEDA
 * configurations), all (and tidepool with the leave rule), keda (the 12) — in replay order.
 */
export function pickScalers(list: string): ClusterScaler[] {
  const groups: Record<string, readonly ClusterScaler[]> = { default: [TIDEPOOL, ...KEDA], all: CLUSTER_SCALERS, keda: KEDA };
  const picked = new Set<ClusterScaler>();
  for (const word of list.split(',').map((w) => w.trim()).filter(Boolean)) {
    const group = groups[word];
    const one = CLUSTER_SCALERS.find((s) => scalerSlug(s.name) === word);
    if (!group && !one) throw new Error(`--scalers: unknown scaler ${word} (known: default, all, keda, ${CLUSTER_SCALERS.map((s) => scalerSlug(s.name)).join(', ')})`);
    for (const s of group ?? [one!]) picked.add(s);
  }
  if (picked.size === 0) throw new Error('--scalers: no scaler named');
  return CLUSTER_SCALERS.filter((s) => picked.has(s));
}

/** What one replay measured beyond the shared figures. */
export interface ClusterFigures extends Figures {
  /** The API server's requests over the window, net of the cluster's idle rate and the bench's own. */
  apiRequests: number;
  apiRequestsByResource: Record<string, number>;
  peakRunners: number;
  /** Median of Job seen → its pod Running: how fast the cluster started runners during this replay. */
  podStartP50S: number;
  /** CPU seconds other people's processes used on this shared machine during the window: a busy neighbour slows pod starts. */
  otherCpuSeconds: number;
  /** Publish of the first sync → the pool seen empty with every sync final. */
  poolEmptyAfterS: number;
  /** Others' namespaces on the cluster during the window: their requests are in apiRequests. */
  otherNamespaces: string[];
}

/** A row of the result: a scaler's figures, or why its replay failed. */
export type ScalerRow = { scaler: string; family: ClusterScaler['family'] } & (ClusterFigures | { error: string; lost?: undefined });

const measured = (rows: readonly ScalerRow[]) => rows.flatMap((r) => ('error' in r ? [] : [{ ...r, figures: r }]));

/** Issue 14's targets for each tidepool row, against the KEDA row with the lowest wait p95 (then the fewest runner-seconds). */
export function summarizeRows(rows: readonly ScalerRow[]): { fastestKeda: string | undefined; targets: Record<string, Targets & { all: boolean }> } {
  const best = fastestKeda(measured(rows));
  const out: Record<string, Targets & { all: boolean }> = {};
  if (best) {
    for (const r of measured(rows).filter((m) => m.family === 'tidepool')) {
      const t = targets(r.figures, best.figures);
      out[r.scaler] = { ...t, all: t.p95 && t.runnerSeconds && t.noDuplicates };
    }
  }
  return { fastestKeda: best?.scaler, targets: out };
}

const COLUMNS: [Exclude<keyof ClusterFigures, 'apiRequestsByResource' | 'otherNamespaces'>, string][] = [
  ['waitP50S', 'wait p50 s'],
  ['waitP95S', 'p95 s'],
  ['waitMaxS', 'max s'],
  ['runnerSeconds', 'runner-s'],
  ['efficiency', 'efficiency'],
  ['launched', 'Jobs'],
  ['duplicates', 'duplicates'],
  ['apiRequests', 'API req'],
  ['lost', 'lost'],
  ['peakRunners', 'peak'],
  ['podStartP50S', 'pod start'],
  ['otherCpuSeconds', 'other CPU'],
];

/** The rows as a text table, and a line per tidepool row on the targets. */
export function scalingTable(rows: readonly ScalerRow[], summary: ReturnType<typeof summarizeRows>): string {
  const width = Math.max(6, ...rows.map((r) => r.scaler.length));
  const head = `${'scaler'.padEnd(width)}  ${COLUMNS.map(([, h]) => h.padStart(10)).join(' ')}`;
  const lines = rows.map((r) =>
    'error' in r ? `${r.scaler.padEnd(width)}  FAILED: ${r.error.split('\n')[0]!.slice(0, 120)}` : `${r.scaler.padEnd(width)}  ${COLUMNS.map(([k]) => String(r[k]).padStart(10)).join(' ')}`,
  );
  const verdicts = Object.entries(summary.targets).map(
    ([name, t]) =>
      `${name} vs ${summary.fastestKeda ?? '-'}: wait p95 ${t.p95 ? 'met' : 'NOT met'}, runner-seconds ≤ 0.7× ${t.runnerSeconds ? 'met' : 'NOT met'}, no duplicates or losses ${t.noDuplicates ? 'met' : 'NOT met'}`,
  );
  return [head, ...lines, ...(summary.fastestKeda ? [`fastest KEDA configuration: ${summary.fastestKeda}`] : []), ...verdicts].join('\n');
}
