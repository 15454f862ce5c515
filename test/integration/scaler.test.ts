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
});
