// A ConnectorLauncher with no processes, pods or broker: each connector is a function run in the
// test's own process, so the sync core can be driven in milliseconds and a test can script
// exactly how a connector behaves (fails, hangs, stops reading, echoes STATE out of order).
// It keeps what the runner relies on from a real launcher (the conformance suite proves it):
// the three streams with a pipe's backpressure, EOF both ways, an exit that waits for the
// output to be closed, and a kill that ends everything promptly whatever the script does.
import { PassThrough, Writable, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { z } from 'zod';
import { runInvocation, type Connector } from '../../connectors/lib/cli.js';
import { destinationJsonl } from '../../connectors/destination-jsonl/connector.js';
import { destinationPostgres } from '../../connectors/destination-postgres/connector.js';
import { sourceFaker } from '../../connectors/source-faker/connector.js';
import { sourcePostgres } from '../../connectors/source-postgres/connector.js';
import { ConnectorError } from '../../shared/errors.js';
import type { ConnectorExit, ConnectorLauncher, ConnectorProcess, ConnectorRun } from '../../shared/ports/connector-launcher.js';

/** What a scripted connector gets: the run (command, files as objects, connector definition), its three streams, and a signal aborted when it is killed. */
export interface ScriptContext {
  run: ConnectorRun;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  signal: AbortSignal;
}

// void, not undefined: a plain `async ({ stdout }) => { ... }` is then a script, code 0.
/** A connector as a function: resolves its exit code (void = 0); rejecting = exit 1 with the error on stderr. */
// eslint-disable-next-line @typescript-eslint/no-invalid-void-type
export type ScriptedConnector = (ctx: ScriptContext) => Promise<number | void>;

/** Scripts are named by image: `image: "memory/<name>"`. */
const IMAGE_PREFIX = 'memory/';

// A Linux pipe holds 64 KiB: a connector that stops reading, or a runner that stops reading its
// output, fills about that much before the writer has to wait, as it would with a process.
const PIPE_BYTES = 64 * 1024;

/**
 * Adapts a connector written with connectors/lib (a `Connector` definition) into a ScriptedConnector run in-process.
 * It does not watch the signal: a kill destroys its streams, so its next read or write fails,
 * which ends it the way a failed pipe ends the program.
 */
export function fromConnector<Schema extends z.ZodType>(connector: Connector<Schema>): ScriptedConnector {
  return ({ run, stdin, stdout, stderr }) => runInvocation(connector, { command: run.command, ...run.files }, { stdin, stdout, stderr });
}

// The reference connectors whose definitions can run in-process. The e2e-test ones are not
// here: they write to process.stdout/stderr directly and set the process's exit code.
const REFERENCE = new Map<string, ScriptedConnector>([
  ['source-faker', fromConnector(sourceFaker)],
  ['source-postgres', fromConnector(sourcePostgres)],
  ['destination-jsonl', fromConnector(destinationJsonl)],
  ['destination-postgres', fromConnector(destinationPostgres)],
]);

export class InMemoryConnectorLauncher implements ConnectorLauncher {
  readonly kind = 'memory';
  /** Every run started, in order, for assertions. */
  readonly started: ConnectorRun[] = [];
  readonly #scripts = new Map<string, ScriptedConnector>();

  constructor(scripts: Record<string, ScriptedConnector> = {}) {
    for (const [name, script] of Object.entries(scripts)) this.define(name, script);
  }

  /** Scripts are found by the run's connector: `image: "memory/<name>"` → scripts[name]; `connector: "<builtin name>"` → the reference connector run in-process. */
  define(name: string, script: ScriptedConnector): this {
    this.#scripts.set(name, script);
    return this;
  }

  start(run: ConnectorRun): Promise<ConnectorProcess> {
    // Through a promise, as from the real launchers: a refusal is a rejection, never a throw.
    return Promise.resolve().then(() => {
      const script = this.#scriptFor(run);
      // Files reach a real connector as JSON text: the script gets its own parsed copy, so
      // neither side sees the other mutate them, and what JSON cannot carry is dropped.
      const files = JSON.parse(JSON.stringify(run.files)) as ConnectorRun['files'];
      const proc = launch(script, { ...run, files });
      this.started.push(run);
      return proc;
    });
  }

  /** Like a program that is not there: a permanent not_started failure, thrown by start(). */
  #scriptFor(run: ConnectorRun): ScriptedConnector {
    const { connector, image } = run.connector;
    let problem: string;
    if (connector !== undefined) {
      const script = REFERENCE.get(connector);
      if (script) return script;
      problem = `reference connector "${connector}" cannot run in-process (script it as image "${IMAGE_PREFIX}<name>")`;
    } else if (image?.startsWith(IMAGE_PREFIX)) {
      const name = image.slice(IMAGE_PREFIX.length);
      const script = this.#scripts.get(name);
      if (script) return script;
      problem = `no script "${name}" in the in-memory launcher (define it first)`;
    } else {
      problem = `the in-memory launcher runs "${IMAGE_PREFIX}<name>" images and reference connectors, not ${image !== undefined ? `image "${image}"` : 'commands'}`;
    }
    throw ConnectorError.of({ kind: 'not_started' }, `${run.role} could not start: ${problem}`, run.role);
  }
}

/** Runs the script at once and hands out its process: streams, exit, kill. */
function launch(script: ScriptedConnector, run: ConnectorRun): ConnectorProcess {
  const stdin = new Pipe();
  const stdout = new Pipe();
  const stderr = new Pipe();
  const abort = new AbortController();
  let settled = false;
  let settle!: (exit: ConnectorExit) => void;
  const exit = new Promise<ConnectorExit>((resolve) => {
    settle = (e) => {
      if (settled) return;
      settled = true;
      resolve(e);
    };
  });

  void runToExit(script, { run, stdin: stdin.reader, stdout: stdout.writer, stderr: stderr.writer, signal: abort.signal }).then(async (code) => {
    if (settled) return;
    // The connector has ended: its stdin closes, and whatever it wrote goes out before EOF.
    stdin.hangUp();
    await Promise.all([stdout.close(), stderr.close()]);
    settle({ code, signal: null });
  });

  return {
    stdin: stdin.writer,
    stdout: stdout.reader,
    stderr: stderr.reader,
    exit,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (settled) return;
      // Like a signal that cannot be caught: the script may keep running, but nothing it does
      // reaches the runner any more, and the runner reads what it wrote before, then EOF.
      abort.abort();
      stdin.hangUp();
      stdout.cut();
      stderr.cut();
      settle({ code: null, signal });
    },
  };
}

async function runToExit(script: ScriptedConnector, ctx: ScriptContext): Promise<number> {
  try {
    return (await script(ctx)) ?? 0;
  } catch (err) {
    // What an uncaught error does to a node program: a line on stderr, exit code 1.
    ctx.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/**
 * One of a connector's streams as a pipe between two ends: one side writes to `writer` (the
 * runner for stdin, the connector for stdout and stderr), the other reads `reader`. Two
 * streams rather than one PassThrough so that either end can go away as with a process: the
 * writer then sees EPIPE, the reader what was written and EOF. Each end buffers a pipe's worth.
 */
class Pipe {
  readonly reader = new PassThrough({ highWaterMark: PIPE_BYTES });
  readonly writer: Writable;

  constructor() {
    const reader = this.reader;
    // A write to a pipe completes later, from the event loop: even a writer that never has to
    // wait for its reader (a source in a hot loop) lets timers and I/O run, as with a process.
    // Completing at once, or on 'drain' (which a flowing reader emits from process.nextTick),
    // would run such a writer and its reader in one unbroken chain of ticks.
    const forward = (chunks: Buffer[], callback: (err?: Error) => void): void => {
      if (reader.destroyed) {
        setImmediate(callback, brokenPipe());
        return;
      }
      let room = true;
      for (const chunk of chunks) room = reader.write(chunk);
      if (room) {
        setImmediate(callback);
        return;
      }
      const resume = (): void => {
        reader.off('drain', resume);
        reader.off('close', resume);
        setImmediate(callback, reader.destroyed ? brokenPipe() : undefined);
      };
      reader.on('drain', resume);
      reader.on('close', resume);
    };
    this.writer = new Writable({
      highWaterMark: PIPE_BYTES,
      write: (chunk: Buffer, _encoding, callback) => forward([chunk], callback),
      // Many small writes queued while one was in flight go on together, as one pipe write.
      writev: (chunks, callback) => forward(chunks.map(({ chunk }) => chunk as Buffer), callback),
      final(callback) {
        reader.end();
        callback();
      },
    });
    // A writer whose reader left gets EPIPE, in its write callbacks and as an 'error' event. A
    // script that does not listen (or writes after a kill) must not crash the test process with
    // it, and the runner's stdin drops it as the local launcher does; the exit says what happened.
    this.writer.on('error', () => undefined);
  }

  /** The writing end is done: what it wrote goes out, then EOF. Resolves once the reader has it all. */
  close(): Promise<void> {
    this.writer.end();
    return finished(this.writer).catch(() => undefined);
  }

  /** The writing end was killed: its later writes go nowhere; the reader gets EOF after what came before. */
  cut(): void {
    this.writer.destroy();
    this.reader.end();
  }

  /**
   * The reading end is gone (the connector ended or was killed): both ends close and what waits
   * is dropped, as node destroys a child's stdin when it exits. A script still reading sees its
   * input end prematurely.
   */
  hangUp(): void {
    this.reader.destroy();
    this.writer.destroy();
  }
}

/** What a process writing to a pipe nobody reads any more gets. */
function brokenPipe(): NodeJS.ErrnoException {
  return Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
}
