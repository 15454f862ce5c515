// The CLI as a shell user meets it: exit codes, messages, --help, --json.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH } from '../../shared/paths.js';
import { testAllowedConnectors, testPrefix } from '../helpers/services.js';
import { deletePrefix } from '../helpers/services.js';
import { loadConfig } from '../../shared/config.js';
import { connectorFingerprint } from '../../runner/sync/spec.js';
import { PHASES, type RunRecord } from '../../shared/store/runs.js';

const exec = promisify(execFile);

async function tidepool(args: string[], env: Record<string, string> = {}, input?: string) {
  const child = exec(process.execPath, [CLI_PATH, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('configuration errors', () => {
  it('stops at start with exit 78, naming the variable, before connecting to anything', async () => {
    const started = Date.now();
    // The broker address is unreachable: a process that tried to connect would hang in retries.
    const r = await tidepool(['scaler'], { TIDEPOOL_MAX_RUNNERS: 'lots', TIDEPOOL_AMQP_URL: 'amqp://127.0.0.1:1' });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('TIDEPOOL_MAX_RUNNERS');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('names a bad duration, an unknown setting and a bad config file', async () => {
    expect((await tidepool(['runner'], { TIDEPOOL_IDLE_TIMEOUT: 'soon' })).stderr).toMatch(/TIDEPOOL_IDLE_TIMEOUT: not a duration/);
    expect((await tidepool(['runner'], { TIDEPOOL_MAX_RUNERS: '3' })).stderr).toContain('TIDEPOOL_MAX_RUNERS');
    const r = await tidepool(['runs'], { TIDEPOOL_CONFIG_FILE: '/nonexistent.yaml' });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('TIDEPOOL_CONFIG_FILE');
  });
});

describe('usage', () => {
  it.each(['scaler', 'runner', 'publish', 'connections', 'connectors', 'runs', 'schedules', 'dlq', 'demo'])('%s --help prints usage and exits 0', async (cmd) => {
    const r = await tidepool([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`usage: tidepool ${cmd}`));
  });

  it('rejects unknown commands and flags with exit 2', async () => {
    expect((await tidepool(['frobnicate'])).code).toBe(2);
    const r = await tidepool(['runs', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--bogus');
  });
});

describe('connections, publish, runs', () => {
  const prefix = testPrefix('cli');
  // Root keeps root for the runner (TIDEPOOL_RUNNER_USER): its output goes to this test's 0700 temp dir.
  const env = { TIDEPOOL_PREFIX: prefix, TIDEPOOL_IDLE_TIMEOUT: '1s', TIDEPOOL_ALLOWED_CONNECTORS: testAllowedConnectors(prefix), TIDEPOOL_RUNNER_USER: 'root' };
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tidepool-cli-'));
  });
  afterAll(async () => {
    await deletePrefix(loadConfig({}, undefined, { prefix }));
    await rm(dir, { recursive: true, force: true });
  });

  it('applies connections from YAML and shows them with secrets redacted', async () => {
    const file = join(dir, 'c.yaml');
    await writeFile(
      file,
      `connections:
  - id: cli-faker
    source: { connector: source-faker, config: { count: 20 } }
    destination: { connector: destination-jsonl, config: { destination_path: ${dir}/out } }
  - id: cli-pg
    source: { connector: source-postgres, config: { host: 127.0.0.1, database: x, username: u, password: hunter22 } }
    destination: { connector: destination-jsonl, config: { destination_path: ${dir}/out2 } }
`,
    );
    const applied = await tidepool(['connections', 'apply', '-f', file, '--json'], env);
    expect(applied.code).toBe(0);
    expect(JSON.parse(applied.stdout)).toEqual([{ id: 'cli-faker', result: 'created', version: 1, warnings: [] }, { id: 'cli-pg', result: 'created', version: 1, warnings: [] }]);
    expect(JSON.parse((await tidepool(['connections', 'apply', '-f', file, '--json'], env)).stdout)[0].result).toBe('unchanged');
    const shown = await tidepool(['connections', 'show', 'cli-pg', '--json'], env);
    expect(shown.stdout).not.toContain('hunter22');
    expect(JSON.parse(shown.stdout).connection.source.config.password).toBe('[redacted]');
    expect((await tidepool(['connections', 'list'], env)).stdout).toMatch(/cli-faker\s+source-faker\s+destination-jsonl/);
  });

  it('explains an invalid connection file and changes nothing', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'id: bad one\nsource: { connector: source-nope }\ndestination: { command: [] }\n');
    const r = await tidepool(['connections', 'apply', '-f', file], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a valid connection file/);
    // Each problem by its field, with the connection's id.
    expect(r.stderr).toContain('id: id "bad one" is not a valid id (letters, digits, ".", "_" and "-", starting with a letter or digit, up to 128 characters) (connection "bad one")');
    expect(r.stderr).toContain('source.connector: connector must be one of source-faker,');
    expect(r.stderr).toContain('destination.command: needs the program, at least (connection "bad one")');
    expect((await tidepool(['connections', 'show', 'bad one'], env)).code).toBe(3);
  });

  it('deletes a connection (exit 0), then knows it no more (exit 3)', async () => {
    const file = join(dir, 'gone.yaml');
    await writeFile(file, 'id: cli-gone\nsource: { connector: source-faker, config: { count: 1 } }\ndestination: { connector: destination-e2e-test, config: {} }\n');
    expect((await tidepool(['connections', 'apply', '-f', file], env)).code).toBe(0);
    const deleted = await tidepool(['connections', 'delete', 'cli-gone', '--json'], env);
    expect(deleted.code).toBe(0);
    expect(JSON.parse(deleted.stdout)).toEqual({ id: 'cli-gone', result: 'deleted' });
    const again = await tidepool(['connections', 'delete', 'cli-gone'], env);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain('unknown connection "cli-gone"');
    expect((await tidepool(['connections', 'show', 'cli-gone'], env)).code).toBe(3);
    expect((await tidepool(['connections', 'delete'], env)).code).toBe(2);
  });

  it('refuses to publish for an unknown connection (exit 3)', async () => {
    const r = await tidepool(['publish', 'nope'], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('unknown connection "nope"');
  });

  it('publishes, and with --wait reports the finished run (a runner running meanwhile)', async () => {
    const runner = tidepool(['runner', '--runner-id', 'cli-runner'], env);
    const r = await tidepool(['publish', 'cli-faker', '--wait', '--timeout', '60s', '--json'], env);
    expect(r.code).toBe(0);
    const { request, run } = JSON.parse(r.stdout);
    expect(run).toMatchObject({ syncId: request.syncId, status: 'succeeded', records: 20, runnerId: 'cli-runner' });
    const runs = await tidepool(['runs', '--connection', 'cli-faker', '--json'], env);
    expect(JSON.parse(runs.stdout).map((x: { syncId: string }) => x.syncId)).toEqual([request.syncId]);
    expect((await runner).code).toBe(0);

    // Where the time went: every phase reached, together the whole way from publish to the record.
    const phases = (run as RunRecord).phases!;
    expect(Object.keys(phases).filter((k) => k !== 'connectorStart')).toEqual([...PHASES]);
    const sum = PHASES.reduce((total, p) => total + phases[p]!, 0);
    expect(Math.abs(sum - (Date.parse(run.finishedAt) - Date.parse(run.requestedAt)))).toBeLessThanOrEqual(PHASES.length);
    expect(phases.connectorStart?.source?.startedMs).toBeGreaterThanOrEqual(0);
    const shown = await tidepool(['runs', 'show', request.syncId], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/where the time went \(.+ in all\):/);
    for (const p of PHASES) expect(shown.stdout).toMatch(new RegExp(`^    ${p} +\\+\\S+ +\\S+ +#*$`, 'm'));
    expect(shown.stdout).toMatch(/source start: started \+/);
    expect(JSON.parse((await tidepool(['runs', 'show', request.syncId, '--json'], env)).stdout)).toMatchObject({ syncId: request.syncId, phases: { reading: phases.reading } });
    expect((await tidepool(['runs', 'show', 'no-such-sync'], env)).code).toBe(1);
    expect((await tidepool(['runs', 'show'], env)).code).toBe(2);
  });
});

describe('connectors and the specs behind connections', () => {
  const prefix = testPrefix('cli-spec');
  const env = { TIDEPOOL_PREFIX: prefix, TIDEPOOL_ALLOWED_CONNECTORS: testAllowedConnectors(prefix), TIDEPOOL_RUNNER_USER: 'root' };
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tidepool-cli-spec-'));
  });
  afterAll(async () => {
    await deletePrefix(loadConfig({}, undefined, { prefix }));
    await rm(dir, { recursive: true, force: true });
  });

  it('lists the reference connectors', async () => {
    const r = await tidepool(['connectors', 'list', '--json'], env);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as Array<{ name: string; role: string }>).map((c) => `${c.role}:${c.name}`)).toEqual([
      'source:source-faker', 'source:source-postgres', 'source:source-e2e-test',
      'destination:destination-jsonl', 'destination:destination-postgres', 'destination:destination-e2e-test',
    ]);
  });

  it.each(['source-faker', 'source-postgres', 'source-e2e-test', 'destination-jsonl', 'destination-postgres', 'destination-e2e-test'])('prints the settings of %s from its spec', async (name) => {
    const json = await tidepool(['connectors', 'spec', name, '--json'], env);
    expect(json.code).toBe(0);
    const spec = JSON.parse(json.stdout) as { connectionSpecification: { properties: Record<string, unknown> } };
    const text = await tidepool(['connectors', 'spec', name], env);
    expect(text.stdout).toMatch(/^SETTING +TYPE +REQUIRED +DEFAULT +DESCRIPTION$/m);
    for (const key of Object.keys(spec.connectionSpecification.properties)) expect(text.stdout).toMatch(new RegExp(`^${key} `, 'm'));
    if (name.startsWith('destination-')) expect(text.stdout).toMatch(/^destination sync modes: overwrite, append/m);
  });

  it('shows the secret fields and modes of a destination, and prints a program\'s spec by its path', async () => {
    const pg = await tidepool(['connectors', 'spec', 'destination-postgres'], env);
    expect(pg.stdout).toMatch(/^password +string, secret /m);
    expect(pg.stdout).toMatch(/^host +string +yes /m);
    expect(pg.stdout).toContain('destination sync modes: overwrite, append, append_dedup');
    expect((await tidepool(['connectors', 'spec', 'destination-jsonl'], env)).stdout).toContain('destination sync modes: overwrite, append\n');
    const script = join(dir, 'tiny-source');
    await writeFile(script, `#!/bin/sh\necho '{"type":"SPEC","spec":{"connectionSpecification":{"type":"object","properties":{"api_token":{"type":"string","airbyte_secret":true}}}}}'\n`, { mode: 0o755 });
    expect((await tidepool(['connectors', 'spec', script], env)).stdout).toMatch(/^api_token +string, secret/m);
    const unknown = await tidepool(['connectors', 'spec', 'source-fakr'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('"source-fakr" is not a reference connector');
  });

  it('refuses at apply a config its connector\'s spec rejects, naming the connection and each field, and applies nothing', async () => {
    const file = join(dir, 'bad-config.yaml');
    await writeFile(
      file,
      `connections:
  - id: fine
    source: { connector: source-faker, config: { count: 5 } }
    destination: { connector: destination-jsonl, config: { destination_path: ${dir}/out } }
  - id: pg-typo
    source: { connector: source-faker, config: { count: "5" } }
    destination: { connector: destination-postgres, config: { host: localhost, port: 70000, databse: x, username: u } }
  - id: dedup-in-jsonl
    source: { connector: source-faker }
    destination: { connector: destination-jsonl, config: { destination_path: ${dir}/out } }
    streams: [{ name: users, destinationSyncMode: append_dedup }]
`,
    );
    const r = await tidepool(['connections', 'apply', '-f', file], env);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('error: connection "pg-typo": source.config.count: must be integer');
    expect(r.stderr).toContain('error: connection "pg-typo": destination.config.database: is required');
    expect(r.stderr).toContain('error: connection "pg-typo": destination.config.port: must be <= 65535');
    expect(r.stderr).toContain('warning: connection "pg-typo": destination.config.databse: not a setting of this connector (it has: host, port, database, username, password, schema, batchSize)');
    expect(r.stderr).toContain('error: connection "dedup-in-jsonl": streams[0] ("users").destinationSyncMode: append_dedup, but the destination supports overwrite, append');
    expect(r.stderr).toContain('nothing applied: 2 of 3 connection(s) invalid');
    expect((await tidepool(['connections', 'show', 'fine'], env)).code).toBe(3);
  });

  it('warns at apply of a command this host does not have, and applies it', async () => {
    const file = join(dir, 'missing-command.yaml');
    const missing = join(dir, 'venv', 'bin', 'source-fakerr');
    await writeFile(file, `id: typo\nsource: { command: [${missing}] }\ndestination: { connector: destination-e2e-test }\n`);
    const r = await tidepool(['connections', 'apply', '-f', file], env);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`warning: connection "typo": source.command: ${missing}: no such file on this host`);
  });

  it('checks both connectors now and prints their verdicts', async () => {
    const file = join(dir, 'check.yaml');
    await writeFile(
      file,
      `connections:
  - id: check-ok
    source: { connector: source-faker }
    destination: { connector: destination-jsonl, config: { destination_path: ${dir}/check-out } }
  - id: check-bad
    source: { connector: source-faker }
    destination: { connector: destination-postgres, config: { host: 127.0.0.1, port: 1, database: x, username: u, password: Hunter-2-secret } }
`,
    );
    expect((await tidepool(['connections', 'apply', '-f', file], env)).code).toBe(0);
    const ok = await tidepool(['connections', 'check', 'check-ok', '--json'], env);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual([{ role: 'source', status: 'SUCCEEDED', message: '' }, { role: 'destination', status: 'SUCCEEDED', message: '' }]);
    const bad = await tidepool(['connections', 'check', 'check-bad'], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^source +SUCCEEDED/m);
    expect(bad.stdout).toMatch(/^destination +FAILED +.*ECONNREFUSED/m);
    expect(bad.stdout + bad.stderr).not.toContain('Hunter-2-secret');
    expect((await tidepool(['connections', 'check', 'nope'], env)).code).toBe(3);
  });

  it('keeps each version: history lists them, rollback brings one back, and the next run record names the exact program', async () => {
    const program = async (name: string) => {
      const path = join(dir, name, 'source');
      await mkdir(join(dir, name), { recursive: true });
      await writeFile(
        path,
        `#!/bin/sh
# ${name}
case "$1" in
  spec) echo '{"type":"SPEC","spec":{"connectionSpecification":{"type":"object"}}}' ;;
  check) echo '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}' ;;
  discover) echo '{"type":"CATALOG","catalog":{"streams":[{"name":"items","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}' ;;
  read) echo '{"type":"RECORD","record":{"stream":"items","data":{"from":"${name}"},"emitted_at":1}}' ;;
esac
`,
        { mode: 0o755 },
      );
      return path;
    };
    const [v1, v2] = [await program('release-1'), await program('release-2')];
    const file = join(dir, 'pinned.yaml');
    const applyWith = async (path: string, version: string) => {
      await writeFile(file, `id: pinned\nsource: { command: [${path}], version: "${version}" }\ndestination: { connector: destination-e2e-test }\n`);
      return tidepool(['connections', 'apply', '-f', file], env);
    };
    expect((await applyWith(v1, '1.0')).stdout).toBe('connection pinned created (version 1)\n');
    expect((await applyWith(v2, '2.0')).stdout).toBe('connection pinned updated (version 2)\n');
    const history = await tidepool(['connections', 'history', 'pinned'], env);
    expect(history.stdout).toMatch(new RegExp(`^2 \\(current\\) +\\S+ +${v2} \\(version 2\\.0\\) +destination-e2e-test$`, 'm'));
    expect(history.stdout).toMatch(new RegExp(`^1 +\\S+ +${v1} \\(version 1\\.0\\)`, 'm'));

    const back = await tidepool(['connections', 'rollback', 'pinned'], env);
    expect(back.stdout).toBe("connection pinned rolled back to version 1's definition, now version 3\n");
    expect((await tidepool(['connections', 'rollback', 'pinned', '--to', '9'], env)).code).toBe(3);

    const runner = tidepool(['runner', '--runner-id', 'cli-pin-runner'], { ...env, TIDEPOOL_IDLE_TIMEOUT: '1s' });
    const published = await tidepool(['publish', 'pinned', '--wait', '--timeout', '60s', '--json'], env);
    expect(published.code).toBe(0);
    const { run } = JSON.parse(published.stdout) as { run: { connectionVersion: number; connectors: { source: { ref: string; version: string; fingerprint: string } } } };
    expect(run.connectionVersion).toBe(3);
    expect(run.connectors.source).toMatchObject({ ref: v1, version: '1.0' });
    expect(run.connectors.source.fingerprint).toBe(await connectorFingerprint({ command: [v1], config: {} }));
    expect((await runner).code).toBe(0);
  });

  it('with requireDigests, refuses an image named by a tag it cannot pin', async () => {
    const file = join(dir, 'tagged.yaml');
    await writeFile(file, 'id: tagged\nsource: { image: "tidepool/source-faker:0.1.0" }\ndestination: { connector: destination-e2e-test }\n');
    const r = await tidepool(['connections', 'apply', '-f', file], { ...env, TIDEPOOL_REQUIRE_DIGESTS: 'true' });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('error: connection "tagged": source.image: tidepool/source-faker:0.1.0 is not pinned to a digest (repo@sha256:…) and this host cannot resolve one; requireDigests is set');
    const pinned = `tidepool/source-faker@sha256:${'0'.repeat(64)}`;
    await writeFile(file, `id: tagged\nsource: { image: "${pinned}" }\ndestination: { connector: destination-e2e-test }\n`);
    const ok = await tidepool(['connections', 'apply', '-f', file], { ...env, TIDEPOOL_REQUIRE_DIGESTS: 'true' });
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain(`source: image ${pinned} has not run yet; its config is checked against its spec at the first sync`);
  });
});
