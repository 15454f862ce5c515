import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AirbyteMessage } from '../../../shared/protocol.js';
import { catalogOf, connectorPath, errorTraces, LiveConnector, records, run, states, tempDir, type TempDir } from './harness.js';

let dir: TempDir;
let files = 0;
const started: LiveConnector[] = [];
beforeAll(async () => {
  dir = await tempDir('e2e-source');
});
afterEach(() => {
  for (const connector of started.splice(0)) connector.kill();
});
afterAll(async () => {
  await dir.remove();
});

const itemsCatalog = (syncMode: 'full_refresh' | 'incremental' = 'incremental') =>
  catalogOf({ name: 'items', syncMode, cursorField: ['id'] });

async function readArgs(config: unknown, state?: unknown, catalog: unknown = itemsCatalog()): Promise<string[]> {
  files += 1;
  const args = ['read', '--config', await dir.file(`config-${files}.json`, config)];
  args.push('--catalog', await dir.file(`catalog-${files}.json`, catalog));
  if (state !== undefined) args.push('--state', await dir.file(`state-${files}.json`, state));
  return args;
}

const read = async (config: unknown, state?: unknown) => run('source-e2e-test', await readArgs(config, state));

/** For output that is not all protocol messages, which `run` would refuse to parse. */
function start(args: string[]): LiveConnector {
  const connector = new LiveConnector('source-e2e-test', args);
  connector.end();
  started.push(connector);
  return connector;
}

const idsOf = (messages: AirbyteMessage[]) => records(messages, 'items').map((data) => data['id']);
const cursorsOf = (messages: AirbyteMessage[]) => states(messages).map((state) => state.stream?.stream_state?.['cursor']);

/** Resolves true if the process is still running after `ms`: the only way to see "never exits". */
async function stillRunningAfter(connector: LiveConnector, ms: number): Promise<boolean> {
  return Promise.race([connector.exited.then(() => false), delay(ms).then(() => true)]);
}

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

interface LineStat {
  length: number;
  head: string;
  tail: string;
}

/** Each line's length in bytes and its first and last bytes, counted as the bytes pass: a huge line is never held. */
async function lineStats(stream: Readable): Promise<LineStat[]> {
  const done: LineStat[] = [];
  let line: LineStat = { length: 0, head: '', tail: '' };
  const take = (part: Buffer): void => {
    line.length += part.length;
    if (line.head.length < 200) line.head += part.subarray(0, 200).toString();
    line.tail = (line.tail + part.subarray(-20).toString()).slice(-20);
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      take(chunk.subarray(start, newline));
      done.push(line);
      line = { length: 0, head: '', tail: '' };
      start = newline + 1;
    }
    take(chunk.subarray(start));
  }
  if (line.length > 0) done.push(line);
  return done;
}

describe('source-e2e-test', () => {
  it('describes its config, passes check and discovers one incremental stream, items', async () => {
    const spec = (await run('source-e2e-test', ['spec'])).messages[0];
    expect(spec?.type).toBe('SPEC');
    if (spec?.type !== 'SPEC') return;
    expect(Object.keys(spec.spec.connectionSpecification['properties'] as object).sort()).toEqual([
      'counterFile', 'delayMs', 'exitCode', 'failTimes', 'failureType', 'garbageLine', 'hugeLineBytes', 'message',
      'records', 'stateEvery', 'stderrBytes', 'then',
    ]);

    const config = await dir.file('check.json', {});
    const check = await run('source-e2e-test', ['check', '--config', config]);
    expect(check.messages).toEqual([{ type: 'CONNECTION_STATUS', connectionStatus: { status: 'SUCCEEDED' } }]);

    const discover = await run('source-e2e-test', ['discover', '--config', config]);
    const catalog = discover.messages[0];
    expect(catalog?.type === 'CATALOG' && catalog.catalog.streams).toEqual([
      expect.objectContaining({
        name: 'items',
        json_schema: expect.objectContaining({ properties: { id: { type: 'integer' } } }),
        supported_sync_modes: ['full_refresh', 'incremental'],
        source_defined_cursor: true,
        default_cursor_field: ['id'],
        source_defined_primary_key: [['id']],
      }),
    ]);
  });

  it('exit (default): 10 records, a STATE every 5 and exit 0', async () => {
    const result = await read({});
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(idsOf(result.messages)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(cursorsOf(result.messages)).toEqual([5, 10]);
    expect(result.messages[5]?.type).toBe('STATE');
  });

  it('emits a closing STATE after the last partial batch and resumes after the incoming cursor', async () => {
    const fresh = await read({ records: 12, stateEvery: 5 });
    expect(cursorsOf(fresh.messages)).toEqual([5, 10, 12]);

    const state = [{ type: 'STREAM', stream: { stream_descriptor: { name: 'items' }, stream_state: { cursor: 7 } } }];
    const resumed = await read({ records: 12, stateEvery: 5 }, state);
    expect(idsOf(resumed.messages)).toEqual([8, 9, 10, 11, 12]);
    expect(cursorsOf(resumed.messages)).toEqual([12]);

    const caughtUp = await read({ records: 7 }, state);
    expect(idsOf(caughtUp.messages)).toEqual([]);
    expect(cursorsOf(caughtUp.messages)).toEqual([7]);

    const full = await run('source-e2e-test', await readArgs({ records: 3 }, state, itemsCatalog('full_refresh')));
    expect(idsOf(full.messages)).toEqual([1, 2, 3]);
  });

  it('exit with a code and a failure type: the records, then an error TRACE, then that exit code', async () => {
    const result = await read({ records: 2, exitCode: 3, failureType: 'config_error', message: 'boom' });
    expect(result.code).toBe(3);
    expect(idsOf(result.messages)).toEqual([1, 2]);
    expect(errorTraces(result.messages)).toEqual([expect.objectContaining({ message: 'boom', failure_type: 'config_error' })]);
    expect(result.messages.at(-1)?.type).toBe('TRACE');
    expect(result.stderr).toBe('source-e2e-test: boom\n');

    const bare = await read({ records: 1, exitCode: 2 });
    expect(bare.code).toBe(2);
    expect(idsOf(bare.messages)).toEqual([1]);
    expect(errorTraces(bare.messages)).toEqual([]);
  });

  it('hang: emits its records, then neither exits nor prints anything more', async () => {
    const source = start(await readArgs({ records: 3, then: 'hang' }));
    const lines = await source.waitForLines(4);
    expect(lines.map((line) => (JSON.parse(line) as AirbyteMessage).type)).toEqual(['RECORD', 'RECORD', 'RECORD', 'STATE']);
    expect(await stillRunningAfter(source, 1500)).toBe(true);
    expect(source.lines).toHaveLength(4);
    expect(source.stderr).toBe('');
  });

  it('allocate: keeps growing (RSS past 200 MB) until killed, saying how much it holds', async () => {
    const source = start(await readArgs({ records: 1, then: 'allocate' }));
    await vi.waitFor(async () => expect(await rssBytes(source.child.pid!)).toBeGreaterThan(200e6), { timeout: 20_000, interval: 50 });
    source.kill();
    expect(await source.exited).toBeNull();
    expect(source.stderr).toContain('source-e2e-test: allocate: holding 64 MiB\n');
    expect(source.lines).toHaveLength(2);
  });

  it('garbage: a line that is not JSON after the records, then exit 0', async () => {
    const source = start(await readArgs({ records: 1, then: 'garbage', garbageLine: 'oops {' }));
    expect(await source.exited).toBe(0);
    expect(source.lines).toHaveLength(3);
    expect(source.lines.at(-1)).toBe('oops {');

    const defaults = start(await readArgs({ records: 0, then: 'garbage' }));
    expect(await defaults.exited).toBe(0);
    expect(defaults.lines.at(-1)).toBe('this is not json');
  });

  it('not_protocol: a JSON line that is no protocol message, then exit 0', async () => {
    const source = start(await readArgs({ records: 1, then: 'not_protocol' }));
    expect(await source.exited).toBe(0);
    expect(source.lines.slice(0, 2).map((line) => (JSON.parse(line) as AirbyteMessage).type)).toEqual(['RECORD', 'STATE']);
    expect(source.lines.slice(2)).toEqual(['{"hello":"world"}']);
  });

  it('huge_line: one RECORD line of exactly hugeLineBytes, streamed, then exit 0', async () => {
    const size = 5 * 1024 * 1024;
    const args = await readArgs({ records: 2, then: 'huge_line', hugeLineBytes: size });
    const child = spawn(process.execPath, [connectorPath('source-e2e-test'), ...args]);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const [lines, code] = await Promise.all([lineStats(child.stdout), new Promise((resolve) => child.on('close', resolve))]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(lines.map((line) => line.length)).toEqual([expect.any(Number), expect.any(Number), expect.any(Number), size]);
    expect(lines[3]?.head).toMatch(/^\{"type":"RECORD","record":\{"stream":"items","emitted_at":\d+,"data":\{"id":3,"blob":"xxxx/);
    expect(lines[3]?.tail).toMatch(/xxxx"\}\}\}$/);
  });

  it('stderr_flood: stderrBytes of numbered stderr lines, then exit 0', async () => {
    const bytes = 2 * 1024 * 1024 + 50;
    const result = await read({ records: 3, then: 'stderr_flood', stderrBytes: bytes });
    expect(result.code).toBe(0);
    expect(idsOf(result.messages)).toEqual([1, 2, 3]);
    expect(Buffer.byteLength(result.stderr)).toBe(bytes);
    const lines = result.stderr.split('\n').slice(0, -1);
    expect(lines).toHaveLength(Math.ceil(bytes / 100));
    lines.slice(0, -1).forEach((line, index) => {
      expect(line.startsWith(`source-e2e-test: stderr flood line ${index + 1} `)).toBe(true);
      expect(line).toHaveLength(99);
    });
  });

  it('transient: a transient_error TRACE and exit 1 for failTimes attempts, then success', async () => {
    const counterFile = join(dir.path, 'attempts');
    const config = { records: 2, then: 'transient', counterFile, failTimes: 2 };
    for (const attempt of [1, 2]) {
      const failed = await read(config);
      expect(failed.code).toBe(1);
      expect(idsOf(failed.messages)).toEqual([1, 2]);
      expect(errorTraces(failed.messages)).toEqual([
        expect.objectContaining({ failure_type: 'transient_error', message: `e2e-test: told to fail (attempt ${attempt} of 2 failing)` }),
      ]);
    }
    const succeeded = await read(config);
    expect(succeeded.code).toBe(0);
    expect(succeeded.stderr).toBe('');
    expect(errorTraces(succeeded.messages)).toEqual([]);
    expect(idsOf(succeeded.messages)).toEqual([1, 2]);
    expect(await readFile(counterFile, 'utf8')).toBe('3\n');
  });

  it('delayMs: sleeps before each record and flushes each one as it goes', async () => {
    const args = await readArgs({ records: 3, delayMs: 400 });
    const t0 = Date.now();
    const source = start(args);
    await source.waitForLines(1);
    expect(source.child.exitCode).toBeNull();
    expect(source.lines).toHaveLength(1);
    expect(await source.exited).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1200);
    expect(source.lines).toHaveLength(4);
  });

  it('rejects a bad config with a config_error: transient without counterFile, unknown keys, other streams', async () => {
    for (const [config, catalog, expected] of [
      [{ then: 'transient' }, itemsCatalog(), 'counterFile: then "transient" needs counterFile'],
      [{ recrods: 5 }, itemsCatalog(), 'recrods'],
      [{}, catalogOf({ name: 'users' }), 'source-e2e-test has one stream, items'],
    ] as const) {
      const result = await run('source-e2e-test', await readArgs(config, undefined, catalog));
      expect(result.code).toBe(1);
      expect(errorTraces(result.messages)).toEqual([expect.objectContaining({ failure_type: 'config_error', message: expect.stringContaining(expected) })]);
    }
  });
});
