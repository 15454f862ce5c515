// The connector-pod wiring without a cluster: the runner's stream server on one port, and on
// the host the exact commands a connector pod runs (its one sidecar making the named pipes and
// carrying them over socat, the connector reading and writing the pipes). Checks the hello
// protocol, isolation and EOF end to end, and that the sidecar ends by itself (exit 0) once
// the connector's output is delivered, so the pod completes with nothing left to kill.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../shared/paths.js';
import { HEARTBEAT_SCRIPT, connectorScript, sidecarScript } from '../../runner/launch/pod-scripts.js';
import { MAX_PENDING_HELLOS, StreamServer, type StreamSession } from '../../runner/launch/stream-server.js';
import { fakerUsersCatalog, record, streamState } from '../helpers/connector-io.js';
import { testLogger } from '../helpers/services.js';

function sh(script: string, env: Record<string, string>, args: string[] = []): ChildProcess & { exited: Promise<number | null> } {
  const child = spawn('sh', ['-c', script, 'sh', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }) as ChildProcess & { exited: Promise<number | null> };
  child.stdout?.resume();
  child.stderr?.resume();
  child.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  return child;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A connection that sends nothing. */
function opened(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

function rawHello(port: number, line: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(line));
    let got = '';
    socket.on('data', (d) => (got += d.toString()));
    socket.on('close', () => resolve(got));
    socket.on('error', () => resolve(got));
  });
}

describe('stream server and pod scripts', () => {
  const server = new StreamServer(testLogger(), { host: '127.0.0.1', port: 0, helloTimeoutMs: 2000 });
  let dir: string;
  beforeAll(async () => {
    await server.listen();
    dir = await mkdtemp(join(tmpdir(), 'tidepool-pod-sim-'));
  });
  const sidecars = new Set<ChildProcess>();
  afterAll(async () => {
    for (const s of sidecars) s.kill('SIGKILL');
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function podOnHost(session: StreamSession, entrypoint: string, args: string[], readsStdin: boolean) {
    const pipes = await mkdtemp(join(dir, 'pipes-'));
    const env = { PIPES: pipes, TIDEPOOL_RUNNER_HOST: '127.0.0.1', TIDEPOOL_RUNNER_PORT: String(server.port), TIDEPOOL_TOKEN: session.token, AIRBYTE_ENTRYPOINT: entrypoint };
    // As in the pod: the sidecar first, the connector after (it waits for the pipes anyway).
    // Its heartbeat's `kill -9 -1` would end every process of this user on the host, not a pod's.
    const script = sidecarScript(readsStdin).replace('kill -9 -1; ', '');
    expect(script).not.toContain('kill -9');
    const sidecar = sh(script, env);
    sidecars.add(sidecar);
    void sidecar.exited.then(() => sidecars.delete(sidecar));
    const main = sh(connectorScript(readsStdin), env, args);
    return { main, sidecar };
  }

  it('carries a destination\'s stdin and stdout through sidecars, and EOF all the way', async () => {
    const out = join(dir, 'jsonl');
    await writeFile(join(dir, 'dest.json'), JSON.stringify({ destination_path: out }));
    await writeFile(join(dir, 'cat.json'), JSON.stringify(fakerUsersCatalog()));
    const session = server.open();
    const pod = await podOnHost(session, `${process.execPath} ${join(PACKAGE_ROOT, 'dist/connectors/destination-jsonl/main.js')}`, ['write', '--config', join(dir, 'dest.json'), '--catalog', join(dir, 'cat.json')], true);
    session.stdin.end([record('users', { id: 1 }), record('users', { id: 2 }), streamState('users', 2), ''].join('\n'));
    const [stdout, stderr] = await Promise.all([readAll(session.stdout), readAll(session.stderr)]);
    expect(await pod.main.exited).toBe(0);
    expect(stdout.trim().split('\n').map((l) => JSON.parse(l).type)).toEqual(['STATE']);
    expect(stderr).toBe('');
    expect((await readFile(join(out, 'users.jsonl'), 'utf8')).trim().split('\n')).toEqual(['{"id":1}', '{"id":2}']);
    expect(await pod.sidecar.exited).toBe(0);
    server.close(session);
  });

  it('delivers stdin written long after the sidecar connected', async () => {
    const out = join(dir, 'jsonl-late');
    await writeFile(join(dir, 'dest-late.json'), JSON.stringify({ destination_path: out }));
    await writeFile(join(dir, 'cat.json'), JSON.stringify(fakerUsersCatalog()));
    const session = server.open();
    const pod = await podOnHost(session, `${process.execPath} ${join(PACKAGE_ROOT, 'dist/connectors/destination-jsonl/main.js')}`, ['write', '--config', join(dir, 'dest-late.json'), '--catalog', join(dir, 'cat.json')], true);
    await session.connected.stdin;
    // The sidecar sends nothing after its hello; the runner's side must still be writable.
    await new Promise((r) => setTimeout(r, 500));
    session.stdin.write(`${record('users', { id: 7 })}\n`);
    await new Promise((r) => setTimeout(r, 200));
    session.stdin.end(`${streamState('users', 7)}\n`);
    const stdout = await readAll(session.stdout);
    expect(await pod.main.exited).toBe(0);
    expect(stdout.trim().split('\n').map((l) => JSON.parse(l).type)).toEqual(['STATE']);
    expect((await readFile(join(out, 'users.jsonl'), 'utf8')).trim()).toBe('{"id":7}');
    expect(await pod.sidecar.exited).toBe(0);
    server.close(session);
  });

  it('carries a source\'s output and its end, with stdin from /dev/null', async () => {
    await writeFile(join(dir, 'src.json'), JSON.stringify({ count: 1000 }));
    const session = server.open();
    const pod = await podOnHost(session, `${process.execPath} ${join(PACKAGE_ROOT, 'dist/connectors/source-faker/main.js')}`, ['read', '--config', join(dir, 'src.json'), '--catalog', join(dir, 'cat.json')], false);
    const stdout = await readAll(session.stdout);
    expect(await pod.main.exited).toBe(0);
    expect(stdout.trim().split('\n').filter((l) => l.includes('"RECORD"'))).toHaveLength(1000);
    expect(await pod.sidecar.exited).toBe(0);
    server.close(session);
  });

  it('refuses unknown tokens, malformed hellos and a second connection for the same stream', async () => {
    const session = server.open();
    expect(await rawHello(server.port, `TIDEPOOL/1 ${'0'.repeat(64)} stdout\nhi`)).toBe('');
    expect(await rawHello(server.port, 'GET / HTTP/1.1\r\n\r\n')).toBe('');
    const first = connect(server.port, '127.0.0.1');
    first.write(`TIDEPOOL/1 ${session.token} stdout\nfirst\n`);
    await session.connected.stdout;
    const second = await rawHello(server.port, `TIDEPOOL/1 ${session.token} stdout\ninjected\n`);
    expect(second).toBe('');
    first.end();
    expect(await readAll(session.stdout)).toBe('first\n');
    server.close(session);
  });

  it('closes a connection that sends no hello in time, and holds at most MAX_PENDING_HELLOS waiting', async () => {
    const guarded = new StreamServer(testLogger(), { host: '127.0.0.1', port: 0, helloTimeoutMs: 1500 });
    await guarded.listen();
    const closedAfter = (socket: Socket, since: number) => new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - since)));
    try {
      // Silent sockets fill the cap; the next one is closed at once, before any timeout.
      const start = Date.now();
      const silent = await Promise.all(Array.from({ length: MAX_PENDING_HELLOS }, () => opened(guarded.port)));
      const silentClosed = silent.map((socket) => closedAfter(socket, start));
      const extra = await opened(guarded.port);
      expect(await closedAfter(extra, Date.now())).toBeLessThan(1000);
      // Each silent one is closed by the hello timeout, and then there is room again.
      for (const took of await Promise.all(silentClosed)) expect(took).toBeGreaterThanOrEqual(1400);
      const session = guarded.open();
      expect(await rawHello(guarded.port, `TIDEPOOL/1 ${session.token} heartbeat\n`)).toBe('ok\n');
      guarded.close(session);
    } finally {
      await guarded.stop();
    }
  });

  it('answers heartbeats while the run is registered, and not after', async () => {
    const session = server.open();
    expect(await rawHello(server.port, `TIDEPOOL/1 ${session.token} heartbeat\n`)).toBe('ok\n');
    server.close(session);
    expect(await rawHello(server.port, `TIDEPOOL/1 ${session.token} heartbeat\n`)).toBe('');
  });

  it('the heartbeat sidecar ends everything it can see once the runner stops answering', async () => {
    const session = server.open();
    server.close(session); // the runner no longer knows this run
    const env = { TIDEPOOL_RUNNER_HOST: '127.0.0.1', TIDEPOOL_RUNNER_PORT: String(server.port), TIDEPOOL_TOKEN: session.token };
    // Run it in its own "pod": a shell whose children it may kill (kill -1 is scoped by user
    // in a real pod's shared process namespace; here we only check it gives up and exits 1).
    const hb = sh(HEARTBEAT_SCRIPT.replace('kill -9 -1; ', ''), env);
    expect(await hb.exited).toBe(1);
  }, 30_000);
});
