// The real Airbyte source-faker (airbyte-source-faker from PyPI, as scripts/images builds it into
// tidepool/airbyte-source-faker:<version>, k8s/images/airbyte-source-faker.Dockerfile) in a
// connector pod on the real cluster, into the reference destination-postgres in a pod of its
// own. A runner process on the host (as in connector-failures.k8s.test.ts) runs every connector
// in a pod: spec, check, discover and read of a Python/CDK program behind `sh -c` and named
// pipes, with a read-only root filesystem and a non-root user. The checks:
//   - the sync succeeds, and PostgreSQL holds exactly the 200 users the connector emits: the
//     test runs the same image's `read` itself (docker run, same config, full refresh) and
//     compares every column by id; updated_at, which the connector stamps with the time of the
//     read, must be no older than the sync;
//   - the state the connector checkpointed is committed;
//   - the source ran in pods from that image (the kubelet's events say so), and no connector
//     pod or Secret is left afterwards.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../shared/kube.js';
import type { AirbyteCatalog, AirbyteRecordMessage, AirbyteStateMessage, AirbyteStream, ConfiguredAirbyteCatalog } from '../../shared/protocol.js';
import { FINAL_STATUSES, type RunRecord } from '../../shared/store/runs.js';
import { runConnector, SOURCE_FAKER_VERSION, type ProtocolMessage } from '../helpers/airbyte.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { closeRunnerHarness, openRunnerHarness, publishSyncOf, runUntil, spawnRunner, type RunnerHarness, type SpawnedRunner } from '../helpers/runner-harness.js';
import { waitFor } from '../helpers/services.js';
import { CLUSTER, createNamespace, hostRunnerOnCluster } from './cluster.js';

/** Built and imported by scripts/images (`npm run test:k8s` runs it first). */
const IMAGE = `tidepool/airbyte-source-faker:${SOURCE_FAKER_VERSION}`;
const CONNECTION = 'k8s-airbyte-faker';
const SCHEMA = 'faker';
const STREAM = 'users';
const COUNT = 200;
// always_updated: false: the source stops after `count` records. parallelism 1: one process.
const SOURCE_CONFIG = { count: COUNT, seed: 7, records_per_slice: 100, always_updated: false, parallelism: 1 };
/** Stamped with the time of the read; every other value follows the seed. */
const READ_TIME_FIELDS = new Set(['updated_at']);

type Row = Record<string, unknown>;

describe(`airbyte-source-faker ${SOURCE_FAKER_VERSION} (real connector) in a connector pod → destination-postgres pod`, () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `tp-abf-${randomBytes(3).toString('hex')}`;
  let h: RunnerHarness;
  let runner: SpawnedRunner;
  let db: TestDatabase;
  let stream: AirbyteStream;
  /** The connector's own records (docker run of the same image), by id. */
  const expected = new Map<number, Row>();
  let lastState: Record<string, unknown> | undefined;

  beforeAll(async () => {
    h = await openRunnerHarness('k8s-airbyte-faker', {
      ...hostRunnerOnCluster(namespace),
      connectorDeadline: '5m',
      // One attempt: a failure is reported at once, with its reason in the run record.
      maxAttempts: 1,
      logLevel: 'warn',
    });
    await createNamespace(kc, namespace);
    db = await createTestDatabase('k8s_airbyte_faker');

    // The saved copy of the connector's output: its own discover and a full-refresh read, from
    // the same image, run the way a pod runs it (uid 10001, read-only root, writable /tmp).
    const files = join(h.dir, 'connector');
    await mkdir(files);
    await chmod(files, 0o755);
    await writeFile(join(files, 'config.json'), JSON.stringify(SOURCE_CONFIG), { mode: 0o644 });
    const discovered = (await dockerRun(IMAGE, files, ['discover', '--config', '/files/config.json'])).find((m) => m.type === 'CATALOG');
    const found = (discovered?.['catalog'] as AirbyteCatalog | undefined)?.streams.find((s) => s.name === STREAM);
    expect(found, `the ${STREAM} stream in the connector's catalog`).toBeDefined();
    stream = found!;
    expect(stream.source_defined_primary_key).toEqual([['id']]);
    const configured: ConfiguredAirbyteCatalog = { streams: [{ stream, sync_mode: 'full_refresh', destination_sync_mode: 'overwrite' }] };
    await writeFile(join(files, 'catalog.json'), JSON.stringify(configured), { mode: 0o644 });
    for (const m of await dockerRun(IMAGE, files, ['read', '--config', '/files/config.json', '--catalog', '/files/catalog.json'])) {
      if (m.type === 'RECORD') {
        const record = m['record'] as AirbyteRecordMessage;
        expect(expected.has(Number(record.data['id'])), `duplicate id ${String(record.data['id'])} in the connector's output`).toBe(false);
        expected.set(Number(record.data['id']), record.data);
      } else if (m.type === 'STATE') {
        lastState = (m['state'] as AirbyteStateMessage).stream?.stream_state;
      }
    }
    expect([...expected.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));

    await h.services.store.connections.apply({
      id: CONNECTION,
      source: { image: IMAGE, config: SOURCE_CONFIG },
      destination: { connector: 'destination-postgres', config: { ...db.config, host: CLUSTER.nodeIp, schema: SCHEMA } },
      // Sync modes left to the runner's defaults.
      streams: [{ name: STREAM }],
    });
    runner = spawnRunner(h, `${h.config.prefix}-runner`);
  });

  afterAll(async () => {
    await closeRunnerHarness(h);
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    await db?.drop();
  });

  it('syncs the 200 users the connector emits, commits its state, and leaves no pod or Secret', async () => {
    const started = Date.now();
    const syncId = await publishSyncOf(h, CONNECTION);
    const run: RunRecord = await runUntil(h, syncId, 'the sync to finish', (r) => FINAL_STATUSES.has(r.status), 240_000, 500).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\nrunner (exit ${String(runner.exitCode)}):\n${runner.log.join('').slice(-3000)}`);
    });
    expect(run.error, 'the sync error').toBeUndefined();
    expect(run).toMatchObject({ status: 'succeeded', records: COUNT });
    expect(run.connectors?.source.ref).toContain(IMAGE);

    // Exactly the connector's 200 users, by id, every column.
    const { rows: counts } = await db.pool.query<{ n: string; d: string; lo: string; hi: string }>(
      `SELECT count(*) AS n, count(DISTINCT id) AS d, min(id) AS lo, max(id) AS hi FROM ${quote(SCHEMA)}.${quote(STREAM)}`,
    );
    expect(counts[0]).toEqual({ n: String(COUNT), d: String(COUNT), lo: '1', hi: String(COUNT) });
    expect(await differences(Math.floor(started / 1000) * 1000)).toEqual([]);
    // A few values spelled out, beyond the comparison with the connector's own output.
    const { rows: first } = await db.pool.query<Row>(`SELECT id, name, age, email, address FROM ${quote(SCHEMA)}.${quote(STREAM)} WHERE id IN (1, ${COUNT}) ORDER BY id`);
    expect(first.map((r) => ({ ...r, id: Number(r['id']), age: Number(r['age']) }))).toEqual(
      [1, COUNT].map((id) => ({ id, name: expected.get(id)!['name'], age: expected.get(id)!['age'], email: expected.get(id)!['email'], address: expected.get(id)!['address'] })),
    );

    // The connector's last checkpoint is the committed state (but for its read-time stamp).
    const committed = await h.services.store.state.get(CONNECTION);
    expect(committed?.syncId).toBe(syncId);
    expect(lastState).toMatchObject({ seed: 7, loop_offset: COUNT });
    const state = committed!.state.find((s) => s.stream?.stream_descriptor.name === STREAM);
    expect(state?.stream?.stream_state).toMatchObject(Object.fromEntries(Object.entries(lastState!).filter(([k]) => !READ_TIME_FIELDS.has(k))));

    // The run record says which build ran: the image id the kubelet resolved the tag to.
    const ranRecord = await h.services.store.runs.get(syncId);
    expect(ranRecord?.connectors?.source.ref).toBe(IMAGE);
    expect(ranRecord?.connectors?.source.image).toMatch(/sha256:[0-9a-f]{64}$/);

    // It ran in pods of this image: the kubelet's events outlive the (deleted) pods.
    const events = await core.listNamespacedEvent({ namespace });
    const pods = new Set(events.items.filter((e) => e.involvedObject.kind === 'Pod' && e.reason === 'Pulled' && (e.message ?? '').includes(IMAGE)).map((e) => e.involvedObject.name));
    expect([...pods].length, 'source pods of the image').toBeGreaterThanOrEqual(1);
    expect([...pods].every((p) => p?.startsWith('tp-src-'))).toBe(true);

    await waitFor('every connector pod and Secret to be gone', async () => {
      const [p, s] = await Promise.all([
        core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=connector' }),
        core.listNamespacedSecret({ namespace, labelSelector: 'app.kubernetes.io/component=connector' }),
      ]);
      return p.items.length === 0 && s.items.length === 0;
    }, 30_000, 500);
  });

  /**
   * Where the table differs from the connector's output, by id, over the stream's own
   * properties (columns the destination adds are not compared). Values are brought to one form
   * per column type: timestamps as epoch milliseconds, integers as numbers, JSON with sorted keys.
   * Read-time fields must be no older than `notBeforeMs`.
   */
  async function differences(notBeforeMs: number): Promise<string[]> {
    const found: string[] = [];
    const { rows: columns } = await db.pool.query<{ column_name: string; data_type: string }>(
      'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2',
      [SCHEMA, STREAM],
    );
    const types = new Map(columns.map((c) => [c.column_name, c.data_type]));
    const properties = Object.keys(stream.json_schema['properties'] ?? {});
    for (const p of properties) if (!types.has(p)) found.push(`no column for property ${p}`);
    const compared = properties.filter((p) => types.has(p));
    const select = compared.map((c) => (types.get(c) === 'timestamp with time zone' ? `(extract(epoch FROM ${quote(c)}) * 1000)::float8 AS ${quote(c)}` : quote(c)));
    const { rows } = await db.pool.query<Row>(`SELECT ${select.join(', ')} FROM ${quote(SCHEMA)}.${quote(STREAM)}`);
    const actual = new Map(rows.map((r) => [Number(r['id']), r]));
    for (const id of actual.keys()) if (!expected.has(id)) found.push(`row ${id} is not in the connector's output`);
    for (const [id, record] of expected) {
      const row = actual.get(id);
      if (!row) {
        found.push(`user ${id} is missing`);
        continue;
      }
      for (const column of compared) {
        const type = types.get(column)!;
        const got = fromTable(row[column], type);
        const want = asStored(record[column], type);
        if (READ_TIME_FIELDS.has(column)) {
          if (typeof got !== 'number' || got < notBeforeMs || got > Date.now() + 1000) found.push(`${id}.${column}: ${String(row[column])} is not the time of the sync's read`);
        } else if (JSON.stringify(got) !== JSON.stringify(want)) {
          found.push(`${id}.${column}: table has ${JSON.stringify(row[column])}, the connector sent ${JSON.stringify(record[column])}`);
        }
      }
      if (found.length > 20) break;
    }
    return found.slice(0, 20);
  }
});

/** `docker run` of a connector image as its pod runs it; its stdout as protocol messages. */
async function dockerRun(image: string, files: string, args: string[], timeoutMs = 120_000): Promise<ProtocolMessage[]> {
  // scripts/images starts dockerd and builds the image.
  return runConnector('docker', ['run', '--rm', '--pull', 'never', '--network', 'none', '--read-only', '--tmpfs', '/tmp', '--user', '10001:10001', '-v', `${files}:/files:ro`, image, ...args], timeoutMs);
}

/** A record value as destination-postgres stores it in a column of `type`, in fromTable's form. */
function asStored(value: unknown, type: string): unknown {
  if (value === undefined || value === null) return null;
  switch (type) {
    case 'timestamp with time zone':
      return typeof value === 'string' ? Date.parse(value) : `not a date-time: ${JSON.stringify(value)}`;
    case 'bigint':
    case 'double precision':
      return Number(value);
    case 'text':
      return typeof value === 'string' ? value : JSON.stringify(value);
    default:
      return canonical(value);
  }
}

/** A value as read from the table (pg gives bigint as a string; timestamps selected as epoch ms). */
function fromTable(value: unknown, type: string): unknown {
  if (value === null || value === undefined) return null;
  if (type === 'bigint' || type === 'double precision' || type === 'timestamp with time zone') return Number(value);
  return canonical(value);
}

/** Objects with sorted keys, so that jsonb's key order does not count. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Row)[k])]));
  }
  return value;
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}
