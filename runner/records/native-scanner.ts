// The record scanner's compiled fast path (native/record-scanner.c, built by scripts/build-native
// into dist/), when it was built; the pipe scans with the JavaScript scanner alone otherwise.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../shared/paths.js';

/**
 * Takes complete lines from buf[from] while each is a plain RECORD line the JavaScript scanner
 * would accept with the same result, of the first line's stream and namespace, no longer than
 * maxLineBytes. Returns where the first line not taken starts (`from` when none was); `out` (6
 * long) gets the number of records, their bytes (newlines and CRs excluded), the first line's
 * stream name bounds and its namespace's (-1, -1 without one). A line it does not take may be
 * fine: the JavaScript scanner decides it.
 */
export type RecordRunScanner = (buf: Uint8Array, from: number, maxLineBytes: number, out: Int32Array) => number;

/** Where scripts/build-native puts the module (under dist/, for tests run from the sources too). */
const MODULE_PATH = join(PACKAGE_ROOT, 'dist', 'runner', 'records', 'native', 'record-scanner.node');

function load(): { scanner: RecordRunScanner | undefined; problem: string | undefined } {
  try {
    const loaded = createRequire(import.meta.url)(MODULE_PATH) as { scanRecords?: unknown };
    if (typeof loaded.scanRecords !== 'function') return { scanner: undefined, problem: `${MODULE_PATH} has no scanRecords` };
    return { scanner: loaded.scanRecords as RecordRunScanner, problem: undefined };
  } catch (err) {
    return { scanner: undefined, problem: (err as Error).message.split('\n')[0] };
  }
}

const loaded = load();

/** The compiled fast path, or undefined when it was not built (or does not load here). */
export const nativeRecordScanner: RecordRunScanner | undefined = loaded.scanner;

/** Which scanner runners use, for their start-up log line. */
export function recordScannerInUse(): { scanner: 'native' | 'javascript'; problem?: string } {
  return loaded.scanner ? { scanner: 'native' } : { scanner: 'javascript', ...(loaded.problem ? { problem: loaded.problem } : {}) };
}
