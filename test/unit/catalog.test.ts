import { describe, expect, it } from 'vitest';
import { CatalogError, configureCatalog } from '../../runner/sync/catalog.js';
import { connectionSchema, type Connection } from '../../shared/connections.js';
import type { AirbyteCatalog, AirbyteStream } from '../../shared/protocol.js';

const users: AirbyteStream = {
  name: 'users',
  json_schema: { type: 'object' },
  supported_sync_modes: ['full_refresh', 'incremental'],
  source_defined_cursor: true,
  default_cursor_field: ['updated_at'],
  source_defined_primary_key: [['id']],
};
const events: AirbyteStream = {
  name: 'events',
  json_schema: { type: 'object' },
  supported_sync_modes: ['full_refresh', 'incremental'],
  default_cursor_field: ['ts'],
};
const countries: AirbyteStream = {
  name: 'countries',
  json_schema: { type: 'object' },
  supported_sync_modes: ['full_refresh'],
  source_defined_primary_key: [['code']],
};
const logs: AirbyteStream = {
  name: 'logs',
  namespace: 'audit',
  json_schema: { type: 'object' },
  supported_sync_modes: ['full_refresh', 'incremental'],
};
const catalog: AirbyteCatalog = { streams: [users, events, countries, logs] };
const ALL_MODES = ['overwrite', 'append', 'append_dedup'] as const;

function connection(streams?: unknown[]): Connection {
  return connectionSchema.parse({
    id: 'conn-1',
    source: { connector: 'source-faker' },
    destination: { connector: 'destination-jsonl' },
    ...(streams ? { streams } : {}),
  });
}

function catalogError(fn: () => unknown): CatalogError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CatalogError);
    return err as CatalogError;
  }
  throw new Error('no CatalogError');
}

const modes = (c: ReturnType<typeof configureCatalog>) =>
  Object.fromEntries(c.streams.map((s) => [s.stream.name, [s.sync_mode, s.destination_sync_mode]]));

describe('configureCatalog', () => {
  it('configures every stream with defaults when the connection selects none', () => {
    const c = configureCatalog(catalog, connection(), false, ALL_MODES);
    expect(modes(c)).toEqual({
      users: ['incremental', 'append_dedup'],
      events: ['incremental', 'append'],
      countries: ['full_refresh', 'overwrite'],
      logs: ['full_refresh', 'overwrite'],
    });
    const u = c.streams.find((s) => s.stream.name === 'users')!;
    expect(u.cursor_field).toEqual(['updated_at']);
    expect(u.primary_key).toEqual([['id']]);
    expect(u.stream).toEqual(users);
    const e = c.streams.find((s) => s.stream.name === 'events')!;
    expect(e.cursor_field).toEqual(['ts']);
    expect(e).not.toHaveProperty('primary_key');
    const l = c.streams.find((s) => s.stream.name === 'logs')!;
    expect(l).not.toHaveProperty('cursor_field');
  });

  it('configures only the selected streams, in the order selected', () => {
    const c = configureCatalog(catalog, connection([{ name: 'countries' }, { name: 'users' }]), false, ALL_MODES);
    expect(c.streams.map((s) => s.stream.name)).toEqual(['countries', 'users']);
  });

  it('selects a stream in a namespace', () => {
    const c = configureCatalog(catalog, connection([{ name: 'logs', namespace: 'audit' }]), false, ALL_MODES);
    expect(c.streams).toHaveLength(1);
    expect(c.streams[0]!.stream).toEqual(logs);
  });

  it('rejects an unknown stream, naming it', () => {
    const err = catalogError(() => configureCatalog(catalog, connection([{ name: 'users' }, { name: 'invoices' }]), false, ALL_MODES));
    expect(err.message).toContain('"invoices"');
    expect(err.message).toContain('conn-1');
    expect(err.retryable).toBe(false);
  });

  it('rejects incremental without a cursor', () => {
    const err = catalogError(() => configureCatalog(catalog, connection([{ name: 'logs', namespace: 'audit', syncMode: 'incremental' }]), false, ALL_MODES));
    expect(err.message).toContain('logs');
    expect(err.message).toMatch(/cursor/);
  });

  it('rejects incremental for a stream that only supports full refresh', () => {
    const err = catalogError(() => configureCatalog(catalog, connection([{ name: 'countries', syncMode: 'incremental', cursorField: ['x'] }]), false, ALL_MODES));
    expect(err.message).toContain('countries');
  });

  it('uses a cursor the connection names', () => {
    const c = configureCatalog(catalog, connection([{ name: 'logs', namespace: 'audit', cursorField: ['at'] }]), false, ALL_MODES);
    expect(c.streams[0]).toMatchObject({ sync_mode: 'incremental', destination_sync_mode: 'append', cursor_field: ['at'] });
  });

  it('honours explicit choices over the defaults', () => {
    const c = configureCatalog(
      catalog,
      connection([{ name: 'users', syncMode: 'full_refresh', destinationSyncMode: 'append', primaryKey: [['email']] }]),
      false,
      ALL_MODES,
    );
    expect(c.streams[0]).toMatchObject({ sync_mode: 'full_refresh', destination_sync_mode: 'append', primary_key: [['email']] });
    expect(c.streams[0]).not.toHaveProperty('cursor_field');
  });

  it('forces full refresh and overwrite for a full-refresh sync', () => {
    const c = configureCatalog(catalog, connection([{ name: 'users' }, { name: 'events', destinationSyncMode: 'append' }]), true, ALL_MODES);
    expect(modes(c)).toEqual({ users: ['full_refresh', 'overwrite'], events: ['full_refresh', 'overwrite'] });
    expect(c.streams[0]).not.toHaveProperty('cursor_field');
  });

  it('forces full refresh for every stream of a default catalog', () => {
    const c = configureCatalog(catalog, connection(), true, ALL_MODES);
    for (const s of c.streams) {
      expect(s.sync_mode).toBe('full_refresh');
      expect(s.destination_sync_mode).toBe('overwrite');
    }
  });
});

describe('configureCatalog: modes negotiated with the destination', () => {
  const APPEND_ONLY = ['overwrite', 'append'] as const;

  it('never defaults to append_dedup in a destination that does not list it', () => {
    const c = configureCatalog(catalog, connection(), false, APPEND_ONLY);
    expect(modes(c)).toEqual({
      users: ['incremental', 'append'],
      events: ['incremental', 'append'],
      countries: ['full_refresh', 'overwrite'],
      logs: ['full_refresh', 'overwrite'],
    });
  });

  it('refuses an explicit append_dedup the destination does not list, naming the stream and the mode', () => {
    const err = catalogError(() => configureCatalog(catalog, connection([{ name: 'users', destinationSyncMode: 'append_dedup' }]), false, APPEND_ONLY));
    expect(err.message).toBe('stream "users" of connection "conn-1" asks for destinationSyncMode append_dedup, but the destination supports overwrite, append');
    expect(err.retryable).toBe(false);
    expect(err.type).toBe('config_error');
  });

  it('refuses append_dedup without a primary key', () => {
    const err = catalogError(() => configureCatalog(catalog, connection([{ name: 'events', destinationSyncMode: 'append_dedup' }]), false, ALL_MODES));
    expect(err.message).toMatch(/events.*append_dedup.*no primary key/);
  });

  it('refuses incremental into overwrite, which would keep only the new records', () => {
    const err = catalogError(() => configureCatalog(catalog, connection([{ name: 'users', syncMode: 'incremental', destinationSyncMode: 'overwrite' }]), false, ALL_MODES));
    expect(err.message).toMatch(/users.*incremental with overwrite/);
  });

  it('falls back to full refresh when the destination cannot append, and refuses an explicit incremental', () => {
    const c = configureCatalog(catalog, connection([{ name: 'users' }]), false, ['overwrite']);
    expect(modes(c)).toEqual({ users: ['full_refresh', 'overwrite'] });
    const err = catalogError(() => configureCatalog(catalog, connection([{ name: 'users', syncMode: 'incremental' }]), false, ['overwrite']));
    expect(err.message).toMatch(/users.*incremental needs append or append_dedup.*supports overwrite$/);
  });

  it('refuses a full refresh into a destination without overwrite', () => {
    const err = catalogError(() => configureCatalog(catalog, connection([{ name: 'users' }]), true, ['append', 'append_dedup']));
    expect(err.message).toMatch(/users.*cannot be fully refreshed/);
  });

  it('uses append_dedup by default where the destination lists it and the stream has a key', () => {
    const c = configureCatalog(catalog, connection([{ name: 'users' }, { name: 'events', primaryKey: [['id']] }]), false, ALL_MODES);
    expect(modes(c)).toEqual({ users: ['incremental', 'append_dedup'], events: ['incremental', 'append_dedup'] });
  });
});
