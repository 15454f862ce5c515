// Attack: another local user creates the runner log directory first (it lives under /tmp by
// default), to read every runner's log or plant files in it. The local runner launcher makes it
// 0700 with 0600 files, tightens its own older directory, and refuses one owned by another user,
// writable by others, or a link in its place, naming the setting.
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalProcessRunnerLauncher } from '../../scaler/local-process.js';
import { testConfig, testLogger, waitFor } from '../helpers/services.js';

/** nobody's uid on Debian: a user that is not the one running the tests. */
const OTHER_UID = 65534;

describe('runner log directory', () => {
  let root: string;
  let fakeCli: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tidepool-sec-logdir-'));
    // Stands in for the CLI: the launcher's part is the directory and the file, not the runner.
    fakeCli = join(root, 'exit.mjs');
    await writeFile(fakeCli, 'process.exit(0);\n');
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  const launcherFor = (runnerLogDir: string) => new LocalProcessRunnerLauncher({ ...testConfig('sec-logdir'), runnerLogDir }, testLogger(), { cliPath: fakeCli });

  it('creates the directory 0700 and each log file 0600', async () => {
    const dir = join(root, 'fresh', 'runners');
    const launcher = launcherFor(dir);
    const [runnerId] = await launcher.launch(1);
    await waitFor('the stand-in runner to exit', async () => (await launcher.list()).find((r) => r.phase === 'finished'), 10_000, 50);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, `${runnerId!}.log`))).mode & 0o777).toBe(0o600);
  });

  it('tightens a directory of its own that others could read', async () => {
    const dir = join(root, 'readable');
    await mkdir(dir);
    await chmod(dir, 0o755);
    await launcherFor(dir).launch(1);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it('refuses a directory others may write to, naming the setting and the mode', async () => {
    const dir = join(root, 'shared');
    await mkdir(dir);
    await chmod(dir, 0o777);
    await expect(launcherFor(dir).launch(1)).rejects.toThrow(`TIDEPOOL_RUNNER_LOG_DIR ${dir} is writable by its group or by anyone (mode 0777)`);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a symbolic link put in its place', async () => {
    const target = join(root, 'elsewhere');
    await mkdir(target, { mode: 0o700 });
    const dir = join(root, 'link');
    await symlink(target, dir);
    await expect(launcherFor(dir).launch(1)).rejects.toThrow(`TIDEPOOL_RUNNER_LOG_DIR ${dir} is a symbolic link`);
    expect(await readdir(target)).toEqual([]);
  });

  it.runIf(process.getuid?.() === 0)('refuses a directory another user made first, naming its owner', async () => {
    const dir = join(root, 'theirs');
    await mkdir(dir, { mode: 0o700 });
    await chown(dir, OTHER_UID, OTHER_UID);
    expect((await lstat(dir)).uid).toBe(OTHER_UID);
    await expect(launcherFor(dir).launch(1)).rejects.toThrow(`TIDEPOOL_RUNNER_LOG_DIR ${dir} is owned by uid ${OTHER_UID}, not by this user (uid 0)`);
    expect(await readdir(dir)).toEqual([]);
  });
});
