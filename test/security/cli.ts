// The built CLI as a child process, for the attacks that end at an operator's command line.
import { spawn } from 'node:child_process';
import { CLI_PATH } from '../../shared/paths.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function tidepool(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
