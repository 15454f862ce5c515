// A connection's first sync against its later ones, with the real Airbyte source-faker (Python,
// from PyPI, in the venv scripts/airbyte-connectors installs) through a local runner: publish →
// first record, in three situations, alternated round by round so that load drifts hit each alike:
//
//   cold     a new connection, nothing cached: spec of both connectors, then check of both and
//            discover (together), then the read
//   applied  a new connection applied with `connections apply`, which already asked the specs:
//            check of both and discover, then the read
//   later    a connection that has synced before: everything cached, just the read
//
//   npm run bench:first-sync -- [--rounds 5] [--json]
//
// Timings are noisy on a shared 2-core VM: read the ratios to `later`, measured in the same run.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Connection } from '../shared/connections.js';
import { CLI_PATH } from '../shared/paths.js';
import { configEnv } from '../shared/config.js';
import { sourceFakerCommand, SOURCE_FAKER_VERSION } from './support/airbyte.js';
import { integerOption, readArgs, runBench } from './support/cli.js';
import { closeRunnerHarness, openRunnerHarness, publishSyncOf, runUntil, spawnRunner, type RunnerHarness } from './support/runner-harness.js';
import { median } from './support/stats.js';

const exec = promisify(execFile);

const USAGE = `usage: node dist/bench/first-sync.js [--rounds N] [--json]

Measures publish → first record of a connection's first sync (nothing cached; specs cached by
connections apply) and of a later one, with the real airbyte-source-faker ${SOURCE_FAKER_VERSION}.`;

type Situation = 'cold' | 'applied' | 'later';

interface Options {
  rounds: number;
  json: boolean;
}

function parseOptions(argv: string[]): Options | undefined {
  const values = readArgs(argv, { rounds: 'string', json: 'boolean' });
  return values && { rounds: integerOption('rounds', values.rounds, 5, 1), json: values.json ?? false };
}

/** A median in whole milliseconds, as the run records' firstRecordMs are. */
const medianMs = (xs: number[]): number => Math.round(median(xs));

async function main({ rounds, json }: Options): Promise<number> {
  const program = sourceFakerCommand();
  const h: RunnerHarness = await openRunnerHarness('bench-first-sync', { idleTimeout: '10m' });
  const samples: Record<Situation, number[]> = { cold: [], applied: [], later: [] };
  try {
    spawnRunner(h, 'first-sync-runner');
    const connection = (id: string, seed: number): Connection => ({
      id,
      // always_updated: every read emits every user again, so a later sync has a first record
      // too. env makes each round's program a new one to the spec cache (it is part of the
      // fingerprint) without changing what runs: a first use of a connector version.
      source: { command: [program], env: { TIDEPOOL_BENCH_ROUND: id }, config: { count: 100, seed, records_per_slice: 100, always_updated: true, parallelism: 1 } },
      destination: { connector: 'destination-e2e-test', env: { TIDEPOOL_BENCH_ROUND: id }, config: {} },
      streams: [{ name: 'users' }],
    });
    const firstRecord = async (id: string): Promise<number> => {
      const run = await runUntil(h, await publishSyncOf(h, id), `${id} to succeed`, (r) => r.status === 'succeeded' || r.status === 'dead_lettered', 120_000);
      if (run.status !== 'succeeded' || run.firstRecordMs === undefined) throw new Error(`${id}: ${run.status} ${run.error?.message ?? `no first record: ${JSON.stringify(run)}`}`);
      return run.firstRecordMs;
    };
    // One sync first, so that nothing measured pays for a cold Python import cache on disk.
    await h.services.store.connections.apply(connection('warm-up', 0));
    await firstRecord('warm-up');
    for (let i = 0; i < rounds; i++) {
      const cold = connection(`cold-${i}`, i + 1);
      await h.services.store.connections.apply(cold);
      samples.cold.push(await firstRecord(cold.id));
      samples.later.push(await firstRecord(cold.id));

      const applied = connection(`applied-${i}`, i + 1);
      const file = `${h.dir}/applied-${i}.json`;
      await writeFile(file, JSON.stringify(applied));
      await exec(process.execPath, [CLI_PATH, 'connections', 'apply', '-f', file], { env: { PATH: process.env.PATH ?? '', ...configEnv(h.config) } });
      samples.applied.push(await firstRecord(applied.id));
      process.stderr.write(`round ${i + 1}/${rounds}: cold ${samples.cold.at(-1)} ms, applied ${samples.applied.at(-1)} ms, later ${samples.later.at(-1)} ms\n`);
    }
  } finally {
    await closeRunnerHarness(h);
  }
  const later = medianMs(samples.later);
  const result = {
    connector: `airbyte-source-faker ${SOURCE_FAKER_VERSION}`,
    rounds,
    publishToFirstRecordMedianMs: { cold: medianMs(samples.cold), applied: medianMs(samples.applied), later },
    ratioToLater: { cold: +(medianMs(samples.cold) / later).toFixed(2), applied: +(medianMs(samples.applied) / later).toFixed(2) },
    samplesMs: samples,
  };
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
  return 0;
}

process.exitCode = await runBench(USAGE, parseOptions, main);
