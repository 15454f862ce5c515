// The sync's core without a broker, a store or a process: scripted connectors in memory drive
// replicate() through success and each way it can fail.
import { describe, expect, it } from 'vitest';
import type { Connection } from '../../shared/connections.js';
import { CancelledError, LockLostError } from '../../shared/errors.js';
import type { AirbyteMessage, AirbyteStateMessage, ConfiguredAirbyteCatalog } from '../../shared/protocol.js';
import type { LockHandle } from '../../shared/store/locks.js';
import { replicate, type ReplicationResult } from '../../runner/sync/replication.js';
import { StateCommits } from '../../runner/sync/state-commits.js';
import { InMemoryConnectorLauncher, type ScriptContext, type ScriptedConnector } from '../helpers/in-memory-launcher.js';
import { fakerUsersCatalog, record, streamState } from '../helpers/connector-io.js';
import { testLogger } from '../helpers/services.js';

const connection: Connection = { id: 'c1', source: { image: 'memory/source', config: { password: 'hunter2' } }, destination: { image: 'memory/destination', config: {} } };
const catalog = fakerUsersCatalog('incremental', 'append') as ConfiguredAirbyteCatalog;
const lock: LockHandle = { connectionId: 'c1', token: 1, owner: 'r1', value: '1:r1' };

async function* linesOf(stdin: ScriptContext['stdin']): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of stdin as AsyncIterable<Buffer>) {
    const parts = (rest + chunk.toString('utf8')).split('\n');
    rest = parts.pop() ?? '';
    yield* parts;
  }
  if (rest) yield rest;
}

const write = (stream: ScriptContext['stdout'], text: string) => new Promise<void>((resolve) => stream.write(text, () => resolve()));
const killed = (signal: AbortSignal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));

/** A source that writes `lines`, then `stderr`, and exits with `code` (or waits to be killed). */
function source(lines: string[], options: { code?: number; stderr?: string; hang?: boolean } = {}): ScriptedConnector {
  return async ({ stdout, stderr, signal }) => {
    for (const line of lines) await write(stdout, `${line}\n`);
    if (options.stderr) await write(stderr, `${options.stderr}\n`);
    if (options.hang) await killed(signal);
    return options.code ?? 0;
  };
}

/** A destination that takes every line, echoes STATE as it comes (or not, or in reverse at the end), and exits with `code`. */
function destination(received: string[], options: { echo?: 'as-it-comes' | 'never' | 'reversed-at-end'; code?: number; crashAtStart?: boolean } = {}): ScriptedConnector {
  return async ({ stdin, stdout, stderr }) => {
    if (options.crashAtStart) {
      await write(stderr, 'destination: cannot reach the warehouse\n');
      return 1;
    }
    const states: string[] = [];
    for await (const line of linesOf(stdin)) {
      received.push(line);
      if ((JSON.parse(line) as AirbyteMessage).type !== 'STATE') continue;
      if ((options.echo ?? 'as-it-comes') === 'as-it-comes') await write(stdout, `${line}\n`);
      else states.push(line);
    }
    if (options.echo === 'reversed-at-end') for (const s of states.reverse()) await write(stdout, `${s}\n`);
    return options.code ?? 0;
  };
}

interface Run {
  result: ReplicationResult;
  committed: AirbyteStateMessage[][];
  commits: StateCommits;
  launcher: InMemoryConnectorLauncher;
}

async function run(src: ScriptedConnector, dst: ScriptedConnector, options: { signal?: AbortSignal; messageTimeout?: number } = {}): Promise<Run> {
  const committed: AirbyteStateMessage[][] = [];
  const commits = new StateCommits({ commit: (_l, state) => Promise.resolve(committed.push(structuredClone(state))) }, lock, 'sync-1', []);
  const launcher = new InMemoryConnectorLauncher({ source: src, destination: dst });
  const result = await replicate(
    { connection, catalog, runId: 'sync-1-a1', publishedAt: Date.now(), commits, secrets: new Set(['hunter2']) },
    { launcher, logger: testLogger(), config: { maxLineBytes: 1024 * 1024, messageTimeout: options.messageTimeout ?? 60_000, stderrTailLines: 10, syncTimeout: 60_000 } },
    options.signal ?? new AbortController().signal,
  );
  return { result, committed, commits, launcher };
}

const statusOf = (line: string) => {
  const m = JSON.parse(line) as AirbyteMessage;
  return m.type === 'TRACE' ? m.trace.stream_status?.status : m.type;
};
const cursorsOf = (committed: AirbyteStateMessage[][]) => committed.map((s) => (s[0]?.stream?.stream_state as { cursor: number }).cursor);

describe('replicate(): both connectors, first failure wins, outcome decided at the end', () => {
  it('moves records, forwards STATE, commits what the destination echoed; STARTED before, COMPLETE after', async () => {
    const received: string[] = [];
    const { result, committed, launcher } = await run(source([record('users', { id: 1 }), record('users', { id: 2 }), streamState('users', 2)]), destination(received));
    expect(result.failure).toBeUndefined();
    expect(result.stats.records).toBe(2);
    expect(result.sourceStates).toBe(1);
    expect(cursorsOf(committed)).toEqual([2]);
    expect(received.map(statusOf)).toEqual(['STARTED', 'RECORD', 'RECORD', 'STATE', 'COMPLETE']);
    expect(launcher.started.map((r) => `${r.role}:${r.command}`)).toEqual(['destination:write', 'source:read']);
  });

  it('a failing source: its exit code and last stderr line (redacted); the destination gets no COMPLETE and is stopped', async () => {
    const received: string[] = [];
    const { result } = await run(source([record('users', { id: 1 })], { code: 2, stderr: 'login failed for hunter2' }), destination(received));
    expect(result.failure).toMatchObject({ origin: 'source', retryable: true, message: 'source exited with code 2: login failed for [redacted]' });
    expect(result.stderr.source).toEqual(['login failed for [redacted]']);
    expect(received.map(statusOf)).not.toContain('COMPLETE');
  });

  it('a destination that fails while its source waits is the failure, not the source it made the runner stop', async () => {
    const { result } = await run(source([], { hang: true }), destination([], { crashAtStart: true }));
    expect(result.failure).toMatchObject({ origin: 'destination', message: 'destination exited with code 1: destination: cannot reach the warehouse' });
  });

  it('a destination that confirms no STATE: a permanent protocol error, nothing committed', async () => {
    const { result, committed } = await run(source([record('users', { id: 1 }), streamState('users', 1)]), destination([], { echo: 'never' }));
    expect(result.failure).toMatchObject({ origin: 'destination', retryable: false, type: 'system_error' });
    expect(result.failure?.message).toMatch(/confirmed none of the source's 1 STATE/);
    expect(committed).toEqual([]);
  });

  it("STATE echoed in another order than sent is committed in the destination's order: it says what it has", async () => {
    const lines = [record('users', { id: 1 }), streamState('users', 1), record('users', { id: 2 }), streamState('users', 2)];
    const { result, committed } = await run(source(lines), destination([], { echo: 'reversed-at-end' }));
    expect(result.failure).toBeUndefined();
    expect(cursorsOf(committed)).toEqual([2, 1]);
  });

  it('a source line that is not a message: a permanent source protocol error quoting it', async () => {
    const { result } = await run(source(['{"type":"RECORD","record":{"stream":"users","data":{"id":1},"emitted_at":0}}', 'password=hunter2 oops']), destination([]));
    expect(result.failure).toMatchObject({ origin: 'source', retryable: false });
    expect(result.failure?.message).toMatch(/^source line 2 is not an Airbyte message/);
  });

  it('aborted mid-sync (the runner stopping): cancelled, both connectors killed, what was confirmed stays committed', async () => {
    const abort = new AbortController();
    const received: string[] = [];
    const src: ScriptedConnector = async (ctx) => {
      await write(ctx.stdout, `${record('users', { id: 1 })}\n${streamState('users', 1)}\n`);
      setTimeout(() => abort.abort(new CancelledError('sync cancelled: the runner is shutting down')), 50);
      await killed(ctx.signal);
    };
    const { result, committed, launcher } = await run(src, destination(received), { signal: abort.signal });
    expect(result.failure).toBeInstanceOf(CancelledError);
    expect(cursorsOf(committed)).toEqual([1]);
    expect(launcher.started).toHaveLength(2);
  });

  it('the lock lost mid-sync: the sync fails with the store as origin, and nothing more is committed', async () => {
    const lost = new AbortController();
    const src: ScriptedConnector = async (ctx) => {
      await write(ctx.stdout, `${streamState('users', 1)}\n`);
      await new Promise((r) => setTimeout(r, 30));
      lost.abort(new LockLostError('c1'));
      await write(ctx.stdout, `${streamState('users', 2)}\n`);
      await killed(ctx.signal);
    };
    const { result, committed } = await run(src, destination([]), { signal: lost.signal });
    expect(result.failure).toMatchObject({ origin: 'store', message: 'lost the lock on connection "c1" (fencing token superseded)' });
    expect(cursorsOf(committed)).toEqual([1]);
  });

  it('a source that says nothing for messageTimeout is hung: a timeout naming the source', async () => {
    const { result } = await run(source([], { hang: true }), destination([]), { messageTimeout: 300 });
    expect(result.failure).toMatchObject({ origin: 'source', type: 'timeout', retryable: true });
    expect(result.failure?.message).toMatch(/^source wrote nothing on stdout for/);
  });

  it('a connector that cannot start: not_started, permanent', async () => {
    const committed: AirbyteStateMessage[][] = [];
    const commits = new StateCommits({ commit: () => Promise.resolve(committed.length) }, lock, 'sync-1', []);
    const result = await replicate(
      { connection: { ...connection, source: { image: 'memory/missing', config: {} } }, catalog, runId: 'r', publishedAt: Date.now(), commits, secrets: new Set() },
      { launcher: new InMemoryConnectorLauncher({ destination: destination([]) }), logger: testLogger(), config: { maxLineBytes: 1 << 20, messageTimeout: 60_000, stderrTailLines: 10, syncTimeout: 60_000 } },
      new AbortController().signal,
    );
    expect(result.failure).toMatchObject({ origin: 'source', type: 'config_error', retryable: false });
  });
});
