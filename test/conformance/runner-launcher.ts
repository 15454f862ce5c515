// The RunnerLauncher contract. The local and the Kubernetes adapters run this same suite: the
// runners they start are real `tidepool runner` processes against the real broker and store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../shared/config.js';
import { newSyncRequest } from '../../shared/messages.js';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import type { RunnerLauncher } from '../../shared/ports/runner-launcher.js';
import { openTestServices, waitFor, type TestServices } from '../helpers/services.js';

export interface RunnerLauncherTarget {
  /** The config the launched runners use (prefix, idle timeout); must be short-idling. */
  config: Config;
  launcher: RunnerLauncher;
  cleanup(): Promise<void>;
}

export function describeRunnerLauncherConformance(name: string, setup: () => Promise<RunnerLauncherTarget>, timeouts = { startMs: 30_000 }): void {
  describe(`RunnerLauncher conformance: ${name}`, () => {
    let target: RunnerLauncherTarget;
    let services: TestServices;
    let config: Config;
    beforeAll(async () => {
      target = await setup();
      config = target.config;
      services = openTestServices(config);
    });
    afterAll(async () => {
      await target.launcher.close();
      await target.cleanup();
      await services.cleanup();
    });

    it('launches nothing when asked for zero', async () => {
      expect(await target.launcher.launch(0)).toEqual([]);
    });

    it('launches real runners that heartbeat, are listed, and leave by themselves when idle (exit 0)', async () => {
      const before = Date.now();
      const ids = await target.launcher.launch(2);
      expect(ids).toHaveLength(2);
      expect(new Set(ids).size).toBe(2);
      const listed = await target.launcher.list();
      for (const id of ids) {
        const r = listed.find((x) => x.runnerId === id);
        expect(r, `runner ${id} listed`).toBeDefined();
        expect(['pending', 'running']).toContain(r!.phase);
        expect(r!.launchedAt).toBeGreaterThanOrEqual(before - 1000);
      }
      await waitFor('both runners to heartbeat', async () => {
        const alive = new Set((await services.store.runners.alive()).map((h) => h.runnerId));
        return ids.every((id) => alive.has(id));
      }, timeouts.startMs);
      const finished = await waitFor('both runners to finish after their idle timeout', async () => {
        const list = await target.launcher.list();
        const mine = list.filter((r) => ids.includes(r.runnerId));
        return mine.length === 2 && mine.every((r) => r.phase === 'finished') ? mine : undefined;
      }, timeouts.startMs + config.idleTimeout + 30_000);
      expect(finished.map((r) => r.exitCode)).toEqual([0, 0]);
      const alive = new Set((await services.store.runners.alive()).map((h) => h.runnerId));
      expect(ids.some((id) => alive.has(id))).toBe(false);
    });

    it('launches runners that consume and run syncs', async () => {
      await services.store.connections.apply({
        id: 'conformance-faker',
        source: { connector: 'source-faker', config: { count: 50 } },
        destination: { connector: 'destination-jsonl', config: { destination_path: `/tmp/${config.prefix}-out` } },
        streams: [{ name: 'users', syncMode: 'full_refresh', destinationSyncMode: 'overwrite' }],
      });
      const connection = await connectBroker({ url: config.amqpUrl, logger: services.logger });
      const channel = await openConfirmChannel(connection, topologyFor(config.prefix), services.logger);
      const request = newSyncRequest('conformance-faker');
      await publishSync(channel, topologyFor(config.prefix), request);
      await connection.close();
      const [id] = await target.launcher.launch(1);
      const run = await waitFor('the sync to succeed', async () => {
        const r = await services.store.runs.get(request.syncId);
        return r?.status === 'succeeded' ? r : undefined;
      }, timeouts.startMs + 30_000);
      expect(run.runnerId).toBe(id);
      expect(run.records).toBe(50);
    });
  });
}
