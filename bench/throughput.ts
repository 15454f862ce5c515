// Throughput benchmark: N source-faker `users` records through a real runner (RabbitMQ → runner
// → source-faker | runner pipe | destination-jsonl) against the same two connectors piped
// directly (`source read | destination write`, a kernel pipe, no runner in between).
//
//   npm run bench:throughput -- [--records 1000000] [--rounds 3] [--warmup 50000] [--json]
//                               [--cpu-prof DIR] [--timeout 10m]
//   npm run bench:throughput -- --capacity [--json] ...   (trivial connectors: bench/capacity.ts)
//
// Fairness: both modes start both connector processes inside the timed span (the runner's span is
// its run record's startedAt → finishedAt), get the same configured catalog and config, write to
// a freshly created directory, and run alternately (the first mode alternates per round) after a
// small warm-up of each; the median of the rounds is reported. The runner's connection has its
// discovered catalog cached (as it is for every sync but a connection's first), so discover is
// not in the timed span. Peak RSS is the runner process's VmHWM (children not included), the
// largest over every runner started for a timed round.
//
// This VM has 2 cores and is shared: before each round the bench waits (up to 60 s) for the CPU
// to be quiet, and it counts the CPU time other processes used during the round (/proc/stat
// minus its own and its children's); a disturbed round is run again, up to --retries times, and
// the least disturbed attempt is kept.
//
// Everything lives under a fresh TIDEPOOL_PREFIX and a temp directory, removed at the end.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Connection } from '../shared/connections.js';
import { newSyncRequest } from '../shared/messages.js';
import { builtinConnectorCommand } from '../shared/paths.js';
import type { AirbyteCatalog } from '../shared/protocol.js';
import { publishSync } from '../shared/broker/publisher.js';
import { topologyFor } from '../shared/broker/topology.js';
import { configureCatalog, sourceHash } from '../runner/sync/catalog.js';
import { runCapacityBench } from './capacity.js';
import { durationOption, integerOption, progress, readArgs, runBench } from './support/cli.js';
import { countLines } from './support/count-lines.js';
import { BenchEnv, runWithBenchEnv } from './support/bench-env.js';
import { alternateRounds, INTERFERENCE } from './support/rounds.js';
import { spawnLoggedRunner, superviseRunner } from './support/runner-process.js';
import { fmtRate, median, rate } from './support/stats.js';

const STATE_EVERY = 100_000;
const IDLE_TIMEOUT = '1s';

const USAGE = `usage: node dist/bench/throughput.js [--records N] [--rounds R] [--warmup W] [--json]
                                    [--cpu-prof DIR] [--timeout D] [--retries K] [--keep]

Moves N source-faker users records through a real runner and through a direct
source | destination pipe, R rounds each, alternately; prints the medians.
--capacity runs the capacity benchmark instead (--capacity --help for its options).

  --records N    records per round (default 1000000)
  --rounds R     rounds of each mode (default 3)
  --warmup W     records in the warm-up run of each mode (default min(N, 50000); 0 = none)
  --json         print only {"records","runnerRecordsPerSec","directRecordsPerSec","ratio","runnerPeakRssMb"}
  --cpu-prof DIR run the runner under node --cpu-prof, profiles written to DIR
  --timeout D    give up on one round after D (default 10m)
  --retries K    run a round again, up to K times, when other processes used more than
                 ${INTERFERENCE.baseS} CPU-s + ${INTERFERENCE.share * 100}% of a core during it (default 3)
  --keep         keep the temp directory (runner logs) instead of removing it`;

interface Options {
  records: number;
  rounds: number;
  warmup: number;
  json: boolean;
  cpuProfDir: string | undefined;
  timeoutMs: number;
  keep: boolean;
  retries: number;
}

function parseOptions(argv: string[]): Options | undefined {
  const values = readArgs(argv, { records: 'string', rounds: 'string', warmup: 'string', json: 'boolean', 'cpu-prof': 'string', timeout: 'string', keep: 'boolean', retries: 'string' });
  if (!values) return undefined;
  const records = integerOption('records', values.records, 1_000_000, 1);
  return {
    records,
    rounds: integerOption('rounds', values.rounds, 3, 1),
    warmup: integerOption('warmup', values.warmup, Math.min(records, 50_000), 0),
    json: values.json ?? false,
    cpuProfDir: values['cpu-prof'],
    timeoutMs: durationOption('timeout', values.timeout, 600_000),
    keep: values.keep ?? false,
    retries: integerOption('retries', values.retries, 3, 0),
  };
}

/** What one timed run of either mode produced. */
interface Sample {
  ms: number;
  peakRssKb?: number;
  /** CPU seconds the runner process itself used, user and system (its connectors not included). */
  runnerUserS?: number;
  runnerSysS?: number;
}

class Bench extends BenchEnv {
  private runnerSeq = 0;

  constructor(private readonly options: Options) {
    super(options.keep);
  }

  connection(id: string, count: number): Connection {
    return {
      id,
      description: 'tidepool throughput benchmark',
      source: { connector: 'source-faker', config: { seed: 42, count, purchasesPerUser: 0, stateEvery: STATE_EVERY } },
      destination: { connector: 'destination-jsonl', config: { destination_path: join(this.dir, `${id}-out`) } },
      streams: [{ name: 'users', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }],
    };
  }

  async apply(connection: Connection): Promise<void> {
    await this.store.connections.apply(connection);
  }

  /**
   * Gives `connection` the catalog the runner discovered for `from` (source-faker's catalog does
   * not depend on count), so its syncs start from a cached catalog as in steady state.
   */
  async primeCatalog(connection: Connection, from: Connection): Promise<AirbyteCatalog> {
    const cached = await this.store.connections.getCatalog(from.id);
    if (!cached) throw new Error(`no catalog cached for ${from.id} after its sync`);
    await this.store.connections.putCatalog(connection.id, sourceHash(connection), cached.catalog);
    return cached.catalog as AirbyteCatalog;
  }

  /** One sync through a freshly started runner; returns the run's span and the runner's VmHWM. */
  async runnerRound(connection: Connection, expected: number, label: string): Promise<Sample> {
    const outDir = destinationPath(connection);
    await rm(outDir, { recursive: true, force: true });
    const request = newSyncRequest(connection.id, { requestedBy: 'bench' });
    await publishSync(this.channel, topologyFor(this.prefix), request);

    const runnerId = `${this.prefix}-r${++this.runnerSeq}`;
    const logPath = join(this.dir, `${runnerId}.log`);
    // The runner keeps root (TIDEPOOL_RUNNER_USER): its destination writes into this bench's 0700 temp dir.
    const env: NodeJS.ProcessEnv = { ...process.env, TIDEPOOL_PREFIX: this.prefix, TIDEPOOL_IDLE_TIMEOUT: IDLE_TIMEOUT, TIDEPOOL_LOG_LEVEL: 'info', TIDEPOOL_RUNNER_USER: 'root' };
    delete env.NODE_OPTIONS;
    // Node refuses --cpu-prof in NODE_OPTIONS; as a flag it applies to the runner process only
    // (the runner starts its connectors with argv of its own).
    const nodeFlags = this.options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${this.options.cpuProfDir}`] : [];
    const runner = spawnLoggedRunner(runnerId, { env, logPath, nodeFlags, onError: (err) => progress(`runner failed to start: ${err.message}`) });
    this.children.add(runner.child);
    const usage = await superviseRunner(runner, this.options.timeoutMs);
    this.children.delete(runner.child);
    const { code, peakRssKb, userS: runnerUserS, sysS: runnerSysS } = usage;
    const run = await this.store.runs.get(request.syncId);
    const failure = async (message: string) => {
      const error = run?.error ? `\nrun error: ${JSON.stringify(run.error)}` : '';
      return new Error(`${message}${error}\nrunner log (${logPath}):\n${await runner.logTail(15)}`);
    };
    if (code === 'timeout') throw await failure(`${label}: runner still busy after ${this.options.timeoutMs} ms`);
    if (code !== 0) throw await failure(`${label}: runner exited with code ${String(code)}`);
    if (!run) throw await failure(`${label}: the runner left no run record for sync ${request.syncId}`);
    if (run.status !== 'succeeded' || !run.finishedAt) throw await failure(`${label}: sync ${run.status}`);
    const lines = await countLines(join(outDir, 'users.jsonl'));
    if (run.records !== expected || lines !== expected) {
      throw new Error(`${label}: expected ${expected} records; the run record counts ${run.records}, ${join(outDir, 'users.jsonl')} has ${lines} lines (sync ${run.syncId})`);
    }
    await rm(outDir, { recursive: true, force: true });
    return { ms: Date.parse(run.finishedAt) - Date.parse(run.startedAt), peakRssKb, runnerUserS, runnerSysS };
  }

  /**
   * The same connectors, same config and configured catalog, piped directly: one `bash -c` pipeline,
   * timed from spawn to the exit of both. Files are written before the clock starts (the runner
   * writes its own, a few hundred bytes, inside its span).
   */
  async directRound(connection: Connection, catalog: AirbyteCatalog, expected: number, label: string): Promise<Sample> {
    const outDir = destinationPath(connection);
    await rm(outDir, { recursive: true, force: true });
    const filesDir = join(this.dir, `${connection.id}-direct-files`);
    await mkdir(filesDir, { recursive: true });
    // destination-jsonl's modes (its spec); the stream asks for full_refresh + overwrite anyway.
    const configured = configureCatalog(catalog, connection, false, ['overwrite', 'append']);
    const files = {
      srcConfig: join(filesDir, 'source-config.json'),
      dstConfig: join(filesDir, 'destination-config.json'),
      catalog: join(filesDir, 'catalog.json'),
    };
    await writeFile(files.srcConfig, JSON.stringify(connection.source.config));
    await writeFile(files.dstConfig, JSON.stringify(connection.destination.config));
    await writeFile(files.catalog, JSON.stringify(configured));
    const [node, sourceMain] = builtinConnectorCommand('source-faker') as [string, string];
    const [, destinationMain] = builtinConnectorCommand('destination-jsonl') as [string, string];
    // pipefail (runPipeline): the pipeline fails if either connector does.
    const script = '"$1" "$2" read --config "$3" --catalog "$4" | "$1" "$5" write --config "$6" --catalog "$4" > /dev/null';

    const ms = await this.runPipeline(script, [node, sourceMain, files.srcConfig, files.catalog, destinationMain, files.dstConfig], { cwd: filesDir, label, timeoutMs: this.options.timeoutMs });
    await expectLines(join(outDir, 'users.jsonl'), expected, label);
    await rm(outDir, { recursive: true, force: true });
    return { ms };
  }
}

function destinationPath(connection: Connection): string {
  return (connection.destination.config as { destination_path: string }).destination_path;
}

/** Fails unless `path` has exactly `expected` lines. */
async function expectLines(path: string, expected: number, label: string): Promise<void> {
  const lines = await countLines(path);
  if (lines !== expected) throw new Error(`${label}: ${path} has ${lines} lines, expected ${expected}`);
}

const mb = (kb: number): number => Math.round((kb / 1024) * 10) / 10;

/** Warm-up (untimed): discovers the catalog through a runner and primes `main` with it. */
async function warmUp(bench: Bench, main: Connection, records: number): Promise<AirbyteCatalog> {
  if (records === 0) {
    // No warm-up: a throw-away sync of one record still discovers the catalog untimed.
    const warm = bench.connection('discover', 1);
    await bench.apply(warm);
    await bench.runnerRound(warm, 1, 'discover');
    return bench.primeCatalog(main, warm);
  }
  const warm = bench.connection('warmup', records);
  await bench.apply(warm);
  progress(`warm-up: ${records} records through a runner (discovers the catalog)`);
  await bench.runnerRound(warm, records, 'warm-up runner');
  const catalog = await bench.primeCatalog(main, warm);
  progress(`warm-up: ${records} records piped directly`);
  await bench.directRound(warm, catalog, records, 'warm-up direct');
  return catalog;
}

interface Rounds {
  runner: Sample[];
  direct: Sample[];
  /** Over every runner attempt, disturbed ones included. */
  peakRssKb: number;
}

/** The timed rounds, the two modes alternating (the first mode alternates per round). */
async function timedRounds(bench: Bench, main: Connection, catalog: AirbyteCatalog, options: Options): Promise<Rounds> {
  const { records } = options;
  let peakRssKb = 0;
  if (options.cpuProfDir) progress(`profiling the runner into ${options.cpuProfDir}: its timings include the profiler's overhead`);
  const samples = await alternateRounds(['runner', 'direct'] as const, options.rounds, options.retries, async (mode, label) => {
    progress(`${label}: ${records} records…`);
    const s = mode === 'runner' ? await bench.runnerRound(main, records, label) : await bench.directRound(main, catalog, records, label);
    // Over every runner attempt, disturbed ones included.
    peakRssKb = Math.max(peakRssKb, s.peakRssKb ?? 0);
    const runner = mode === 'runner' ? `, runner peak RSS ${mb(s.peakRssKb ?? 0)} MB, runner CPU ${(s.runnerUserS ?? 0).toFixed(2)} s user + ${(s.runnerSysS ?? 0).toFixed(2)} s sys` : '';
    return { sample: s, seconds: s.ms / 1000, note: `${(s.ms / 1000).toFixed(2)} s, ${fmtRate(rate(records, s.ms))}${runner}` };
  });
  return { ...samples, peakRssKb };
}

/** The result: one JSON line with --json (docs/benchmarks.md documents its fields), else a table. */
function report(r: Rounds, options: Options): void {
  const { records, rounds } = options;
  const runnerRate = median(r.runner.map((s) => rate(records, s.ms)));
  const directRate = median(r.direct.map((s) => rate(records, s.ms)));
  const result = {
    records,
    runnerRecordsPerSec: Math.round(runnerRate),
    directRecordsPerSec: Math.round(directRate),
    ratio: Math.round((runnerRate / directRate) * 1000) / 1000,
    runnerPeakRssMb: mb(r.peakRssKb),
  };
  if (options.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const secs = (xs: Sample[]) => xs.map((s) => (s.ms / 1000).toFixed(2)).join(', ');
  process.stdout.write(
    [
      `throughput: ${records.toLocaleString('en-US')} faker users records, ${rounds} round(s) each, medians`,
      `  runner  ${fmtRate(result.runnerRecordsPerSec).padStart(16)}   (rounds: ${secs(r.runner)} s)`,
      `  direct  ${fmtRate(result.directRecordsPerSec).padStart(16)}   (rounds: ${secs(r.direct)} s)`,
      `  ratio   ${result.ratio.toFixed(3)}   (target ≥ 0.9: ${result.ratio >= 0.9 ? 'met' : 'NOT met'})`,
      `  runner peak RSS ${result.runnerPeakRssMb} MB   (rounds: ${r.runner.map((s) => mb(s.peakRssKb ?? 0)).join(', ')} MB; target ≤ 200: ${result.runnerPeakRssMb <= 200 ? 'met' : 'NOT met'})`,
      `  runner CPU (its own process, start-up and idle exit included): ${r.runner.map((s) => ((s.runnerUserS ?? 0) + (s.runnerSysS ?? 0)).toFixed(2)).join(', ')} s`,
      '',
    ].join('\n'),
  );
}

async function main(options: Options): Promise<number> {
  if (options.cpuProfDir) await mkdir(options.cpuProfDir, { recursive: true });
  return runWithBenchEnv(new Bench(options), async (bench) => {
    const main = bench.connection('main', options.records);
    await bench.apply(main);
    const catalog = await warmUp(bench, main, options.warmup);
    report(await timedRounds(bench, main, catalog, options), options);
  });
}

// --capacity is the other benchmark of the data path (bench/capacity.ts): trivial connectors.
process.exitCode = process.argv.includes('--capacity') ? await runCapacityBench() : await runBench(USAGE, parseOptions, main);
