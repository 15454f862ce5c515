// Real Airbyte connectors from PyPI, as scripts/airbyte-connectors installs them (scripts/setup
// runs it): one virtual environment per pinned version under a cache root. Tests that run them
// ask here where they are, and whether to run, skip or fail when they are missing.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Keep in step with scripts/airbyte-connectors (SOURCE_FAKER_VERSION). */
export const SOURCE_FAKER_VERSION = '7.2.1';

/** The cache root; TIDEPOOL_TEST_AIRBYTE_VENVS overrides it, as it does for the script. */
export function airbyteVenvsRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env['TIDEPOOL_TEST_AIRBYTE_VENVS'] || '/var/cache/tidepool/venvs';
}

/** The venv of airbyte-source-faker (a symlink the script renames into place once the install is complete). */
export function sourceFakerVenv(env: NodeJS.ProcessEnv = process.env): string {
  return join(airbyteVenvsRoot(env), `airbyte-source-faker-${SOURCE_FAKER_VERSION}`);
}

/** The connector program: `source-faker spec | check | discover | read ...`. */
export function sourceFakerCommand(env: NodeJS.ProcessEnv = process.env): string {
  return join(sourceFakerVenv(env), 'bin', 'source-faker');
}

export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = (env['CI'] ?? '').toLowerCase();
  return ci !== '' && ci !== '0' && ci !== 'false';
}

/**
 * Whether a test of a real connector at `program` runs. Missing on a developer's machine: skip,
 * with the reason. Missing in CI: run, so that the test fails (a CI that silently skipped the
 * only real connector would prove nothing).
 */
export function realConnectorGate(program: string, env: NodeJS.ProcessEnv = process.env): { run: true } | { run: false; reason: string } {
  if (existsSync(program) || inCI(env)) return { run: true };
  return { run: false, reason: `${program} is not installed (run scripts/airbyte-connectors; in CI this fails instead)` };
}

/** One line of a connector's stdout, parsed. */
export type ProtocolMessage = { type: string } & Record<string, unknown>;

/**
 * Runs a connector command to its end and returns its stdout as messages (lines that are not
 * JSON are an error: a connector's stdout is protocol only). Fails on a non-zero exit, with
 * the stderr tail.
 */
export async function runConnector(program: string, args: string[], timeoutMs = 60_000): Promise<ProtocolMessage[]> {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  const stdout = Buffer.concat(out).toString('utf8');
  if (code !== 0) {
    const tail = Buffer.concat(err).toString('utf8').split('\n').slice(-20).join('\n');
    throw new Error(`${program} ${args.join(' ')} exited with ${code}:\n${tail}\n${stdout.split('\n').slice(-5).join('\n')}`);
  }
  return stdout
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line, i) => {
      try {
        return JSON.parse(line) as ProtocolMessage;
      } catch {
        throw new Error(`${program} ${args[0] ?? ''}: stdout line ${i + 1} is not JSON: ${line.slice(0, 200)}`);
      }
    });
}
