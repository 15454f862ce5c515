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
function bestKeda(perConfig: Map<ScalerConfig, Figures>): [ScalerConfig, Figures] {
  const keda = [...perConfig].filter(([c]) => c.family === 'keda');
  return keda.sort(([, a], [, b]) => a.waitP95S - b.waitP95S || a.runnerSeconds - b.runnerSeconds)[0]!;
}

function meetsTargets(f: Figures, best: Figures): boolean {
  return f.waitP95S <= best.waitP95S && f.runnerSeconds <= 0.7 * best.runnerSeconds && f.duplicates === 0 && f.lost === 0;
}

function main({ seed, traces, json }: Options): Promise<number> {
  const perTrace: Map<ScalerConfig, Figures>[] = [];
  const bestNames: string[] = [];
  const met = new Map<ScalerConfig, number>();
  for (let t = 0; t < traces; t++) {
    const trace = generateTrace(seed + t);
    const results = new Map(SCALER_CONFIGS.map((c) => [c, figures(simulate(trace, c.scaler(), c.leave?.(), DEFAULT_SIM_SETTINGS), DEFAULT_SIM_SETTINGS.concurrency)] as const));
    const [bestConfig, best] = bestKeda(results);
    bestNames.push(bestConfig.name);
    for (const [c, f] of results) if (c.family === 'tidepool' && meetsTargets(f, best)) met.set(c, (met.get(c) ?? 0) + 1);
    perTrace.push(results);
  }
  const rows = SCALER_CONFIGS.map((c) => {
    const all = perTrace.map((m) => m.get(c)!);
    const med = (key: keyof Figures) => Math.round(median(all.map((f) => f[key])) * 1000) / 1000;
    return {
      scaler: c.name,
      waitP50S: med('waitP50S'),
      waitP95S: med('waitP95S'),
      waitMaxS: med('waitMaxS'),
      runnerSeconds: med('runnerSeconds'),
      efficiency: med('efficiency'),
      launched: med('launched'),
      duplicates: med('duplicates'),
      lost: all.reduce((sum, f) => sum + f.lost, 0),
      ...(c.family === 'tidepool' ? { tracesMeetingTargets: met.get(c) ?? 0 } : {}),
    };
  });
  const bestCounts = Object.fromEntries([...new Set(bestNames)].map((n) => [n, bestNames.filter((b) => b === n).length]));
  const result = { simulated: true, seed, traces, shape: DEFAULT_TRACE_SHAPE, settings: DEFAULT_SIM_SETTINGS, bestKeda: bestCounts, rows };
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${table(rows, traces)}\nbest KEDA configuration per trace: ${JSON.stringify(bestCounts)}\n`);
  return Promise.resolve(rows.some((r) => r.lost > 0) ? 1 : 0);
}

function table(rows: { scaler: string; [k: string]: string | number }[], traces: number): string {
  const columns = ['waitP50S', 'waitP95S', 'waitMaxS', 'runnerSeconds', 'efficiency', 'launched', 'duplicates', 'lost', 'tracesMeetingTargets'];
  const width = Math.max(...rows.map((r) => r.scaler.length));
  const head = `${'scaler'.padEnd(width)}  ${columns.map((c) => c.replace('tracesMeetingTargets', `targets/${traces}`).padStart(10)).join(' ')}`;
  return [head, ...rows.map((r) => `${r.scaler.padEnd(width)}  ${columns.map((c) => String(r[c] ?? '').padStart(10)).join(' ')}`)].join('\n');
}

process.exitCode = await runBench(USAGE, parseOptions, main);
