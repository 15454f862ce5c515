// A runner started as root gives root up before it does anything else. A connection in the store
// names the programs a runner launches: the allow-list (launch/allow-list.ts) limits which
// programs, dropping root limits what they can do — a connector, or a program an allowed one
// is talked into running, gets an unprivileged user instead of the machine. The runner drops
// itself, so runners started any way (by the scaler, by systemd, by hand) are covered, and its
// connectors inherit the user. A runner not started as root is left as it is (runner pods run as
// a non-root user already).
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, chownSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, envName, type Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { PACKAGE_ROOT } from '../shared/paths.js';

/** A user as the password database has it. */
export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** What a runner of uid `uid` does about root, given its runnerUser setting. */
export type PrivilegePlan =
  | { action: 'none' }
  | { action: 'keep-root' }
  | { action: 'drop'; user: UserEntry };

const SETTING = envName('runnerUser');

/** One line of `getent passwd` or /etc/passwd (`name:x:uid:gid:gecos:home:shell`), or undefined. */
export function parsePasswdLine(line: string): UserEntry | undefined {
  const fields = line.trim().split(':');
  if (fields.length < 7) return undefined;
  const [name, , uid, gid, , home] = fields;
  if (!name || !/^\d+$/.test(uid!) || !/^\d+$/.test(gid!)) return undefined;
  return { name, uid: Number(uid), gid: Number(gid), home: home ?? '' };
}

/**
 * Decides, without doing anything: not root → nothing; `root`/`0` (or a user whose uid is 0) →
 * keep root; else drop to the user, which must exist.
 */
export function planPrivileges(uid: number | undefined, runnerUser: string, lookup: (user: string) => UserEntry | undefined): PrivilegePlan {
  if (uid !== 0) return { action: 'none' };
  if (runnerUser === 'root' || runnerUser === '0') return { action: 'keep-root' };
  const user = lookup(runnerUser);
  if (!user) {
    throw new ConfigError(
      `${SETTING}: no user "${runnerUser}" on this host; a runner started as root runs as this user (scripts/setup creates the default, tidepool), or set ${SETTING}=root to keep root`,
    );
  }
  return user.uid === 0 ? { action: 'keep-root' } : { action: 'drop', user };
}

/**
 * The user from the system's password database (NSS: files, LDAP…) through getent; from
 * /etc/passwd where getent is not installed. A name or a numeric uid.
 */
export function lookupUser(user: string): UserEntry | undefined {
  try {
    return parsePasswdLine(execFileSync('getent', ['passwd', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return undefined; // exit 2: no such user
  }
  const entries = readFileSync('/etc/passwd', 'utf8').split('\n').map(parsePasswdLine);
  return entries.find((e) => e !== undefined && (e.name === user || String(e.uid) === user));
}

/**
 * Drops a root process to config.runnerUser (see the top of this file): supplementary groups,
 * then the group, then the user — in that order, since only root may change groups — and HOME,
 * USER, LOGNAME to match. Root cannot be regained afterwards (checked). Throws ConfigError when
 * the user does not exist or cannot use the installation; warns when root is kept.
 */
export function dropRoot(config: Pick<Config, 'runnerUser'>, logger: Logger): PrivilegePlan {
  const plan = planPrivileges(process.getuid?.(), config.runnerUser, lookupUser);
  if (plan.action === 'keep-root') {
    logger.warn({ runnerUser: config.runnerUser }, `running as root (${SETTING}): every connector this runner launches runs as root too`);
  }
  if (plan.action !== 'drop') return plan;
  const { user } = plan;
  const ids = posixIds();
  ids.initgroups(user.name, user.gid);
  ids.setgid(user.gid);
  ids.setuid(user.uid);
  if (ids.getuid() !== user.uid || ids.geteuid() !== user.uid || ids.getgid() !== user.gid || regainsRoot(ids)) {
    throw new Error(`could not drop root to ${user.name} (uid ${user.uid})`);
  }
  process.env.HOME = isDirectory(user.home) ? user.home : '/';
  process.env.USER = user.name;
  process.env.LOGNAME = user.name;
  checkInstallation(user);
  logger.info({ user: user.name, uid: user.uid, gid: user.gid }, 'started as root: running as the runner user');
  return plan;
}

/** The process's POSIX identity calls (initgroups is missing from Node's types, not from Node). */
interface PosixIds {
  initgroups(user: string, extraGroup: number): void;
  setgid(id: number): void;
  setuid(id: number): void;
  getuid(): number;
  geteuid(): number;
  getgid(): number;
}

function posixIds(): PosixIds {
  const ids = process as Partial<PosixIds>;
  if (!ids.initgroups || !ids.setgid || !ids.setuid || !ids.getuid || !ids.geteuid || !ids.getgid) throw new Error('cannot change users on this platform');
  return ids as PosixIds;
}

function regainsRoot(ids: PosixIds): boolean {
  try {
    ids.setuid(0);
    return true;
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return path !== '' && statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The runner user must be able to run node and read tidepool's files (the reference connectors
 * are `node <PACKAGE_ROOT>/dist/connectors/…`): an installation under root's home fails here, at
 * start, instead of in every sync.
 */
function checkInstallation(user: UserEntry): void {
  for (const [path, mode] of [
    [process.execPath, constants.X_OK],
    [PACKAGE_ROOT, constants.R_OK | constants.X_OK],
  ] as const) {
    try {
      accessSync(path, mode);
    } catch {
      throw new ConfigError(`${SETTING}: user ${user.name} cannot ${mode === constants.X_OK ? 'run' : 'read'} ${path}; install tidepool where that user can read it, or set ${SETTING}`);
    }
  }
}

/** The user local runners started by this process drop to, or undefined when they keep its user (not root, or runnerUser root). */
export function droppedRunnerUser(config: Pick<Config, 'runnerUser'>): UserEntry | undefined {
  const plan = planPrivileges(process.getuid?.(), config.runnerUser, lookupUser);
  return plan.action === 'drop' ? plan.user : undefined;
}

/**
 * Gives the directory `path` to the user local runners will run as, when this process is root
 * and they will not be: a directory made for their connectors to write (the demo's output) must
 * be theirs. Throws when a directory above it is closed to that user: owning it would not help.
 */
export function giveToRunnerUser(path: string, config: Pick<Config, 'runnerUser'>): void {
  const user = droppedRunnerUser(config);
  if (!user) return;
  const closed = closedAncestor(path, user);
  if (closed) throw new Error(`${path} is under ${closed}, which the runner user ${user.name} (${SETTING}) cannot enter`);
  chownSync(path, user.uid, user.gid);
}

/**
 * The first directory above `path` that `user` may not search, if any. Directories not made yet
 * are passed over. The mode's x bits answer most (its primary group only); a directory they close
 * is asked again as the user itself when this process is root, because an ACL entry may open it
 * (scripts/setup gives the runner user execute-only entries on a checkout's private ancestors).
 */
export function closedAncestor(path: string, user: UserEntry): string | undefined {
  for (let dir = dirname(resolve(path)); ; dir = dirname(dir)) {
    const st = statSync(dir, { throwIfNoEntry: false });
    const bit = st?.uid === user.uid ? 0o100 : st?.gid === user.gid ? 0o010 : 0o001;
    if (st && (st.mode & bit) === 0 && !searchableAs(dir, user)) return dir;
    if (dir === '/') return undefined;
  }
}

/** Whether `user` may search `dir`, asked by a short child process running as that user (root only). */
function searchableAs(dir: string, user: UserEntry): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = spawnSync(process.execPath, ['-e', 'require("node:fs").accessSync(process.argv[1], 1)', dir], { uid: user.uid, gid: user.gid, stdio: 'ignore', timeout: 10_000 });
  return probe.status === 0;
}
