// Attack: ids that are paths, spaces, unicode or control characters, through every door they
// can come in by: a raw message on the real broker (runner), a connection file (CLI apply), a
// publish from the command line, the dashboard API's filters. Each is refused, naming the field
// and the value escaped.
import { readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS } from '../../shared/broker/envelope.js';
import { confirmPublish } from '../../shared/broker/publisher.js';
import { configEnv } from '../../shared/config.js';
import { createRegistry } from '../../shared/metrics.js';
import { startDashboard } from '../../scaler/dashboard/server.js';
import { tidepool } from './cli.js';
import { closeRunnerHarness, deadLetterOf, header, openRunnerHarness, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';

describe('hostile ids', () => {
  let h: RunnerHarness;
  beforeAll(async () => {
    h = await openRunnerHarness('sec-ids');
    await h.services.store.connections.apply({ id: 'victim', source: { connector: 'source-faker', config: { count: 1 } }, destination: { connector: 'destination-e2e-test', config: { mode: 'echo' } } });
    spawnRunner(h, 'sec-ids-runner');
  });
  afterAll(() => closeRunnerHarness(h));

  it('a raw message whose syncId is a path is dead-lettered unrun, the reason naming the field and the value escaped', async () => {
    const marker = `trav-${process.pid}-${Date.now()}`;
    const syncId = `x/../../../..${tmpdir()}/${marker}\u001b[2J\r\nforged`;
    const body = JSON.stringify({ syncId, connectionId: 'victim', requestedAt: new Date().toISOString() });
    await confirmPublish(h.channel, h.topology.exchange, h.topology.syncRoutingKey, Buffer.from(body), { messageId: 'hostile-sync-id' });
    const dead = await deadLetterOf(h, 'hostile-sync-id');
    const reason = String(header(dead, HEADERS.reason));
    expect(reason).toContain('message is not a sync request');
    expect(reason).toContain(`syncId ${JSON.stringify(syncId)} is not a valid id`);
    expect(reason).not.toMatch(/[\u0000-\u001f]/);
    expect(header(dead, HEADERS.retryable)).toBe(false);
    // The hostile id is no header of the dead letter, and nothing was made under its name.
    expect(header(dead, HEADERS.syncId)).toBeUndefined();
    expect(header(dead, HEADERS.connectionId)).toBe('victim');
    expect((await readdir(tmpdir())).filter((name) => name.includes(marker))).toEqual([]);
    expect(await h.services.store.runs.list({ connectionId: 'victim', limit: 10 })).toEqual([]);
  });

  it('a raw message whose connectionId is no id is dead-lettered, naming connectionId', async () => {
    const body = JSON.stringify({ syncId: 'fine-1', connectionId: 'vic tim/ü', requestedAt: new Date().toISOString() });
    await confirmPublish(h.channel, h.topology.exchange, h.topology.syncRoutingKey, Buffer.from(body), { messageId: 'hostile-connection-id' });
    const dead = await deadLetterOf(h, 'hostile-connection-id');
    expect(String(header(dead, HEADERS.reason))).toContain('connectionId "vic tim/ü" is not a valid id');
    expect(header(dead, HEADERS.connectionId)).toBeUndefined();
  });

  it('the CLI refuses such ids in a connection file, on publish and as a filter', async () => {
    const env = configEnv(h.config);
    const file = join(h.dir, 'hostile.json');
    await writeFile(file, JSON.stringify({ id: '../etc', source: { connector: 'source-faker' }, destination: { connector: 'destination-jsonl' } }));
    const applied = await tidepool(['connections', 'apply', '-f', file], env);
    expect(applied.code).toBe(2);
    expect(applied.stderr).toContain('id: id "../etc" is not a valid id');
    expect(await h.services.store.connections.list()).toHaveLength(1);

    const published = await tidepool(['publish', 'a\u001b[31mb'], env);
    expect(published.code).toBe(2);
    expect(published.stderr).toContain('connection "a\\u001b[31mb" is not a valid id');
    expect(published.stderr).not.toContain('\u001b');

    const runs = await tidepool(['runs', '--connection', 'x y'], env);
    expect(runs.code).toBe(2);
    expect(runs.stderr).toContain('--connection "x y" is not a valid id');
  });

  it('the dashboard API refuses them in filters, paths and bodies, naming the value', async () => {
    const dashboard = await startDashboard({
      config: { ...h.config, dashboardPort: 0, dashboardHost: '127.0.0.1', dashboardToken: '' },
      store: h.services.store,
      logger: h.services.logger,
      registry: createRegistry(),
      snapshot: () => undefined,
    });
    try {
      const get = (path: string) => fetch(new URL(path, dashboard.url)).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: string } }));
      const filter = await get('/api/runs?connection=..%2F..%2Fetc');
      expect(filter.status).toBe(400);
      expect(filter.body.error).toContain('connection id "../../etc" is not a valid id');
      const path = await get(`/api/runs/${encodeURIComponent('x\r\nforged')}`);
      expect(path.status).toBe(400);
      expect(path.body.error).toContain('sync id "x\\r\\nforged" is not a valid id');
      const letters = await get('/api/dead-letters?connection=a%20b');
      expect(letters.status).toBe(400);
      expect(letters.body.error).toContain('connection id "a b" is not a valid id');
    } finally {
      await dashboard.close();
    }
  });
});
