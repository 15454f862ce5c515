// The CLI as a shell user meets it: exit codes, messages, --help, --json.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH } from '../../shared/paths.js';
import { testPrefix } from '../helpers/services.js';
import { deletePrefix } from '../helpers/services.js';
import { loadConfig } from '../../shared/config.js';

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
  it.each(['scaler', 'runner', 'publish', 'connections', 'runs', 'dlq', 'demo'])('%s --help prints usage and exits 0', async (cmd) => {
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
  const env = { TIDEPOOL_PREFIX: prefix, TIDEPOOL_IDLE_TIMEOUT: '1s' };
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
    expect(JSON.parse(applied.stdout)).toEqual([{ id: 'cli-faker', result: 'created' }, { id: 'cli-pg', result: 'created' }]);
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
    expect((await tidepool(['connections', 'show', 'bad one'], env)).code).toBe(3);
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
  });
});
