// /metrics of real processes: a runner (TIDEPOOL_METRICS_PORT) after a sync that succeeded and
// one that was dead-lettered, and a scaler started by its command. Scraped over HTTP and read
// the way Prometheus reads them.
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { confirmPublish, publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import type { Config } from '../../shared/config.js';
import { newSyncRequest } from '../../shared/messages.js';
import { CLI_PATH } from '../../shared/paths.js';
import { configEnv } from '../../shared/config.js';
import { freePort } from '../helpers/ports.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/** Metric names (without _bucket/_sum/_count) with a HELP line. */
function names(text: string): Set<string> {
  return new Set([...text.matchAll(/^# HELP (\S+)/gm)].map((m) => m[1]!));
}

describe('metrics of real processes', () => {
  let config: Config;
  let services: TestServices;
  const children: ChildProcess[] = [];
  let out: string;

  const start = (args: string[], env: Record<string, string>): ChildProcess => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { env: { PATH: process.env.PATH ?? '', ...configEnv(config), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.resume();
    child.stderr?.resume();
    children.push(child);
    return child;
  };

  beforeAll(async () => {
    config = testConfig('metrics', { idleTimeout: '60s', heartbeatInterval: '300ms', heartbeatTtl: '3s', maxAttempts: 1 });
    services = openTestServices(config);
    out = join(tmpdir(), `${config.prefix}-out`);
    await services.store.connections.apply({
      id: 'faker-users',
      source: { connector: 'source-faker', config: { count: 25, purchasesPerUser: 2 } },
      destination: { connector: 'destination-jsonl', config: { destination_path: out } },
    });
    await services.store.connections.apply({
      id: 'broken',
      source: { connector: 'source-e2e-test', config: { records: 1, then: 'exit', exitCode: 1, failureType: 'config_error', message: 'bad credentials' } },
      destination: { connector: 'destination-jsonl', config: { destination_path: out } },
    });
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await services?.cleanup();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('a runner serves its syncs by outcome, durations, records and bytes by connection and stream', async () => {
    const port = await freePort();
    const runner = start(['runner', '--runner-id', 'metrics-runner'], { TIDEPOOL_METRICS_PORT: String(port) });
    const topology = topologyFor(config.prefix, config);
    const connection = await connectBroker({ url: config.amqpUrl, logger: services.logger, timeoutMs: 10_000 });
    const channel = await openConfirmChannel(connection, topology, services.logger);
    const good = newSyncRequest('faker-users');
    const bad = newSyncRequest('broken');
    await publishSync(channel, topology, good);
    await publishSync(channel, topology, bad);
    await confirmPublish(channel, topology.exchange, topology.syncRoutingKey, Buffer.from('not a sync request'), { messageId: 'garbage-1' });
    await connection.close();

    const text = await waitFor(
      'the runner to count both syncs',
      async () => {
        const t = await scrape(port);
        // The counts themselves: the series exist at zero from each sync's start.
        const counted = t.includes('tidepool_syncs_total{connection="faker-users",outcome="succeeded"} 1') && t.includes('tidepool_syncs_total{connection="broken",outcome="dead_lettered"} 1');
        return counted && t.includes('tidepool_malformed_messages_total 1') ? t : undefined;
      },
      60_000,
      250,
    );
    expect(text).toContain('tidepool_syncs_total{connection="faker-users",outcome="succeeded"} 1');
    expect(text).toContain('tidepool_syncs_total{connection="broken",outcome="dead_lettered"} 1');
    // The malformed message is counted on its own: it names no connection and has no run.
    expect(text).not.toMatch(/tidepool_syncs_total\{connection="(?!faker-users|broken)/);
    expect(text).toContain('tidepool_sync_records_total{connection="faker-users",stream="users"} 25');
    expect(text).toContain('tidepool_sync_records_total{connection="faker-users",stream="purchases"} 50');
    const run = await services.store.runs.get(good.syncId);
    expect(text).toContain(`tidepool_sync_bytes_total{connection="faker-users",stream="users"} ${run!.streams.users!.bytes}`);
    expect(text).toMatch(/tidepool_sync_duration_seconds_count\{outcome="succeeded"\} 1/);
    expect(text).toMatch(/tidepool_sync_publish_to_first_record_seconds_count 2|tidepool_sync_publish_to_first_record_seconds_count 1/);
    for (const name of [
      'tidepool_syncs_total',
      'tidepool_sync_duration_seconds',
      'tidepool_sync_records_total',
      'tidepool_sync_bytes_total',
      'tidepool_sync_retries_total',
      'tidepool_sync_publish_to_first_record_seconds',
      'tidepool_malformed_messages_total',
      'tidepool_sync_deferrals_total',
      'tidepool_broker_reconnects_total',
      'tidepool_store_reconnects_total',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(names(text), name).toContain(name);
    }
    runner.kill('SIGTERM');
  });

  it('the scaler serves queue depth, runners, launches and its tick duration on TIDEPOOL_METRICS_PORT', async () => {
    const port = await freePort();
    start(['scaler'], { TIDEPOOL_METRICS_PORT: String(port), TIDEPOOL_POLL_INTERVAL: '200ms' });
    const text = await waitFor(
      'the scaler to tick',
      async () => {
        const t = await scrape(port);
        return /tidepool_scaler_tick_duration_seconds_count [1-9]/.test(t) ? t : undefined;
      },
      30_000,
      200,
    );
    for (const name of [
      'tidepool_queue_ready_messages',
      'tidepool_queue_in_flight_messages',
      'tidepool_dead_letter_messages',
      'tidepool_queue_backlog_age_seconds',
      'tidepool_runners',
      'tidepool_runner_launches_total',
      'tidepool_runner_launch_failures_total',
      'tidepool_scaler_tick_duration_seconds',
      'tidepool_scaler_leader',
      'tidepool_scaler_last_tick_timestamp_seconds',
      'tidepool_scaler_tick_failures_total',
      'tidepool_broker_reconnects_total',
      'tidepool_store_reconnects_total',
      'tidepool_schedule_slots_total',
      'tidepool_schedule_lag_seconds',
    ]) {
      expect(names(text), name).toContain(name);
    }
    // Every tidepool metric carries its unit or is a count of things it names.
    for (const name of [...names(text)].filter((n) => n.startsWith('tidepool_'))) {
      expect(name).toMatch(/_(seconds|bytes|total|messages)$|^tidepool_runners$|^tidepool_scaler_leader$/);
    }
    // The first test's two dead letters: the broken connection's sync and the malformed message.
    expect(text).toContain('tidepool_dead_letter_messages 2');
  });
});
