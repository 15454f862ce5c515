// Real Airbyte connectors from PyPI in tests: whether a test of one runs, skips or fails when it
// is missing, and running one to its end. Where they are installed is in bench/support/airbyte.ts
// (the first-sync bench runs them too), re-exported here for the tests.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export { sourceFakerCommand, SOURCE_FAKER_VERSION } from '../../bench/support/airbyte.js';

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
