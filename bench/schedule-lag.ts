// Schedule lag, compressed: a connection on a seconds pattern (`* * * * * *`) published by two
// scalers at once for N slots against the real broker and store, as an hour-long run of an
// hourly pattern would be in minutes. Reports the lag from each slot to its publish confirmed
// (p50, p95, max), and checks that every slot was published exactly once (slot records and the
// messages on the queue). Runners are not launched: what is measured is the scalers.
//
//   npm run build && node dist/bench/schedule-lag.js [--slots 600] [--json]
import { connectBroker } from '../shared/broker/connection.js';
import { topologyFor } from '../shared/broker/topology.js';
import { parseConnectionFile } from '../shared/connections.js';
import type { RunnerLauncher } from '../shared/ports/runner-launcher.js';
import { Scaler } from '../scaler/loop.js';
import type { SlotDecision } from '../scaler/schedules/planner.js';
import { cleanUpOnSignal, integerOption, progress, readArgs, runBench } from './support/cli.js';
import { openTestServices, testConfig } from './support/services.js';
import { percentile } from './support/stats.js';

const USAGE = `usage: node dist/bench/schedule-lag.js [--slots N] [--json]

Two scalers publish a connection scheduled every second for N slots (default 600: ten
minutes); prints the schedule lag (slot → publish confirmed) p50/p95/max in ms and whether each
slot was published exactly once.`;

interface Options {
  slots: number;
  json: boolean;
}

function parseOptions(argv: string[]): Options | undefined {
  const values = readArgs(argv, { slots: 'string', json: 'boolean' });
  return values && { slots: integerOption('slots', values.slots, 600, 5), json: values.json ?? false };
}

const noRunners: RunnerLauncher = { kind: 'none', launch: () => Promise.resolve([]), list: () => Promise.resolve([]), close: () => Promise.resolve() };

async function main({ slots, json }: Options): Promise<number> {
  const config = testConfig('bench-schedule-lag', { pollInterval: '1s', leaderTtl: '10s' });
  const services = openTestServices(config);
  const signal = cleanUpOnSignal(() => services.cleanup());
  // Every decision, from both scalers: the store keeps only the latest slot records.
  const decided: SlotDecision[] = [];
  const scalers = ['a', 'b'].map(() => new Scaler({ config, logger: services.logger, launcher: noRunners, store: services.store, onScheduleSlot: (d) => decided.push(d) }));
  try {
    const [connection] = parseConnectionFile({ id: 'every-second', source: { connector: 'source-faker' }, destination: { connector: 'destination-e2e-test' }, schedule: { cron: '* * * * * *', overlap: 'allow' } });
    await services.store.connections.apply(connection!);
    for (const s of scalers) await s.start();
    progress(`two scalers publishing a seconds schedule for ${slots} slots (prefix ${config.prefix})`);
    const started = Date.now();
    while (Date.now() - started < slots * 1000) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if ((Date.now() - started) % 60_000 < 1000) progress(`${Math.round((Date.now() - started) / 1000)} s`);
    }
    for (const s of scalers) await s.stop();
    const records = decided.map((d) => d.record).sort((x, y) => x.slot - y.slot);
    const lags = records.filter((r) => r.outcome === 'published').map((r) => r.lagMs ?? NaN);
    const contiguous = records.every((r, i) => i === 0 || r.slot - records[i - 1]!.slot === 1000);
    const broker = await connectBroker({ url: config.amqpUrl, logger: services.logger });
    const channel = await broker.createChannel();
    const counts = new Map<string, number>();
    for (;;) {
      const message = await channel.get(topologyFor(config.prefix).syncsQueue, { noAck: true });
      if (message === false) break;
      const id = String(message.properties.messageId);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    await broker.close();
    const onQueueOnce = records.every((r) => r.outcome !== 'published' || counts.get(r.syncId ?? '') === 1) && counts.size === lags.length;
    const result = {
      slots: records.length,
      published: lags.length,
      contiguous,
      onQueueOnce,
      lagMs: { p50: percentile(lags, 0.5), p95: percentile(lags, 0.95), max: Math.max(...lags) },
    };
    process.stdout.write(json ? `${JSON.stringify(result)}\n` : `schedule lag over ${result.slots} slots (${result.published} published, each slot once: ${contiguous && onQueueOnce}): p50 ${result.lagMs.p50} ms, p95 ${result.lagMs.p95} ms, max ${result.lagMs.max} ms\n`);
    return contiguous && onQueueOnce && result.published === result.slots ? 0 : 1;
  } finally {
    if (!signal.interrupted()) await services.cleanup();
  }
}

process.exitCode = await runBench(USAGE, parseOptions, main);
