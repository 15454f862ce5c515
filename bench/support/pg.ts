import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Connection settings for the test PostgreSQL; TIDEPOOL_TEST_PG_* override the local defaults. */
export interface PgServer {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** The connector config shape used by source-postgres and destination-postgres. */
export interface PgConnectorConfig {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
}

export interface TestDatabase {
  database: string;
  url: string;
  config: PgConnectorConfig;
  pool: pg.Pool;
  /** Closes the pool and drops the database, whoever is still connected to it. */
  drop(): Promise<void>;
}

export function testPgServer(env: NodeJS.ProcessEnv = process.env): PgServer {
  return {
    host: env['TIDEPOOL_TEST_PG_HOST'] ?? '127.0.0.1',
    port: Number(env['TIDEPOOL_TEST_PG_PORT'] ?? 5432),
    user: env['TIDEPOOL_TEST_PG_USER'] ?? 'tidepool',
    password: env['TIDEPOOL_TEST_PG_PASSWORD'] ?? 'tidepool',
  };
}

/**
 * Creates a fresh database `tp_<name>_<random>` so tests can run in parallel and a failed
 * test leaves its data behind to look at (until its drop() runs).
 */
export async function createTestDatabase(name: string): Promise<TestDatabase> {
  const server = testPgServer();
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 40) || 'test';
  const database = `tp_${slug}_${randomBytes(4).toString('hex')}`;
  await withAdmin(server, (admin) => admin.query(`CREATE DATABASE ${quote(database)}`));

  const pool = new pg.Pool({ host: server.host, port: server.port, user: server.user, password: server.password, database, max: 4 });
  pool.on('error', () => undefined);
  let dropped = false;
  return {
    database,
    url: `postgres://${encodeURIComponent(server.user)}:${encodeURIComponent(server.password)}@${server.host}:${server.port}/${database}`,
    config: { host: server.host, port: server.port, database, username: server.user, password: server.password },
    pool,
    async drop() {
      if (dropped) return;
      dropped = true;
      await pool.end().catch(() => undefined);
      await dropTestDatabase(database);
    },
  };
}

export async function dropTestDatabase(database: string): Promise<void> {
  // WITH (FORCE): a connector process a failed test left running must not keep it alive.
  await withAdmin(testPgServer(), (admin) => admin.query(`DROP DATABASE IF EXISTS ${quote(database)} WITH (FORCE)`));
}

async function withAdmin<T>(server: PgServer, work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ ...server, database: 'postgres' });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}
