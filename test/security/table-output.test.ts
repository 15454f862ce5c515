// Attack: control characters in ids and reasons, to forge rows in `tidepool dlq list` and
// `tidepool runs` or repaint the operator's terminal with ANSI escapes. A raw message on the real
// broker (anyone who can publish) and a run record written to the store (anyone who can write
// it); the CLI prints both escaped, one row each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confirmPublish } from '../../shared/broker/publisher.js';
import { configEnv } from '../../shared/config.js';
import { tidepool } from './cli.js';
import { closeRunnerHarness, deadLetterOf, openRunnerHarness, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';

const FORGED = 'evil\r\n\u001b[2Kforged-sync  victim  succeeded\u001b[0m';

describe('control characters in table output', () => {
  let h: RunnerHarness;
  beforeAll(async () => {
    h = await openRunnerHarness('sec-table');
    spawnRunner(h, 'sec-table-runner');
  });
  afterAll(() => closeRunnerHarness(h));

  it('dlq list shows a hostile syncId and reason escaped, on one row', async () => {
    const body = JSON.stringify({ syncId: FORGED, connectionId: 'victim', requestedAt: new Date().toISOString() });
    await confirmPublish(h.channel, h.topology.exchange, h.topology.syncRoutingKey, Buffer.from(body), { messageId: 'forger' });
    // Read it and put it back, so the CLI finds it on the dead queue.
    const dead = await deadLetterOf(h, 'forger');
    await confirmPublish(h.channel, '', h.topology.deadQueue, dead.content, { messageId: 'forger', headers: dead.properties.headers ?? {} });
    const listed = await tidepool(['dlq', 'list'], configEnv(h.config));
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(listed.stdout).not.toMatch(/[\r\u001b]/);
    expect(lines[1]).toContain('evil\\r\\n\\u001b[2Kforged-sync');

    const shown = await tidepool(['dlq', 'show', FORGED], configEnv(h.config));
    expect(shown.code).toBe(0);
    expect(shown.stdout).not.toMatch(/[\r\u001b]/);
    expect(shown.stdout.split('\n')[0]).toBe('dead letter evil\\r\\n\\u001b[2Kforged-sync  victim  succeeded\\u001b[0m');
  });

  it('runs shows a run record written to the store with a hostile syncId escaped, on one row', async () => {
    const now = new Date().toISOString();
    await h.services.store.runs.put({
      syncId: FORGED,
      connectionId: 'victim',
      status: 'dead_lettered',
      attempt: 1,
      runnerId: 'r\u001b]0;owned\u0007',
      fullRefresh: false,
      requestedAt: now,
      startedAt: now,
      records: 0,
      bytes: 0,
      streams: {},
      stateCommits: 0,
    });
    const runs = await tidepool(['runs'], configEnv(h.config));
    expect(runs.code).toBe(0);
    const lines = runs.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(runs.stdout).not.toMatch(/[\r\u001b\u0007]/);
    expect(lines[1]).toContain('r\\u001b]0;owned\\u0007');
  });
});
