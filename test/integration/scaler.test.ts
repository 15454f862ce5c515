// The scaler against the real broker, store and local runners: one leader launches, starting
// runners are not launched twice, and the pool is bounded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSyncRequest } from '../../shared/messages.js';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { LocalProcessRunnerLauncher } from '../../scaler/local-process.js';
import { Scaler } from '../../scaler/loop.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';

describe('scaler', () => {
  // Runners that never find work they can do quickly: the connection does not exist, so each
  // message is dead-lettered; what matters here is how many runners get launched.
  const config = testConfig('scaler', { maxRunners: 3, concurrency: 2, idleTimeout: '2s', launchRate: 100, launchBurst: 100, heartbeatInterval: '300ms', heartbeatTtl: '3s' });
  let services: TestServices;
  const launchers: LocalProcessRunnerLauncher[] = [];

  beforeAll(async () => {
    services = openTestServices(config);
    const connection = await connectBroker({ url: config.amqpUrl, logger: services.logger });
    const channel = await openConfirmChannel(connection, topologyFor(config.prefix), services.logger);
    for (let i = 0; i < 10; i++) await publishSync(channel, topologyFor(config.prefix), newSyncRequest('unknown-connection'));
    await connection.close();
  });
  afterAll(async () => {
    await services.cleanup();
  });

  it('launches once for a backlog: the leader only, never again while runners start, never above maxRunners', async () => {
    const make = () => {
      const launcher = new LocalProcessRunnerLauncher(config, services.logger);
      launchers.push(launcher);
      return { launcher, scaler: new Scaler({ config, logger: services.logger, launcher, store: services.store }) };
    };
    const a = make();
    const b = make();
    // Two scalers tick on the same backlog, back to back: only the leader launches...
    const first = await a.scaler.tick();
    const second = await b.scaler.tick();
    expect(first.leader).toBe(true);
    expect(first.launched).toBe(3); // 10 ready / concurrency 2 = 5, capped at maxRunners 3
    expect(second.leader).toBe(false);
    expect(second.launched).toBe(0);
    // ...and the leader's next tick, before any runner heartbeats, sees them as starting.
    const third = await a.scaler.tick();
    expect(third.launched).toBe(0);
    expect(third.starting + third.running).toBe(3);
    // The runners come up, drain the queue (dead-lettering the unknown connection) and leave.
    await waitFor('the queue to drain', async () => (await a.scaler.tick()).ready === 0, 60_000, 300);
    await waitFor('all runners to exit', async () => (await a.launcher.list()).every((r) => r.phase === 'finished'), 60_000, 300);
    const after = await a.scaler.tick();
    expect(after.launched).toBe(0);
    expect(after.running + after.starting).toBe(0);
    expect((await a.launcher.list()).length).toBe(3);
    await a.scaler.stop();
    await b.scaler.stop();
  });

  it('holds launches when runners die before their first heartbeat, instead of a restart storm', async () => {
    const broken = testConfig('scaler-broken', { maxRunners: 3, concurrency: 2, launchRate: 100, launchBurst: 100, heartbeatInterval: '300ms', heartbeatTtl: '3s' });
    const own = openTestServices(broken);
    try {
      const connection = await connectBroker({ url: broken.amqpUrl, logger: own.logger });
      const channel = await openConfirmChannel(connection, topologyFor(broken.prefix), own.logger);
      for (let i = 0; i < 6; i++) await publishSync(channel, topologyFor(broken.prefix), newSyncRequest('unknown-connection'));
      await connection.close();
      // A setting the runners refuse: each exits 78 at start, before any heartbeat (what a
      // stale runner image did on the cluster: 8 failed Jobs in 36 s).
      const launcher = new LocalProcessRunnerLauncher(broken, own.logger, { extraEnv: { TIDEPOOL_NO_SUCH_SETTING: '1' } });
      const scaler = new Scaler({ config: broken, logger: own.logger, launcher, store: own.store });
      const first = await scaler.tick();
      expect(first.launched).toBe(3);
      await waitFor('the three runners to fail', async () => (await launcher.list()).filter((r) => r.phase === 'finished').length === 3, 30_000, 200);
      expect((await launcher.list()).every((r) => r.exitCode === 78)).toBe(true);
      // Ticks for the next 2 s: the queue is still deep, yet nothing is launched (the first
      // hold after three failures in a row is at least 8 s).
      const until = Date.now() + 2000;
      while (Date.now() < until) {
        const s = await scaler.tick();
        expect(s.launched).toBe(0);
        expect(s.ready).toBe(6);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect((await scaler.tick()).reason).toMatch(/holding launches .* 3 runner\(s\) in a row exited before their first heartbeat/);
      await scaler.stop();
    } finally {
      await own.cleanup();
    }
  });
});
