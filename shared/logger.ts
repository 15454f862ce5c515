// One root pino logger per process; units of work take a child({ component, syncId, ... }).
// Credentials never reach the log: the known secret-bearing fields are redacted by path, and
// URLs with a password are masked wherever they appear as a field value.
import { destination as pinoDestination, pino, stdTimeFunctions, type Logger } from 'pino';
import { maskUrlCredentials } from './redact.js';

export type { Logger } from 'pino';

const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'config.*.password',
  'secret',
  '*.secret',
  '*.token',
  '*.apiKey',
  '*.api_key',
  'headers.authorization',
];

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Where lines go; default stdout. */
  destination?: NodeJS.WritableStream | number;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? 1;
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid, ...(options.name ? { name: options.name } : {}) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => scrubUrls(object),
      },
    },
    typeof destination === 'number' ? pinoDestination({ fd: destination, sync: false }) : destination,
  );
}

function scrubUrls(object: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(object)) {
    if (typeof value === 'string' && value.includes('://')) {
      const masked = maskUrlCredentials(value);
      if (masked !== value) {
        copy ??= { ...object };
        copy[key] = masked;
      }
    }
  }
  return copy ?? object;
}
