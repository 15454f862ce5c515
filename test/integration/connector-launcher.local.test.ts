import { readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalProcessConnectorLauncher } from '../../runner/local-process.js';
import { collect, fakerUsersCatalog } from '../helpers/connector-io.js';
import { describeConnectorLauncherConformance } from '../conformance/connector-launcher.js';
import { createTestDatabase } from '../helpers/pg.js';

describeConnectorLauncherConformance('local process', async () => {
  const db = await createTestDatabase('conformance_local');
  return { launcher: new LocalProcessConnectorLauncher(), database: { connectorConfig: { ...db.config }, pool: db.pool }, cleanup: () => db.drop() };
});

describe('local process connector launcher', () => {
  it('keeps connector files in a private directory while it runs and removes it after', async () => {
    const launcher = new LocalProcessConnectorLauncher();
    const runId = `private-${Date.now()}`;
    const proc = await launcher.start({ runId, role: 'source', connector: { connector: 'source-faker', config: {} }, command: 'read', files: { config: { count: 1_000_000_000 }, catalog: fakerUsersCatalog() } });
    proc.stdout.resume();
    proc.stderr.resume();
    const dirs = (await readdir(tmpdir())).filter((d) => d.startsWith(`tidepool-${runId}-`));
    expect(dirs).toHaveLength(1);
    const dir = join(tmpdir(), dirs[0]!);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'config.json'))).mode & 0o777).toBe(0o600);
    proc.kill('SIGKILL');
    await proc.exit;
    expect((await readdir(tmpdir())).filter((d) => d.startsWith(`tidepool-${runId}-`))).toHaveLength(0);
  });

  it('reports a program that cannot be started instead of throwing', async () => {
    const launcher = new LocalProcessConnectorLauncher();
    const proc = await launcher.start({ runId: `missing-${Date.now()}`, role: 'source', connector: { command: ['/nonexistent/connector'], config: {} }, command: 'spec', files: {} });
    const out = await collect(proc);
    expect(out.exit.code).toBeNull();
    expect(out.exit.reason).toMatch(/failed to start \/nonexistent\/connector/);
  });
});
