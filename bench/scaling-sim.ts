// Scaling, simulated: one or many seeded traces (bench/support/scaling-trace.ts) replayed through
// tidepool's policy and runners' leave rule (the real pure functions) and through models of
// KEDA's ScaledJob strategies, in milliseconds. Prints, per scaler configuration, the median
// over the traces of: wait p50/p95/max (arrival → a runner takes the sync), runner-seconds
// (launch → exit), efficiency (busy slot-seconds / runner slot-seconds), runners launched,
// duplicate launches (runners that left having run nothing), syncs lost; and whether tidepool
// meets issue 14's targets against the best KEDA configuration on each trace.
//
//   npm run bench:scaling-sim -- [--json] [--seed N] [--traces N]
import { integerOption, readArgs, runBench } from './support/cli.js';
import { simulate, DEFAULT_SIM_SETTINGS, type SimResult } from './support/pool-sim.js';
import { generateTrace, DEFAULT_TRACE_SHAPE } from './support/scaling-trace.js';
import { median, percentile } from './support/stats.js';
import { SCALER_CONFIGS, type ScalerConfig } from './support/scaling-configs.js';

const USAGE = `usage: npm run bench:scaling-sim -- [--json] [--seed N] [--traces N]

Replays seeded bursty traces (${DEFAULT_TRACE_SHAPE.syncs} syncs over ${DEFAULT_TRACE_SHAPE.spanMs / 60_000} min, pod start 3-8 s, concurrency
${DEFAULT_SIM_SETTINGS.concurrency}, max 40 runners, idle timeout ${DEFAULT_SIM_SETTINGS.idleTimeoutMs / 1000} s) through tidepool's policy and KEDA ScaledJob
models; prints medians over the traces (seeds N, N+1, …; default seed 1, 1 trace).`;

interface Options {
  seed: number;
  traces: number;
  json: boolean;
}

function parseOptions(argv: string[]): Options | undefined {
  const values = readArgs(argv, { seed: 'string', traces: 'string', json: 'boolean' });
  return values && { seed: integerOption('seed', values.seed, 1, 0), traces: integerOption('traces', values.traces, 1, 1), json: values.json ?? false };
}

/** One configuration's figures on one trace. */
interface Figures {
  waitP50S: number;
  waitP95S: number;
  waitMaxS: number;
  runnerSeconds: number;
  efficiency: number;
  launched: number;
  duplicates: number;
  lost: number;
}

function figures(result: SimResult, concurrency: number): Figures {
  const s = (ms: number) => Math.round(ms / 100) / 10;
  return {
    waitP50S: s(percentile(result.waitsMs, 0.5)),
    waitP95S: s(percentile(result.waitsMs, 0.95)),
    waitMaxS: s(Math.max(0, ...result.waitsMs)),
    runnerSeconds: Math.round(result.runnerMs / 1000),
    efficiency: result.runnerMs > 0 ? Math.round((result.busySlotMs / (result.runnerMs * concurrency)) * 1000) / 1000 : 0,
    launched: result.launched,
    duplicates: result.duplicates,
    lost: result.lost,
  };
}

/** The KEDA configuration to beat on a trace: the lowest wait p95, then the fewest runner-seconds. */
function fastestKeda(perConfig: Map<ScalerConfig, Figures>): Figures {
  const keda = [...perConfig].filter(([c]) => c.family === 'keda');
  return keda.sort(([, a], [, b]) => a.waitP95S - b.waitP95S || a.runnerSeconds - b.runnerSeconds)[0]![1];
}

/** Issue 14's three targets against one KEDA configuration's figures on the same trace. */
function targets(f: Figures, keda: Figures): { p95: boolean; runnerSeconds: boolean; noDuplicates: boolean } {
  return { p95: f.waitP95S <= keda.waitP95S, runnerSeconds: f.runnerSeconds <= 0.7 * keda.runnerSeconds, noDuplicates: f.duplicates === 0 && f.lost === 0 };
}

type Counts = { p95: number; runnerSeconds: number; noDuplicates: number; all: number };

/** On how many traces each target (and all three) held, for one tidepool configuration against `reference`. */
function targetCounts(perTrace: Map<ScalerConfig, Figures>[], config: ScalerConfig, reference: (m: Map<ScalerConfig, Figures>) => Figures): Counts {
  const counts: Counts = { p95: 0, runnerSeconds: 0, noDuplicates: 0, all: 0 };
  for (const m of perTrace) {
    const t = targets(m.get(config)!, reference(m));
    counts.p95 += Number(t.p95);
    counts.runnerSeconds += Number(t.runnerSeconds);
    counts.noDuplicates += Number(t.noDuplicates);
    counts.all += Number(t.p95 && t.runnerSeconds && t.noDuplicates);
  }
  return counts;
}

function row(perTrace: Map<ScalerConfig, Figures>[], c: ScalerConfig) {
  const all = perTrace.map((m) => m.get(c)!);
  const med = (key: keyof Figures) => Math.round(median(all.map((f) => f[key])) * 1000) / 1000;
  const base = {
    scaler: c.name,
    waitP50S: med('waitP50S'),
    waitP95S: med('waitP95S'),
    waitMaxS: med('waitMaxS'),
    runnerSeconds: med('runnerSeconds'),
    efficiency: med('efficiency'),
    launched: med('launched'),
    duplicates: med('duplicates'),
    lost: all.reduce((sum, f) => sum + f.lost, 0),
  };
  if (c.family !== 'tidepool') return base;
  const vsEach = Object.fromEntries(SCALER_CONFIGS.filter((k) => k.family === 'keda').map((k) => [k.name, targetCounts(perTrace, c, (m) => m.get(k)!)]));
  const vsFastest = targetCounts(perTrace, c, fastestKeda);
  return { ...base, tracesMeetingTargets: vsFastest.all, targets: { vsFastestKeda: vsFastest, vsEachKeda: vsEach } };
}

function main({ seed, traces, json }: Options): Promise<number> {
  const perTrace: Map<ScalerConfig, Figures>[] = [];
  for (let t = 0; t < traces; t++) {
    const trace = generateTrace(seed + t);
    perTrace.push(new Map(SCALER_CONFIGS.map((c) => [c, figures(simulate(trace, c.scaler(), c.leave?.(), DEFAULT_SIM_SETTINGS), DEFAULT_SIM_SETTINGS.concurrency)] as const)));
  }
  const rows = SCALER_CONFIGS.map((c) => row(perTrace, c));
  const result = { simulated: true, seed, traces, shape: DEFAULT_TRACE_SHAPE, settings: DEFAULT_SIM_SETTINGS, rows };
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${table(rows, traces)}\n${targetLines(rows, traces)}`);
  return Promise.resolve(rows.some((r) => r.lost > 0) ? 1 : 0);
}

/** Per tidepool configuration, the KEDA configurations it meets each target against on most traces. */
function targetLines(rows: ReturnType<typeof row>[], traces: number): string {
  return rows
    .flatMap((r) => ('targets' in r ? [r] : []))
    .map((r) => {
      const beaten = (key: keyof Counts) => Object.entries(r.targets.vsEachKeda).filter(([, c]) => c[key] * 2 > traces).map(([k]) => k.replace('keda ', ''));
      return `${r.scaler}: on most traces, wait p95 ≤ ${beaten('p95').join(', ') || 'none'}; runner-seconds ≤ 0.7 × ${beaten('runnerSeconds').join(', ') || 'none'}; no duplicates on ${r.targets.vsFastestKeda.noDuplicates}/${traces} traces\n`;
    })
    .join('');
}

function table(rows: ReturnType<typeof row>[], traces: number): string {
  const columns: string[] = ['waitP50S', 'waitP95S', 'waitMaxS', 'runnerSeconds', 'efficiency', 'launched', 'duplicates', 'lost', 'tracesMeetingTargets'];
  const width = Math.max(...rows.map((r) => r.scaler.length));
  const head = `${'scaler'.padEnd(width)}  ${columns.map((c) => c.replace('tracesMeetingTargets', `targets/${traces}`).padStart(10)).join(' ')}`;
  return [head, ...rows.map((r) => `${r.scaler.padEnd(width)}  ${columns.map((c) => String((r as Record<string, string | number | undefined>)[c] ?? '').padStart(10)).join(' ')}`)].join('\n');
}

process.exitCode = await runBench(USAGE, parseOptions, main);
