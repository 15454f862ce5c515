// TLS to the broker and the store: the CA that signed their certificates and this process's
// client certificate and key, from the files the *Tls*File settings name; and which TLS failures
// are permanent.
//
// The files are checked when the settings are loaded (a process with an unreadable or mangled
// file stops before connecting) and read once per process: every connection and reconnection
// uses what was read at start. A process given new files (a rotated certificate) is restarted.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

export type TlsService = 'amqp' | 'redis';

/** What a TLS client takes (tls.connect's options of the same names), PEM. */
export interface TlsFiles {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

type Role = keyof TlsFiles;

export const TLS_FILE_SETTINGS = {
  amqp: { ca: 'amqpTlsCaFile', cert: 'amqpTlsCertFile', key: 'amqpTlsKeyFile' },
  redis: { ca: 'redisTlsCaFile', cert: 'redisTlsCertFile', key: 'redisTlsKeyFile' },
} as const;

export type TlsFileSetting = (typeof TLS_FILE_SETTINGS)[TlsService][Role];
/** The settings this module reads (shared/config.ts declares them; not imported from there, which imports this). */
type TlsFileSettings = Readonly<Record<TlsFileSetting, string>>;
type TlsSettings = TlsFileSettings & Readonly<Record<'amqpUrl' | 'redisUrl' | 'runnerLauncher' | 'runnerTlsSecret', string>>;

const SERVICES = {
  amqp: { name: 'RabbitMQ', url: 'amqpUrl', scheme: 'amqps://' },
  redis: { name: 'Redis', url: 'redisUrl', scheme: 'rediss://' },
} as const;

const ROLES: readonly Role[] = ['ca', 'cert', 'key'];

/** Every TLS file setting, with the name of its file (its key) in the Secret runnerTlsSecret names. */
export const TLS_SECRET_KEYS: Readonly<Record<TlsFileSetting, string>> = {
  amqpTlsCaFile: 'amqp-ca.crt',
  amqpTlsCertFile: 'amqp-client.crt',
  amqpTlsKeyFile: 'amqp-client.key',
  redisTlsCaFile: 'redis-ca.crt',
  redisTlsCertFile: 'redis-client.crt',
  redisTlsKeyFile: 'redis-client.key',
};

/** Where a runner pod mounts that Secret (scaler/kubernetes-job.ts). */
export const RUNNER_TLS_DIR = '/etc/tidepool/tls';

/**
 * The TLS file settings of a runner pod: each one the scaler has set names its file in the
 * mounted Secret instead (the scaler's own paths mean nothing in the pod).
 */
export function podTlsFileSettings(config: TlsFileSettings): Partial<Record<TlsFileSetting, string>> {
  const settings = Object.entries(TLS_SECRET_KEYS) as Array<[TlsFileSetting, string]>;
  return Object.fromEntries(settings.filter(([setting]) => config[setting] !== '').map(([setting, key]) => [setting, `${RUNNER_TLS_DIR}/${key}`]));
}

const read = new Map<string, Buffer>();

function readOnce(path: string): Buffer {
  let content = read.get(path);
  if (!content) {
    content = readFileSync(path);
    read.set(path, content);
  }
  return content;
}

/** readOnce, with an error that says why (ENOENT, EACCES). */
function readChecked(path: string): Buffer {
  try {
    return readOnce(path);
  } catch (err) {
    throw new Error(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM file, in order; throws (saying what, for "<path> …") if there is none or one does not parse. */
function certificates(pem: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new Error('holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch {
      throw new Error(`holds a certificate that does not parse (number ${i + 1})`);
    }
  });
}

/** The key of a PEM file. Its errors never quote the file: it holds a private key. */
function privateKey(pem: Buffer): KeyObject {
  const text = pem.toString('latin1');
  if (!text.includes('PRIVATE KEY-----')) throw new Error('holds no PEM private key (-----BEGIN PRIVATE KEY-----)');
  // PKCS#8's ENCRYPTED PRIVATE KEY, or the older Proc-Type header of an RSA/EC key.
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) throw new Error('is an encrypted key: give it unencrypted (there is no passphrase setting)');
  try {
    return createPrivateKey(pem);
  } catch {
    throw new Error('holds a private key that does not parse');
  }
}

/**
 * What is wrong with the TLS file settings, one line each, starting with the setting to blame
 * (as `name` gives it): a file unreadable or not PEM, a certificate without its key (or the
 * reverse, or the key of another certificate), a file for a service whose URL is not a TLS one.
 * Reads the files (once per process).
 */
export function tlsSettingProblems(config: TlsSettings, name: (setting: keyof TlsSettings) => string = String): string[] {
  const problems: string[] = [];
  for (const service of ['amqp', 'redis'] as const) {
    const settings = TLS_FILE_SETTINGS[service];
    const { url, scheme } = SERVICES[service];
    const given = ROLES.filter((role) => config[settings[role]] !== '');
    if (given.length === 0) continue;
    if (!config[url].startsWith(scheme)) problems.push(`${name(settings[given[0]!])} is set but ${name(url)} is not a ${scheme} URL: the file would not be used`);
    if (given.includes('cert') !== given.includes('key')) {
      const [has, lacks] = given.includes('cert') ? (['cert', 'key'] as const) : (['key', 'cert'] as const);
      problems.push(`${name(settings[lacks])} is required with ${name(settings[has])}: a client certificate goes with its key`);
    }
    let cert: X509Certificate | undefined;
    let key: KeyObject | undefined;
    for (const role of given) {
      const path = config[settings[role]];
      try {
        const content = readChecked(path);
        if (role === 'key') key = privateKey(content);
        else if (role === 'cert') cert = certificates(content.toString('utf8'))[0];
        else certificates(content.toString('utf8'));
      } catch (err) {
        problems.push(`${name(settings[role])}: ${path} ${(err as Error).message}`);
      }
    }
    if (cert && key && !cert.checkPrivateKey(key)) problems.push(`${name(settings.key)}: not the key of the certificate in ${name(settings.cert)}`);
  }
  // A runner pod cannot read the scaler's files: they reach it from a Secret, or not at all.
  const set = (Object.keys(TLS_SECRET_KEYS) as TlsFileSetting[]).find((setting) => config[setting] !== '');
  if (set && config.runnerLauncher === 'kubernetes' && config.runnerTlsSecret === '') {
    problems.push(`${name('runnerTlsSecret')} is required with ${name(set)} when ${name('runnerLauncher')} is kubernetes: runner pods mount their TLS files from that Secret`);
  }
  return problems;
}

/**
 * The CA, client certificate and key to connect to `service` with, as read at start; undefined
 * when no TLS file is set (a TLS URL then trusts the system's CAs, as Node does by default).
 */
export function tlsFiles(config: TlsFileSettings, service: TlsService): TlsFiles | undefined {
  const files: TlsFiles = {};
  for (const role of ROLES) {
    const path = config[TLS_FILE_SETTINGS[service][role]];
    if (path !== '') files[role] = readOnce(path);
  }
  return Object.keys(files).length > 0 ? files : undefined;
}

/** OpenSSL's verification failures of the server's certificate, as Node names them. */
const VERIFICATION_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * The server's alerts refusing this client's certificate: none given to a server that requires
 * one, one it does not trust, expired or revoked. With TLS 1.3 they arrive after the client's
 * side of the handshake is done, as the socket's error.
 */
const REFUSAL_CODE = /^ERR_SSL_(TLSV13_ALERT_CERTIFICATE_REQUIRED|SSLV3_ALERT_BAD_CERTIFICATE|SSLV3_ALERT_CERTIFICATE_(EXPIRED|REVOKED|UNKNOWN|UNSUPPORTED)|TLSV1_ALERT_UNKNOWN_CA|TLSV1_ALERT_ACCESS_DENIED)$/;

/**
 * A TLS handshake that failed on a certificate: no try can fix it (the files are read once, the
 * server's certificate does not change by waiting), so the process stops and says what to check
 * instead of reconnecting for minutes.
 */
export class TlsVerificationError extends Error {
  override readonly name = 'TlsVerificationError';
  constructor(
    readonly service: TlsService,
    readonly code: string,
    options?: ErrorOptions,
  ) {
    const settings = TLS_FILE_SETTINGS[service];
    const { name } = SERVICES[service];
    const check = REFUSAL_CODE.test(code)
      ? `${name} refused this client's certificate: check ${settings.cert} and ${settings.key} (a certificate signed by a CA ${name} trusts, and its key)`
      : `check ${settings.ca} (the CA that signed ${name}'s certificate) and that the certificate names the URL's host and is in date`;
    super(`TLS verification failed for ${name} (${code}): ${check}`, options);
  }
}

/** `err` (a connection's error) as a permanent TLS failure, or undefined if it is anything else. */
export function tlsVerificationFailure(err: unknown, service: TlsService): TlsVerificationError | undefined {
  if (err instanceof TlsVerificationError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !(VERIFICATION_CODES.has(code) || REFUSAL_CODE.test(code))) return undefined;
  return new TlsVerificationError(service, code, { cause: err });
}
