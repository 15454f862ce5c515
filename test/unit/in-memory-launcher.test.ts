// The in-memory ConnectorLauncher's own semantics, where they stand in for a process's: exit
// codes, EOF, backpressure both ways, kill, and refusing what it cannot run.
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ConnectorError } from '../../shared/errors.js';
import type { ConnectorRun } from '../../shared/ports/connector-launcher.js';
import { collect, fakerUsersCatalog } from '../helpers/connector-io.js';
import { InMemoryConnectorLauncher, type ScriptContext } from '../helpers/in-memory-launcher.js';

let seq = 0;
const scripted = (name: string, over: Partial<ConnectorRun> = {}): ConnectorRun => ({
  runId: `mem-${seq++}`,
  role: 'source',
  connector: { image: `memory/${name}`, config: {} },
  command: 'read',
  files: {},
  ...over,
});

const tick = () => new Promise((resolve) => setTimeout(resolve, 10));

/** Resolves when `check` holds, polling; the test's own timeout bounds it. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await tick();
}

async function readAll(ctx: ScriptContext): Promise<string> {
  let text = '';
  for await (const chunk of ctx.stdin) text += String(chunk);
  return text;
}

describe('in-memory connector launcher', () => {
  it('runs a script with its files as objects and reports its exit once its output is closed', async () => {
    let seen: ScriptContext | undefined;
    const launcher = new InMemoryConnectorLauncher({
      echo: async (ctx) => {
        seen = ctx;
        ctx.stdout.write(`${JSON.stringify({ type: 'LOG', log: { level: 'INFO', message: await readAll(ctx) } })}\n`);
        ctx.stderr.write('done\n');
        return 3;
      },
    });
    const files = { config: { when: new Date(0) }, catalog: { streams: [] } };
    const run = scripted('echo', { files });
    const out = await collect(await launcher.start(run), 'hello');
    expect(out.exit).toEqual({ code: 3, signal: null });
    expect(out.messages).toEqual([{ type: 'LOG', log: { level: 'INFO', message: 'hello' } }]);
    expect(out.stderr).toBe('done\n');
    // A copy that went through JSON, as a file would.
    expect(seen?.run.files).toEqual({ config: { when: '1970-01-01T00:00:00.000Z' }, catalog: { streams: [] } });
    expect(seen?.run.files).not.toBe(files);
    expect(seen?.signal.aborted).toBe(false);
    expect(launcher.started).toEqual([run]);
  });

  it('exits 0 for a script that resolves nothing, 1 with the error on stderr for one that rejects', async () => {
    const launcher = new InMemoryConnectorLauncher()
      .define('quiet', () => Promise.resolve())
      .define('broken', () => Promise.reject(new Error('no such table')))
      .define('throws', () => {
        throw new Error('synchronously');
      });
    const [quiet, broken, throws] = await Promise.all(['quiet', 'broken', 'throws'].map(async (name) => collect(await launcher.start(scripted(name)))));
    expect(quiet!.exit).toEqual({ code: 0, signal: null });
    expect(broken!.exit).toEqual({ code: 1, signal: null });
    expect(broken!.stderr).toBe('no such table\n');
    expect(throws!.exit.code).toBe(1);
    expect(throws!.stderr).toBe('synchronously\n');
  });

  it('refuses what it cannot run with a permanent not_started error, like a missing program', async () => {
    const launcher = new InMemoryConnectorLauncher();
    const refusals = [
      scripted('nobody', { role: 'destination' }),
      scripted('x', { connector: { command: ['/bin/true'], config: {} } }),
      scripted('x', { connector: { image: 'airbyte/source-faker:6.2.0', config: {} } }),
      scripted('x', { connector: { connector: 'source-e2e-test', config: {} } }),
    ];
    for (const run of refusals) {
      const err = await launcher.start(run).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConnectorError);
      expect(err).toMatchObject({ retryable: false, type: 'config_error', origin: run.role });
    }
    await expect(launcher.start(refusals[0]!)).rejects.toThrow('destination could not start: no script "nobody" in the in-memory launcher (define it first)');
    expect(launcher.started).toEqual([]);
  });

  it('runs the reference connectors in-process, failing them the way their programs fail', async () => {
    const launcher = new InMemoryConnectorLauncher();
    const faker = { connector: 'source-faker', config: {} };
    const read = await collect(await launcher.start(scripted('', { connector: faker, files: { config: { count: 3 }, catalog: fakerUsersCatalog() } })));
    expect(read.exit.code).toBe(0);
    expect(read.messages.filter((m) => m.type === 'RECORD')).toHaveLength(3);
    // A command the connector does not have, as `source-faker write` on a command line.
    const write = await collect(await launcher.start(scripted('', { connector: faker, command: 'write', files: { config: {}, catalog: fakerUsersCatalog() } })));
    expect(write.exit.code).toBe(1);
    expect(write.stderr).toContain('source-faker: unknown command "write"');
    const trace = write.messages.find((m) => m.type === 'TRACE');
    expect(trace?.type === 'TRACE' && trace.trace.error?.failure_type).toBe('config_error');
  });

  it('holds the runner back when the connector stops reading its stdin, and lets it go when it reads again', async () => {
    let reading = false;
    const launcher = new InMemoryConnectorLauncher({
      slow: async (ctx) => {
        await until(() => reading);
        return (await readAll(ctx)).length === 4 * 1024 * 1024 ? 0 : 9;
      },
    });
    const proc = await launcher.start(scripted('slow', { role: 'destination', command: 'write' }));
    proc.stdout.resume();
    proc.stderr.resume();
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let accepted = true;
    for (let i = 0; i < 64; i += 1) accepted = proc.stdin.write(chunk) && accepted;
    expect(accepted).toBe(false);
    await tick();
    // Two pipe buffers' worth sit in the pipe; the rest waits in the runner's write buffer.
    expect(proc.stdin.writableLength).toBeGreaterThan(3 * 1024 * 1024);
    reading = true;
    await once(proc.stdin, 'drain');
    proc.stdin.end();
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });

  it('holds the connector back when the runner does not read its stdout', async () => {
    let written = 0;
    const launcher = new InMemoryConnectorLauncher({
      chatty: async ({ stdout }) => {
        const line = Buffer.alloc(1024, 'y');
        for (let i = 0; i < 1024; i += 1) {
          if (!stdout.write(line)) await once(stdout, 'drain');
          written += line.length;
        }
      },
    });
    const proc = await launcher.start(scripted('chatty'));
    proc.stderr.resume();
    proc.stdin.end();
    await tick();
    expect(written).toBeLessThan(512 * 1024);
    let read = 0;
    const ended = once(proc.stdout, 'end');
    proc.stdout.on('data', (c: Buffer) => (read += c.length));
    expect(await proc.exit).toEqual({ code: 0, signal: null });
    await ended;
    expect(read).toBe(1024 * 1024);
  });

  it('kills promptly a script that ignores its signal: EOF on its output, later writes dropped', async () => {
    let ctx: ScriptContext | undefined;
    const launcher = new InMemoryConnectorLauncher({
      'ignores-kill': (c) => {
        ctx = c;
        c.stdout.write('before\n');
        return new Promise(() => undefined);
      },
    });
    const proc = await launcher.start(scripted('ignores-kill'));
    let stdout = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += String(c)));
    const ended = once(proc.stdout, 'end');
    await until(() => stdout.length > 0);
    proc.kill('SIGKILL');
    expect(await proc.exit).toEqual({ code: null, signal: 'SIGKILL' });
    await ended;
    expect(ctx?.signal.aborted).toBe(true);
    expect(stdout).toBe('before\n');
    // The killed script carries on writing; nothing reaches the runner and nothing throws.
    ctx!.stdout.write('after\n');
    ctx!.stderr.end('after\n');
    proc.stdin.write('more input\n');
    proc.kill('SIGTERM');
    await tick();
    expect(stdout).toBe('before\n');
    expect(await proc.exit).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('lets timers run while a source writes in a hot loop to a reader that discards it', async () => {
    const launcher = new InMemoryConnectorLauncher();
    const files = { config: { count: 1_000_000_000 }, catalog: fakerUsersCatalog() };
    const proc = await launcher.start(scripted('', { connector: { connector: 'source-faker', config: {} }, files }));
    proc.stdout.resume(); // no 'data' listener: the reader drains from process.nextTick
    proc.stderr.resume();
    proc.stdin.end();
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(Date.now() - started).toBeLessThan(1_000);
    proc.kill('SIGKILL');
    expect(await proc.exit).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('makes kill a no-op after exit, and drops stdin writes once the connector is gone', async () => {
    const launcher = new InMemoryConnectorLauncher({ early: () => Promise.resolve(0) });
    const proc = await launcher.start(scripted('early', { role: 'destination', command: 'write' }));
    proc.stdout.resume();
    proc.stderr.resume();
    expect(await proc.exit).toEqual({ code: 0, signal: null });
    proc.kill('SIGKILL');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
    // Closed at exit, as node closes a child's stdin.
    expect(proc.stdin.destroyed).toBe(true);
    const error = await new Promise<Error | null | undefined>((resolve) => proc.stdin.write('late\n', resolve));
    expect(error).toBeInstanceOf(Error);
    proc.stdin.end();
  });

  it('makes a connector whose reader left see a broken pipe', async () => {
    let failure: unknown;
    const launcher = new InMemoryConnectorLauncher({
      orphan: async ({ stdout }) => {
        await tick();
        failure = await new Promise((resolve) => stdout.write('x\n', resolve));
      },
    });
    const proc = await launcher.start(scripted('orphan'));
    proc.stdout.destroy();
    proc.stderr.resume();
    await proc.exit;
    expect(failure).toMatchObject({ code: 'EPIPE' });
  });
});
