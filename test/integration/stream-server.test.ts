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
import type { ConnectorStdio } from '../../shared/connections.js';
import { PACKAGE_ROOT } from '../../shared/paths.js';
import { DIRECT_HEARTBEAT_SCRIPT, HEARTBEAT_SCRIPT, connectorScript, directScript, sidecarScript } from '../../runner/launch/pod-scripts.js';
import { MAX_PENDING_HELLOS, StreamServer, type StreamSession } from '../../runner/launch/stream-server.js';
import { fakerUsersCatalog, record, streamState } from '../helpers/connector-io.js';
import { testLogger } from '../helpers/services.js';

function sh(script: string, env: Record<string, string>, args: string[] = [], shell = 'sh'): ChildProcess & { exited: Promise<number | null> } {
  const child = spawn(shell, ['-c', script, shell, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }) as ChildProcess & { exited: Promise<number | null> };
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

  /**
   * A connector pod's commands on the host. Sidecar: the sidecar first, the connector after (it
   * waits for the pipes anyway). Direct: the one container's bash. Either heartbeat's
   * `kill -9 -1` would end every process of this user on the host, not a pod's: it is cut out.
   */
  async function podOnHost(session: StreamSession, entrypoint: string, args: string[], readsStdin: boolean, stdio: ConnectorStdio) {
    const env = { TIDEPOOL_RUNNER_HOST: '127.0.0.1', TIDEPOOL_RUNNER_PORT: String(server.port), TIDEPOOL_TOKEN: session.token, AIRBYTE_ENTRYPOINT: entrypoint };
    if (stdio === 'direct') {
      const script = directScript(readsStdin).replace('kill -9 -1; ', '');
      expect(script).not.toContain('kill -9');
      return { main: sh(script, env, args, 'bash'), sidecar: undefined };
    }
    const pipes = await mkdtemp(join(dir, 'pipes-'));
    const script = sidecarScript(readsStdin).replace('kill -9 -1; ', '');
    expect(script).not.toContain('kill -9');
    const sidecar = sh(script, { ...env, PIPES: pipes });
    sidecars.add(sidecar);
    void sidecar.exited.then(() => sidecars.delete(sidecar));
    const main = sh(connectorScript(readsStdin), { ...env, PIPES: pipes }, args);
    return { main, sidecar };
  }

  describe.each(['sidecar', 'direct'] as const)('%s stdio', (stdio) => {
    it('carries a destination\'s stdin and stdout to and from the runner, and EOF all the way', async () => {
      const out = join(dir, `jsonl-${stdio}`);
      await writeFile(join(dir, 'dest.json'), JSON.stringify({ destination_path: out }));
      await writeFile(join(dir, 'cat.json'), JSON.stringify(fakerUsersCatalog()));
      const session = server.open();
      const pod = await podOnHost(session, `${process.execPath} ${join(PACKAGE_ROOT, 'dist/connectors/destination-jsonl/main.js')}`, ['write', '--config', join(dir, 'dest.json'), '--catalog', join(dir, 'cat.json')], true, stdio);
      session.stdin.end([record('users', { id: 1 }), record('users', { id: 2 }), streamState('users', 2), ''].join('\n'));
      const [stdout, stderr] = await Promise.all([readAll(session.stdout), readAll(session.stderr)]);
      expect(await pod.main.exited).toBe(0);
      expect(stdout.trim().split('\n').map((l) => JSON.parse(l).type)).toEqual(['STATE']);
      expect(stderr).toBe('');
      expect((await readFile(join(out, 'users.jsonl'), 'utf8')).trim().split('\n')).toEqual(['{"id":1}', '{"id":2}']);
      if (pod.sidecar) expect(await pod.sidecar.exited).toBe(0);
      server.close(session);
    });

    it('delivers stdin written long after its connection was made', async () => {
      const out = join(dir, `jsonl-late-${stdio}`);
      await writeFile(join(dir, 'dest-late.json'), JSON.stringify({ destination_path: out }));
      await writeFile(join(dir, 'cat.json'), JSON.stringify(fakerUsersCatalog()));
      const session = server.open();
      const pod = await podOnHost(session, `${process.execPath} ${join(PACKAGE_ROOT, 'dist/connectors/destination-jsonl/main.js')}`, ['write', '--config', join(dir, 'dest-late.json'), '--catalog', join(dir, 'cat.json')], true, stdio);
      await session.connected.stdin;
      // Nothing is sent after the hello; the runner's side must still be writable.
      await new Promise((r) => setTimeout(r, 500));
      session.stdin.write(`${record('users', { id: 7 })}\n`);
      await new Promise((r) => setTimeout(r, 200));
      session.stdin.end(`${streamState('users', 7)}\n`);
      const stdout = await readAll(session.stdout);
      expect(await pod.main.exited).toBe(0);
      expect(stdout.trim().split('\n').map((l) => JSON.parse(l).type)).toEqual(['STATE']);
      expect((await readFile(join(out, 'users.jsonl'), 'utf8')).trim()).toBe('{"id":7}');
      if (pod.sidecar) expect(await pod.sidecar.exited).toBe(0);
      server.close(session);
    });

    it('carries a source\'s output and its end, with stdin from /dev/null', async () => {
      await writeFile(join(dir, 'src.json'), JSON.stringify({ count: 1000 }));
      const session = server.open();
      const pod = await podOnHost(session, `${process.execPath} ${join(PACKAGE_ROOT, 'dist/connectors/source-faker/main.js')}`, ['read', '--config', join(dir, 'src.json'), '--catalog', join(dir, 'cat.json')], false, stdio);
      const stdout = await readAll(session.stdout);
      expect(await pod.main.exited).toBe(0);
      expect(stdout.trim().split('\n').filter((l) => l.includes('"RECORD"'))).toHaveLength(1000);
      if (pod.sidecar) expect(await pod.sidecar.exited).toBe(0);
      // Only a direct pod reports its exit itself; a sidecar cannot know the connector's.
      if (stdio === 'direct') expect(await session.reportedExit).toBe(0);
      server.close(session);
    });
  });

  describe('direct stdio: the exit report', () => {
    const reported = (session: StreamSession, withinMs: number) => Promise.race([session.reportedExit, new Promise((r) => setTimeout(() => r('none'), withinMs))]);

    it('reports a failing connector\'s code, and exits with it', async () => {
      const session = server.open();
      const pod = await podOnHost(session, `sh -c 'echo gave up >&2; exit 3'`, ['read'], false, 'direct');
      const [, stderr] = await Promise.all([readAll(session.stdout), readAll(session.stderr)]);
      expect(stderr).toBe('gave up\n');
      expect(await pod.main.exited).toBe(3);
      expect(await session.reportedExit).toBe(3);
      server.close(session);
    });

    it('keeps the stream token out of the connector\'s environment', async () => {
      const session = server.open();
      const pod = await podOnHost(session, 'sh -c env sh', ['read'], false, 'direct');
      const stdout = await readAll(session.stdout);
      expect(await pod.main.exited).toBe(0);
      expect(stdout).toContain('TIDEPOOL_RUNNER_PORT=');
      expect(stdout).not.toContain(session.token);
      server.close(session);
    });

    it('passes SIGTERM on to the connector and reports 128 + 15', async () => {
      const session = server.open();
      const pod = await podOnHost(session, `sh -c 'exec sleep 30' sh`, ['read'], false, 'direct');
      await session.connected.stdout;
      await new Promise((r) => setTimeout(r, 300));
      const asked = Date.now();
      pod.main.kill('SIGTERM');
      expect(await pod.main.exited).toBe(143);
      expect(await session.reportedExit).toBe(143);
      expect(Date.now() - asked).toBeLessThan(5_000);
      server.close(session);
    });

    it('takes one well-formed report per run: no second one, no garbage', async () => {
      for (const text of ['abc\n', '300\n', '-1\n', '1234567890\n', '7']) {
        const garbage = server.open();
        // Sent and half-closed: a report cut short ends with the connection.
        await new Promise<void>((resolve) => {
          const socket = connect(server.port, '127.0.0.1', () => socket.end(`TIDEPOOL/1 ${garbage.token} exit\n${text}`));
          socket.on('close', () => resolve());
          socket.on('error', () => undefined);
        });
        expect(await reported(garbage, 200)).toBe('none');
        server.close(garbage);
      }
      // Cut across packets, then a second report, refused.
      const split = server.open();
      const socket = connect(server.port, '127.0.0.1');
      socket.write(`TIDEPOOL/1 ${split.token} exit\n4`);
      await new Promise((r) => setTimeout(r, 100));
      socket.end('2\n');
      expect(await split.reportedExit).toBe(42);
      expect(await rawHello(server.port, `TIDEPOOL/1 ${split.token} exit\n0\n`)).toBe('');
      server.close(split);
    });
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
    // The direct pod's heartbeat, in bash alone, gives up the same way.
    const direct = sh(DIRECT_HEARTBEAT_SCRIPT.replace('kill -9 -1; ', ''), env, [], 'bash');
    expect(await hb.exited).toBe(1);
    expect(await direct.exited).toBe(1);
  }, 30_000);

  it('a direct pod\'s heartbeat keeps going while the runner answers', async () => {
    const session = server.open();
    const env = { TIDEPOOL_RUNNER_HOST: '127.0.0.1', TIDEPOOL_RUNNER_PORT: String(server.port), TIDEPOOL_TOKEN: session.token };
    const hb = sh(DIRECT_HEARTBEAT_SCRIPT.replace('kill -9 -1; ', ''), env, [], 'bash');
    // Three misses would take 10 s (two sleeps of 5); it is still beating after 12.
    const outcome = await Promise.race([hb.exited, new Promise((r) => setTimeout(() => r('still beating'), 12_000))]);
    expect(outcome).toBe('still beating');
    hb.kill('SIGKILL');
    server.close(session);
  }, 30_000);
});
