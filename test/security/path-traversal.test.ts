// Attack (M3): a run id that is a path. Ids are validated where they enter (hostile-ids.test.ts),
// but the launcher must not depend on that: a connector's private directory, with config.json
// and its credentials, is made directly under the launcher's temp root whatever the run id says.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalProcessConnectorLauncher, makeRunDir } from '../../runner/launch/local-process.js';

describe('a run id that tries to leave the temp root', () => {
  let outer: string;
  let root: string;
  beforeAll(async () => {
    outer = await mkdtemp(join(tmpdir(), 'tidepool-sec-trav-'));
    root = join(outer, 'a', 'b');
    await mkdir(root, { recursive: true });
  });
  afterAll(() => rm(outer, { recursive: true, force: true }));

  it('a real connector process runs in a directory directly under the root, named from a safe form of the id', async () => {
    const launcher = new LocalProcessConnectorLauncher(root);
    const runId = `x/../../../escaped\u001b\n/${'../'.repeat(20)}etc`;
    // The connector reports where it runs and which files it was given.
    const proc = await launcher.start({ runId, role: 'source', connector: { command: ['/bin/sh', '-c', 'pwd; ls'], config: {} }, command: 'check', files: { config: { password: 'p' } } });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.resume();
    expect(await proc.exit).toMatchObject({ code: 0 });
    const [cwd, ...files] = out.trim().split('\n');
    expect(dirname(cwd!)).toBe(root);
    expect(cwd!.slice(root.length + 1)).toMatch(/^tidepool-x[A-Za-z0-9_.-]{0,39}-[0-9a-f]{12}-\w+$/);
    expect(files).toEqual(['config.json']);
    // Nothing was made above the root, and the run's directory is gone after the exit.
    expect(await readdir(outer)).toEqual(['a']);
    expect(await readdir(join(outer, 'a'))).toEqual(['b']);
    expect(await readdir(root)).toEqual([]);
  });

  it('two ids that filter to the same name get directories of their own', async () => {
    const a = await makeRunDir(root, 'a/b');
    const b = await makeRunDir(root, 'a\\b');
    expect(dirname(a)).toBe(root);
    expect(dirname(b)).toBe(root);
    expect(a.slice(0, -6)).not.toBe(b.slice(0, -6));
    await rm(a, { recursive: true });
    await rm(b, { recursive: true });
  });
});
