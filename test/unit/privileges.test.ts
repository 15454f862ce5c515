// The runner's decision about root, without changing users: who keeps root, who drops to whom,
// and the words when the user is missing. The drop itself runs in
// test/security/runner-drops-root.test.ts against a real runner.
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../shared/config.js';
import { closedAncestor, parsePasswdLine, planPrivileges, type UserEntry } from '../../runner/privileges.js';

const TIDEPOOL: UserEntry = { name: 'tidepool', uid: 999, gid: 995, home: '/nonexistent' };
const users = new Map<string, UserEntry>([
  ['tidepool', TIDEPOOL],
  ['999', TIDEPOOL],
  ['toor', { name: 'toor', uid: 0, gid: 0, home: '/root' }],
]);
const lookup = (user: string) => users.get(user);

describe('planPrivileges', () => {
  it('leaves a process that is not root alone, whatever the setting', () => {
    expect(planPrivileges(1000, 'tidepool', lookup)).toEqual({ action: 'none' });
    expect(planPrivileges(1000, 'no-such-user', lookup)).toEqual({ action: 'none' });
    expect(planPrivileges(undefined, 'tidepool', lookup)).toEqual({ action: 'none' });
  });

  it('drops root to the configured user, by name or uid', () => {
    expect(planPrivileges(0, 'tidepool', lookup)).toEqual({ action: 'drop', user: TIDEPOOL });
    expect(planPrivileges(0, '999', lookup)).toEqual({ action: 'drop', user: TIDEPOOL });
  });

  it('keeps root only when told: root, 0, or a user whose uid is 0', () => {
    expect(planPrivileges(0, 'root', () => undefined)).toEqual({ action: 'keep-root' });
    expect(planPrivileges(0, '0', () => undefined)).toEqual({ action: 'keep-root' });
    expect(planPrivileges(0, 'toor', lookup)).toEqual({ action: 'keep-root' });
  });

  it('refuses a user that does not exist, naming the setting and scripts/setup', () => {
    expect(() => planPrivileges(0, 'ghost', lookup)).toThrow(ConfigError);
    expect(() => planPrivileges(0, 'ghost', lookup)).toThrow(/^TIDEPOOL_RUNNER_USER: no user "ghost" on this host; .*scripts\/setup creates the default, tidepool/);
  });
});

describe('parsePasswdLine', () => {
  it('reads name, uid, gid and home', () => {
    expect(parsePasswdLine('tidepool:x:999:995::/nonexistent:/usr/sbin/nologin\n')).toEqual(TIDEPOOL);
  });

  it('refuses what is not a passwd line', () => {
    expect(parsePasswdLine('')).toBeUndefined();
    expect(parsePasswdLine('# comment')).toBeUndefined();
    expect(parsePasswdLine('x:x:abc:1::/:/bin/sh')).toBeUndefined();
  });
});

describe('the runnerUser setting', () => {
  it('defaults to tidepool and takes names and uids, not options or paths', () => {
    expect(loadConfig({}).runnerUser).toBe('tidepool');
    expect(loadConfig({ TIDEPOOL_RUNNER_USER: 'svc.sync_1' }).runnerUser).toBe('svc.sync_1');
    expect(loadConfig({ TIDEPOOL_RUNNER_USER: '1001' }).runnerUser).toBe('1001');
    for (const bad of ['-u', '../root', 'a b', 'x'.repeat(33)]) {
      expect(() => loadConfig({ TIDEPOOL_RUNNER_USER: bad })).toThrow(/TIDEPOOL_RUNNER_USER: a user name or numeric uid/);
    }
  });
});

describe('closedAncestor', () => {
  const stranger: UserEntry = { name: 'stranger', uid: 54321, gid: 54321, home: '/' };

  it('names the first directory above a path that a user who owns none of it cannot enter', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tidepool-closed-'));
    try {
      await chmod(dir, 0o700);
      // out/ is not made yet: passed over.
      expect(closedAncestor(join(dir, 'out', 'faker-1'), stranger)).toBe(dir);
      expect(closedAncestor(join(dir, 'out'), stranger)).toBe(dir);
      // An execute-only ACL entry for the user opens it (what scripts/setup gives a checkout's
      // private ancestors); only root can ask as another user, and setfacl must be there.
      if (process.getuid?.() === 0 && spawnSync('setfacl', ['-m', `u:${stranger.uid}:x`, dir]).status === 0) {
        expect(closedAncestor(join(dir, 'out'), stranger)).toBeUndefined();
        spawnSync('setfacl', ['-b', dir]);
        expect(closedAncestor(join(dir, 'out'), stranger)).toBe(dir);
      }
      await chmod(dir, 0o711);
      expect(closedAncestor(join(dir, 'out'), stranger)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
