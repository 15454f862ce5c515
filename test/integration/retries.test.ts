// Failed syncs against the real broker, store and a real runner process: retryable failures
// come back through the delay queues until they succeed or run out of attempts; permanent ones
// are dead-lettered at once; the dead letter says why, where, how often, and what the
// connectors said on stderr (secrets redacted); a message that crashes its consumers again and
// again is dead-lettered by the broker's delivery limit.
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../shared/connections.js';
import { HEADERS } from '../../shared/broker/envelope.js';
import { openConfirmChannel, queueDepth } from '../../shared/broker/connection.js';
import { confirmPublish } from '../../shared/broker/publisher.js';
import { createTestDatabase } from '../helpers/pg.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/services.js';
import {
  closeRunnerHarness,
  deadLetterOf,
  drainDead,
  header,
  openRunnerHarness,
  publishSyncOf,
  runUntil,
  spawnRunner,
  stderrOf,
  type RunnerHarness,
} from '../helpers/runner-harness.js';

const destination = { connector: 'destination-e2e-test', config: { mode: 'echo' } } as const;

/** A source that is a shell script: `read` runs `body`; `discover` offers one stream. */
async function scriptSource(h: RunnerHarness, name: string, body: string): Promise<string> {
  const path = join(h.dir, `${name}.sh`);
  await writeFile(
    path,
    `#!/bin/sh
case "$1" in
  discover) echo '{"type":"CATALOG","catalog":{"streams":[{"name":"items","json_schema":{"type":"object","properties":{"id":{"type":"integer"}}},"supported_sync_modes":["full_refresh"]}]}}' ;;
  read) ${body} ;;
  *) exit 1 ;;
esac
`,
  );
  await chmod(path, 0o755);
  return path;
}

describe('retries through delay queues', () => {
  let h: RunnerHarness;
  const counter = (name: string) => join(h.dir, `${name}.count`);
  const attemptsCounted = async (name: string) => Number((await readFile(counter(name), 'utf8')).trim());
  const apply = (c: Connection) => h.services.store.connections.apply(c);

  beforeAll(async () => {
    h = await openRunnerHarness('retries', { retryBaseDelay: '200ms', retryFactor: 2, retryMaxDelay: '2s', maxAttempts: 3 });
    spawnRunner(h, 'retry-runner');
  });
  afterAll(() => closeRunnerHarness(h));

  it('declares one delay queue per retry level, quorum, dead-lettering back to the syncs exchange', async () => {
    expect(h.topology.retryQueues).toEqual([`${h.config.prefix}.retry.1`, `${h.config.prefix}.retry.2`]);
    for (const q of h.topology.retryQueues) expect((await queueDepth(h.broker, q)).ready).toBe(0);
    // Declaring again with the same settings is accepted (every process does it at start).
    await openConfirmChannel(h.broker, h.topology, h.services.logger).then((c) => c.close());
  });

  it('a source failing transiently twice succeeds on attempt 3; the record shows both retries; no dead letter', async () => {
    await apply({
      id: 'flaky',
      source: { connector: 'source-e2e-test', config: { records: 3, then: 'transient', counterFile: counter('flaky'), failTimes: 2, message: 'database is restarting' } },
      destination,
    });
    const syncId = await publishSyncOf(h, 'flaky');
    const run = await runUntil(h, syncId, 'the sync to succeed', (r) => r.status === 'succeeded');
    expect(run.attempt).toBe(3);
    expect(await attemptsCounted('flaky')).toBe(3);
    const previous = run.previousAttempts ?? [];
    expect(previous.map((p) => [p.attempt, p.status])).toEqual([[1, 'retrying'], [2, 'retrying']]);
    for (const p of previous) {
      expect(p.error).toMatchObject({ retryable: true, origin: 'source', type: 'transient_error' });
      expect(p.error?.message).toMatch(/database is restarting/);
      expect(p.retryAt).toBeDefined();
    }
    // Each attempt waited for its level's delay (200 ms, then 400 ms, ± 20 %) in the delay queue.
    const starts = [...previous.map((p) => p.startedAt), run.startedAt].map(Date.parse);
    const finishes = previous.map((p) => Date.parse(p.finishedAt ?? ''));
    expect(starts[1]! - finishes[0]!).toBeGreaterThanOrEqual(160);
    expect(starts[2]! - finishes[1]!).toBeGreaterThanOrEqual(320);
    // Attempt 3 was queued from when its delay ended (x-tidepool-due-at), not since the publish:
    // its wait is well short of the two attempts and two delays before it.
    expect(run.phases?.queued).toBeGreaterThanOrEqual(0);
    expect(run.phases!.queued!).toBeLessThan(starts[2]! - Date.parse(run.requestedAt) - 500);
    await drainDead(h);
    expect(h.dead.has(syncId)).toBe(false);
    for (const q of h.topology.retryQueues) expect((await queueDepth(h.broker, q)).ready).toBe(0);
  });

  it('a source that always fails transiently is dead-lettered after maxAttempts, with the reason and its stderr', async () => {
    await apply({
      id: 'always-down',
      source: { connector: 'source-e2e-test', config: { records: 0, then: 'transient', counterFile: counter('always-down'), failTimes: 1000, message: 'upstream unavailable' } },
      destination,
    });
    const syncId = await publishSyncOf(h, 'always-down');
    const dead = await deadLetterOf(h, syncId);
    expect(header(dead, HEADERS.attempt)).toBe(3);
    expect(header(dead, HEADERS.reason)).toMatch(/^source reported: upstream unavailable \(attempt 3 of 1000 failing\)/);
    expect(header(dead, HEADERS.origin)).toBe('source');
    expect(header(dead, HEADERS.type)).toBe('transient_error');
    expect(header(dead, HEADERS.retryable)).toBe(true);
    expect(header(dead, HEADERS.syncId)).toBe(syncId);
    expect(header(dead, HEADERS.connectionId)).toBe('always-down');
    expect(header(dead, HEADERS.runner)).toBe('retry-runner');
    expect(Date.parse(String(header(dead, HEADERS.firstFailureAt)))).toBeLessThan(Date.parse(String(header(dead, HEADERS.lastFailureAt))));
    expect(stderrOf(dead, HEADERS.stderrSource).join('\n')).toMatch(/upstream unavailable \(attempt 3 of 1000 failing\)/);
    expect(stderrOf(dead, HEADERS.stderrDestination)).toBeInstanceOf(Array);
    // The broker's bookkeeping from the delay queues is not carried along.
    expect(header(dead, 'x-death')).toBeUndefined();
    expect(await attemptsCounted('always-down')).toBe(3);
    const run = await runUntil(h, syncId, 'the run record to say dead_lettered', (r) => r.status === 'dead_lettered');
    expect(run).toMatchObject({ attempt: 3, error: { retryable: true, type: 'transient_error' } });
    expect(run.previousAttempts?.map((p) => [p.attempt, p.status])).toEqual([[1, 'retrying'], [2, 'retrying']]);
  });

  it('a permanent failure (TRACE config_error) is dead-lettered at once', async () => {
    await apply({
      id: 'misconfigured',
      source: { connector: 'source-e2e-test', config: { records: 0, then: 'exit', exitCode: 1, failureType: 'config_error', message: 'password authentication failed' } },
      destination,
    });
    const syncId = await publishSyncOf(h, 'misconfigured');
    const dead = await deadLetterOf(h, syncId);
    expect(header(dead, HEADERS.attempt)).toBe(1);
    expect(header(dead, HEADERS.reason)).toBe('source reported: password authentication failed');
    expect(header(dead, HEADERS.type)).toBe('config_error');
    expect(header(dead, HEADERS.retryable)).toBe(false);
    const run = await runUntil(h, syncId, 'the run record to say dead_lettered', (r) => r.status === 'dead_lettered');
    expect(run.attempt).toBe(1);
    expect(run.previousAttempts).toBeUndefined();
  });

  it('a failed check is permanent: dead-lettered at once; a corrected configuration is checked again and syncs', async () => {
    const db = await createTestDatabase('retries_check');
    try {
      const source = { connector: 'source-e2e-test', config: { records: 3 } } as const;
      await apply({ id: 'bad-password', source, destination: { connector: 'destination-postgres', config: { ...db.config, password: 'not-the-password', schema: 'checked' } } });
      const failed = await publishSyncOf(h, 'bad-password');
      const dead = await deadLetterOf(h, failed);
      expect(header(dead, HEADERS.attempt)).toBe(1);
      expect(header(dead, HEADERS.reason)).toMatch(/^destination check failed: /);
      expect(header(dead, HEADERS.reason)).not.toContain('not-the-password');
      expect(header(dead, HEADERS.origin)).toBe('destination');
      expect(header(dead, HEADERS.type)).toBe('config_error');
      expect(header(dead, HEADERS.retryable)).toBe(false);
      // The fixed definition hashes differently: checked again (and passes), then the sync runs.
      await apply({ id: 'bad-password', source, destination: { connector: 'destination-postgres', config: { ...db.config, schema: 'checked' } } });
      const fixed = await publishSyncOf(h, 'bad-password');
      await runUntil(h, fixed, 'the corrected sync to succeed', (r) => r.status === 'succeeded');
      const { rows } = await db.pool.query<{ n: string }>('SELECT count(*) n FROM checked.items');
      expect(rows[0]?.n).toBe('3');
      expect(await h.services.store.connections.getChecked('bad-password', 'destination')).toMatch(/^[0-9a-f]{16}$/);
    } finally {
      await db.drop();
    }
  });

  it('checks both connectors at once; when both fail, the source’s failure is the one reported', async () => {
    // Each check waits (up to 5 s) for the other to have started: run one after the other, the
    // first would report that it ran alone.
    const rendezvous = async (role: string, other: string): Promise<string> => {
      const path = join(h.dir, `rendezvous-${role}.sh`);
      const status = (message: string) => `echo '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"FAILED","message":"${message}"}}'`;
      await writeFile(
        path,
        `#!/bin/sh
[ "$1" = check ] || exit 1
touch "${h.dir}/${role}.started"
i=0
while [ ! -e "${h.dir}/${other}.started" ]; do
  i=$((i + 1)); if [ $i -gt 100 ]; then ${status(`${role} check ran alone`)}; exit 0; fi
  sleep 0.05
done
${status(`${role} refuses`)}
`,
      );
      await chmod(path, 0o755);
      return path;
    };
    await apply({
      id: 'both-refuse',
      source: { command: [await rendezvous('source', 'destination')], config: {} },
      destination: { command: [await rendezvous('destination', 'source')], config: {} },
    });
    const syncId = await publishSyncOf(h, 'both-refuse');
    const dead = await deadLetterOf(h, syncId);
    expect(header(dead, HEADERS.reason)).toBe('source check failed: source refuses');
    expect(header(dead, HEADERS.origin)).toBe('source');
    expect(header(dead, HEADERS.attempt)).toBe(1);
  });

  it('check and discover run together; a failed check is what the dead letter says, not the discover that failed with it', async () => {
    const path = join(h.dir, 'wrong-key.sh');
    await writeFile(
      path,
      `#!/bin/sh
case "$1" in
  check)
    # Waits (up to 5 s) for discover to have started: run one after the other, it ran alone.
    i=0
    while [ ! -e "${h.dir}/wrong-key.discovering" ]; do
      i=$((i + 1)); if [ $i -gt 100 ]; then echo '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"FAILED","message":"check ran alone"}}'; exit 0; fi
      sleep 0.05
    done
    echo '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"FAILED","message":"the API key is wrong"}}' ;;
  discover) touch "${h.dir}/wrong-key.discovering"; sleep 0.3; echo 'HTTP 401' >&2; exit 1 ;;
  *) exit 1 ;;
esac
`,
    );
    await chmod(path, 0o755);
    await apply({ id: 'wrong-key', source: { command: [path], config: {} }, destination });
    const dead = await deadLetterOf(h, await publishSyncOf(h, 'wrong-key'));
    expect(header(dead, HEADERS.reason)).toBe('source check failed: the API key is wrong');
    expect(header(dead, HEADERS.type)).toBe('config_error');
    expect(header(dead, HEADERS.attempt)).toBe(1);
  });

  it('a protocol violation is permanent: dead-lettered at once', async () => {
    await apply({ id: 'garbage', source: { connector: 'source-e2e-test', config: { records: 2, then: 'garbage' } }, destination });
    const syncId = await publishSyncOf(h, 'garbage');
    const dead = await deadLetterOf(h, syncId);
    expect(header(dead, HEADERS.attempt)).toBe(1);
    expect(header(dead, HEADERS.reason)).toMatch(/is not an Airbyte message/);
    expect(header(dead, HEADERS.type)).toBe('system_error');
    expect(header(dead, HEADERS.retryable)).toBe(false);
  });

  it('a connector killed mid-line is a crash, not a protocol violation: retried', async () => {
    const script = await scriptSource(h, 'killed', `printf '{"type":"RECORD","record":{"stream":"items","da'; kill -9 $$`);
    await apply({ id: 'killed', source: { command: [script], config: {} }, destination });
    const syncId = await publishSyncOf(h, 'killed');
    const dead = await deadLetterOf(h, syncId);
    expect(header(dead, HEADERS.attempt)).toBe(3);
    expect(header(dead, HEADERS.reason)).toMatch(/^source was killed by SIGKILL/);
    expect(header(dead, HEADERS.type)).toBe('system_error');
    expect(header(dead, HEADERS.retryable)).toBe(true);
  });

  it('a non-zero exit without a TRACE is retried; stderr and reason keep the connection’s secrets out', async () => {
    const secret = 'hunter2-very-secret';
    const script = await scriptSource(h, 'leaky', `echo "connecting as admin:${secret}@db" >&2; echo "connection refused" >&2; exit 2`);
    await apply({ id: 'leaky', source: { command: [script], config: { password: secret } }, destination });
    const syncId = await publishSyncOf(h, 'leaky');
    const dead = await deadLetterOf(h, syncId);
    expect(header(dead, HEADERS.attempt)).toBe(3);
    expect(header(dead, HEADERS.reason)).toBe('source exited with code 2: connection refused');
    expect(header(dead, HEADERS.type)).toBe('system_error');
    const stderr = stderrOf(dead, HEADERS.stderrSource);
    expect(stderr).toEqual(['connecting as admin:[redacted]@db', 'connection refused']);
    expect(JSON.stringify(dead.properties.headers)).not.toContain(secret);
    expect(JSON.stringify(await h.services.store.runs.get(syncId))).not.toContain(secret);
  });

  it('a malformed message and an unknown connection are dead-lettered at once, with the reason', async () => {
    await confirmPublish(h.channel, h.topology.exchange, h.topology.syncRoutingKey, Buffer.from('{"syncId":"half-a-request"'), { messageId: 'not-json-1' });
    const notJson = await deadLetterOf(h, 'not-json-1');
    expect(notJson.content.toString()).toBe('{"syncId":"half-a-request"');
    expect(header(notJson, HEADERS.reason)).toMatch(/not JSON/);
    expect(header(notJson, HEADERS.attempt)).toBe(1);
    expect(header(notJson, HEADERS.retryable)).toBe(false);

    const syncId = await publishSyncOf(h, 'no-such-connection');
    const unknown = await deadLetterOf(h, syncId);
    expect(header(unknown, HEADERS.reason)).toBe('unknown connection "no-such-connection"');
    expect(header(unknown, HEADERS.attempt)).toBe(1);
    expect(header(unknown, HEADERS.origin)).toBe('runner');
    expect(header(unknown, HEADERS.type)).toBe('config_error');
    expect(header(unknown, HEADERS.connectionId)).toBe('no-such-connection');
    expect(await h.services.store.runs.get(syncId)).toMatchObject({ status: 'dead_lettered', attempt: 1, error: { retryable: false } });
  });
});

describe('a message that crashes its consumer again and again', () => {
  let h: RunnerHarness;
  beforeAll(async () => {
    // deliveryLimit is an argument of the syncs queue, fixed when it is first declared: a
    // fresh prefix gets its own.
    h = await openRunnerHarness('poison', { deliveryLimit: 2 });
  });
  afterAll(() => closeRunnerHarness(h));

  it('is dead-lettered by the broker at the delivery limit, not redelivered for ever', async () => {
    const syncId = await publishSyncOf(h, 'whatever');
    let deliveries = 0;
    // A consumer that dies holding the message: its channel closes without an ack, as when a
    // runner process is killed mid-sync.
    const crashOnce = async (): Promise<boolean> => {
      const channel = await h.broker.createChannel();
      channel.on('error', () => undefined);
      await channel.prefetch(1);
      const got = new Promise<boolean>((resolve) => {
        void channel.consume(h.topology.syncsQueue, (m) => resolve(m !== null), { noAck: false });
      });
      const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1000).unref());
      const delivered = await Promise.race([got, timeout]);
      await channel.close().catch(() => undefined);
      return delivered;
    };
    const dead = await waitFor('the poison message in the dead queue', async () => {
      await drainDead(h);
      const letter = h.dead.get(syncId);
      if (letter) return letter;
      if (await crashOnce()) deliveries++;
      return undefined;
    }, 30_000, 10);
    expect(deliveries).toBeGreaterThanOrEqual(2);
    expect(deliveries).toBeLessThanOrEqual(h.config.deliveryLimit + 1);
    // The broker says why; the runner never saw it through, so there is no tidepool reason.
    expect(header(dead, 'x-first-death-reason')).toBe('delivery_limit');
    expect(header(dead, HEADERS.reason)).toBeUndefined();
    expect((await queueDepth(h.broker, h.topology.syncsQueue)).ready).toBe(0);
  });
});

describe('a sync whose connection stays busy with another sync', () => {
  let h: RunnerHarness;
  beforeAll(async () => {
    // A delivery limit of 2 and a lock wait of 300 ms: requeued each time, the broker would
    // dead-letter it within about a second.
    h = await openRunnerHarness('busy', { deliveryLimit: 2, lockWait: '300ms', retryBaseDelay: '200ms', retryFactor: 2, retryMaxDelay: '2s', maxAttempts: 3 });
  });
  afterAll(() => closeRunnerHarness(h));

  it('is put back through a delay queue, neither an attempt nor a step toward the delivery limit, and runs once the lock is free', async () => {
    await h.services.store.connections.apply({ id: 'busy', source: { connector: 'source-e2e-test', config: { records: 3 } }, destination });
    const held = await h.services.store.locks.tryAcquire('busy', 'a-long-sync', 60_000);
    expect(held).toBeDefined();
    const metricsPort = await freePort();
    const runner = spawnRunner(h, 'busy-runner', { TIDEPOOL_LOG_LEVEL: 'info', TIDEPOOL_METRICS_PORT: String(metricsPort) });
    const deferrals = () =>
      runner.log
        .join('')
        .split('\n')
        .filter((line) => line.includes('put back for later'))
        .map((line) => (JSON.parse(line) as { deferrals: number; attempt: number }))
        .map((entry) => {
          expect(entry.attempt).toBe(1);
          return entry.deferrals;
        });

    const syncId = await publishSyncOf(h, 'busy');
    // Well past the delivery limit: each time a new message (a fresh delivery count).
    await waitFor('four deferrals', () => deferrals().length >= 4, 30_000, 50);
    expect(deferrals().slice(0, 4)).toEqual([1, 2, 3, 4]);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(Number(/^tidepool_sync_deferrals_total\{connection="busy"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(4);
    await drainDead(h);
    expect(h.dead.has(syncId)).toBe(false);
    expect(await h.services.store.runs.get(syncId)).toBeUndefined();

    await h.services.store.locks.release(held!);
    const run = await runUntil(h, syncId, 'the sync to run once the lock is free', (r) => r.status === 'succeeded');
    expect(run).toMatchObject({ attempt: 1, records: 3, runnerId: 'busy-runner' });
    expect(run.previousAttempts).toBeUndefined();
    await drainDead(h);
    expect(h.dead.has(syncId)).toBe(false);
    for (const q of [h.topology.syncsQueue, ...h.topology.retryQueues]) expect((await queueDepth(h.broker, q)).ready).toBe(0);
  }, 60_000);
});
