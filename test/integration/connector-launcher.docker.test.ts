// The ConnectorLauncher conformance suite against `docker run -i`, with the images that
// scripts/images builds. It runs where a container engine answers (npm run test:k8s sets one
// up); the local suite covers machines without one.
import { describe, expect, it } from 'vitest';
import { ConnectorError } from '../../shared/errors.js';
import { PACKAGE_VERSION } from '../../shared/paths.js';
import { DockerConnectorLauncher, dockerAvailable } from '../../runner/docker.js';
import { describeConnectorLauncherConformance } from '../conformance/connector-launcher.js';
import { createTestDatabase } from '../helpers/pg.js';

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

describe.runIf(engine)('local mode with a connector that names an image', () => {
  it('runs the image with docker run -i and programs as child processes', async () => {
    const { LocalOrImageLauncher } = await import('../../runner/launchers.js');
    const { LocalProcessConnectorLauncher } = await import('../../runner/local-process.js');
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
