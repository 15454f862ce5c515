// Where a run's time went: the moments a sync passes turned into phase durations, a pod's start
// steps as the watch sees them, and the replication's own moments.
import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import type { Connection } from '../../shared/connections.js';
import type { ConfiguredAirbyteCatalog } from '../../shared/protocol.js';
import type { LockHandle } from '../../shared/store/locks.js';
import { PHASES } from '../../shared/store/runs.js';
import { timeline } from '../../cli/commands/runs.js';
import { noteStartSteps } from '../../runner/launch/kubernetes-pod.js';
import { phasesFrom, startTimes } from '../../runner/sync/phases.js';
import { replicate } from '../../runner/sync/replication.js';
import { StateCommits } from '../../runner/sync/state-commits.js';
import { InMemoryConnectorLauncher } from '../helpers/in-memory-launcher.js';
import { fakerUsersCatalog, record, streamState } from '../helpers/connector-io.js';
import { testLogger } from '../helpers/services.js';

const all = { queuedSince: 1000, deliveredAt: 1100, lockedAt: 1150, launchedAt: 1400, firstByteAt: 1900, sourceEndedAt: 5900, destinationEndedAt: 6000 };

describe('phasesFrom: each phase from its moment to the next one reached', () => {
  it('a whole run: seven phases that add up to publish → end', () => {
    const phases = phasesFrom(all, 6300);
    expect(phases).toEqual({ queued: 100, lockWait: 50, preparing: 250, starting: 500, reading: 4000, committing: 100, finishing: 300 });
    expect(PHASES.reduce((sum, p) => sum + (phases[p] ?? 0), 0)).toBe(6300 - 1000);
  });

  it('a run still going leaves its current phase out', () => {
    expect(phasesFrom({ queuedSince: 1000, deliveredAt: 1100, lockedAt: 1150 })).toEqual({ queued: 100, lockWait: 50 });
  });

  it('a failure in preparation: preparing runs to the end, nothing after it', () => {
    expect(phasesFrom({ queuedSince: 1000, deliveredAt: 1100, lockedAt: 1150 }, 2150)).toEqual({ queued: 100, lockWait: 50, preparing: 1000 });
  });

  it('a source that wrote nothing: starting runs to its output end, and there is no reading', () => {
    const { firstByteAt: _none, ...marks } = all;
    expect(phasesFrom(marks, 6000)).toMatchObject({ starting: 4500, committing: 100, finishing: 0 });
    expect(phasesFrom(marks, 6000)).not.toHaveProperty('reading');
  });

  it('a publish time in the future (the publisher says so) or missing: never a negative phase', () => {
    expect(phasesFrom({ queuedSince: 9999, deliveredAt: 1100 }, 1200)).toEqual({ queued: 0, lockWait: 100 });
    expect(phasesFrom({ queuedSince: Number.NaN, deliveredAt: 1100 }, 1200)).toEqual({ lockWait: 100 });
  });
});

describe('connector start steps', () => {
  it('are ms from the launch; a launcher that told nothing gives none', () => {
    expect(startTimes({ launchedAt: 100, scheduledAt: 150, startedAt: 900, connectedAt: 1000 })).toEqual({ scheduledMs: 50, startedMs: 800, connectedMs: 900 });
    expect(startTimes({ launchedAt: 100 })).toBeUndefined();
    expect(startTimes(undefined)).toBeUndefined();
  });

  it('a pod: scheduled when PodScheduled turns true, started when the connector container runs, each stamped once', () => {
    const startup = { launchedAt: 0 };
    const pod = (conditions: object[], running: boolean): V1Pod =>
      ({ status: { conditions, containerStatuses: [{ name: 'connector', state: running ? { running: {} } : { waiting: { reason: 'ContainerCreating' } } }] } }) as unknown as V1Pod;
    noteStartSteps(pod([{ type: 'PodScheduled', status: 'False' }], false), startup, 10);
    expect(startup).toEqual({ launchedAt: 0 });
    noteStartSteps(pod([{ type: 'PodScheduled', status: 'True' }], false), startup, 20);
    noteStartSteps(pod([{ type: 'PodScheduled', status: 'True' }], true), startup, 700);
    noteStartSteps(pod([{ type: 'PodScheduled', status: 'True' }], true), startup, 900);
    expect(startup).toEqual({ launchedAt: 0, scheduledAt: 20, startedAt: 700 });
  });
});

describe('replicate() reports its moments', () => {
  it('launch ≤ first byte ≤ source end ≤ destination end', async () => {
    const connection: Connection = { id: 'c1', source: { image: 'memory/source', config: {} }, destination: { image: 'memory/destination', config: {} } };
    const lock: LockHandle = { connectionId: 'c1', token: 1, owner: 'r1', value: '1:r1' };
    const commits = new StateCommits({ commit: () => Promise.resolve(1) }, lock, 'sync-1', []);
    const launcher = new InMemoryConnectorLauncher({
      source: async ({ stdout }) => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        stdout.write(`${record('users', { id: 1 })}\n${streamState('users', 1)}\n`);
        return 0;
      },
      destination: async ({ stdin, stdout }) => {
        for await (const chunk of stdin as AsyncIterable<Buffer>) for (const line of chunk.toString().split('\n')) if (line.includes('"STATE"')) stdout.write(`${line}\n`);
        return 0;
      },
    });
    const result = await replicate(
      { connection, catalog: fakerUsersCatalog('incremental', 'append') as ConfiguredAirbyteCatalog, runId: 'sync-1-a1', publishedAt: Date.now(), commits, secrets: new Set() },
      { launcher, logger: testLogger(), config: { maxLineBytes: 1 << 20, messageTimeout: 60_000, stderrTailLines: 10, syncTimeout: 60_000 } },
      new AbortController().signal,
    );
    expect(result.failure).toBeUndefined();
    const m = result.marks;
    expect(m.launchedAt).toBeDefined();
    expect(m.firstByteAt! - m.launchedAt!).toBeGreaterThanOrEqual(25);
    expect(m.sourceEndedAt!).toBeGreaterThanOrEqual(m.firstByteAt!);
    expect(m.destinationEndedAt!).toBeGreaterThanOrEqual(m.sourceEndedAt!);
  });
});

describe('the timeline `tidepool runs show` prints', () => {
  it('one line per phase reached, bars to scale, start steps; garbage in a stored record is left out', () => {
    const lines = timeline({ phases: { queued: 100, preparing: 1000, reading: 'x' as unknown as number, committing: -1, finishing: Number.POSITIVE_INFINITY, connectorStart: { source: { startedMs: 50, connectedMs: Number.NaN } } } });
    expect(lines).toEqual(['  where the time went (1.1s in all):', '    queued     +0ms         100ms  ####', '    preparing  +100ms        1.0s  ########################################', '    source start: started +50ms']);
    expect(timeline({})).toEqual([]);
  });
});
