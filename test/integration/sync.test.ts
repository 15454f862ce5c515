// runSync against a real Redis with scripted connectors in memory: the whole sync (lock, run
// record, specs, check, catalog, replication, state commits) without RabbitMQ or processes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../shared/connections.js';
import { LockTimeoutError, StoreError, UnknownConnectionError } from '../../shared/errors.js';
import { newSyncRequest } from '../../shared/messages.js';
import type { AirbyteMessage } from '../../shared/protocol.js';
import { runSync, type SyncDeps } from '../../runner/sync/sync.js';
import { InMemoryConnectorLauncher, type ScriptContext, type ScriptedConnector } from '../helpers/in-memory-launcher.js';
import { record, streamState } from '../helpers/connector-io.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';
import { createStore } from '../../shared/store/index.js';
import { createRedis } from '../../shared/store/redis.js';

const USERS = { name: 'users', json_schema: { type: 'object', properties: { id: { type: 'integer' } } }, supported_sync_modes: ['full_refresh', 'incremental'], source_defined_cursor: true, default_cursor_field: ['id'], source_defined_primary_key: [['id']] };

const send = (stream: ScriptContext['stdout'], messages: (AirbyteMessage | string)[]) =>
  new Promise<void>((resolve) => stream.write(messages.map((m) => `${typeof m === 'string' ? m : JSON.stringify(m)}\n`).join(''), () => resolve()));

/** A connector that answers spec, check and discover, and runs `work` for read or write. */
function connector(work: ScriptedConnector, modes: string[] = ['overwrite', 'append']): ScriptedConnector {
  return async (ctx) => {
    switch (ctx.run.command) {
      case 'spec':
        return send(ctx.stdout, [{ type: 'SPEC', spec: { connectionSpecification: { type: 'object', properties: { token: { type: 'string', airbyte_secret: true } } }, supported_destination_sync_modes: modes } } as AirbyteMessage]);
      case 'check':
        return send(ctx.stdout, [{ type: 'CONNECTION_STATUS', connectionStatus: { status: 'SUCCEEDED' } }]);
      case 'discover':
        return send(ctx.stdout, [{ type: 'CATALOG', catalog: { streams: [USERS] } } as AirbyteMessage]);
      default:
        return work(ctx);
    }
  };
}

/** Reads every input line; echoes each STATE. */
const echoing: ScriptedConnector = async ({ stdin, stdout }) => {
  let rest = '';
  for await (const chunk of stdin as AsyncIterable<Buffer>) {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (line.includes('"type":"STATE"')) await send(stdout, [line]);
  }
};

describe('runSync with a real store and in-memory connectors', () => {
  let services: TestServices;
  let deps: SyncDeps;
  const launcher = new InMemoryConnectorLauncher();
  const connection = (id: string): Connection => ({ id, source: { image: 'memory/source', config: { token: 's3cret-token' } }, destination: { image: 'memory/destination', config: {} } });

  beforeAll(() => {
    const config = testConfig('sync', { lockWait: '300ms', lockTtl: '1500ms' });
    services = openTestServices(config);
    deps = { store: services.store, launcher, config, logger: services.logger, runnerId: 'runner-1' };
  });
  afterAll(() => services.cleanup());

  it('runs a sync end to end: the run recorded, the echoed state committed, the lock released', async () => {
    launcher.define('source', connector(({ stdout }) => send(stdout, [record('users', { id: 1 }), record('users', { id: 2 }), streamState('users', 2)])));
    launcher.define('destination', connector(echoing));
    await services.store.connections.apply(connection('ok'));
    const request = newSyncRequest('ok');
    const { run, failure } = await runSync(request, 1, deps, new AbortController().signal);
    expect(failure).toBeUndefined();
    expect(run).toMatchObject({ status: 'succeeded', records: 2, stateCommits: 1, stateVersion: 1 });
    expect(await services.store.runs.get(request.syncId)).toMatchObject({ status: 'succeeded', records: 2 });
    expect((await services.store.state.get('ok'))?.state).toEqual([JSON.parse(streamState('users', 2)).state]);
    expect(await services.store.locks.tryAcquire('ok', 'someone-else', 1000)).toBeDefined();
  });

  it('a failing source: the run records the failure with its stderr, redacting the secret the spec names', async () => {
    launcher.define('source', connector(async ({ stderr }) => {
      await send(stderr, ['auth rejected for token s3cret-token']);
      return 4;
    }));
    launcher.define('destination', connector(echoing));
    await services.store.connections.apply(connection('fails'));
    const { run, failure } = await runSync(newSyncRequest('fails'), 1, deps, new AbortController().signal);
    expect(failure).toMatchObject({ origin: 'source', retryable: true, message: 'source exited with code 4: auth rejected for token [redacted]' });
    expect(run.status).toBe('failed');
    expect(run.error?.stderr?.source).toEqual(['auth rejected for token [redacted]']);
  });

  it('an unknown connection, before any run exists: thrown, permanent', async () => {
    await expect(runSync(newSyncRequest('nobody'), 1, deps, new AbortController().signal)).rejects.toBeInstanceOf(UnknownConnectionError);
  });

  it('a connection locked by another sync: LockTimeoutError after lockWait', async () => {
    await services.store.connections.apply(connection('busy'));
    await services.store.locks.tryAcquire('busy', 'other-runner', 10_000);
    await expect(runSync(newSyncRequest('busy'), 1, deps, new AbortController().signal)).rejects.toBeInstanceOf(LockTimeoutError);
  });

  it('a store that fails under the sync is the store’s failure, not the runner’s', async () => {
    // A client whose connection is closed: every command fails the way a lost Redis does.
    const redis = createRedis(services.config.redisUrl, services.logger);
    redis.disconnect();
    const err = await runSync(newSyncRequest('store-down'), 1, { ...deps, store: createStore(redis, services.config) }, new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ origin: 'store', retryable: true });
  });

  it('the lock taken over mid-sync: the sync fails naming the lost lock, and its later STATE is not committed', async () => {
    launcher.define('source', connector(async ({ stdout, signal }) => {
      await send(stdout, [streamState('users', 1)]);
      await waitFor('the first STATE committed', async () => (await services.store.state.get('taken'))?.version === 1, 5_000, 20);
      // Another runner takes the connection over (this one's lock expired).
      await services.store.redis.del(services.store.keys.lock('taken'));
      await services.store.locks.tryAcquire('taken', 'other-runner', 10_000);
      await new Promise((r) => setTimeout(r, 1200));
      await send(stdout, [streamState('users', 2)]);
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    }));
    launcher.define('destination', connector(echoing));
    await services.store.connections.apply(connection('taken'));
    const { run, failure } = await runSync(newSyncRequest('taken'), 1, deps, new AbortController().signal);
    expect(failure).toMatchObject({ origin: 'store', message: 'lost the lock on connection "taken" (fencing token superseded)' });
    expect(run.stateCommits).toBe(1);
    expect((await services.store.state.get('taken'))?.state).toEqual([JSON.parse(streamState('users', 1)).state]);
  });
});
