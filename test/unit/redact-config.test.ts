// Config errors quote bad settings so that they can be fixed, but never a secret setting's value
// nor a URL's credentials (issue 11: config errors echoed URLs with passwords and short dashboard
// tokens).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../shared/config.js';

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config errors hide credentials', () => {
  it.each([
    ['a URL of the wrong scheme', { TIDEPOOL_AMQP_URL: 'http://u:url-pass-1@mq:5672' }, 'url-pass-1'],
    ['a malformed URL', { TIDEPOOL_AMQP_URL: 'amqp//u:url-pass-2@mq' }, 'url-pass-2'],
    ['a Redis URL', { TIDEPOOL_REDIS_URL: 'redis//:url-pass-3@redis:6379' }, 'url-pass-3'],
    ['a short dashboard token', { TIDEPOOL_DASHBOARD_TOKEN: 'shorttok', TIDEPOOL_DASHBOARD_PORT: 'not-a-port' }, 'shorttok'],
  ])('%s', (_what, env, secret) => {
    const err = configError(env);
    expect(err.message).toMatch(/invalid configuration/);
    expect(err.message).not.toContain(secret);
  });

  it('still names the setting and shows what is not secret', () => {
    const err = configError({ TIDEPOOL_AMQP_URL: 'http://u:pw-hidden@mq:5672' });
    expect(err.message).toContain('TIDEPOOL_AMQP_URL');
    expect(err.message).toContain('"http://***@mq:5672"');
  });

  it.each([
    ['config.json', '{"amqpUrl": "amqp://u:file-pass-1@mq", "dashboardToken": file-tok-1}', ['file-pass-1', 'file-tok-1']],
    ['config.yaml', 'amqpUrl: amqp://u:file-pass-2@mq\ndashboardToken: file-tok-2\n  bad: [indent\n', ['file-pass-2', 'file-tok-2']],
  ])('a config file that does not parse: %s is not quoted', (name, text, secrets) => {
    const path = join(mkdtempSync(join(tmpdir(), 'tidepool-redact-')), name);
    writeFileSync(path, text);
    const err = configError({ TIDEPOOL_CONFIG_FILE: path });
    expect(err.message).toContain('TIDEPOOL_CONFIG_FILE');
    for (const s of secrets) expect(err.message).not.toContain(s);
  });
});
