// The ConnectorLauncher contract. Every adapter (local process, docker, Kubernetes pod) runs
// this same suite against real connectors; it only uses the reference connectors by name, which
// each adapter knows how to run (a program locally, an image in a pod).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { ConnectorLauncher, ConnectorRun } from '../../shared/ports/connector-launcher.js';
import { collect, fakerUsersCatalog, record, streamState } from '../helpers/connector-io.js';

export interface ConformanceTarget {
  launcher: ConnectorLauncher;
  /**
   * A database the connectors can write (destination-postgres config, as seen from where the
   * adapter runs connectors) and the test can read (pool): the only way to see what a
   * connector wrote that works for a child process and a pod alike.
   */
  database: { connectorConfig: Record<string, unknown>; pool: pg.Pool };
  cleanup(): Promise<void>;
}

let seq = 0;
const runId = (what: string) => `conf-${process.pid}-${Date.now().toString(36)}-${seq++}-${what}`;

export function describeConnectorLauncherConformance(name: string, setup: () => Promise<ConformanceTarget>): void {
  describe(`ConnectorLauncher conformance: ${name}`, () => {
    let target: ConformanceTarget;
    beforeAll(async () => {
      target = await setup();
    });
    afterAll(async () => {
      await target.cleanup();
    });

    const start = (run: Omit<ConnectorRun, 'runId'> & { runId?: string }) => target.launcher.start({ runId: runId(run.command), ...run });

    it('runs a protocol command and reports a clean exit', async () => {
      const proc = await start({ role: 'source', connector: { connector: 'source-faker', config: {} }, command: 'spec', files: {} });
      const out = await collect(proc);
      expect(out.exit).toMatchObject({ code: 0 });
      expect(out.messages.map((m) => m.type)).toContain('SPEC');
    });

    it('hands config, catalog and state to the connector as files', async () => {
      const proc = await start({
        role: 'source',
        connector: { connector: 'source-faker', config: {} },
        command: 'read',
        files: {
          config: { seed: 5, count: 10 },
          catalog: fakerUsersCatalog('incremental', 'append_dedup'),
          state: [JSON.parse(streamState('users', 6)).state],
        },
      });
      const out = await collect(proc);
      expect(out.exit.code).toBe(0);
      const ids = out.messages.flatMap((m) => (m.type === 'RECORD' ? [m.record.data.id] : []));
      expect(ids).toEqual([7, 8, 9, 10]);
    });

    it('carries stdin to the connector and EOF through it: the destination commits, echoes STATE and exits 0', async () => {
      const schema = `conf_${randomBytes(4).toString('hex')}`;
      const config = { ...target.database.connectorConfig, schema };
      const proc = await start({
        role: 'destination',
        connector: { connector: 'destination-postgres', config },
        command: 'write',
        files: { config, catalog: fakerUsersCatalog('incremental', 'append_dedup') },
      });
      const input = [record('users', { id: 1 }), record('users', { id: 2 }), streamState('users', 2)].join('\n') + '\n';
      const out = await collect(proc, input);
      expect(out.exit.code).toBe(0);
      expect(out.messages.filter((m) => m.type === 'STATE')).toHaveLength(1);
      const { rows } = await target.database.pool.query<{ id: string }>(`SELECT id FROM ${schema}.users ORDER BY id`);
      expect(rows.map((r) => Number(r.id))).toEqual([1, 2]);
    });

    it('ends a destination that gets no input at all (EOF with nothing before it)', async () => {
      const dir = `/tmp/tidepool-conformance-${randomBytes(4).toString('hex')}`;
      const proc = await start({
        role: 'destination',
        connector: { connector: 'destination-jsonl', config: { destination_path: dir } },
        command: 'write',
        files: { config: { destination_path: dir }, catalog: fakerUsersCatalog() },
      });
      const out = await collect(proc, '');
      expect(out.exit.code).toBe(0);
      expect(out.messages.filter((m) => m.type === 'STATE')).toHaveLength(0);
    });

    it('reports a failing connector: non-zero exit, error TRACE on stdout, words on stderr', async () => {
      const proc = await start({ role: 'source', connector: { connector: 'source-faker', config: {} }, command: 'read', files: { config: { count: -5 }, catalog: fakerUsersCatalog() } });
      const out = await collect(proc);
      expect(out.exit.code).not.toBe(0);
      expect(out.exit.code).not.toBeNull();
      const trace = out.messages.find((m) => m.type === 'TRACE');
      expect(trace?.type === 'TRACE' && trace.trace.error?.failure_type).toBe('config_error');
      expect(out.stderr.length).toBeGreaterThan(0);
    });

    it('kills a running connector promptly', async () => {
      const proc = await start({ role: 'source', connector: { connector: 'source-faker', config: {} }, command: 'read', files: { config: { count: 1_000_000_000 }, catalog: fakerUsersCatalog() } });
      proc.stdout.resume();
      proc.stderr.resume();
      proc.stdin.end();
      await new Promise((r) => setTimeout(r, 300));
      const killedAt = Date.now();
      proc.kill('SIGKILL');
      const exit = await proc.exit;
      expect(Date.now() - killedAt).toBeLessThan(10_000);
      expect(exit.code === 0).toBe(false);
      proc.kill('SIGKILL'); // idempotent after exit
    });

    it('keeps concurrent runs apart', async () => {
      const runs = await Promise.all(
        [3, 4, 5].map((count) =>
          start({ role: 'source', connector: { connector: 'source-faker', config: {} }, command: 'read', files: { config: { seed: count, count }, catalog: fakerUsersCatalog() } }).then(collect),
        ),
      );
      expect(runs.map((r) => r.messages.filter((m) => m.type === 'RECORD').length)).toEqual([3, 4, 5]);
    });
  });
}
