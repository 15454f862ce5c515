// One TCP port per runner for every connector pod's stdio.
//
// Airbyte's first socat design needed a port per stream and found managing them "non-trivial".
// Here connector pods dial the runner instead: each connection starts with one hello line,
//
//     TIDEPOOL/1 <token> <stream>\n        stream = stdin | stdout | stderr | heartbeat | exit
//
// where the token is a random secret made per connector run. The server hands the socket to
// that run's session; an unknown token, a stream already attached, or a malformed or late hello
// closes the connection, and only so many connections may wait for theirs at once. So one port
// serves all runs, no pod can read or inject into another run's streams, and idle connections
// cannot pile up.
//
// A pod with direct stdio reports its connector's exit code on an `exit` connection (the code
// and a newline after the hello) the moment the connector ends: the kubelet reports a container's
// end only at its next status pass, up to a second later, and a sync would wait that second for
// each pod.
//
// EOF travels through: the source's stdout connection closes when the connector exits (its own
// socket, or the sidecar's copy of its pipe) → the session's stdout ends; the runner ends the
// destination's stdin → the server ends that socket → the connector reads EOF (on the socket,
// or on the pipe the sidecar's copy closes).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import type { Logger } from '../../shared/logger.js';

export type StreamName = 'stdin' | 'stdout' | 'stderr' | 'heartbeat' | 'exit';
const DATA_STREAMS = ['stdin', 'stdout', 'stderr'] as const;
const HELLO = /^TIDEPOOL\/1 ([0-9a-f]{64}) (stdin|stdout|stderr|heartbeat|exit)$/;
const MAX_HELLO_BYTES = 256;
/** An exit report: a shell's exit status, 0-255, and its newline. */
const EXIT_REPORT = /^(\d{1,3})\r?$/;
const MAX_EXIT_REPORT_BYTES = 8;
/**
 * Connections that may wait for their hello at once. A connector pod opens at most five, and a
 * runner runs a few connectors at a time; anyone who can reach the port could otherwise hold any
 * number of idle sockets (file descriptors, buffers). Past this, a new connection is closed at once.
 */
export const MAX_PENDING_HELLOS = 64;
/** How long a connection may take to send its hello: a pod has it written right after it connects. */
export const HELLO_TIMEOUT_MS = 5_000;

export class StreamSession {
  /** The runner writes here; bytes flow to the pod's stdin connection once it is made. */
  readonly stdin = new PassThrough();
  /** What the pod's stdout connection sends. Ends when that connection ends. */
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  private readonly attached = new Set<StreamName>();
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Map<StreamName, () => void>();
  readonly connected: Record<'stdin' | 'stdout' | 'stderr', Promise<void>>;
  /**
   * The connector's exit code as its pod reported it (direct stdio only; never settles
   * otherwise). As trustworthy as the connector itself, which chooses its exit code anyway.
   */
  readonly reportedExit: Promise<number>;
  private reportExit: (code: number) => void = () => undefined;

  constructor(readonly token: string) {
    const make = (name: StreamName) => new Promise<void>((resolve) => this.waiters.set(name, resolve));
    this.connected = { stdin: make('stdin'), stdout: make('stdout'), stderr: make('stderr') };
    this.reportedExit = new Promise((resolve) => (this.reportExit = resolve));
  }

  /** True when the stream was free and is now this socket's. */
  attach(name: StreamName, socket: Socket, rest: Buffer): boolean {
    if (name === 'heartbeat') {
      socket.end('ok\n');
      return true;
    }
    if (this.attached.has(name)) return false;
    this.attached.add(name);
    if (name === 'exit') {
      this.readExitReport(socket, rest);
      return true;
    }
    this.track(socket);
    if (name === 'stdin') {
      // Anything the pod sends on its stdin connection is ignored; runner → pod only.
      socket.resume();
      this.stdin.pipe(socket);
      socket.on('error', () => this.stdin.unpipe(socket));
    } else {
      const target = name === 'stdout' ? this.stdout : this.stderr;
      if (rest.length > 0) target.write(rest);
      socket.pipe(target);
      // Half-open sockets: when the pod is done sending, close our (unused) side too.
      socket.once('end', () => socket.end());
      // A reset connection ends the stream too: the pod's exit status says what happened.
      socket.on('error', () => target.end());
    }
    this.waiters.get(name)?.();
    return true;
  }

  /** One line, the exit code; anything else (too long, not a code, cut short) reports nothing. */
  private readExitReport(socket: Socket, rest: Buffer): void {
    let text = rest.toString('latin1');
    const settle = () => {
      const nl = text.indexOf('\n');
      if (nl < 0 && text.length <= MAX_EXIT_REPORT_BYTES) return false;
      const m = nl >= 0 ? EXIT_REPORT.exec(text.slice(0, nl)) : null;
      const code = m ? Number(m[1]) : NaN;
      if (code <= 255) this.reportExit(code);
      socket.destroy();
      return true;
    };
    if (settle()) return;
    // The report comes with the hello, in one write: a connection that holds it back is dropped.
    const timer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);
    socket.once('close', () => clearTimeout(timer));
    this.track(socket);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      settle();
    });
    socket.once('end', () => socket.destroy());
    socket.resume();
  }

  /** A connection of this session, until it closes: destroy() drops it. */
  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** Drops every connection of this session (after the run, or to abort it). */
  destroy(): void {
    for (const s of this.sockets) s.destroy();
    this.stdout.end();
    this.stderr.end();
  }
}

export class StreamServer {
  private server: Server | undefined;
  private readonly sessions = new Map<string, StreamSession>();
  /** Connections accepted that have not sent their hello yet. */
  private pending = 0;
  /** Set when a connection was refused for the cap, until one is free again: one warning per burst. */
  private full = false;
  port = 0;

  constructor(
    private readonly logger: Logger,
    private readonly options: { host: string; port: number; helloTimeoutMs?: number },
  ) {}

  async listen(): Promise<number> {
    // allowHalfOpen: the stdin sidecar's hello side ends right after the hello, and socat then
    // half-closes towards us. Node's default answers a FIN by ending its own side too, which
    // silently dropped every byte the runner wrote afterwards: the destination saw EOF and
    // nothing else (found on the real cluster; the EOF gotcha Airbyte lists). Output streams
    // end our side themselves, below.
    const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    server.on('error', (err) => this.logger.error({ err: err.message }, 'stream server error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : this.options.port;
    this.server = server;
    return this.port;
  }

  /** A new session with a fresh secret token; the pod reads the token from its run's Secret. */
  open(): StreamSession {
    const session = new StreamSession(randomBytes(32).toString('hex'));
    this.sessions.set(session.token, session);
    return session;
  }

  close(session: StreamSession): void {
    this.sessions.delete(session.token);
    session.destroy();
  }

  private accept(socket: Socket): void {
    socket.on('error', () => undefined);
    if (this.pending >= MAX_PENDING_HELLOS) {
      if (!this.full) this.logger.warn({ remote: socket.remoteAddress, pending: this.pending }, `stream connections refused: ${MAX_PENDING_HELLOS} already waiting for their hello`);
      this.full = true;
      socket.destroy();
      return;
    }
    this.pending++;
    let waiting = true;
    // Once per connection, whichever comes first: its hello, the timeout, or its end.
    const settle = () => {
      if (!waiting) return;
      waiting = false;
      clearTimeout(timer);
      this.pending--;
      if (this.pending < MAX_PENDING_HELLOS) this.full = false;
    };
    socket.setNoDelay(true);
    socket.once('close', settle);
    const timer = setTimeout(() => {
      settle();
      socket.destroy();
    }, this.options.helloTimeoutMs ?? HELLO_TIMEOUT_MS);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const nl = buffered.indexOf(10);
      if (nl < 0) {
        if (buffered.length > MAX_HELLO_BYTES) reject('hello too long');
        return;
      }
      socket.off('data', onData);
      socket.pause();
      settle();
      const hello = buffered.toString('latin1', 0, nl).replace(/\r$/, '');
      const rest = buffered.subarray(nl + 1);
      const m = HELLO.exec(hello);
      if (!m) return reject('malformed hello');
      const session = this.find(m[1]!);
      if (!session) return reject('unknown token');
      if (!session.attach(m[2] as StreamName, socket, rest)) return reject(`stream ${m[2]!} already attached`);
    };
    const reject = (why: string) => {
      settle();
      this.logger.warn({ remote: socket.remoteAddress, why }, 'stream connection refused');
      socket.destroy();
    };
    socket.on('data', onData);
  }

  private find(token: string): StreamSession | undefined {
    const session = this.sessions.get(token);
    // Map lookup already matched; the constant-time compare keeps the check honest if the
    // lookup ever becomes a prefix or range search.
    if (!session || !timingSafeEqual(Buffer.from(session.token), Buffer.from(token))) return undefined;
    return session;
  }

  async stop(): Promise<void> {
    for (const s of this.sessions.values()) s.destroy();
    this.sessions.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

export { DATA_STREAMS };
