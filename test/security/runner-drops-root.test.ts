// Attack (H1): a store write makes a runner run `/bin/sh -c …`. The allow-list decides which
// programs may run; this is what an allowed one can do when the runner was started as root (the
// default local set-up). A real runner, started as root with the default settings, runs as the
// tidepool user (scripts/setup creates it), and so does its connector: `id` says so, and a
// root-only file stays unreadable. A missing user stops the runner at start; `root` keeps root,
// with a warning.
//
// Only root can give root up: run as another user, there is nothing to test (skipped).
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configEnv } from '../../shared/config.js';
import { lookupUser, type UserEntry } from '../../runner/privileges.js';
import { closeRunnerHarness, openRunnerHarness, publishSyncOf, runUntil, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';
import { waitFor } from '../helpers/services.js';
import { tidepool } from './cli.js';

const asRoot = process.getuid?.() === 0;

/** A source that reports who it runs as, and whether it could read `secret`. */
function whoAmISource(secret: string): string {
  return `case "$0" in
  spec) echo '{"type":"SPEC","spec":{"connectionSpecification":{"type":"object"}}}' ;;
  check) echo '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}' ;;
  discover) echo '{"type":"CATALOG","catalog":{"streams":[{"name":"evidence","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}' ;;
  read)
    if cat '${secret}' >/dev/null 2>&1; then readable=true; else readable=false; fi
    echo "{\\"type\\":\\"RECORD\\",\\"record\\":{\\"stream\\":\\"evidence\\",\\"data\\":{\\"uid\\":$(id -u),\\"ruid\\":$(id -ru),\\"groups\\":\\"$(id -G)\\",\\"secretReadable\\":$readable},\\"emitted_at\\":1}}" ;;
esac`;
}

/** The real, effective, saved and filesystem uids and the groups of a process, from /proc. */
async function credentials(pid: number): Promise<{ uids: number[]; gids: number[]; groups: number[] }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => (/^(\w+):\s*(.*)$/m.exec(status.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '')?.[2] ?? '').split(/\s+/).filter(Boolean).map(Number);
  return { uids: field('Uid'), gids: field('Gid'), groups: field('Groups') };
}

describe.skipIf(!asRoot)('a runner started as root (skipped unless the tests run as root)', () => {
  let h: RunnerHarness;
  let outer: string;
  let user: UserEntry;

  beforeAll(async () => {
    const found = lookupUser('tidepool');
    if (!found) throw new Error('no tidepool user on this machine: scripts/setup creates it');
    user = found;
    h = await openRunnerHarness('sec-drop-root', { allowedConnectors: '/bin/sh' });
    // Files in a directory anyone may enter: only the file's own mode protects the secret. The
    // destination writes into a directory of the runner user's.
    outer = await mkdtemp(join(tmpdir(), 'tidepool-sec-drop-'));
    await chmod(outer, 0o755);
    await writeFile(join(outer, 'secret'), 'root only\n', { mode: 0o600 });
    await mkdir(join(outer, 'out'), { mode: 0o700 });
    await chown(join(outer, 'out'), user.uid, user.gid);
  });
  afterAll(async () => {
    await closeRunnerHarness(h);
    await rm(outer, { recursive: true, force: true });
  });

  it('runs as the tidepool user with default settings, and so does a /bin/sh connector a store write names', async () => {
    // TIDEPOOL_RUNNER_USER empty: the default, not the tests' `root`.
    const runner = spawnRunner(h, 'sec-drop-runner', { TIDEPOOL_RUNNER_USER: '', TIDEPOOL_LOG_LEVEL: 'info' });
    await waitFor('the runner to consume', () => (runner.log.join('').includes('runner consuming') ? true : undefined), 15_000, 50);
    const own = await credentials(runner.pid!);
    expect(own.uids).toEqual([user.uid, user.uid, user.uid, user.uid]);
    expect(own.gids).toEqual([user.gid, user.gid, user.gid, user.gid]);
    expect(own.groups).not.toContain(0);

    await h.services.store.connections.apply({
      id: 'whoami',
      source: { command: ['/bin/sh', '-c', whoAmISource(join(outer, 'secret'))], config: {} },
      destination: { connector: 'destination-jsonl', config: { destination_path: join(outer, 'out') } },
    });
    const run = await runUntil(h, await publishSyncOf(h, 'whoami'), 'the sync to end', (r) => r.status === 'succeeded' || r.status === 'dead_lettered');
    expect(run).toMatchObject({ status: 'succeeded', records: 1 });
    const evidence = JSON.parse(await readFile(join(outer, 'out', 'evidence.jsonl'), 'utf8')) as { uid: number; ruid: number; groups: string; secretReadable: boolean };
    expect(evidence).toEqual({ uid: user.uid, ruid: user.uid, groups: String(user.gid), secretReadable: false });
    runner.kill('SIGTERM');
    expect(await runner.exited).toBe(0);
  });

  it('stops at start when the user does not exist, naming the setting and scripts/setup', async () => {
    const r = await tidepool(['runner'], { ...configEnv(h.config), TIDEPOOL_RUNNER_USER: 'tidepool-nobody' });
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/^error: TIDEPOOL_RUNNER_USER: no user "tidepool-nobody" on this host; .*scripts\/setup creates the default, tidepool/);
  });

  it('keeps root when told to (root), with a warning at start', async () => {
    const runner = spawnRunner(h, 'sec-root-runner', { TIDEPOOL_RUNNER_USER: 'root' });
    await waitFor('the warning', () => (runner.log.join('').includes('"level":"warn"') ? true : undefined), 15_000, 50);
    expect(runner.log.join('')).toMatch(/running as root \(TIDEPOOL_RUNNER_USER\): every connector this runner launches runs as root too/);
    expect((await credentials(runner.pid!)).uids).toEqual([0, 0, 0, 0]);
    runner.kill('SIGTERM');
    await runner.exited;
  });
});
