// The TLS settings: checked at start (a file unreadable, not PEM, a key without its certificate,
// a file for a non-TLS URL, runner pods without their Secret), read into what the clients take,
// handed to runners (local: the same paths; pods: a mounted Secret), and which failures are
// permanent. The connections themselves: test/security/tls.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates, type TestCertificates } from '../../bench/support/tls-certs.js';
import { isPermanentBrokerError } from '../../shared/broker/connection.js';
import { ConfigError, loadConfig, type ConfigInput } from '../../shared/config.js';
import { tlsFiles, tlsVerificationFailure, RUNNER_TLS_DIR } from '../../shared/tls.js';
import { KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import { kubernetesJobOptions } from '../../scaler/launchers.js';
import { runnerEnv } from '../../scaler/runner-env.js';
import { testLogger } from '../helpers/services.js';

const dir = mkdtempSync(join(tmpdir(), 'tidepool-tls-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let certs: TestCertificates;
beforeAll(async () => {
  certs = await makeTestCertificates(dir);
});

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const TLS_URLS = { amqpUrl: 'amqps://tp:S3cretPass@mq.example:5671', redisUrl: 'rediss://:S3cretPass@redis.example:6380' };

/** The message of the ConfigError loadConfig throws for these settings. */
function problem(overrides: Partial<ConfigInput>): string {
  try {
    loadConfig({}, undefined, { ...TLS_URLS, ...overrides });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('loadConfig did not throw');
}

describe('TLS settings at start', () => {
  it('takes a CA, a client certificate and its key per service, and reads them for the clients', () => {
    const config = loadConfig({}, undefined, { ...TLS_URLS, amqpTlsCaFile: certs.ca, amqpTlsCertFile: certs.clientCert, amqpTlsKeyFile: certs.clientKey, redisTlsCaFile: certs.ca });
    const amqp = tlsFiles(config, 'amqp')!;
    expect(amqp.ca!.toString()).toContain('BEGIN CERTIFICATE');
    expect(amqp.key!.toString()).toContain('PRIVATE KEY');
    expect(Object.keys(tlsFiles(config, 'redis')!)).toEqual(['ca']);
    expect(tlsFiles(loadConfig({}), 'amqp')).toBeUndefined();
  });

  it('stops on a file that cannot be read, naming the setting', () => {
    expect(problem({ amqpTlsCaFile: join(dir, 'missing.crt') })).toMatch(/TIDEPOOL_AMQP_TLS_CA_FILE: .*missing\.crt cannot be read \(ENOENT\)/);
  });

  it('stops on a file that is not PEM, or whose PEM does not parse', () => {
    expect(problem({ redisTlsCaFile: file('notes.txt', 'not a certificate\n') })).toMatch(/TIDEPOOL_REDIS_TLS_CA_FILE: .*notes\.txt holds no PEM certificate/);
    const mangled = file('mangled.crt', '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n');
    expect(problem({ redisTlsCaFile: mangled })).toContain('holds a certificate that does not parse');
  });

  it('never prints what a key file holds', () => {
    const key = file('bad.key', '-----BEGIN PRIVATE KEY-----\nS3cretKeyMaterialS3cretKeyMaterial\n-----END PRIVATE KEY-----\n');
    const message = problem({ amqpTlsCertFile: certs.clientCert, amqpTlsKeyFile: key });
    expect(message).toContain('TIDEPOOL_AMQP_TLS_KEY_FILE');
    expect(message).toContain('holds a private key that does not parse');
    expect(message).not.toContain('S3cretKeyMaterial');
  });

  it('refuses an encrypted key (there is no passphrase setting)', () => {
    const encrypted = join(dir, 'encrypted.key');
    execFileSync('openssl', ['pkey', '-in', certs.clientKey, '-aes256', '-passout', 'pass:pw', '-out', encrypted]);
    expect(problem({ redisTlsCertFile: certs.clientCert, redisTlsKeyFile: encrypted })).toContain('TIDEPOOL_REDIS_TLS_KEY_FILE: ' + encrypted + ' is an encrypted key');
  });

  it('wants a client certificate with its key, and that key', () => {
    expect(problem({ redisTlsCertFile: certs.clientCert })).toContain('TIDEPOOL_REDIS_TLS_KEY_FILE is required with TIDEPOOL_REDIS_TLS_CERT_FILE');
    expect(problem({ amqpTlsKeyFile: certs.clientKey })).toContain('TIDEPOOL_AMQP_TLS_CERT_FILE is required with TIDEPOOL_AMQP_TLS_KEY_FILE');
    expect(problem({ amqpTlsCertFile: certs.clientCert, amqpTlsKeyFile: certs.serverKey })).toContain('TIDEPOOL_AMQP_TLS_KEY_FILE: not the key of the certificate in TIDEPOOL_AMQP_TLS_CERT_FILE');
  });

  it('refuses a TLS file for a URL without TLS, naming both settings but not the URL', () => {
    const message = problem({ amqpUrl: 'amqp://tp:S3cretPass@mq.example', amqpTlsCaFile: certs.ca });
    expect(message).toContain('TIDEPOOL_AMQP_TLS_CA_FILE is set but TIDEPOOL_AMQP_URL is not a amqps:// URL');
    expect(message).not.toContain('S3cretPass');
    expect(problem({ redisUrl: 'redis://127.0.0.1:6379', redisTlsCaFile: certs.ca })).toContain('TIDEPOOL_REDIS_URL is not a rediss:// URL');
  });

  it('in kubernetes mode, wants the Secret runner pods mount the files from', () => {
    expect(problem({ runnerLauncher: 'kubernetes', amqpTlsCaFile: certs.ca })).toContain('TIDEPOOL_RUNNER_TLS_SECRET is required with TIDEPOOL_AMQP_TLS_CA_FILE when TIDEPOOL_RUNNER_LAUNCHER is kubernetes');
    expect(loadConfig({}, undefined, { ...TLS_URLS, runnerLauncher: 'kubernetes', amqpTlsCaFile: certs.ca, runnerTlsSecret: 'tidepool-tls' }).runnerTlsSecret).toBe('tidepool-tls');
    expect(loadConfig({}, undefined, { runnerLauncher: 'kubernetes' }).runnerTlsSecret).toBe('');
  });
});

describe('TLS files handed to runners', () => {
  it('a local runner gets the same paths, and NODE_EXTRA_CA_CERTS', () => {
    const config = loadConfig({}, undefined, { ...TLS_URLS, amqpTlsCaFile: certs.ca, redisTlsCertFile: certs.clientCert, redisTlsKeyFile: certs.clientKey });
    const env = runnerEnv(config, 'local', { PATH: '/bin', NODE_EXTRA_CA_CERTS: '/etc/ssl/extra.pem' });
    expect(env).toMatchObject({ TIDEPOOL_AMQP_TLS_CA_FILE: certs.ca, TIDEPOOL_REDIS_TLS_CERT_FILE: certs.clientCert, TIDEPOOL_REDIS_TLS_KEY_FILE: certs.clientKey, NODE_EXTRA_CA_CERTS: '/etc/ssl/extra.pem' });
  });

  it('a runner pod mounts them from the Secret, read-only, and its settings point there', () => {
    const config = loadConfig({}, undefined, { ...TLS_URLS, runnerLauncher: 'kubernetes', runnerTlsSecret: 'tidepool-tls', amqpTlsCaFile: certs.ca, amqpTlsCertFile: certs.clientCert, amqpTlsKeyFile: certs.clientKey });
    const options = kubernetesJobOptions(config);
    expect(options.tlsSecret).toBe('tidepool-tls');
    expect(options.env).toMatchObject({
      TIDEPOOL_AMQP_TLS_CA_FILE: `${RUNNER_TLS_DIR}/amqp-ca.crt`,
      TIDEPOOL_AMQP_TLS_CERT_FILE: `${RUNNER_TLS_DIR}/amqp-client.crt`,
      TIDEPOOL_AMQP_TLS_KEY_FILE: `${RUNNER_TLS_DIR}/amqp-client.key`,
      TIDEPOOL_REDIS_TLS_CA_FILE: '',
      TIDEPOOL_RUNNER_TLS_SECRET: 'tidepool-tls',
    });
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const spec = new KubernetesJobRunnerLauncher(kc, options, testLogger()).jobManifest('p-runner-1').spec!.template.spec!;
    expect(spec.volumes).toContainEqual({ name: 'tls', secret: { secretName: 'tidepool-tls', defaultMode: 0o444 } });
    expect(spec.containers[0]!.volumeMounts).toContainEqual({ name: 'tls', mountPath: RUNNER_TLS_DIR, readOnly: true });
    // Without the setting: no such volume.
    const plain = new KubernetesJobRunnerLauncher(kc, kubernetesJobOptions(loadConfig({})), testLogger()).jobManifest('p-runner-2').spec!.template.spec!;
    expect(plain.volumes!.map((v) => v.name)).toEqual(['tmp']);
  });
});

describe('TLS failures', () => {
  it('a certificate that fails verification is permanent, and the message says what to check', () => {
    for (const code of ['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']) {
      const err = Object.assign(new Error('x'), { code });
      expect(tlsVerificationFailure(err, 'amqp')?.message).toMatch(new RegExp(`^TLS verification failed for RabbitMQ \\(${code}\\): check amqpTlsCaFile`));
      expect(isPermanentBrokerError(err)).toBe(true);
    }
    const refused = Object.assign(new Error('tlsv13 alert certificate required'), { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' });
    expect(tlsVerificationFailure(refused, 'redis')?.message).toContain("TLS verification failed for Redis (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED): Redis refused this client's certificate: check redisTlsCertFile and redisTlsKeyFile");
  });

  it('a refused or reset connection is not', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT']) {
      const err = Object.assign(new Error(code), { code });
      expect(tlsVerificationFailure(err, 'redis')).toBeUndefined();
      expect(isPermanentBrokerError(err)).toBe(false);
    }
  });
});
