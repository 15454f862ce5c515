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
import { simulate, DEFAULT_SIM_SETTINGS } from './support/pool-sim.js';
import { generateTrace, CLUSTER_TRACE_SHAPE, DEFAULT_TRACE_SHAPE } from './support/scaling-trace.js';
import { median } from './support/stats.js';
import { fastestKeda, figures, targets, type Figures } from './support/scaling-figures.js';
import { MAX_RUNNERS, scalerConfigs, type ScalerConfig } from './support/scaling-configs.js';

const USAGE = `usage: npm run bench:scaling-sim -- [--json] [--seed N] [--traces N] [--trace issue|cluster] [--max-runners N]

Replays seeded bursty traces (${DEFAULT_TRACE_SHAPE.syncs} syncs over ${DEFAULT_TRACE_SHAPE.spanMs / 60_000} min, pod start 3-8 s, concurrency
${DEFAULT_SIM_SETTINGS.concurrency}, max ${MAX_RUNNERS} runners, idle timeout ${DEFAULT_SIM_SETTINGS.idleTimeoutMs / 1000} s) through tidepool's policy and KEDA ScaledJob
models; prints medians over the traces (seeds N, N+1, …; default seed 1, 1 trace).

  --trace cluster   bench:scaling's trace instead (${CLUSTER_TRACE_SHAPE.syncs} syncs over ${CLUSTER_TRACE_SHAPE.spanMs / 1000} s), max 8 runners unless
                    --max-runners: what the cluster run should come to, for comparison
  --max-runners N   tidepool's maxRunners and KEDA's maxReplicaCount`;

interface Options {
  seed: number;
  traces: number;
  trace: 'issue' | 'cluster';
  maxRunners: number;
  json: boolean;
}

function parseOptions(argv: string[]): Options | undefined {
  const values = readArgs(argv, { seed: 'string', traces: 'string', trace: 'string', 'max-runners': 'string', json: 'boolean' });
  if (!values) return undefined;
  const trace = values.trace ?? 'issue';
  if (trace !== 'issue' && trace !== 'cluster') throw new Error(`--trace must be issue or cluster (got ${trace})`);
  return {
    seed: integerOption('seed', values.seed, 1, 0),
    traces: integerOption('traces', values.traces, 1, 1),
    trace,
    maxRunners: integerOption('max-runners', values['max-runners'], trace === 'cluster' ? 8 : MAX_RUNNERS, 1),
    json: values.json ?? false,
  };
}

/** The KEDA configuration to beat on a trace (scaling-figures.ts). */
function fastestKedaOn(perConfig: Map<ScalerConfig, Figures>): Figures {
  return fastestKeda([...perConfig].map(([c, f]) => ({ family: c.family, figures: f })))!.figures;
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

function row(perTrace: Map<ScalerConfig, Figures>[], c: ScalerConfig, configs: ScalerConfig[]) {
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
  const vsEach = Object.fromEntries(configs.filter((k) => k.family === 'keda').map((k) => [k.name, targetCounts(perTrace, c, (m) => m.get(k)!)]));
  const vsFastest = targetCounts(perTrace, c, fastestKedaOn);
  return { ...base, tracesMeetingTargets: vsFastest.all, targets: { vsFastestKeda: vsFastest, vsEachKeda: vsEach } };
}

function main({ seed, traces, trace: traceName, maxRunners, json }: Options): Promise<number> {
  const shape = traceName === 'cluster' ? CLUSTER_TRACE_SHAPE : DEFAULT_TRACE_SHAPE;
  const configs = scalerConfigs(maxRunners);
  const perTrace: Map<ScalerConfig, Figures>[] = [];
  for (let t = 0; t < traces; t++) {
    const trace = generateTrace(seed + t, shape);
    perTrace.push(new Map(configs.map((c) => [c, figures(simulate(trace, c.scaler(), c.leave?.(), DEFAULT_SIM_SETTINGS), DEFAULT_SIM_SETTINGS.concurrency)] as const)));
  }
  const rows = configs.map((c) => row(perTrace, c, configs));
  const result = { simulated: true, seed, traces, trace: traceName, shape, maxRunners, settings: DEFAULT_SIM_SETTINGS, rows };
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
