import { describe, expect, it } from 'vitest';
import {
  connectionConfigIssues,
  destinationSyncModes,
  redactSpecSecrets,
  secretPaths,
  specSecretValues,
  validateConnectorConfig,
} from '../../shared/connector-spec.js';
import type { ConnectorSpecification } from '../../shared/protocol.js';

// Shaped like real Airbyte specs: draft-07, airbyte_secret and order keywords, a oneOf of
// tunnel methods with a secret in one branch, additionalProperties: true.
const postgresLike: ConnectorSpecification = {
  supported_destination_sync_modes: ['overwrite', 'append'],
  connectionSpecification: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    required: ['host', 'port'],
    additionalProperties: true,
    properties: {
      host: { type: 'string', order: 0 },
      port: { type: 'integer', minimum: 1, maximum: 65535, order: 1 },
      password: { type: 'string', airbyte_secret: true, order: 2 },
      ssl_mode: { type: 'string', enum: ['disable', 'require'], group: 'security' },
      tunnel_method: {
        type: 'object',
        oneOf: [
          { title: 'none', properties: { tunnel_method: { const: 'NO_TUNNEL' } } },
          { title: 'key', properties: { tunnel_method: { const: 'SSH_KEY_AUTH' }, ssh_key: { type: 'string', airbyte_secret: true, multiline: true } } },
        ],
      },
      api_keys: { type: 'array', items: { type: 'string', airbyte_secret: true } },
    },
  },
};

describe('destinationSyncModes', () => {
  it('takes what the destination lists, in a fixed order', () => {
    expect(destinationSyncModes({ connectionSpecification: {}, supported_destination_sync_modes: ['append_dedup', 'overwrite'] })).toEqual(['overwrite', 'append_dedup']);
  });

  it('assumes no dedup when the spec says nothing, or there is no spec', () => {
    expect(destinationSyncModes({ connectionSpecification: {} })).toEqual(['overwrite', 'append']);
    expect(destinationSyncModes(undefined)).toEqual(['overwrite', 'append']);
    expect(destinationSyncModes({ connectionSpecification: {}, supportsIncremental: false })).toEqual(['overwrite']);
  });
});

describe('airbyte_secret', () => {
  it('finds secret paths through properties, oneOf branches and arrays', () => {
    expect(secretPaths(postgresLike.connectionSpecification)).toEqual([['password'], ['tunnel_method', 'ssh_key'], ['api_keys']]);
  });

  it('collects the secret values of a config, and redacts them in a copy', () => {
    const config = { host: 'db', port: 5432, password: 'hunter22', tunnel_method: { tunnel_method: 'SSH_KEY_AUTH', ssh_key: '-----BEGIN KEY-----' }, api_keys: ['k-one', 'k-two'] };
    expect([...specSecretValues(config, postgresLike)].sort()).toEqual(['-----BEGIN KEY-----', 'hunter22', 'k-one', 'k-two']);
    const shown = redactSpecSecrets(config, postgresLike);
    expect(shown).toEqual({ host: 'db', port: 5432, password: '[redacted]', tunnel_method: { tunnel_method: 'SSH_KEY_AUTH', ssh_key: '[redacted]' }, api_keys: '[redacted]' });
    expect(config.password).toBe('hunter22');
  });
});

describe('validateConnectorConfig', () => {
  it('accepts a valid config, with Airbyte keywords in the schema', () => {
    expect(validateConnectorConfig(postgresLike, { host: 'db', port: 5432 })).toEqual([]);
  });

  it('names every bad field with what was expected, and never the value', () => {
    const issues = validateConnectorConfig(postgresLike, { port: 'secret-port', ssl_mode: 'maybe' });
    expect(issues).toEqual([
      { path: 'host', message: 'is required', severity: 'error' },
      { path: 'port', message: 'must be integer', severity: 'error' },
      { path: 'ssl_mode', message: 'must be one of "disable", "require"', severity: 'error' },
    ]);
    expect(JSON.stringify(issues)).not.toContain('secret-port');
  });

  it('warns of unknown keys where the spec is silent, and refuses them where it forbids them', () => {
    const silent: ConnectorSpecification = { connectionSpecification: { type: 'object', properties: { count: { type: 'integer' } } } };
    expect(validateConnectorConfig(silent, { cuont: 5 })).toEqual([{ path: 'cuont', message: 'not a setting of this connector (it has: count)', severity: 'warning' }]);
    const strict: ConnectorSpecification = { connectionSpecification: { type: 'object', additionalProperties: false, properties: { count: { type: 'integer' } } } };
    expect(validateConnectorConfig(strict, { cuont: 5 })).toEqual([{ path: 'cuont', message: 'is not a setting of this connector', severity: 'error' }]);
  });

  it('reads draft 2020-12 schemas too', () => {
    const spec: ConnectorSpecification = { connectionSpecification: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { n: { type: 'integer' } }, $defs: {} } };
    expect(validateConnectorConfig(spec, { n: 'x' })).toEqual([{ path: 'n', message: 'must be integer', severity: 'error' }]);
  });

  it('prefixes paths with the connector role', () => {
    const issues = connectionConfigIssues({ source: { config: {} }, destination: { config: { host: 'h', port: 0 } } }, { destination: postgresLike });
    expect(issues).toEqual([{ path: 'destination.config.port', message: 'must be >= 1', severity: 'error' }]);
  });
});

describe('image references', () => {
  it('names the repository of an image however it is written', async () => {
    const { imageRepository } = await import('../../cli/connector-specs.js');
    expect(imageRepository('postgres')).toBe('docker.io/library/postgres');
    expect(imageRepository('airbyte/source-faker:6.2.1')).toBe('docker.io/airbyte/source-faker');
    expect(imageRepository('127.0.0.1:5000/team/app:1.2')).toBe('127.0.0.1:5000/team/app');
    expect(imageRepository(`localhost/app@sha256:${'a'.repeat(64)}`)).toBe('localhost/app');
    expect(imageRepository(`registry.example/team/app:1.2@sha256:${'b'.repeat(64)}`)).toBe('registry.example/team/app');
  });

  it('knows a pinned image from a tag', async () => {
    const { isPinnedImage } = await import('../../shared/connections.js');
    expect(isPinnedImage(`airbyte/source-faker@sha256:${'c'.repeat(64)}`)).toBe(true);
    expect(isPinnedImage(`airbyte/source-faker:6.2.1@sha256:${'c'.repeat(64)}`)).toBe(true);
    expect(isPinnedImage('airbyte/source-faker:6.2.1')).toBe(false);
    expect(isPinnedImage('airbyte/source-faker@sha256:short')).toBe(false);
  });
});
