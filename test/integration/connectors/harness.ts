// Runs the compiled connector programs as real processes, with real files, for the tests.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { AirbyteMessage, AirbyteStateMessage, ConfiguredAirbyteCatalog } from '../../../shared/protocol.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export type ConnectorName =
  | 'source-faker'
  | 'destination-jsonl'
  | 'source-postgres'
  | 'destination-postgres'
  | 'source-e2e-test'
  | 'destination-e2e-test';

export function connectorPath(name: ConnectorName): string {
  const path = join(ROOT, 'dist', 'connectors', name, 'main.js');
  if (!existsSync(path)) throw new Error(`${path} is missing: build first (npx tsc -p tsconfig.build.json)`);
  return path;
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
  messages: AirbyteMessage[];
}

/** Runs a connector to completion, feeding it `stdin` (then EOF). */
export async function run(name: ConnectorName, args: string[], stdin = ''): Promise<Finished> {
  const child = spawn(process.execPath, [connectorPath(name), ...args], { stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.on('error', () => undefined); // a connector that fails early closes its stdin
  child.stdin.end(stdin);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  return { code, stdout, stderr, messages: parseMessages(stdout) };
}

export function parseMessages(stdout: string): AirbyteMessage[] {
  return stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as AirbyteMessage);
}

/**
 * A connector kept running so a test can talk to it line by line: send some input, wait for
 * a given output line, look at the world at that moment, send more.
 */
export class LiveConnector {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  #waiters: (() => void)[] = [];

  constructor(name: ConnectorName, args: string[]) {
    this.child = spawn(process.execPath, [connectorPath(name), ...args], { stdio: 'pipe' });
    this.child.stdin.on('error', () => undefined);
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.lines.push(line);
      this.#wake();
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code) => {
        this.#wake();
        resolve(code);
      });
    });
  }

  send(...lines: string[]): void {
    this.child.stdin.write(lines.map((line) => `${line}\n`).join(''));
  }

  end(): void {
    this.child.stdin.end();
  }

  /** Waits until the connector has printed `count` lines in all, or fails after `timeoutMs`. */
  async waitForLines(count: number, timeoutMs = 20_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length < count) {
      if (this.child.exitCode !== null) {
        throw new Error(`connector exited (${this.child.exitCode}) after ${this.lines.length} lines: ${this.stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${count} lines, got ${this.lines.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.lines.slice(0, count);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

export interface TempDir {
  path: string;
  file(name: string, value: unknown): Promise<string>;
  remove(): Promise<void>;
}

export async function tempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `tidepool-${prefix}-`));
  return {
    path,
    async file(name, value) {
      const file = join(path, name);
      await writeFile(file, typeof value === 'string' ? value : JSON.stringify(value));
      return file;
    },
    remove: () => rm(path, { recursive: true, force: true }),
  };
}

export function records(messages: AirbyteMessage[], stream?: string): Record<string, unknown>[] {
  return messages.flatMap((message) =>
    message.type === 'RECORD' && (stream === undefined || message.record.stream === stream) ? [message.record.data] : [],
  );
}

export function states(messages: AirbyteMessage[]): AirbyteStateMessage[] {
  return messages.flatMap((message) => (message.type === 'STATE' ? [message.state] : []));
}

export function errorTraces(messages: AirbyteMessage[]): NonNullable<Extract<AirbyteMessage, { type: 'TRACE' }>['trace']['error']>[] {
  return messages.flatMap((message) =>
    message.type === 'TRACE' && message.trace.type === 'ERROR' && message.trace.error ? [message.trace.error] : [],
  );
}

export function recordLine(stream: string, data: Record<string, unknown>, namespace?: string): string {
  return JSON.stringify({
    type: 'RECORD',
    record: { stream, ...(namespace === undefined ? {} : { namespace }), data, emitted_at: 1_700_000_000_000 },
  });
}

export function stateLine(stream: string, cursor: unknown): string {
  return JSON.stringify({
    type: 'STATE',
    state: { type: 'STREAM', stream: { stream_descriptor: { name: stream }, stream_state: { cursor } } },
  });
}

/** A TRACE STREAM_STATUS line, as tidepool's runner sends them around a sync's records. */
export function statusLine(stream: string, status: 'STARTED' | 'RUNNING' | 'COMPLETE' | 'INCOMPLETE', namespace?: string): string {
  return JSON.stringify({
    type: 'TRACE',
    trace: {
      type: 'STREAM_STATUS',
      emitted_at: 1_700_000_000_000,
      stream_status: { stream_descriptor: { name: stream, ...(namespace === undefined ? {} : { namespace }) }, status },
    },
  });
}

export interface StreamOptions {
  name: string;
  namespace?: string;
  properties?: Record<string, unknown>;
  syncMode?: 'full_refresh' | 'incremental';
  destinationSyncMode?: 'overwrite' | 'append' | 'append_dedup';
  cursorField?: string[];
  primaryKey?: string[][];
}

export function catalogOf(...streams: StreamOptions[]): ConfiguredAirbyteCatalog {
  return {
    streams: streams.map((options) => ({
      stream: {
        name: options.name,
        ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
        json_schema: { type: 'object', properties: options.properties ?? {} },
        supported_sync_modes: ['full_refresh', 'incremental'],
      },
      sync_mode: options.syncMode ?? 'full_refresh',
      destination_sync_mode: options.destinationSyncMode ?? 'append',
      ...(options.cursorField === undefined ? {} : { cursor_field: options.cursorField }),
      ...(options.primaryKey === undefined ? {} : { primary_key: options.primaryKey }),
    })),
  };
}
