// How a bench program runs: its options read strictly (a typo must not run a ten-minute bench
// with the defaults), --help and a wrong option answered the same way by every bench, progress on
// stderr (stdout is the result, often JSON for a script to read), and a cleanup that still runs
// when the bench is interrupted, since benches make prefixes, namespaces and temp dirs.
import { parseArgs } from 'node:util';
import { parseDuration } from '../../shared/units.js';

type Kind = 'string' | 'boolean';
type Values<S extends Record<string, Kind>> = { [K in keyof S]?: S[K] extends 'boolean' ? boolean : string };

/**
 * `argv` read against `spec` (each option's name and kind; --help and -h come with every bench):
 * an unknown option or one without its value throws. undefined: help was asked for.
 */
export function readArgs<const S extends Record<string, Kind>>(argv: string[], spec: S): Values<S> | undefined {
  const options: Record<string, { type: Kind; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, type] of Object.entries(spec)) options[name] = { type };
  const { values } = parseArgs({ args: argv, strict: true, options });
  return values['help'] ? undefined : (values as Values<S>);
}

/** An integer option ≥ `min`, `fallback` when it is not given. */
export function integerOption(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min} (got ${value})`);
  return n;
}

/** A duration option (20s, 5m) in ms, `fallback` when it is not given. */
export function durationOption(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new Error(`--${name}: not a duration: ${value} (use e.g. 20s, 5m)`);
  return ms;
}

/**
 * Runs a bench: `parse` turns the command line into its options (undefined for --help, a throw
 * for a wrong option), `main` runs it. Returns the exit code: 0 after --help, 2 for a wrong
 * option (with the reason and the usage), else main's.
 */
export async function runBench<O>(usage: string, parse: (argv: string[]) => O | undefined, main: (options: O) => Promise<number>): Promise<number> {
  let options: O | undefined;
  try {
    options = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n\n${usage}\n`);
    return 2;
  }
  if (options === undefined) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  return main(options);
}

/** A progress line on stderr: stdout is kept for the result. */
export function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

/**
 * On SIGINT or SIGTERM: `cleanup`, then exit 130; a second signal exits at once. `interrupted()`
 * tells the bench not to clean up a second time once it stops.
 */
export function cleanUpOnSignal(cleanup: () => Promise<void>): { interrupted: () => boolean } {
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    progress('interrupted: cleaning up');
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { interrupted: () => interrupted };
}
