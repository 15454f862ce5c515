// Pinned connector images, with real registry digests: a tag is resolved to its digest when the
// connection is applied, a moved tag makes a new version, a rollback brings back the old digest,
// and the run that follows ran — and records — exactly that build. An image has a digest only
// once pushed to a registry, so scripts/test-registry serves one on loopback. Runs where a
// container engine answers (scripts/images starts one; CI runs it before the tests).
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, PACKAGE_ROOT, PACKAGE_VERSION } from '../../shared/paths.js';
import { dockerAvailable } from '../../runner/launch/docker.js';
import { configEnv } from '../../shared/config.js';
import { closeRunnerHarness, openRunnerHarness, publishSyncOf, runUntil, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';

const exec = promisify(execFile);
const engine = await dockerAvailable();

describe.runIf(engine)('image digests, pinned at apply and rolled back', () => {
  let h: RunnerHarness;
  let registry: string;
  let repo: string;
  const tidepool = async (args: string[]) => {
    try {
      const { stdout, stderr } = await exec(process.execPath, [CLI_PATH, ...args], { env: { PATH: process.env.PATH ?? '', ...configEnv(h.config) } });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  /** Pushes a build of the reference source-faker image (`label` makes each build another image) as repo:stable; its digest. */
  const pushBuild = async (label: string): Promise<string> => {
    const dockerfile = join(h.dir, `Dockerfile.${label}`);
    await writeFile(dockerfile, `FROM tidepool/source-faker:${PACKAGE_VERSION}\nLABEL org.tidepool.test-build="${label}"\n`);
    await exec('docker', ['build', '-q', '-t', `${repo}:stable`, '-f', dockerfile, h.dir], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
    const { stdout } = await exec('docker', ['push', `${repo}:stable`]);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(stdout)?.[1];
    if (!digest) throw new Error(`no digest in docker push output: ${stdout}`);
    return digest;
  };

  beforeAll(async () => {
    h = await openRunnerHarness('pinning');
    registry = (await exec(join(PACKAGE_ROOT, 'scripts', 'test-registry'), ['up'])).stdout.trim();
    repo = `${registry}/${h.config.prefix}/source-faker`;
    spawnRunner(h, 'pinning-runner');
  }, 120_000);
  afterAll(async () => {
    await exec('docker', ['image', 'rm', '-f', `${repo}:stable`]).catch(() => undefined);
    await closeRunnerHarness(h);
  });

  it('pins the tag to its digest, follows a moved tag as a new version, and a rollback runs the old build again', async () => {
    const first = await pushBuild('1');
    const file = join(h.dir, 'pinned.yaml');
    await writeFile(file, `id: by-digest\nsource: { image: "${repo}:stable", config: { count: 3 } }\ndestination: { connector: destination-e2e-test }\n`);
    const applied = await tidepool(['connections', 'apply', '-f', file, '--json']);
    expect(applied.code).toBe(0);
    expect(JSON.parse(applied.stdout)).toMatchObject([{ id: 'by-digest', result: 'created', version: 1 }]);
    expect((await h.services.store.connections.get('by-digest'))?.source.image).toBe(`${repo}:stable@${first}`);

    // The same file again: the tag still names the same build, nothing changes.
    expect(JSON.parse((await tidepool(['connections', 'apply', '-f', file, '--json'])).stdout)).toMatchObject([{ result: 'unchanged', version: 1 }]);

    const second = await pushBuild('2');
    expect(second).not.toBe(first);
    expect(JSON.parse((await tidepool(['connections', 'apply', '-f', file, '--json'])).stdout)).toMatchObject([{ result: 'updated', version: 2 }]);
    expect((await h.services.store.connections.get('by-digest'))?.source.image).toBe(`${repo}:stable@${second}`);

    const back = await tidepool(['connections', 'rollback', 'by-digest']);
    expect(back.stdout).toBe("connection by-digest rolled back to version 1's definition, now version 3\n");
    expect((await h.services.store.connections.get('by-digest'))?.source.image).toBe(`${repo}:stable@${first}`);

    const run = await runUntil(h, await publishSyncOf(h, 'by-digest'), 'the sync to succeed', (r) => r.status === 'succeeded' || r.status === 'dead_lettered', 90_000);
    expect(run.error).toBeUndefined();
    expect(run.records).toBe(3);
    expect(run.connectionVersion).toBe(3);
    expect(run.connectors?.source.ref).toBe(`${repo}:stable@${first}`);
    // The engine's own id of what ran: the first build's, though the tag is on the second.
    const { stdout: firstId } = await exec('docker', ['image', 'inspect', '--format', '{{.Id}}', `${repo}@${first}`]);
    const { stdout: taggedId } = await exec('docker', ['image', 'inspect', '--format', '{{.Id}}', `${repo}:stable`]);
    expect(run.connectors?.source.image).toBe(firstId.trim());
    expect(run.connectors?.source.image).not.toBe(taggedId.trim());
  }, 180_000);
});
