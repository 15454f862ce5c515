// Local runners' /metrics ports (scaler/local-metrics-ports.ts): with TIDEPOOL_METRICS_PORT = P,
// the runners a scaler launches on its host serve on P+1 … P+maxRunners, one port each, skipping
// ports something else holds: the fixed range docs/metrics.md's local scrape config lists.
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../shared/config.js';
import { LocalMetricsPorts } from '../../scaler/local-metrics-ports.js';
import { LocalProcessRunnerLauncher } from '../../scaler/local-process.js';
import { freePortRange } from '../helpers/ports.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';

function hold(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe("local runners' metrics ports", () => {
  let config: Config;
  let services: TestServices;
  let port: number;

  beforeAll(async () => {
    port = await freePortRange(4);
    config = testConfig('metrics-ports', { metricsPort: port, maxRunners: 3, idleTimeout: '3s', heartbeatInterval: '300ms' });
    services = openTestServices(config);
  });

  afterAll(async () => {
    for (const runner of (await services?.store.runners.alive().catch(() => [])) ?? []) {
      try {
        process.kill(runner.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await services?.cleanup();
  });

  it('hands out the ports after the scaler\'s one by one, skips one that is taken, and reuses a released one', async () => {
    expect(LocalMetricsPorts.of({ ...config, metricsPort: 0 })).toBeUndefined();
    const ports = LocalMetricsPorts.of(config)!;
    expect(ports.range).toEqual({ first: port + 1, last: port + 3 });
    const taken = await hold(port + 2);
    try {
      expect(await ports.take('a')).toBe(port + 1);
      expect(await ports.take('b')).toBe(port + 3);
      expect(await ports.take('c')).toBeUndefined();
      ports.release('a');
      expect(await ports.take('d')).toBe(port + 1);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('runners launched by the local launcher serve /metrics on ports of their own', async () => {
    const launcher = new LocalProcessRunnerLauncher(config, services.logger);
    const ids = await launcher.launch(2);
    expect(ids).toHaveLength(2);
    for (const p of [port + 1, port + 2]) {
      const text = await waitFor(`a runner's /metrics on ${p}`, async () => (await fetch(`http://127.0.0.1:${p}/metrics`)).text(), 20_000, 200);
      expect(text).toContain('tidepool_syncs_total');
    }
    // Idle, they leave; their ports go back to the range.
    await waitFor('both runners to exit when idle', async () => (await launcher.list()).every((r) => r.phase === 'finished'), 30_000, 200);
  });
});
