import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getDefaultHighWaterMark } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConnectorError } from '../../shared/errors.js';
import { LocalProcessConnectorLauncher, STDIO_HIGH_WATER_MARK } from '../../runner/launch/local-process.js';
import { fakerUsersCatalog } from '../helpers/connector-io.js';
import { describeConnectorLauncherConformance } from '../conformance/connector-launcher.js';
import { createTestDatabase } from '../helpers/pg.js';

describeConnectorLauncherConformance('local process', async () => {
  const db = await createTestDatabase('conformance_local');
  return { launcher: new LocalProcessConnectorLauncher(), database: { connectorConfig: { ...db.config }, pool: db.pool }, cleanup: () => db.drop() };
});

describe('local process connector launcher', () => {
  it('reads a connector\'s output with 1 MiB buffers, leaving the process-wide default as it was', async () => {
    const before = getDefaultHighWaterMark(false);
    const launcher = new LocalProcessConnectorLauncher();
    const proc = await launcher.start({ runId: `hwm-${Date.now()}`, role: 'source', connector: { command: ['/bin/sh', '-c', 'head -c 3000000 /dev/zero | tr "\\0" x'], config: {} }, command: 'read', files: {} });
    expect(getDefaultHighWaterMark(false)).toBe(before);
    expect([proc.stdout.readableHighWaterMark, proc.stderr.readableHighWaterMark, proc.stdin.writableHighWaterMark]).toEqual([STDIO_HIGH_WATER_MARK, STDIO_HIGH_WATER_MARK, STDIO_HIGH_WATER_MARK]);
    proc.stderr.resume();
    // While nobody reads, the runner buffers up to about 1 MiB of it (not 16 KiB), and no more.
    await new Promise((r) => setTimeout(r, 300));
    expect(proc.stdout.readableLength).toBeGreaterThan(256 * 1024);
    expect(proc.stdout.readableLength).toBeLessThanOrEqual(STDIO_HIGH_WATER_MARK + 64 * 1024);
    let bytes = 0;
    for await (const chunk of proc.stdout as AsyncIterable<Buffer>) bytes += chunk.length;
    expect(bytes).toBe(3_000_000);
    expect((await proc.exit).code).toBe(0);
  });

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

  it('refuses a program that cannot be started with a permanent config_error, leaving no directory behind', async () => {
    const launcher = new LocalProcessConnectorLauncher();
    const runId = `missing-${Date.now()}`;
    const err = await launcher.start({ runId, role: 'source', connector: { command: ['/nonexistent/connector'], config: {} }, command: 'spec', files: {} }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectorError);
    expect(err).toMatchObject({ message: 'source could not start: /nonexistent/connector: no such file', retryable: false, type: 'config_error' });
    // An interpreter that is missing fails exec itself: caught at spawn, the same way.
    const dir = await mkdtemp(join(tmpdir(), 'tidepool-interp-'));
    const script = join(dir, 'needs-interpreter');
    await writeFile(script, '#!/nonexistent/python3\nprint(1)\n', { mode: 0o755 });
    const err2 = await launcher.start({ runId: `${runId}-2`, role: 'destination', connector: { command: [script], config: {} }, command: 'spec', files: {} }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err2).toMatchObject({ message: `destination could not start: ${script}: no such file (or its interpreter, on its #! line, is missing)`, type: 'config_error' });
    await rm(dir, { recursive: true, force: true });
    expect((await readdir(tmpdir())).filter((d) => d.startsWith(`tidepool-${runId}`))).toHaveLength(0);
  });
});
