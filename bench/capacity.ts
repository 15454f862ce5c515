// Capacity benchmark (`throughput --capacity`): how fast one runner forwards bytes when the
// connectors cost nothing. The source `cat`s a generated file of RECORD lines (a STATE every
// --state-every records); the destination is `grep` keeping only the STATE lines, which it
// echoes, so it reads all its input and confirms every state. Both are real command connectors
// (shell scripts answering spec, check, discover too), run by a real `tidepool runner` through
// the broker and the store like any sync; and the same two scripts are piped directly
// (`source read | destination write`), alternating with the runner, round by round.
//
// What is timed: for the runner, the replication itself, from the source's first byte to the end
// of the destination's output — the run record's `reading` + `committing` phases; spec, check,
// discover, the connectors' start and the run's bookkeeping are not in it. For the direct pipe,
// spawn of the pipeline to the exit of both (their starts are a few ms). GB/s are 10^9 bytes per
// second of the file's size. Peak RSS is the runner process's VmHWM (its connectors not included).
//
// The file is generated once into the bench's temp dir and removed with it at the end.
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Connection } from '../shared/connections.js';
import { newSyncRequest } from '../shared/messages.js';
import { publishSync } from '../shared/broker/publisher.js';
import { topologyFor } from '../shared/broker/topology.js';
import { BenchEnv, runWithBenchEnv } from './support/bench-env.js';
import { durationOption, integerOption, progress, readArgs, runBench } from './support/cli.js';
import { alternateRounds, INTERFERENCE } from './support/rounds.js';
import { spawnLoggedRunner, superviseRunner } from './support/runner-process.js';
import { median } from './support/stats.js';

export const CAPACITY_USAGE = `usage: node dist/bench/throughput.js --capacity [--records N] [--record-bytes B] [--state-every S]
                                    [--rounds R] [--json] [--cpu-prof DIR] [--timeout D] [--retries K] [--keep]

Forwards a generated file of N RECORD lines (B bytes each, a STATE every S) from a source that
cats it to a destination that only echoes STATE lines, through one real runner and directly
(source | destination), R rounds each, alternately; prints the medians.

  --records N       RECORD lines in the file (default 2000000)
  --record-bytes B  bytes of each RECORD line, its newline included (default 275: 550 MB in all)
  --state-every S   a STATE line after every S records, and one at the end (default 10000)
  --rounds R        rounds of each mode (default 3)
  --json            print only {"bytes","records","runnerGBps","directGBps","ratio","runnerPeakRssMb"}
  --cpu-prof DIR    run the runner under node --cpu-prof, profiles written to DIR
  --timeout D       give up on one round after D (default 10m)
  --retries K       run a round again, up to K times, when other processes used more than
                    ${INTERFERENCE.baseS} CPU-s + ${INTERFERENCE.share * 100}% of a core during it (default 3)
  --keep            keep the temp directory (the file, runner logs) instead of removing it`;

interface Options {
  records: number;
  recordBytes: number;
  stateEvery: number;
  rounds: number;
  json: boolean;
  cpuProfDir: string | undefined;
  timeoutMs: number;
  keep: boolean;
  retries: number;
}

export function parseCapacityOptions(argv: string[]): Options | undefined {
  const values = readArgs(argv, {
    capacity: 'boolean', records: 'string', 'record-bytes': 'string', 'state-every': 'string', rounds: 'string',
    json: 'boolean', 'cpu-prof': 'string', timeout: 'string', keep: 'boolean', retries: 'string',
  });
  if (!values) return undefined;
  return {
    records: integerOption('records', values.records, 2_000_000, 1),
    recordBytes: integerOption('record-bytes', values['record-bytes'], 275, MIN_RECORD_BYTES),
    stateEvery: integerOption('state-every', values['state-every'], 10_000, 1),
    rounds: integerOption('rounds', values.rounds, 3, 1),
    json: values.json ?? false,
    cpuProfDir: values['cpu-prof'],
    timeoutMs: durationOption('timeout', values.timeout, 600_000),
    keep: values.keep ?? false,
    retries: integerOption('retries', values.retries, 3, 0),
  };
}

const STREAM = 'items';
/** A record line's bytes without its padding: `{"type":"RECORD",…,"pad":""},"emitted_at":…}\n` with a 10-digit id. */
const MIN_RECORD_BYTES = recordLine(1_000_000_000, 0).length;

function recordLine(id: number, padBytes: number): string {
  return `{"type":"RECORD","record":{"stream":"${STREAM}","data":{"id":${id},"name":"user-${id}","pad":"${'x'.repeat(padBytes)}"},"emitted_at":1700000000000}}\n`;
}

function stateLine(records: number): string {
  return `{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"${STREAM}"},"stream_state":{"records":${records}}}}}\n`;
}

/** Writes the file; returns its size and its STATE lines. */
async function generate(path: string, o: Options): Promise<{ bytes: number; states: number }> {
  const out = createWriteStream(path, { highWaterMark: 4 * 1024 * 1024 });
  let states = 0;
  let text = '';
  for (let id = 1; id <= o.records; id++) {
    const bare = recordLine(id, 0);
    text += recordLine(id, Math.max(0, o.recordBytes - bare.length));
    if (id % o.stateEvery === 0 || id === o.records) {
      text += stateLine(id);
      states++;
    }
    if (text.length >= 1 << 20) {
      if (!out.write(text)) await once(out, 'drain');
      text = '';
    }
  }
  out.end(text);
  await once(out, 'finish');
  return { bytes: (await stat(path)).size, states };
}

/**
 * The two connectors as shell scripts: `read` execs cat, `write` execs grep (-F: a fixed string,
 * its fastest search). Their stdout is never /dev/null: GNU grep then stops at the first match.
 */
function connectorScripts(file: string): { source: string; destination: string } {
  const common = `  spec) echo '{"type":"SPEC","spec":{"connectionSpecification":{"type":"object"},"supported_destination_sync_modes":["overwrite","append"]}}' ;;
  check) echo '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}' ;;`;
  const catalog = `{"type":"CATALOG","catalog":{"streams":[{"name":"${STREAM}","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}`;
  return {
    source: `#!/bin/sh\ncase "$1" in\n${common}\n  discover) echo '${catalog}' ;;\n  read) exec cat '${file}' ;;\n  *) exit 2 ;;\nesac\n`,
    destination: `#!/bin/sh\ncase "$1" in\n${common}\n  write) exec grep -F --line-buffered '"type":"STATE"' ;;\n  *) exit 2 ;;\nesac\n`,
  };
}

/** One timed run of either mode: its span in ms, and the runner's VmHWM. */
interface Sample {
  ms: number;
  peakRssKb?: number;
  /** CPU seconds the runner process used, user + system, its start and idle exit included. */
  runnerCpuS?: number;
  /** State commits the run made (of the file's STATE lines). */
  stateCommits?: number;
}

class CapacityBench extends BenchEnv {
  private runnerSeq = 0;
  file = { path: '', bytes: 0, states: 0 };
  scripts = { source: '', destination: '' };

  constructor(private readonly options: Options) {
    super(options.keep);
  }

  /** The file, the connector scripts, and the connection that uses them. */
  async prepare(): Promise<Connection> {
    this.file.path = join(this.dir, 'records.jsonl');
    const started = performance.now();
    Object.assign(this.file, await generate(this.file.path, this.options));
    progress(`generated ${this.file.path}: ${this.file.bytes.toLocaleString('en-US')} bytes, ${this.options.records.toLocaleString('en-US')} records, ${this.file.states} states in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const scripts = connectorScripts(this.file.path);
    this.scripts = { source: join(this.dir, 'cat-source.sh'), destination: join(this.dir, 'state-echo-destination.sh') };
    await writeFile(this.scripts.source, scripts.source);
    await writeFile(this.scripts.destination, scripts.destination);
    await chmod(this.scripts.source, 0o755);
    await chmod(this.scripts.destination, 0o755);
    const connection: Connection = {
      id: 'capacity',
      description: 'tidepool capacity benchmark',
      source: { command: [this.scripts.source], config: {} },
      destination: { command: [this.scripts.destination], config: {} },
      streams: [{ name: STREAM, syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }],
    };
    await this.store.connections.apply(connection);
    return connection;
  }

  /** One sync through a freshly started runner, timed by its run record's phases. */
  async runnerRound(connection: Connection, label: string): Promise<Sample> {
    const request = newSyncRequest(connection.id, { requestedBy: 'bench' });
    await publishSync(this.channel, topologyFor(this.prefix), request);
    const runnerId = `${this.prefix}-r${++this.runnerSeq}`;
    const logPath = join(this.dir, `${runnerId}.log`);
    // Root kept (TIDEPOOL_RUNNER_USER): the connectors are scripts in this bench's 0700 temp dir.
    const env: NodeJS.ProcessEnv = {
      ...process.env, TIDEPOOL_PREFIX: this.prefix, TIDEPOOL_IDLE_TIMEOUT: '1s', TIDEPOOL_LOG_LEVEL: 'info', TIDEPOOL_RUNNER_USER: 'root',
      TIDEPOOL_ALLOWED_CONNECTORS: join(this.dir, '/'),
    };
    delete env.NODE_OPTIONS;
    const nodeFlags = this.options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${this.options.cpuProfDir}`] : [];
    const runner = spawnLoggedRunner(runnerId, { env, logPath, nodeFlags, onError: (err) => progress(`runner failed to start: ${err.message}`) });
    this.children.add(runner.child);
    const { code, peakRssKb, userS, sysS } = await superviseRunner(runner, this.options.timeoutMs);
    this.children.delete(runner.child);
    const run = await this.store.runs.get(request.syncId);
    const failure = async (message: string) => {
      const error = run?.error ? `\nrun error: ${JSON.stringify(run.error)}` : '';
      return new Error(`${label}: ${message}${error}\nrunner log (${logPath}):\n${await runner.logTail(15)}`);
    };
    if (code !== 0) throw await failure(code === 'timeout' ? `runner still busy after ${this.options.timeoutMs} ms` : `runner exited with code ${String(code)}`);
    if (run?.status !== 'succeeded') throw await failure(run ? `sync ${run.status}` : `no run record for sync ${request.syncId}`);
    if (run.records !== this.options.records || run.stateCommits > this.file.states || run.stateCommits < 1) {
      throw await failure(`expected ${this.options.records} records and 1-${this.file.states} state commits; the run record counts ${run.records} and ${run.stateCommits}`);
    }
    const ms = (run.phases?.reading ?? NaN) + (run.phases?.committing ?? NaN);
    if (!Number.isFinite(ms)) throw await failure(`the run record has no reading and committing phases: ${JSON.stringify(run.phases)}`);
    return { ms, peakRssKb, runnerCpuS: userS + sysS, stateCommits: run.stateCommits };
  }

  /** The same two scripts piped directly, timed from spawn to the exit of both; checks every STATE came out. */
  async directRound(label: string): Promise<Sample> {
    const filesDir = join(this.dir, 'direct');
    await mkdir(filesDir, { recursive: true });
    let echoed = 0;
    const countLines = (d: Buffer) => {
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) echoed++;
    };
    const ms = await this.runPipeline('"$1" read | "$2" write', [this.scripts.source, this.scripts.destination], { cwd: filesDir, label, timeoutMs: this.options.timeoutMs, onStdout: countLines });
    if (echoed !== this.file.states) throw new Error(`${label}: the destination echoed ${echoed} STATE lines, expected ${this.file.states}`);
    return { ms };
  }
}

const gbps = (bytes: number, ms: number): number => bytes / 1e9 / (ms / 1000);
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** The timed rounds, alternating, on a quiet CPU where possible (bench/support/rounds.ts). */
async function timedRounds(bench: CapacityBench, connection: Connection, o: Options): Promise<{ runner: Sample[]; direct: Sample[]; peakRssKb: number }> {
  let peakRssKb = 0;
  if (o.cpuProfDir) progress(`profiling the runner into ${o.cpuProfDir}: its timings include the profiler's overhead`);
  const samples = await alternateRounds(['runner', 'direct'] as const, o.rounds, o.retries, async (mode, label) => {
    const s = mode === 'runner' ? await bench.runnerRound(connection, label) : await bench.directRound(label);
    peakRssKb = Math.max(peakRssKb, s.peakRssKb ?? 0);
    const rss = s.peakRssKb === undefined ? '' : `, runner peak RSS ${mb(s.peakRssKb)} MB, runner CPU ${(s.runnerCpuS ?? 0).toFixed(2)} s, ${s.stateCommits ?? 0} state commits`;
    return { sample: s, seconds: s.ms / 1000, note: `${(s.ms / 1000).toFixed(2)} s, ${gbps(bench.file.bytes, s.ms).toFixed(3)} GB/s${rss}` };
  });
  return { ...samples, peakRssKb };
}

const mb = (kb: number): number => Math.round((kb / 1024) * 10) / 10;

export async function capacityMain(o: Options): Promise<number> {
  if (o.cpuProfDir) await mkdir(o.cpuProfDir, { recursive: true });
  return runWithBenchEnv(new CapacityBench(o), async (bench) => {
    const connection = await bench.prepare();
    // Untimed: asks the specs, checks, discovers (cached afterwards), and warms the page cache.
    progress('warm-up: one sync through a runner, one direct pipe');
    await bench.runnerRound(connection, 'warm-up runner');
    await bench.directRound('warm-up direct');
    const r = await timedRounds(bench, connection, o);
    const { bytes } = bench.file;
    const runnerGBps = median(r.runner.map((s) => gbps(bytes, s.ms)));
    const directGBps = median(r.direct.map((s) => gbps(bytes, s.ms)));
    const result = { bytes, records: o.records, runnerGBps: round3(runnerGBps), directGBps: round3(directGBps), ratio: round3(runnerGBps / directGBps), runnerPeakRssMb: mb(r.peakRssKb) };
    if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      const rounds = (xs: Sample[]) => xs.map((s) => gbps(bytes, s.ms).toFixed(3)).join(', ');
      process.stdout.write(
        [
          `capacity: ${bytes.toLocaleString('en-US')} bytes, ${o.records.toLocaleString('en-US')} records, ${o.rounds} round(s) each, medians`,
          `  runner  ${result.runnerGBps.toFixed(3)} GB/s   (rounds: ${rounds(r.runner)}; target ≥ 0.6: ${result.runnerGBps >= 0.6 ? 'met' : 'NOT met'})`,
          `  direct  ${result.directGBps.toFixed(3)} GB/s   (rounds: ${rounds(r.direct)})`,
          `  ratio   ${result.ratio.toFixed(3)}`,
          `  runner peak RSS ${result.runnerPeakRssMb} MB   (target ≤ 200: ${result.runnerPeakRssMb <= 200 ? 'met' : 'NOT met'})`,
          '',
        ].join('\n'),
      );
    }
  });
}

export const runCapacityBench = (): Promise<number> => runBench(CAPACITY_USAGE, parseCapacityOptions, capacityMain);
