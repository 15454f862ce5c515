// Attack (H1): a connection written straight into the store names a shell command, and a publish
// makes a runner run it. With the allow-list the runner refuses it right before the launch,
// whatever wrote the store: nothing runs, and the sync is dead-lettered at once as "connector
// not allowed". The ways around the list (`..`, a symlink inside an allowed directory, an image)
// are refused the same way; `connections apply` and `connections check` refuse it too.
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS } from '../../shared/broker/envelope.js';
import { configEnv } from '../../shared/config.js';
import type { Connection } from '../../shared/connections.js';
import { closeRunnerHarness, deadLetterOf, header, openRunnerHarness, publishSyncOf, runUntil, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';
import { tidepool } from './cli.js';

const DESTINATION = { connector: 'destination-e2e-test', config: {} } as const;

describe('a connection in the store that names a program the operator did not allow', () => {
  let h: RunnerHarness;
  let outer: string;
  let allowed: string;
  const evidence = (name: string) => join(outer, `${name}.out`);
  const write = (c: Connection) => h.services.store.connections.apply(c);

  beforeAll(async () => {
    outer = await realpath(await mkdtemp(join(tmpdir(), 'tidepool-sec-allow-')));
    allowed = join(outer, 'connectors');
    await mkdir(allowed);
    h = await openRunnerHarness('sec-allow-list', { allowedConnectors: `${allowed}/`, maxAttempts: 3, retryBaseDelay: '200ms', retryMaxDelay: '1s' });
    spawnRunner(h, 'sec-allow-runner');
  });
  afterAll(async () => {
    await closeRunnerHarness(h);
    await rm(outer, { recursive: true, force: true });
  });

  /** Publishes a sync of `id`; the reason of its dead letter, once checked to be a permanent failure at attempt 1. */
  const refused = async (id: string, origin: 'source' | 'destination' = 'source') => {
    const dead = await deadLetterOf(h, await publishSyncOf(h, id));
    expect(header(dead, HEADERS.attempt)).toBe(1);
    expect(header(dead, HEADERS.type)).toBe('config_error');
    expect(header(dead, HEADERS.retryable)).toBe(false);
    expect(header(dead, HEADERS.origin)).toBe(origin);
    return String(header(dead, HEADERS.reason));
  };

  it('/bin/sh -c "id > file" is never run: dead-lettered at attempt 1, "connector not allowed"', async () => {
    await write({ id: 'shell', source: { command: ['/bin/sh', '-c', `id > ${evidence('shell')}`], config: {} }, destination: DESTINATION });
    const reason = await refused('shell');
    expect(reason).toMatch(/^connector not allowed: source command \/bin\/sh /);
    // The arguments (where a secret could be) are not repeated.
    expect(reason).not.toContain(evidence('shell'));
    expect(existsSync(evidence('shell'))).toBe(false);
  });

  it('nor through `..` out of the allowed directory, a symlink in it, a PATH lookup, or as the destination', async () => {
    await symlink('/bin/sh', join(allowed, 'sh'));
    const attempts: Array<[string, Connection['source']]> = [
      ['climb', { command: [`${allowed}/../../../../bin/sh`, '-c', `id > ${evidence('climb')}`], config: {} }],
      ['link', { command: [join(allowed, 'sh'), '-c', `id > ${evidence('link')}`], config: {} }],
      ['path', { command: ['sh', '-c', `id > ${evidence('path')}`], config: {}, env: { PATH: `${allowed}:/usr/bin:/bin` } }],
    ];
    for (const [id, source] of attempts) {
      await write({ id, source, destination: DESTINATION });
      expect(await refused(id)).toMatch(/^connector not allowed: source command /);
    }
    await write({ id: 'as-destination', source: { connector: 'source-faker', config: { count: 1 } }, destination: { command: ['/bin/sh', '-c', `id > ${evidence('as-destination')}`], config: {} } });
    expect(await refused('as-destination', 'destination')).toMatch(/^connector not allowed: destination command \/bin\/sh /);
    for (const id of ['climb', 'link', 'path', 'as-destination']) expect(existsSync(evidence(id))).toBe(false);
  });

  it('an image that is not allowed is refused before any container engine is asked', async () => {
    await write({ id: 'image', source: { image: 'evil/miner:latest', config: {} }, destination: DESTINATION });
    expect(await refused('image')).toMatch(/^connector not allowed: source image evil\/miner:latest /);
  });

  it('a program in the allowed directory runs', async () => {
    const program = join(allowed, 'source');
    await writeFile(
      program,
      `#!/bin/sh
case "$1" in
  spec) echo '{"type":"SPEC","spec":{"connectionSpecification":{"type":"object"}}}' ;;
  check) echo '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}' ;;
  discover) echo '{"type":"CATALOG","catalog":{"streams":[{"name":"items","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}' ;;
  read) echo '{"type":"RECORD","record":{"stream":"items","data":{"id":1},"emitted_at":1}}' ;;
esac
`,
    );
    await chmod(program, 0o755);
    await write({ id: 'allowed', source: { command: [program], config: {} }, destination: DESTINATION });
    const run = await runUntil(h, await publishSyncOf(h, 'allowed'), 'the allowed sync to end', (r) => r.status === 'succeeded' || r.status === 'dead_lettered');
    expect(run).toMatchObject({ status: 'succeeded', records: 1 });
  });

  it('connections apply refuses it with the same words and applies nothing; connections check does not run it', async () => {
    const env = configEnv(h.config);
    const file = join(outer, 'attack.yaml');
    await writeFile(file, `id: applied-shell\nsource: { command: [/bin/sh, -c, "id > ${evidence('apply')}"] }\ndestination: { connector: destination-e2e-test }\n`);
    const applied = await tidepool(['connections', 'apply', '-f', file], env);
    expect(applied.code).toBe(78);
    expect(applied.stderr).toMatch(/^error: connection "applied-shell": connector not allowed: source command \/bin\/sh /m);
    expect((await tidepool(['connections', 'show', 'applied-shell'], env)).code).toBe(3);

    await write({ id: 'checked-shell', source: { command: ['/bin/sh', '-c', `id > ${evidence('check')}`], config: {} }, destination: DESTINATION });
    const checked = await tidepool(['connections', 'check', 'checked-shell', '--json'], env);
    expect(checked.code).toBe(1);
    expect(JSON.parse(checked.stdout)).toContainEqual({ role: 'source', status: 'FAILED', message: expect.stringMatching(/^connector not allowed: source command \/bin\/sh /) as string });
    expect(existsSync(evidence('apply'))).toBe(false);
    expect(existsSync(evidence('check'))).toBe(false);
  });
});
