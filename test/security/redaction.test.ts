// Redaction, tried as an attacker would (issue 11, M2): a connector that echoes its config — on
// stderr, and on stdout as a line that is no message, cut at 120 characters right inside its
// password — and a connection whose secrets hide behind names (pwd, ssh_key, access_key, dsn), a
// URL's userinfo and a spec's airbyte_secret. A real runner, broker and store, and the built CLI.
// Every secret starts with a marker ("Zq9", "Leak") that no escaping or encoding changes: no
// marker anywhere means no form of any secret, and no part of one either.
import { execFile } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS } from '../../shared/broker/envelope.js';
import { configEnv } from '../../shared/config.js';
import { CLI_PATH } from '../../shared/paths.js';
import { closeRunnerHarness, deadLetterOf, header, openRunnerHarness, publishSyncOf, runUntil, spawnRunner, stderrOf, type RunnerHarness } from '../helpers/runner-harness.js';

const exec = promisify(execFile);

// JSON.stringify writes the first as Zq9Pa\"ss\\Leak1: the cut at 120 falls inside its escaped form.
const CONFIG = {
  host: 'db',
  password: 'Zq9Pa"ss\\Leak1',
  pwd: 'Leak2-pwd',
  tunnel: { ssh_key: '-----BEGIN Leak3 KEY-----' },
  s3: { access_key: 'Leak4AKIA' },
  dsn: 'postgres://app:Leak5dsn@db/app',
  url: 'mysql://app:Leak6%40url@db/app',
  hidden_thing: 'Leak7-spec-secret',
};
const LEAKS = ['Zq9', 'Leak'];

function leaks(what: string, text: string): string[] {
  return LEAKS.filter((m) => text.includes(m)).map((m) => `${what} shows ${m}: ${text.slice(Math.max(0, text.indexOf(m) - 60), text.indexOf(m) + 60)}`);
}

describe('redaction against a connector that echoes its config', () => {
  let h: RunnerHarness;
  beforeAll(async () => {
    h = await openRunnerHarness('sec-redact', { logLevel: 'debug', maxAttempts: 1 });
    spawnRunner(h, 'sec-redact-runner');
    const script = join(h.dir, 'echoing-source.sh');
    // The stdout line: 76 characters of padding, then "connecting with " and the config JSON,
    // whose password starts at character 117 of the line.
    await writeFile(
      script,
      `#!/bin/sh
case "$1" in
  spec) echo '{"type":"SPEC","spec":{"connectionSpecification":{"type":"object","properties":{"hidden_thing":{"type":"string","airbyte_secret":true}}}}}' ;;
  check) echo '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}' ;;
  discover) echo '{"type":"CATALOG","catalog":{"streams":[{"name":"items","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}' ;;
  read) printf 'my config: %s\\n' "$(cat "$3")" >&2
        printf '%s connecting with %s\\n' "${'p'.repeat(75)}" "$(cat "$3")" ;;
esac
`,
    );
    await chmod(script, 0o755);
    await h.services.store.connections.apply({ id: 'echoing', source: { command: [script], config: CONFIG }, destination: { connector: 'destination-e2e-test', config: {} } });
  });
  afterAll(() => closeRunnerHarness(h));

  it('the config JSON it echoes is in none of: the dead letter, the run record, the runner log', async () => {
    const syncId = await publishSyncOf(h, 'echoing');
    const dead = await deadLetterOf(h, syncId);
    const reason = String(header(dead, HEADERS.reason));
    // The line was quoted (cut at 120 characters) and the secret at its cut went whole.
    expect(reason).toMatch(/^source line 1 is not an Airbyte message \(not a JSON object\): p{75} connecting with \{"host":"db","password":"\[re…$/);
    const stderr = stderrOf(dead, HEADERS.stderrSource);
    expect(stderr.join('\n')).toContain('my config: {"host":"db","password":"[redacted]"');
    const run = await runUntil(h, syncId, 'the run to end', (r) => r.status !== 'running');
    const found = [
      ...leaks('the dead-letter headers', JSON.stringify(dead.properties.headers)),
      ...Object.entries(dead.properties.headers ?? {}).flatMap(([k, v]) => leaks(`header ${k}`, String(v))),
      ...leaks('the run record', JSON.stringify(run)),
      ...leaks('the run error', `${run.error?.message ?? ''}\n${(run.error?.stderr?.source ?? []).join('\n')}`),
      ...leaks('the runner log', h.runners.map((r) => r.log.join('')).join('')),
    ];
    expect(found).toEqual([]);
  });

  it('connections show, --json and plain, shows none of pwd, ssh_key, access_key, the dsn, a URL password or a spec secret', async () => {
    const env = { PATH: process.env.PATH ?? '', ...configEnv(h.config) };
    const json = await exec(process.execPath, [CLI_PATH, 'connections', 'show', 'echoing', '--json'], { env });
    const shown = JSON.parse(json.stdout) as { connection: { source: { config: Record<string, unknown> } } };
    expect(shown.connection.source.config).toMatchObject({ host: 'db', password: '[redacted]', pwd: '[redacted]', tunnel: { ssh_key: '[redacted]' }, s3: { access_key: '[redacted]' }, dsn: '[redacted]' });
    const plain = await exec(process.execPath, [CLI_PATH, 'connections', 'show', 'echoing'], { env });
    const list = await exec(process.execPath, [CLI_PATH, 'connections', 'list', '--json'], { env });
    expect([...leaks('show --json', json.stdout), ...leaks('show', plain.stdout), ...leaks('list --json', list.stdout)]).toEqual([]);
  });
});
