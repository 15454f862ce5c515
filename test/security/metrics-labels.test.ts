// Attack: a stream of syncs naming made-up connections. Each new label value is a series a
// runner keeps for its life (memory, and the monitoring system's cardinality); syncs whose
// connection the store does not know are counted under connection="unknown".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRunnerHarness, openRunnerHarness, publishSyncOf, runUntil, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/services.js';

describe('metrics labels of unknown connections', () => {
  let h: RunnerHarness;
  let port: number;
  beforeAll(async () => {
    h = await openRunnerHarness('sec-labels');
    port = await freePort();
    spawnRunner(h, 'sec-labels-runner', { TIDEPOOL_METRICS_PORT: String(port) });
  });
  afterAll(() => closeRunnerHarness(h));

  it('twenty made-up connection ids make one `unknown` series, not twenty', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await publishSyncOf(h, `made-up-${i}`));
    for (const syncId of ids) await runUntil(h, syncId, `the dead letter of ${syncId}`, (r) => r.status === 'dead_lettered');
    const text = await waitFor('the runner to count them', async () => {
      const t = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
      return t.includes('tidepool_syncs_total{connection="unknown",outcome="dead_lettered"} 20') ? t : undefined;
    }, 30_000, 250);
    expect(text).not.toContain('made-up');
  });
});
