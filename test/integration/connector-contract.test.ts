// The contract between tidepool and a connector, negotiated from what the connector declares and
// not assumed: sync modes from the destination's spec, configs validated against the specs,
// `airbyte_secret` fields redacted, specs asked once per connector program, and a connector that
// cannot start failing at once as a configuration error. Real runner, broker and store.
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../shared/connections.js';
import { HEADERS } from '../../shared/broker/envelope.js';
import type { ConfiguredAirbyteCatalog } from '../../shared/protocol.js';
import { PACKAGE_VERSION } from '../../shared/paths.js';
import { connectorFingerprint } from '../../runner/sync/spec.js';
import {
  closeRunnerHarness,
  deadLetterOf,
  header,
  openRunnerHarness,
  publishSyncOf,
  runUntil,
  spawnRunner,
  stderrOf,
  type RunnerHarness,
} from '../helpers/runner-harness.js';

describe('the connector contract', () => {
  let h: RunnerHarness;
  const apply = (c: Connection) => h.services.store.connections.apply(c);
  const succeeded = (syncId: string) => runUntil(h, syncId, `sync ${syncId} to succeed`, (r) => r.status === 'succeeded');

  beforeAll(async () => {
    h = await openRunnerHarness('contract', { retryBaseDelay: '200ms', retryMaxDelay: '1s', maxAttempts: 3 });
    spawnRunner(h, 'contract-runner');
  });
  afterAll(() => closeRunnerHarness(h));

  it('a destination without append_dedup is never sent it: two incremental syncs append', async () => {
    const catalogPath = join(h.dir, 'append-only.catalog.json');
    await apply({
      id: 'append-only',
      source: { connector: 'source-faker', config: { count: 50, seed: 3 } },
      destination: { connector: 'destination-e2e-test', config: { mode: 'echo', catalogPath }, env: { E2E_DESTINATION_SYNC_MODES: 'overwrite,append' } },
      streams: [{ name: 'users' }],
    });
    for (let i = 0; i < 2; i++) {
      await succeeded(await publishSyncOf(h, 'append-only'));
      const given = JSON.parse(await readFile(catalogPath, 'utf8')) as ConfiguredAirbyteCatalog;
      expect(given.streams.map((s) => [s.stream.name, s.sync_mode, s.destination_sync_mode])).toEqual([['users', 'incremental', 'append']]);
    }
    // The same destination declaring all three modes is given append_dedup (users has a key).
    await apply({
      id: 'dedup',
      source: { connector: 'source-faker', config: { count: 5, seed: 3 } },
      destination: { connector: 'destination-e2e-test', config: { mode: 'echo', catalogPath: join(h.dir, 'dedup.catalog.json') } },
      streams: [{ name: 'users' }],
    });
    await succeeded(await publishSyncOf(h, 'dedup'));
    const given = JSON.parse(await readFile(join(h.dir, 'dedup.catalog.json'), 'utf8')) as ConfiguredAirbyteCatalog;
    expect(given.streams[0]?.destination_sync_mode).toBe('append_dedup');
  });

  it('an explicit append_dedup the destination cannot honour is dead-lettered at attempt 1, naming the stream and the mode', async () => {
    await apply({
      id: 'dedup-refused',
      source: { connector: 'source-faker', config: { count: 5 } },
      destination: { connector: 'destination-jsonl', config: { destination_path: join(h.dir, 'jsonl') } },
      streams: [{ name: 'users', destinationSyncMode: 'append_dedup' }],
    });
    const dead = await deadLetterOf(h, await publishSyncOf(h, 'dedup-refused'));
    expect(header(dead, HEADERS.reason)).toBe('stream "users" of connection "dedup-refused" asks for destinationSyncMode append_dedup, but the destination supports overwrite, append');
    expect(header(dead, HEADERS.type)).toBe('config_error');
    expect(header(dead, HEADERS.attempt)).toBe(1);
  });

  it('a command that does not exist is dead-lettered at attempt 1 within seconds, the reason naming the path', async () => {
    const missing = join(h.dir, 'venv', 'bin', 'source-fakerr');
    await apply({ id: 'typo', source: { command: [missing], config: {} }, destination: { connector: 'destination-e2e-test', config: {} } });
    const started = Date.now();
    const dead = await deadLetterOf(h, await publishSyncOf(h, 'typo'));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(header(dead, HEADERS.reason)).toBe(`source could not start: ${missing}: no such file`);
    expect(header(dead, HEADERS.type)).toBe('config_error');
    expect(header(dead, HEADERS.origin)).toBe('source');
    expect(header(dead, HEADERS.attempt)).toBe(1);
  });

  it('a bare command name not in PATH, and a file that is not executable, are refused the same way', async () => {
    await apply({ id: 'not-in-path', source: { connector: 'source-faker', config: {} }, destination: { command: ['destination-nowhere'], config: {}, env: { PATH: '/usr/bin:/bin' } } });
    const dead = await deadLetterOf(h, await publishSyncOf(h, 'not-in-path'));
    expect(header(dead, HEADERS.reason)).toBe('destination could not start: "destination-nowhere" was not found in PATH (/usr/bin:/bin)');
    expect(header(dead, HEADERS.attempt)).toBe(1);

    const plain = join(h.dir, 'not-executable.sh');
    await writeFile(plain, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    await apply({ id: 'not-executable', source: { command: [plain], config: {} }, destination: { connector: 'destination-e2e-test', config: {} } });
    const dead2 = await deadLetterOf(h, await publishSyncOf(h, 'not-executable'));
    expect(header(dead2, HEADERS.reason)).toBe(`source could not start: ${plain}: is not executable (chmod +x it)`);
    expect(header(dead2, HEADERS.type)).toBe('config_error');
  });

  it('a config that does not match the spec is dead-lettered at attempt 1, naming each field, whatever check says', async () => {
    await apply({
      id: 'bad-config',
      source: { connector: 'source-faker', config: { count: 'many' } },
      destination: { connector: 'destination-postgres', config: { host: 'localhost', port: 99999, database: 'x', username: 'u', password: 'pw-not-shown' } },
    });
    const dead = await deadLetterOf(h, await publishSyncOf(h, 'bad-config'));
    expect(header(dead, HEADERS.reason)).toBe('connection "bad-config" has an invalid config: source.config.count: must be integer; destination.config.port: must be <= 65535');
    expect(header(dead, HEADERS.type)).toBe('config_error');
    expect(header(dead, HEADERS.attempt)).toBe(1);
  });

  it('asks a connector program for its spec once, whatever number of syncs and connections use it; a new version is asked again', async () => {
    const log = join(h.dir, 'spec-calls.log');
    const script = join(h.dir, 'counted-source.sh');
    const write = (version: string) =>
      writeFile(
        script,
        `#!/bin/sh
# version ${version}
case "$1" in
  spec) echo spec >> "${log}"; echo '{"type":"SPEC","spec":{"connectionSpecification":{"type":"object","properties":{"conn_str":{"type":"string","airbyte_secret":true}}}}}' ;;
  check) echo '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}' ;;
  discover) echo '{"type":"CATALOG","catalog":{"streams":[{"name":"items","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}' ;;
  read) echo '{"type":"RECORD","record":{"stream":"items","data":{"id":1},"emitted_at":1}}' ;;
esac
`,
      );
    await write('1');
    await chmod(script, 0o755);
    const destination = { connector: 'destination-e2e-test', config: {} } as const;
    await apply({ id: 'counted-a', source: { command: [script], config: { conn_str: 'x' } }, destination });
    await apply({ id: 'counted-b', source: { command: [script], config: { conn_str: 'y' } }, destination });
    for (const id of ['counted-a', 'counted-a', 'counted-b']) await succeeded(await publishSyncOf(h, id));
    expect((await readFile(log, 'utf8')).trim().split('\n')).toHaveLength(1);
    expect(await h.services.store.specs.get(await connectorFingerprint({ command: [script], config: {} }))).toMatchObject({ spec: { connectionSpecification: { type: 'object' } } });

    await write('2');
    await succeeded(await publishSyncOf(h, 'counted-a'));
    expect((await readFile(log, 'utf8')).trim().split('\n')).toHaveLength(2);
  });

  it('redacts the fields the spec marks airbyte_secret, whatever their names', async () => {
    const script = join(h.dir, 'leaky-source.sh');
    await writeFile(
      script,
      `#!/bin/sh
case "$1" in
  spec) echo '{"type":"SPEC","spec":{"connectionSpecification":{"type":"object","properties":{"dsn":{"type":"string","airbyte_secret":true}}}}}' ;;
  check) echo '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}' ;;
  discover) echo '{"type":"CATALOG","catalog":{"streams":[{"name":"items","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}' ;;
  read) cat "$3" >&2; echo "cannot reach db with $(cat "$3")" >&2; exit 2 ;;
esac
`,
    );
    await chmod(script, 0o755);
    const dsn = 'ODBC;UID=admin;PWD=Very$ecretValue';
    await apply({ id: 'leaky-dsn', source: { command: [script], config: { dsn } }, destination: { connector: 'destination-e2e-test', config: {} } });
    const syncId = await publishSyncOf(h, 'leaky-dsn');
    const dead = await deadLetterOf(h, syncId);
    const everything = JSON.stringify([dead.properties.headers, await h.services.store.runs.get(syncId), h.runners.map((r) => r.log.join(''))]);
    expect(everything).not.toContain('Very$ecretValue');
    expect(stderrOf(dead, HEADERS.stderrSource).join('\n')).toContain('[redacted]');
  });
});

describe('a connector program used for the first time', () => {
  let h: RunnerHarness;
  beforeAll(async () => {
    h = await openRunnerHarness('contract-first-use', { logLevel: 'debug' });
    spawnRunner(h, 'first-use-runner');
  });
  afterAll(() => closeRunnerHarness(h));

  it('runs spec beside check and discover, and redacts their output with the spec\'s secrets all the same', async () => {
    const marks = join(h.dir, 'marks');
    const script = join(h.dir, 'slow-spec-source.sh');
    // spec answers only once check and discover have started: run in sequence, this would hang
    // until the spec's timeout. check fails, quoting its dsn on stderr and in its message.
    await writeFile(
      script,
      `#!/bin/sh
echo "$1" >> "${marks}"
case "$1" in
  spec) i=0; while [ "$(grep -c -e check -e discover "${marks}")" -lt 2 ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.05; done
        [ $i -lt 100 ] || echo spec-alone >> "${marks}"
        echo '{"type":"SPEC","spec":{"connectionSpecification":{"type":"object","properties":{"dsn":{"type":"string","airbyte_secret":true}}}}}' ;;
  check) echo "connecting with $(cat "$3")" >&2; printf '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"FAILED","message":"refused: %s"}}\\n' "$(grep -o 'Sec[A-Za-z0-9]*' "$3")" ;;
  discover) echo '{"type":"CATALOG","catalog":{"streams":[{"name":"items","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}' ;;
esac
`,
    );
    await chmod(script, 0o755);
    await h.services.store.connections.apply({ id: 'first-use', source: { command: [script], config: { dsn: 'SecretDsnValue42' } }, destination: { connector: 'destination-e2e-test', config: {} } });
    const syncId = await publishSyncOf(h, 'first-use');
    const dead = await deadLetterOf(h, syncId);
    expect(header(dead, HEADERS.reason)).toBe('source check failed: refused: [redacted]');
    expect(stderrOf(dead, HEADERS.stderrSource).join('\n')).toContain('connecting with {"dsn":"[redacted]"}');
    const everything = JSON.stringify([dead.properties.headers, await h.services.store.runs.get(syncId), h.runners.map((r) => r.log.join(''))]);
    expect(everything).not.toContain('SecretDsnValue42');
    // The spec waited for the other two, so they ran beside it.
    const ran = (await readFile(marks, 'utf8')).trim().split('\n');
    expect(ran.sort()).toEqual(['check', 'discover', 'spec']);
  });
});

describe('requireDigests on a runner', () => {
  let h: RunnerHarness;
  beforeAll(async () => {
    h = await openRunnerHarness('contract-digests', { requireDigests: true });
    spawnRunner(h, 'digests-runner');
  });
  afterAll(() => closeRunnerHarness(h));

  it('dead-letters a sync whose connection names an image by tag (written to the store without apply), at attempt 1', async () => {
    await h.services.store.connections.apply({ id: 'by-tag', source: { image: 'tidepool/source-faker:0.1.0', config: {} }, destination: { connector: 'destination-e2e-test', config: {} } });
    const dead = await deadLetterOf(h, await publishSyncOf(h, 'by-tag'));
    expect(header(dead, HEADERS.reason)).toBe('connection "by-tag": source.image tidepool/source-faker:0.1.0 is not pinned to a digest (repo@sha256:…), and requireDigests is set');
    expect(header(dead, HEADERS.type)).toBe('config_error');
    expect(header(dead, HEADERS.attempt)).toBe(1);
  });

  it('records in each run the exact programs it ran and the connection version', async () => {
    await h.services.store.connections.apply({ id: 'recorded', source: { connector: 'source-faker', config: { count: 3 } }, destination: { connector: 'destination-e2e-test', config: {} } });
    const syncId = await publishSyncOf(h, 'recorded');
    const run = await runUntil(h, syncId, 'the sync to succeed', (r) => r.status === 'succeeded');
    expect(run.connectionVersion).toBe(1);
    expect(run.connectors?.source).toEqual({ ref: `source-faker@${PACKAGE_VERSION}`, fingerprint: await connectorFingerprint({ connector: 'source-faker', config: {} }) });
    expect(run.connectors?.destination.ref).toBe(`destination-e2e-test@${PACKAGE_VERSION}`);
  });
});
