// The whole loop in local mode, on the real services: 50 syncs published, a scaler with at
// most 4 local runners, every destination checked row by row, state committed per connection,
// the pool growing above 1 and shrinking back to 0, and an incremental sync that moves only
// what is new.
import { readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../shared/connections.js';
import { newSyncRequest } from '../../shared/messages.js';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { FINAL_STATUSES, type RunRecord } from '../../shared/store/runs.js';
import { lookupUser } from '../../runner/privileges.js';
import { LocalProcessRunnerLauncher } from '../../scaler/local-process.js';
import { Scaler, type ScalerSnapshot } from '../../scaler/loop.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';

const FAKER_USERS = 300;
const PURCHASES_PER_USER = 2;
const ORDERS = 1000;

describe('local mode end to end', () => {
  // The documented path as it is: runners started as root (the scaler's) drop to the default
  // runner user, tidepool; the JSON-lines files go under the shared temp dir, which it can reach.
  const config = testConfig('e2e-local', { maxRunners: 4, concurrency: 2, idleTimeout: '3s', pollInterval: '500ms', heartbeatInterval: '500ms', heartbeatTtl: '5s', launchRate: 4, runnerUser: 'tidepool' });
  const outDir = join(tmpdir(), `${config.prefix}-jsonl`);
  let services: TestServices;
  let source: TestDatabase;
  let dest: TestDatabase;
  let scaler: Scaler;
  let launcher: LocalProcessRunnerLauncher;
  const snapshots: ScalerSnapshot[] = [];
  const connections: Connection[] = [];

  const publishAll = async (ids: string[]) => {
    const connection = await connectBroker({ url: config.amqpUrl, logger: services.logger });
    const channel = await openConfirmChannel(connection, topologyFor(config.prefix), services.logger);
    const syncIds: string[] = [];
    for (const id of ids) {
      const request = newSyncRequest(id);
      await publishSync(channel, topologyFor(config.prefix), request);
      syncIds.push(request.syncId);
    }
    await connection.close();
    return syncIds;
  };

  const waitForRuns = (syncIds: string[], timeoutMs: number) =>
    waitFor(`${syncIds.length} syncs to finish`, async () => {
      const runs = await services.store.runs.getMany(syncIds);
      return runs.every((r) => r && FINAL_STATUSES.has(r.status)) ? (runs as RunRecord[]) : undefined;
    }, timeoutMs, 500);

  beforeAll(async () => {
    services = openTestServices(config);
    [source, dest] = await Promise.all([createTestDatabase('e2e_source'), createTestDatabase('e2e_dest')]);
    await source.pool.query(`CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric(10,2) NOT NULL, updated_at timestamptz NOT NULL)`);
    await source.pool.query(
      `INSERT INTO orders (customer, amount, updated_at)
       SELECT 'c' || g, g * 1.5, timestamptz '2026-01-01' + (g || ' seconds')::interval FROM generate_series(1, $1) g`,
      [ORDERS],
    );
    for (let i = 1; i <= 4; i++) {
      connections.push({
        id: `faker-jsonl-${i}`,
        source: { connector: 'source-faker', config: { seed: i, count: FAKER_USERS, purchasesPerUser: PURCHASES_PER_USER } },
        destination: { connector: 'destination-jsonl', config: { destination_path: join(outDir, String(i)) } },
      });
    }
    for (let i = 1; i <= 4; i++) {
      connections.push({
        id: `faker-pg-${i}`,
        source: { connector: 'source-faker', config: { seed: 10 + i, count: FAKER_USERS } },
        destination: { connector: 'destination-postgres', config: { ...dest.config, schema: `faker_${i}` } },
        streams: [{ name: 'users' }],
      });
    }
    for (let i = 1; i <= 2; i++) {
      connections.push({
        id: `pg-pg-${i}`,
        source: { connector: 'source-postgres', config: { ...source.config, schema: 'public' } },
        destination: { connector: 'destination-postgres', config: { ...dest.config, schema: `mirror_${i}` } },
        streams: [{ name: 'orders', syncMode: 'incremental', cursorField: ['updated_at'], destinationSyncMode: 'append_dedup' }],
      });
    }
    for (const c of connections) await services.store.connections.apply(c);

    launcher = new LocalProcessRunnerLauncher(config, services.logger);
    scaler = new Scaler({ config, logger: services.logger, launcher, store: services.store, onTick: (s) => snapshots.push(s) });
  });

  afterAll(async () => {
    await scaler?.stop();
    await services?.cleanup();
    await Promise.all([source?.drop(), dest?.drop()]);
    await rm(outDir, { recursive: true, force: true });
  });

  it('runs 50 syncs on a pool that grows above 1 and shrinks back to 0, with exact rows and committed state', async () => {
    const order = Array.from({ length: 50 }, (_, i) => connections[i % connections.length]!.id);
    const syncIds = await publishAll(order);
    await scaler.start();

    const runs = await waitForRuns(syncIds, 240_000);
    const failed = runs.filter((r) => r.status !== 'succeeded');
    expect(failed.map((r) => `${r.connectionId}: ${r.error?.message ?? r.status}`)).toEqual([]);

    // The pool grew beyond one runner and never beyond the ceiling...
    const peak = Math.max(...snapshots.map((s) => s.running + s.starting));
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(4);
    // ...and runners left by themselves once the queue was empty.
    await waitFor('every runner to exit after its idle timeout', async () => {
      const alive = await services.store.runners.alive();
      const live = (await launcher.list()).filter((r) => r.phase !== 'finished');
      return alive.length === 0 && live.length === 0;
    }, 60_000, 250);
    const exits = (await launcher.list()).map((r) => r.exitCode);
    expect(exits.length).toBeGreaterThan(1);
    expect(exits.every((c) => c === 0)).toBe(true);
    await waitFor('the scaler to see 0 runners', () => {
      const last = snapshots.at(-1);
      return last !== undefined && last.running + last.starting === 0 && last.ready === 0;
    }, 10_000);

    // JSON-lines destinations: exactly one line per user and purchase, despite 5 syncs each
    // (the first moves everything, later incremental ones move nothing new).
    for (let i = 1; i <= 4; i++) {
      const users = (await readFile(join(outDir, String(i), 'users.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { id: number });
      const purchases = (await readFile(join(outDir, String(i), 'purchases.jsonl'), 'utf8')).trim().split('\n');
      expect(users).toHaveLength(FAKER_USERS);
      expect(new Set(users.map((u) => u.id)).size).toBe(FAKER_USERS);
      expect(purchases).toHaveLength(FAKER_USERS * PURCHASES_PER_USER);
      // Written by a connector of a runner that gave root up (the tests run as root in CI).
      if (process.getuid?.() === 0) expect((await stat(join(outDir, String(i), 'users.jsonl'))).uid).toBe(lookupUser('tidepool')?.uid);
    }
    // PostgreSQL destinations: exact row counts, no duplicate keys.
    for (let i = 1; i <= 4; i++) {
      const { rows } = await dest.pool.query<{ n: string; d: string }>(`SELECT count(*) AS n, count(DISTINCT id) AS d FROM faker_${i}.users`);
      expect(rows[0]).toEqual({ n: String(FAKER_USERS), d: String(FAKER_USERS) });
    }
    for (let i = 1; i <= 2; i++) {
      const { rows } = await dest.pool.query<{ n: string; d: string }>(`SELECT count(*) AS n, count(DISTINCT id) AS d FROM mirror_${i}.orders`);
      expect(rows[0]).toEqual({ n: String(ORDERS), d: String(ORDERS) });
    }
    // State committed for every connection, at the end of what was read.
    for (let i = 1; i <= 4; i++) {
      const state = await services.store.state.get(`faker-jsonl-${i}`);
      const users = state?.state.find((s) => s.stream?.stream_descriptor.name === 'users');
      expect(users?.stream?.stream_state).toMatchObject({ cursor: FAKER_USERS });
    }
    for (let i = 1; i <= 2; i++) {
      const state = await services.store.state.get(`pg-pg-${i}`);
      expect(state?.version).toBeGreaterThan(0);
      expect(JSON.stringify(state?.state)).toContain('2026-01-01');
    }
    // The per-connection lock held: no two syncs of one connection ever overlapped.
    for (const c of connections) {
      const spans = runs
        .filter((r) => r.connectionId === c.id)
        .map((r) => [Date.parse(r.startedAt), Date.parse(r.finishedAt!)] as const)
        .sort((x, y) => x[0] - y[0]);
      for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    }
    // Records were counted: the first sync of each faker→jsonl connection moved everything.
    const jsonlRecords = runs.filter((r) => r.connectionId === 'faker-jsonl-1').reduce((n, r) => n + r.records, 0);
    expect(jsonlRecords).toBe(FAKER_USERS * (1 + PURCHASES_PER_USER));
  });

  it('moves only new rows on the next incremental sync', async () => {
    await source.pool.query(
      `INSERT INTO orders (customer, amount, updated_at)
       SELECT 'new' || g, g, timestamptz '2026-06-01' + (g || ' seconds')::interval FROM generate_series(1, 25) g`,
    );
    await source.pool.query(`UPDATE orders SET amount = 999, updated_at = timestamptz '2026-07-01' WHERE id = 1`);
    const [syncId] = await publishAll(['pg-pg-1']);
    const [run] = await waitForRuns([syncId!], 120_000);
    expect(run!.status).toBe('succeeded');
    expect(run!.records).toBe(26);
    const { rows } = await dest.pool.query<{ n: string; amount: number }>(`SELECT count(*) AS n, (SELECT amount FROM mirror_1.orders WHERE id = 1) AS amount FROM mirror_1.orders`);
    expect(rows[0]).toEqual({ n: String(ORDERS + 25), amount: 999 });
  });
});
