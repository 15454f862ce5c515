import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, envName, generatedCredentialsDir, loadConfig, parseNodeSelector } from '../../shared/config.js';

const dir = mkdtempSync(join(tmpdir(), 'tidepool-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The ConfigError loadConfig throws for these arguments. */
function configError(...args: Parameters<typeof loadConfig>): ConfigError {
  try {
    loadConfig(...args);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('loadConfig did not throw');
}

describe('envName', () => {
  it('turns camelCase keys into TIDEPOOL_SCREAMING_SNAKE_CASE', () => {
    expect(envName('maxRunners')).toBe('TIDEPOOL_MAX_RUNNERS');
    expect(envName('prefix')).toBe('TIDEPOOL_PREFIX');
    expect(envName('amqpUrl')).toBe('TIDEPOOL_AMQP_URL');
    expect(envName('heartbeatTtl')).toBe('TIDEPOOL_HEARTBEAT_TTL');
  });
});

describe('loadConfig', () => {
  it('has defaults for everything', () => {
    // Not this machine's credentials from scripts/setup: the built-in defaults.
    vi.stubEnv('XDG_CONFIG_HOME', join(dir, 'no-credentials'));
    const c = loadConfig({});
    vi.unstubAllEnvs();
    expect(c).toMatchObject({
      prefix: 'tidepool',
      amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
      redisUrl: 'redis://127.0.0.1:6379',
      logLevel: 'info',
      minRunners: 0,
      maxRunners: 10,
      concurrency: 2,
      idleTimeout: 30_000,
      heartbeatInterval: 2_000,
      heartbeatTtl: 10_000,
      maxLineBytes: 64 * 1024 * 1024,
      runnerLauncher: 'local',
      connectorLauncher: 'local',
    });
  });

  it('does not read process.env when given an env', () => {
    const saved = process.env.TIDEPOOL_MAX_RUNNERS;
    process.env.TIDEPOOL_MAX_RUNNERS = '77';
    try {
      expect(loadConfig({}).maxRunners).toBe(10);
    } finally {
      if (saved === undefined) delete process.env.TIDEPOOL_MAX_RUNNERS;
      else process.env.TIDEPOOL_MAX_RUNNERS = saved;
    }
  });

  it('reads numbers, durations and sizes from the environment', () => {
    const c = loadConfig({
      TIDEPOOL_MAX_RUNNERS: '25',
      TIDEPOOL_MIN_RUNNERS: '1',
      TIDEPOOL_LAUNCH_RATE: '0.5',
      TIDEPOOL_IDLE_TIMEOUT: '2m',
      TIDEPOOL_POLL_INTERVAL: '500ms',
      TIDEPOOL_HEARTBEAT_TTL: '30s',
      TIDEPOOL_SHUTDOWN_GRACE: '1500',
      TIDEPOOL_MAX_LINE_BYTES: '64MiB',
      TIDEPOOL_PREFIX: 'test-1',
    });
    expect(c.maxRunners).toBe(25);
    expect(c.minRunners).toBe(1);
    expect(c.launchRate).toBe(0.5);
    expect(c.idleTimeout).toBe(120_000);
    expect(c.pollInterval).toBe(500);
    expect(c.heartbeatTtl).toBe(30_000);
    expect(c.shutdownGrace).toBe(1_500);
    expect(c.maxLineBytes).toBe(64 * 1024 * 1024);
    expect(c.prefix).toBe('test-1');
  });

  it('reads a yes/no setting, and refuses anything else naming it', () => {
    expect(loadConfig({}).requireDigests).toBe(false);
    expect(loadConfig({ TIDEPOOL_REQUIRE_DIGESTS: 'true' }).requireDigests).toBe(true);
    expect(loadConfig({ TIDEPOOL_REQUIRE_DIGESTS: '0' }).requireDigests).toBe(false);
    expect(loadConfig({}, undefined, { requireDigests: true }).requireDigests).toBe(true);
    const err = configError({ TIDEPOOL_REQUIRE_DIGESTS: 'yes please' });
    expect(err.message).toContain('TIDEPOOL_REQUIRE_DIGESTS');
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ TIDEPOOL_MAX_RUNNERS: '' }).maxRunners).toBe(10);
  });

  it('rejects a non-number, naming the variable and the value', () => {
    const err = configError({ TIDEPOOL_MAX_RUNNERS: 'abc' });
    expect(err.message).toContain('TIDEPOOL_MAX_RUNNERS');
    expect(err.message).toContain('"abc"');
  });

  it.each([
    ['TIDEPOOL_MAX_RUNNERS', '0'],
    ['TIDEPOOL_MAX_RUNNERS', '2.5'],
    ['TIDEPOOL_CONCURRENCY', '65'],
    ['TIDEPOOL_LAUNCH_RATE', '0'],
    ['TIDEPOOL_LOG_LEVEL', 'loud'],
    ['TIDEPOOL_PREFIX', 'Has Spaces'],
    ['TIDEPOOL_CONNECTOR_LAUNCHER', 'k8s'],
  ])('rejects %s=%s, naming it', (name, value) => {
    expect(configError({ [name]: value }).message).toContain(name);
  });

  it('rejects a bad duration, naming the variable', () => {
    const err = configError({ TIDEPOOL_IDLE_TIMEOUT: 'soon' });
    expect(err.message).toContain('TIDEPOOL_IDLE_TIMEOUT');
    expect(err.message).toMatch(/not a duration/);
  });

  it('rejects a bad size, naming the variable', () => {
    const err = configError({ TIDEPOOL_MAX_LINE_BYTES: '64 parsecs' });
    expect(err.message).toContain('TIDEPOOL_MAX_LINE_BYTES');
    expect(err.message).toMatch(/not a size/);
  });

  it('reads Kubernetes quantities and node selectors, and rejects bad ones naming the variable', () => {
    const config = loadConfig({ TIDEPOOL_CONNECTOR_MEMORY_LIMIT: '512Mi', TIDEPOOL_RUNNER_CPU_LIMIT: '1.5', TIDEPOOL_RUNNER_NODE_SELECTOR: 'pool=runners,kubernetes.io/arch=amd64' });
    expect(config.connectorMemoryLimit).toBe('512Mi');
    expect(config.runnerCpuLimit).toBe('1.5');
    expect(parseNodeSelector(config.runnerNodeSelector)).toEqual({ pool: 'runners', 'kubernetes.io/arch': 'amd64' });
    expect(parseNodeSelector(loadConfig({}).connectorNodeSelector)).toBeUndefined();
    expect(configError({ TIDEPOOL_CONNECTOR_MEMORY_LIMIT: '2 gigs' }).message).toContain('TIDEPOOL_CONNECTOR_MEMORY_LIMIT');
    expect(configError({ TIDEPOOL_CONNECTOR_NODE_SELECTOR: 'pool' }).message).toContain('TIDEPOOL_CONNECTOR_NODE_SELECTOR');
    expect(loadConfig({ TIDEPOOL_CONNECTOR_TMP_SIZE_LIMIT: '10Gi' }).connectorTmpSizeLimit).toBe('10Gi');
    expect(loadConfig({}).connectorTmpSizeLimit).toBe('1Gi');
    expect(configError({ TIDEPOOL_CONNECTOR_TMP_SIZE_LIMIT: 'lots' }).message).toContain('TIDEPOOL_CONNECTOR_TMP_SIZE_LIMIT');
  });

  it('names every bad setting at once', () => {
    const err = configError({ TIDEPOOL_MAX_RUNNERS: 'x', TIDEPOOL_IDLE_TIMEOUT: 'y' });
    expect(err.message).toContain('TIDEPOOL_MAX_RUNNERS');
    expect(err.message).toContain('TIDEPOOL_IDLE_TIMEOUT');
  });

  it('rejects an unknown TIDEPOOL_ variable, naming it', () => {
    const err = configError({ TIDEPOOL_FOO: '1' });
    expect(err.message).toContain('TIDEPOOL_FOO');
    expect(err.message).toMatch(/unknown setting/);
  });

  it('rejects a misspelt setting instead of ignoring it', () => {
    expect(configError({ TIDEPOOL_MAXRUNNERS: '3' }).message).toContain('TIDEPOOL_MAXRUNNERS');
  });

  it('ignores variables without the prefix', () => {
    expect(() => loadConfig({ PATH: '/bin', MAX_RUNNERS: 'abc' })).not.toThrow();
  });

  it('rejects minRunners above maxRunners', () => {
    const err = configError({ TIDEPOOL_MIN_RUNNERS: '5', TIDEPOOL_MAX_RUNNERS: '2' });
    expect(err.message).toContain('TIDEPOOL_MIN_RUNNERS');
    expect(err.message).toContain('TIDEPOOL_MAX_RUNNERS');
  });

  it('accepts minRunners equal to maxRunners', () => {
    expect(loadConfig({ TIDEPOOL_MIN_RUNNERS: '3', TIDEPOOL_MAX_RUNNERS: '3' }).minRunners).toBe(3);
  });

  it.each([
    ['equal', '2s', '2s'],
    ['shorter', '5s', '1s'],
  ])('rejects a heartbeat TTL %s than the interval', (_what, interval, ttl) => {
    const err = configError({ TIDEPOOL_HEARTBEAT_INTERVAL: interval, TIDEPOOL_HEARTBEAT_TTL: ttl });
    expect(err.message).toContain('TIDEPOOL_HEARTBEAT_TTL');
  });

  it('has the adaptive leave rule off and the launch rate sized for a burst by default', () => {
    expect(loadConfig({})).toMatchObject({ idleMinimum: 0, runnerStartEstimate: 10_000, launchRate: 5, launchBurst: 10 });
  });

  it('rejects an idleMinimum above the idle timeout, naming both settings', () => {
    const err = configError({ TIDEPOOL_IDLE_MINIMUM: '45s', TIDEPOOL_IDLE_TIMEOUT: '30s' });
    expect(err.message).toContain('TIDEPOOL_IDLE_MINIMUM (45000 ms) is above TIDEPOOL_IDLE_TIMEOUT (30000 ms)');
    expect(loadConfig({ TIDEPOOL_IDLE_MINIMUM: '30s', TIDEPOOL_IDLE_TIMEOUT: '30s' }).idleMinimum).toBe(30_000);
  });

  it('rejects a zero runnerStartEstimate when the leave rule is on', () => {
    expect(configError({ TIDEPOOL_IDLE_MINIMUM: '5s', TIDEPOOL_RUNNER_START_ESTIMATE: '0' }).message).toContain('TIDEPOOL_RUNNER_START_ESTIMATE');
  });

  it.each([
    ['TIDEPOOL_AMQP_URL', 'http://guest:guest@localhost:5672'],
    ['TIDEPOOL_AMQP_URL', 'localhost:5672'],
    ['TIDEPOOL_REDIS_URL', 'http://localhost:6379'],
    ['TIDEPOOL_REDIS_URL', 'amqp://localhost'],
  ])('rejects %s=%s', (name, value) => {
    expect(configError({ [name]: value }).message).toContain(name);
  });

  it('accepts amqps:// and rediss:// URLs', () => {
    const c = loadConfig({ TIDEPOOL_AMQP_URL: 'amqps://u:p@mq:5671', TIDEPOOL_REDIS_URL: 'rediss://r:6380' });
    expect(c.amqpUrl).toBe('amqps://u:p@mq:5671');
    expect(c.redisUrl).toBe('rediss://r:6380');
  });

  it('returns a frozen config', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(() => {
      (c as { maxRunners: number }).maxRunners = 99;
    }).toThrow(TypeError);
    expect(c.maxRunners).toBe(10);
  });

  it('applies overrides over the environment', () => {
    const c = loadConfig({ TIDEPOOL_MAX_RUNNERS: '5' }, undefined, { maxRunners: 7, idleTimeout: '1s' });
    expect(c.maxRunners).toBe(7);
    expect(c.idleTimeout).toBe(1_000);
  });

  it('names a bad override as a CLI flag', () => {
    expect(configError({}, undefined, { idleTimeout: 'never' }).message).toContain('--idle-timeout');
  });

  describe('config file', () => {
    it('reads a YAML file, overlaid by the environment', () => {
      const path = file('tidepool.yaml', 'maxRunners: 20\nminRunners: 2\nidleTimeout: 45s\nprefix: from-file\nmaxLineBytes: 1MiB\n');
      const c = loadConfig({ TIDEPOOL_MAX_RUNNERS: '30' }, path);
      expect(c.maxRunners).toBe(30);
      expect(c.minRunners).toBe(2);
      expect(c.idleTimeout).toBe(45_000);
      expect(c.prefix).toBe('from-file');
      expect(c.maxLineBytes).toBe(1024 * 1024);
    });

    it('reads a JSON file named by TIDEPOOL_CONFIG_FILE', () => {
      const path = file('tidepool.json', JSON.stringify({ concurrency: 4, heartbeatInterval: 1000, heartbeatTtl: '5s' }));
      const c = loadConfig({ TIDEPOOL_CONFIG_FILE: path, TIDEPOOL_CONCURRENCY: '8' });
      expect(c.concurrency).toBe(8);
      expect(c.heartbeatInterval).toBe(1_000);
      expect(c.heartbeatTtl).toBe(5_000);
    });

    it('treats an empty file as no settings', () => {
      expect(loadConfig({}, file('empty.yaml', '')).maxRunners).toBe(10);
    });

    it('names the file setting and the key for a bad value in the file', () => {
      const path = file('bad-value.yaml', 'maxRunners: lots\n');
      const err = configError({}, path);
      expect(err.message).toContain('maxRunners');
      expect(err.message).toContain(path);
    });

    it('rejects an unknown key in the file', () => {
      const err = configError({}, file('unknown-key.yaml', 'maxRunners: 3\nturbo: true\n'));
      expect(err.message).toContain('turbo');
    });

    it('names TIDEPOOL_CONFIG_FILE when the file is missing', () => {
      const missing = join(dir, 'nope.yaml');
      const err = configError({ TIDEPOOL_CONFIG_FILE: missing });
      expect(err.message).toContain('TIDEPOOL_CONFIG_FILE');
      expect(err.message).toContain(missing);
    });

    it('names TIDEPOOL_CONFIG_FILE for invalid JSON', () => {
      const err = configError({}, file('broken.json', '{"maxRunners": '));
      expect(err.message).toContain('TIDEPOOL_CONFIG_FILE');
      expect(err.message).toMatch(/not valid JSON/);
    });

    it('names TIDEPOOL_CONFIG_FILE for invalid YAML', () => {
      const err = configError({}, file('broken.yaml', 'maxRunners: [1, 2\n'));
      expect(err.message).toContain('TIDEPOOL_CONFIG_FILE');
      expect(err.message).toMatch(/not valid YAML/);
    });

    it('names TIDEPOOL_CONFIG_FILE when the file is not a mapping', () => {
      const err = configError({}, file('list.yaml', '- maxRunners\n- 3\n'));
      expect(err.message).toContain('TIDEPOOL_CONFIG_FILE');
      expect(err.message).toMatch(/mapping/);
    });
  });
});

describe('settings from files (_FILE forms, generated credentials)', () => {
  afterEach(() => vi.unstubAllEnvs());

  it.each([
    ['TIDEPOOL_AMQP_URL_FILE', 'amqpUrl', 'amqp://tidepool:from-a-file@mq:5672'],
    ['TIDEPOOL_REDIS_URL_FILE', 'redisUrl', 'redis://tidepool:from-a-file@redis:6379'],
    ['TIDEPOOL_DASHBOARD_TOKEN_FILE', 'dashboardToken', 'a-token-from-a-file-0123456789'],
  ] as const)('reads %s, trailing newline trimmed', (name, key, value) => {
    expect(loadConfig({ [name]: file(`${key}.secret`, `${value}\n`) })[key]).toBe(value);
  });

  it('refuses a setting given both as a value and as a file, naming both', () => {
    const err = configError({ TIDEPOOL_REDIS_URL: 'redis://r:6379', TIDEPOOL_REDIS_URL_FILE: file('both', 'redis://r:6379') });
    expect(err.message).toContain('TIDEPOOL_REDIS_URL and TIDEPOOL_REDIS_URL_FILE');
  });

  it('names the setting and the path of an unreadable file, never its content', () => {
    const missing = join(dir, 'missing');
    expect(configError({ TIDEPOOL_AMQP_URL_FILE: missing }).message).toMatch(new RegExp(`^TIDEPOOL_AMQP_URL_FILE: cannot read ${missing}: ENOENT`));
    // A directory: readable as a path, not as a file.
    const notAFile = join(dir, 'a-dir');
    mkdirSync(notAFile);
    expect(configError({ TIDEPOOL_DASHBOARD_TOKEN_FILE: notAFile }).message).toContain(`TIDEPOOL_DASHBOARD_TOKEN_FILE: cannot read ${notAFile}`);
  });

  it('does not quote a bad value read from a file beyond what a URL shows', () => {
    const err = configError({ TIDEPOOL_AMQP_URL_FILE: file('bad-url', 'http://u:file-secret-77@mq\n'), TIDEPOOL_DASHBOARD_TOKEN_FILE: file('short', 'tok-secret-8\n') });
    expect(err.message).toContain('TIDEPOOL_AMQP_URL_FILE: must be an amqp://');
    expect(err.message).toContain('TIDEPOOL_DASHBOARD_TOKEN_FILE: at least 16 characters');
    expect(err.message).not.toMatch(/file-secret-77|tok-secret-8/);
  });

  it('defaults to the credentials scripts/setup generated, when there are any', () => {
    const home = join(dir, 'xdg');
    vi.stubEnv('XDG_CONFIG_HOME', home);
    expect(generatedCredentialsDir()).toBe(join(home, 'tidepool'));
    mkdirSync(join(home, 'tidepool'), { recursive: true, mode: 0o700 });
    writeFileSync(join(home, 'tidepool', 'amqp-url'), 'amqp://tidepool:generated@127.0.0.1:5672\n', { mode: 0o600 });
    const c = loadConfig({});
    expect(c.amqpUrl).toBe('amqp://tidepool:generated@127.0.0.1:5672');
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    // Anything given wins over the generated file.
    expect(loadConfig({ TIDEPOOL_AMQP_URL: 'amqp://other@mq' }).amqpUrl).toBe('amqp://other@mq');
    expect(loadConfig({}, undefined, { amqpUrl: 'amqp://flag@mq' }).amqpUrl).toBe('amqp://flag@mq');
    expect(loadConfig({}, file('given.yaml', 'amqpUrl: amqp://yaml@mq\n')).amqpUrl).toBe('amqp://yaml@mq');
  });

  it('names the generated file it could not read', () => {
    const home = join(dir, 'xdg-unreadable');
    vi.stubEnv('XDG_CONFIG_HOME', home);
    mkdirSync(join(home, 'tidepool', 'redis-url'), { recursive: true });
    chmodSync(join(home, 'tidepool'), 0o700);
    expect(configError({}).message).toContain(`TIDEPOOL_REDIS_URL: cannot read ${join(home, 'tidepool', 'redis-url')}`);
  });
});
