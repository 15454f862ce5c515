// The ConnectorLauncher conformance suite against `docker run -i`, with the images that
// scripts/images builds. It runs where a container engine answers (npm run test:k8s sets one
// up); the local suite covers machines without one.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { ConnectorError } from '../../shared/errors.js';
import { CLI_PATH, PACKAGE_VERSION } from '../../shared/paths.js';
import { DockerConnectorLauncher, dockerAvailable } from '../../runner/launch/docker.js';
import { STDIO_HIGH_WATER_MARK } from '../../runner/launch/local-process.js';
import { describeConnectorLauncherConformance } from '../conformance/connector-launcher.js';
import { SOURCE_FAKER_VERSION } from '../helpers/airbyte.js';
import { createTestDatabase } from '../helpers/pg.js';
import { deletePrefix, testPrefix } from '../helpers/services.js';

const engine = await dockerAvailable();

describe.runIf(engine)('docker engine present', () => {
  describeConnectorLauncherConformance('docker run -i', async () => {
    const db = await createTestDatabase('conformance_docker');
    return {
      launcher: new DockerConnectorLauncher({ builtinImage: (name) => `tidepool/${name}:${PACKAGE_VERSION}` }),
      database: { connectorConfig: { ...db.config }, pool: db.pool },
      cleanup: () => db.drop(),
    };
  });
});

describe.runIf(engine)('docker run -i stdio', () => {
  it("relays a container's stdio through 1 MiB buffers, as the local launcher does", async () => {
    const launcher = new DockerConnectorLauncher({ builtinImage: (name) => `tidepool/${name}:${PACKAGE_VERSION}` });
    const proc = await launcher.start({ runId: `hwm-${Date.now()}`, role: 'source', connector: { connector: 'source-faker', config: {} }, command: 'spec', files: {} });
    expect([proc.stdout.readableHighWaterMark, proc.stderr.readableHighWaterMark, proc.stdin.writableHighWaterMark]).toEqual([STDIO_HIGH_WATER_MARK, STDIO_HIGH_WATER_MARK, STDIO_HIGH_WATER_MARK]);
    proc.stdin.end();
    proc.stderr.resume();
    let out = '';
    for await (const chunk of proc.stdout as AsyncIterable<Buffer>) out += chunk.toString('utf8');
    expect(out).toContain('"type":"SPEC"');
    expect((await proc.exit).code).toBe(0);
  });
});

describe.runIf(engine)('local mode with a connector that names an image', () => {
  it('runs the image with docker run -i and programs as child processes', async () => {
    const { LocalOrImageLauncher } = await import('../../runner/launch/launchers.js');
    const { LocalProcessConnectorLauncher } = await import('../../runner/launch/local-process.js');
    const { collect, fakerUsersCatalog } = await import('../helpers/connector-io.js');
    const launcher = new LocalOrImageLauncher(new LocalProcessConnectorLauncher(), new DockerConnectorLauncher({ builtinImage: () => 'unused' }));
    const files = { config: { count: 3 }, catalog: fakerUsersCatalog() };
    const fromImage = await collect(await launcher.start({ runId: `img-${Date.now()}`, role: 'source', connector: { image: `tidepool/source-faker:${PACKAGE_VERSION}`, config: {} }, command: 'read', files }));
    expect(fromImage.exit.code).toBe(0);
    expect(fromImage.messages.filter((m) => m.type === 'RECORD')).toHaveLength(3);
    // An image that is not here and cannot be pulled (no registry serves it) never starts: a
    // permanent configuration error from start(), with the engine's reason.
    const missing = await launcher.start({ runId: `img-missing-${Date.now()}`, role: 'source', connector: { image: 'tidepool/no-such-connector:0', config: {} }, command: 'spec', files: {} }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(missing).toBeInstanceOf(ConnectorError);
    expect(missing).toMatchObject({ retryable: false, type: 'config_error', origin: 'source' });
    expect((missing as Error).message).toMatch(/^source could not start: image tidepool\/no-such-connector:0 is not on this machine and could not be pulled: .+/);
  });
});

describe.runIf(engine)('tidepool connectors spec --image', () => {
  it("prints a real Airbyte image's settings, and says why a missing image cannot be asked", async () => {
    const exec = promisify(execFile);
    const env = { PATH: process.env.PATH ?? '', TIDEPOOL_PREFIX: testPrefix('cli-image-spec') };
    // scripts/images builds it (CI runs scripts/images before the tests).
    const image = `tidepool/airbyte-source-faker:${SOURCE_FAKER_VERSION}`;
    const { stdout } = await exec(process.execPath, [CLI_PATH, 'connectors', 'spec', '--image', image], { env, timeout: 120_000 });
    expect(stdout).toMatch(/^SETTING +TYPE +REQUIRED +DEFAULT +DESCRIPTION$/m);
    for (const setting of ['count', 'seed', 'records_per_slice', 'always_updated', 'parallelism']) expect(stdout).toMatch(new RegExp(`^${setting} `, 'm'));
    const missing = await exec(process.execPath, [CLI_PATH, 'connectors', 'spec', '--image', 'tidepool/no-such-connector:0'], { env, timeout: 120_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (err: unknown) => err as { code: number; stderr: string },
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('error: source could not start: image tidepool/no-such-connector:0 is not on this machine and could not be pulled');
    await deletePrefix(loadConfig({}, undefined, { prefix: env.TIDEPOOL_PREFIX }));
  }, 180_000);
});
