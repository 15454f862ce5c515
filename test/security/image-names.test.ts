// Attack: a connection whose image "name" is a docker option (`-v/:/host`, `--privileged`), in a
// connection file or written straight to the store. The schema refuses anything that is not a
// docker image reference; and if one got past it, `docker run` still reads it as an image, since
// the launcher puts `--` before it.
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configEnv } from '../../shared/config.js';
import { ConnectionFileError, parseConnectionFile } from '../../shared/connections.js';
import { DockerConnectorLauncher, dockerAvailable } from '../../runner/launch/docker.js';
import { tidepool } from './cli.js';
import { openTestServices, testConfig, type TestServices } from '../helpers/services.js';

const engine = await dockerAvailable();

const withImage = (image: string) => ({ id: 'img', source: { image }, destination: { connector: 'destination-e2e-test' } });

function refusal(image: string): string[] {
  try {
    parseConnectionFile(withImage(image));
    return [];
  } catch (err) {
    return (err as ConnectionFileError).issues;
  }
}

describe('image names', () => {
  let s: TestServices;
  beforeAll(() => {
    s = openTestServices(testConfig('sec-images'));
  });
  afterAll(() => s.cleanup());

  it('the schema takes docker references and refuses options, spaces, control characters and capitals', () => {
    for (const ok of ['airbyte/source-faker:7.2.1', 'localhost:5000/team/source_x-y:1.0-rc', `repo@sha256:${'a'.repeat(64)}`]) expect(refusal(ok)).toEqual([]);
    expect(refusal('-v/:/host')).toEqual(['source.image: image "-v/:/host" is not an image reference: name[:tag][@digest] such as airbyte/source-faker:7.2.1, with no leading "-", spaces or control characters (connection "img")']);
    for (const bad of ['--privileged', 'busybox --privileged', 'busybox\n-v', 'busy\u001b[2Jbox', 'Busybox', 'busybox:', '']) expect(refusal(bad)).toHaveLength(1);
  });

  it('connections apply refuses such an image, and one written to the store is no connection', async () => {
    const file = join(tmpdir(), `${s.config.prefix}-image.json`);
    await writeFile(file, JSON.stringify(withImage('--privileged')));
    const applied = await tidepool(['connections', 'apply', '-f', file], configEnv(s.config));
    expect(applied.code).toBe(2);
    expect(applied.stderr).toContain('source.image: image "--privileged" is not an image reference');
    expect(await s.store.connections.list()).toEqual([]);
    await rm(file);

    await s.store.redis.set(s.store.keys.connection('img'), JSON.stringify({ ...withImage('--privileged'), source: { image: '--privileged', config: {} }, destination: { connector: 'destination-e2e-test', config: {} } }));
    await s.store.redis.sadd(s.store.keys.connections(), 'img');
    await expect(s.store.connections.get('img')).rejects.toThrow('is not an image reference');
    expect((await s.store.connections.listing()).corrupt).toEqual([s.store.keys.connection('img')]);
  });

  it.runIf(engine)('docker reads an option-like image past the schema as an image reference, not an option', async () => {
    const launcher = new DockerConnectorLauncher({ builtinImage: () => 'unused' });
    const started = launcher.start({ runId: `sec-image-${Date.now()}`, role: 'source', connector: { image: '--privileged', config: {} }, command: 'spec', files: {} });
    // Docker's own refusal of the reference: after `--` it is an image name, never a flag.
    await expect(started).rejects.toMatchObject({ retryable: false, type: 'config_error' });
    await expect(started).rejects.toThrow('source could not start: image --privileged is not on this machine and could not be pulled: invalid reference format');
  });
});
