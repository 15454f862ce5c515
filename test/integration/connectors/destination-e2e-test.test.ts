import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { catalogOf, errorTraces, LiveConnector, recordLine, run, stateLine, tempDir, type TempDir } from './harness.js';

let dir: TempDir;
let files = 0;
const started: LiveConnector[] = [];
beforeAll(async () => {
  dir = await tempDir('e2e-destination');
});
afterEach(() => {
  for (const connector of started.splice(0)) connector.kill();
});
afterAll(async () => {
  await dir.remove();
});

async function writeArgs(config: unknown): Promise<string[]> {
  files += 1;
  return [
    'write',
    '--config', await dir.file(`config-${files}.json`, config),
    '--catalog', await dir.file(`catalog-${files}.json`, catalogOf({ name: 'items' })),
  ];
}

const write = async (config: unknown, lines: string[]) =>
  run('destination-e2e-test', await writeArgs(config), lines.map((line) => `${line}\n`).join(''));

function start(args: string[]): LiveConnector {
  const connector = new LiveConnector('destination-e2e-test', args);
  started.push(connector);
  return connector;
}

const record = (id: number) => recordLine('items', { id });

/** Two STATEs, each after some records, with a LOG and a blank line among them. */
const INPUT = [
  record(1),
  record(2),
  stateLine('items', 2),
  JSON.stringify({ type: 'LOG', log: { level: 'INFO', message: 'from the source' } }),
  '',
  record(3),
  record(4),
  stateLine('items', 4),
];

const consumedLog = (records: number) =>
  JSON.stringify({ type: 'LOG', log: { level: 'INFO', message: `destination-e2e-test: consumed ${records} records` } });

/**
 * Writes to the connector's stdin as fast as it takes it, until a write waits for a second
 * without the pipe draining; resolves the bytes the connector (or the pipe to it) accepted.
 */
async function fillStdin(connector: LiveConnector): Promise<number> {
  const stdin = connector.child.stdin;
  const chunk = Array.from({ length: 256 }, (_, i) => `${recordLine('items', { id: i, pad: 'x'.repeat(200) })}\n`).join('');
  let written = 0;
  for (;;) {
    written += chunk.length;
    if (written > 64 * 1024 * 1024) throw new Error('the connector kept reading 64 MiB');
    if (!stdin.write(chunk)) {
      const drained = await Promise.race([once(stdin, 'drain').then(() => true), delay(1000).then(() => false)]);
      if (!drained) return written - stdin.writableLength;
    }
  }
}

describe('destination-e2e-test', () => {
  it('lists its sync modes and config in spec and passes check', async () => {
    const spec = (await run('destination-e2e-test', ['spec'])).messages[0];
    expect(spec?.type).toBe('SPEC');
    if (spec?.type !== 'SPEC') return;
    expect(spec.spec.supported_destination_sync_modes).toEqual(['overwrite', 'append', 'append_dedup']);
    expect(Object.keys(spec.spec.connectionSpecification['properties'] as object).sort()).toEqual([
      'catalogPath', 'exitCode', 'failAfterRecords', 'failureType', 'message', 'mode', 'stopAfterBytes',
    ]);
    const check = await run('destination-e2e-test', ['check', '--config', await dir.file('check.json', {})]);
    expect(check.messages).toEqual([{ type: 'CONNECTION_STATUS', connectionStatus: { status: 'SUCCEEDED' } }]);
  });

  it('echo (default): echoes each STATE exactly as received, logs the record count, exits 0 at EOF', async () => {
    const result = await write({}, INPUT);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe([stateLine('items', 2), stateLine('items', 4), consumedLog(4), ''].join('\n'));
  });

  it('echo: a STATE comes back as soon as it is read, not at the end of input', async () => {
    const destination = start(await writeArgs({ mode: 'echo' }));
    destination.send(record(1), stateLine('items', 1));
    expect(await destination.waitForLines(1)).toEqual([stateLine('items', 1)]);
    destination.send(record(2), stateLine('items', 2));
    expect(await destination.waitForLines(2)).toEqual([stateLine('items', 1), stateLine('items', 2)]);
    destination.end();
    expect(await destination.exited).toBe(0);
    expect(destination.lines.at(-1)).toBe(consumedLog(2));
  });

  it('no_state: consumes everything and never echoes a STATE', async () => {
    const result = await write({ mode: 'no_state' }, INPUT);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${consumedLog(4)}\n`);
  });

  it('fail: echoes STATEs until the failAfterRecords-th record, then an error TRACE and the exit code', async () => {
    const config = { mode: 'fail', failAfterRecords: 3, failureType: 'transient_error', message: 'disk on fire', exitCode: 5 };
    const result = await write(config, INPUT);
    expect(result.code).toBe(5);
    expect(result.stderr).toBe('destination-e2e-test: disk on fire\n');
    expect(result.messages.map((message) => message.type)).toEqual(['STATE', 'TRACE']);
    expect(result.stdout.startsWith(`${stateLine('items', 2)}\n`)).toBe(true);
    expect(errorTraces(result.messages)).toEqual([expect.objectContaining({ message: 'disk on fire', failure_type: 'transient_error' })]);
  });

  it('fail (defaults): fails at once with a system_error and exit 1, reading nothing', async () => {
    const result = await write({ mode: 'fail' }, INPUT);
    expect(result.code).toBe(1);
    expect(result.messages.map((message) => message.type)).toEqual(['TRACE']);
    expect(errorTraces(result.messages)).toEqual([
      expect.objectContaining({ message: 'e2e-test: told to fail', failure_type: 'system_error' }),
    ]);
  });

  it('fail: input that ends before failAfterRecords records fails at its end', async () => {
    const result = await write({ mode: 'fail', failAfterRecords: 100 }, INPUT);
    expect(result.code).toBe(1);
    expect(result.messages.map((message) => message.type)).toEqual(['STATE', 'STATE', 'TRACE']);
  });

  it('stop_reading: stops reading after stopAfterBytes and stays alive, so the writer blocks', async () => {
    const stopAfterBytes = 256 * 1024;
    const destination = start(await writeArgs({ mode: 'stop_reading', stopAfterBytes }));
    const accepted = await fillStdin(destination);
    const said = /stopped reading stdin after (\d+) bytes\n$/.exec(destination.stderr);
    expect(Number(said?.[1])).toBeGreaterThanOrEqual(stopAfterBytes);
    // What it read, plus what its stdin stream buffered and the socket between the processes
    // holds (Node's stdio pipes are socketpairs, ~200 KiB here): far from everything offered.
    expect(accepted).toBeGreaterThanOrEqual(stopAfterBytes);
    expect(accepted).toBeLessThan(stopAfterBytes + 1024 * 1024);
    expect(destination.child.exitCode).toBeNull();
  });

  it('hang: reads nothing and never exits', async () => {
    const destination = start(await writeArgs({ mode: 'hang' }));
    const accepted = await fillStdin(destination);
    // Only the socket between the processes (~200 KiB here) took anything.
    expect(accepted).toBeLessThanOrEqual(1024 * 1024);
    expect(destination.child.exitCode).toBeNull();
    expect(destination.lines).toEqual([]);
    expect(destination.stderr).toBe('');
  });

  it('fails like a real destination on a line that is not JSON', async () => {
    const result = await write({}, [record(1), 'not json']);
    expect(result.code).toBe(1);
    expect(errorTraces(result.messages)).toEqual([
      expect.objectContaining({ failure_type: 'system_error', message: expect.stringContaining('line 2 of stdin is not JSON') }),
    ]);
  });
});
