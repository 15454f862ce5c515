// Real runner processes against the local broker and store, for tests and benches that follow
// syncs end to end: a prefix of its own, a confirm channel to publish on, runners spawned from
// the built CLI (their stdout kept as their log), dead letters read off the dead queue, run
// records waited for, and a temp dir for the scripts and files a test needs. One harness per
// test file or describe; closeRunnerHarness() kills its runners and removes everything it made.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChannelModel, ConfirmChannel, GetMessage } from 'amqplib';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor, type Topology } from '../../shared/broker/topology.js';
import type { Config, ConfigInput } from '../../shared/config.js';
import { newSyncRequest } from '../../shared/messages.js';
import { CLI_PATH } from '../../shared/paths.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { configEnv } from '../../shared/config.js';
import { tlsFiles } from '../../shared/tls.js';
import { openTestServices, testConfig, type TestServices } from './services.js';
import { waitFor } from './wait.js';

/** A runner process: `log` is its stdout (pino lines) so far; `exited` its exit code (null: killed by a signal). */
export type SpawnedRunner = ChildProcess & { exited: Promise<number | null>; log: string[] };

export interface RunnerHarness {
  config: Config;
  topology: Topology;
  services: TestServices;
  broker: ChannelModel;
  channel: ConfirmChannel;
  runners: SpawnedRunner[];
  /** Dead letters read so far, by message id (drainDead). */
  dead: Map<string, GetMessage>;
  /** A temp dir of this harness's own. */
  dir: string;
}

/** Heartbeats fast enough for tests; runners stay up a minute unless the test says otherwise. */
export async function openRunnerHarness(name: string, overrides: Partial<ConfigInput> = {}): Promise<RunnerHarness> {
  const config = testConfig(name, { idleTimeout: '60s', heartbeatInterval: '300ms', heartbeatTtl: '3s', ...overrides });
  const services = openTestServices(config);
  const topology = topologyFor(config.prefix, config);
  const broker = await connectBroker({ url: config.amqpUrl, tls: tlsFiles(config, 'amqp'), logger: services.logger });
  const channel = await openConfirmChannel(broker, topology, services.logger);
  const dir = await mkdtemp(join(tmpdir(), `${config.prefix}-`));
  return { config, topology, services, broker, channel, runners: [], dead: new Map(), dir };
}

/** Starts `tidepool runner` with the harness's settings (plus `env`). */
export function spawnRunner(h: RunnerHarness, id: string, env: Record<string, string> = {}): SpawnedRunner {
  const child = spawn(process.execPath, [CLI_PATH, 'runner', '--runner-id', id], {
    env: { PATH: process.env.PATH ?? '', ...configEnv(h.config), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as SpawnedRunner;
  child.log = [];
  child.stdout?.on('data', (d: Buffer) => child.log.push(d.toString()));
  child.stderr?.resume();
  child.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  h.runners.push(child);
  return child;
}

export function isRunning(runner: ChildProcess): boolean {
  return runner.exitCode === null && runner.signalCode === null;
}

export async function closeRunnerHarness(h: RunnerHarness | undefined): Promise<void> {
  if (!h) return;
  for (const r of h.runners) if (isRunning(r)) r.kill('SIGKILL');
  await h.broker.close().catch(() => undefined);
  await h.services.cleanup();
  await rm(h.dir, { recursive: true, force: true });
}

/** Publishes a sync of `connectionId`; returns its sync id (also the message id). */
export async function publishSyncOf(h: RunnerHarness, connectionId: string): Promise<string> {
  const request = newSyncRequest(connectionId);
  await publishSync(h.channel, h.topology, request);
  return request.syncId;
}

/** Moves every ready dead letter into h.dead. */
export async function drainDead(h: RunnerHarness): Promise<void> {
  for (;;) {
    const m = await h.channel.get(h.topology.deadQueue, { noAck: false });
    if (!m) return;
    h.channel.ack(m);
    h.dead.set(String(m.properties.messageId), m);
  }
}

export async function deadLetterOf(h: RunnerHarness, messageId: string, timeoutMs = 45_000): Promise<GetMessage> {
  return waitFor(`the dead letter of ${messageId}`, async () => {
    await drainDead(h);
    return h.dead.get(messageId);
  }, timeoutMs, 100);
}

/** The sync's run record once `done` holds for it. */
export async function runUntil(h: RunnerHarness, syncId: string, what: string, done: (r: RunRecord) => boolean, timeoutMs = 30_000, intervalMs = 100): Promise<RunRecord> {
  return waitFor(what, async () => {
    const r = await h.services.store.runs.get(syncId);
    return r && done(r) ? r : undefined;
  }, timeoutMs, intervalMs);
}

export const header = (m: GetMessage, name: string): unknown => m.properties.headers?.[name];

/** A stderr-tail header of a dead letter (a JSON array of lines). */
export const stderrOf = (m: GetMessage, name: string): string[] => JSON.parse(String(header(m, name))) as string[];

/** Processes whose command line mentions the sync (its connectors' files are named after it). */
export function processesOf(syncId: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(syncId)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}
