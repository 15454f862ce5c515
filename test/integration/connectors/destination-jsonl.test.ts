import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { catalogOf, errorTraces, LiveConnector, recordLine, run, stateLine, statusLine, tempDir, type TempDir } from './harness.js';

let dir: TempDir;
beforeEach(async () => {
  dir = await tempDir('jsonl');
});
afterEach(async () => {
  await dir.remove();
});

async function lines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line.length > 0);
}

describe('destination-jsonl', () => {
  it('lists its sync modes in spec and checks the directory can be written', async () => {
    const spec = await run('destination-jsonl', ['spec']);
    const message = spec.messages[0];
    expect(message?.type === 'SPEC' && message.spec.supported_destination_sync_modes).toEqual(['overwrite', 'append']);

    const target = join(dir.path, 'new', 'nested');
    const ok = await run('destination-jsonl', ['check', '--config', await dir.file('ok.json', { destination_path: target })]);
    expect(ok.messages).toEqual([{ type: 'CONNECTION_STATUS', connectionStatus: { status: 'SUCCEEDED' } }]);

    await writeFile(join(dir.path, 'a-file'), 'x');
    const bad = await run('destination-jsonl', [
      'check', '--config', await dir.file('bad.json', { destination_path: join(dir.path, 'a-file', 'below') }),
    ]);
    expect(bad.code).toBe(0);
    const status = bad.messages[0];
    expect(status?.type === 'CONNECTION_STATUS' && status.connectionStatus.status).toBe('FAILED');
  });

  it('writes each record data as one line of its stream file', async () => {
    const out = join(dir.path, 'out');
    const config = await dir.file('config.json', { destination_path: out });
    const catalog = await dir.file('catalog.json', catalogOf({ name: 'users' }, { name: 'events', namespace: 'app' }));
    const input = [
      recordLine('users', { id: 1, name: 'Ada', tags: ['a', 'b'], nested: { x: 1.5 } }),
      JSON.stringify({ type: 'LOG', log: { level: 'INFO', message: 'ignored' } }),
      recordLine('events', { id: 'e1' }, 'app'),
      recordLine('users', { id: 2, name: 'Zoë "quoted"\nnewline' }),
      stateLine('users', 2),
    ].join('\n');
    const result = await run('destination-jsonl', ['write', '--config', config, '--catalog', catalog], `${input}\n`);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await lines(join(out, 'users.jsonl'))).toEqual([
      '{"id":1,"name":"Ada","tags":["a","b"],"nested":{"x":1.5}}',
      '{"id":2,"name":"Zoë \\"quoted\\"\\nnewline"}',
    ]);
    expect(await lines(join(out, 'app.events.jsonl'))).toEqual(['{"id":"e1"}']);
    expect(result.stdout).toBe(`${stateLine('users', 2)}\n`);
  });

  it('echoes a STATE only once the records before it are in the file, exactly as received', async () => {
    const out = join(dir.path, 'out');
    const file = join(out, 'users.jsonl');
    const live = new LiveConnector('destination-jsonl', [
      'write',
      '--config', await dir.file('config.json', { destination_path: out }),
      '--catalog', await dir.file('catalog.json', catalogOf({ name: 'users' })),
    ]);
    // Odd spacing: the echo must be the raw line, not a re-serialisation.
    const firstState = '{ "type": "STATE",  "state": {"type":"STREAM","stream":{"stream_descriptor":{"name":"users"},"stream_state":{"cursor":3}}}}';
    live.send(recordLine('users', { id: 1 }), recordLine('users', { id: 2 }), recordLine('users', { id: 3 }), firstState);
    expect(await live.waitForLines(1)).toEqual([firstState]);
    expect(await lines(file)).toEqual(['{"id":1}', '{"id":2}', '{"id":3}']);

    // Many records, so several buffer flushes happen before the next state.
    const more = Array.from({ length: 20_000 }, (_, i) => recordLine('users', { id: i + 4, pad: 'x'.repeat(100) }));
    live.send(...more, stateLine('users', 20_003));
    expect((await live.waitForLines(2))[1]).toBe(stateLine('users', 20_003));
    expect(await lines(file)).toHaveLength(20_003);

    live.send(recordLine('users', { id: 20_004 }));
    live.end();
    expect(await live.exited).toBe(0);
    expect(live.lines).toHaveLength(2);
    expect((await lines(file)).at(-1)).toBe('{"id":20004}');
  });

  it('truncates in overwrite mode and appends in append mode', async () => {
    const out = join(dir.path, 'out');
    await mkdir(out);
    await writeFile(join(out, 'kept.jsonl'), '{"old":true}\n');
    await writeFile(join(out, 'replaced.jsonl'), '{"old":true}\n');
    const config = await dir.file('config.json', { destination_path: out });
    const catalog = await dir.file(
      'catalog.json',
      catalogOf({ name: 'kept', destinationSyncMode: 'append' }, { name: 'replaced', destinationSyncMode: 'overwrite' }),
    );
    const input = [recordLine('kept', { id: 1 }), recordLine('replaced', { id: 1 })].join('\n');
    const result = await run('destination-jsonl', ['write', '--config', config, '--catalog', catalog], input);
    expect(result.code).toBe(0);
    expect(await lines(join(out, 'kept.jsonl'))).toEqual(['{"old":true}', '{"id":1}']);
    expect(await lines(join(out, 'replaced.jsonl'))).toEqual(['{"id":1}']);
  });

  it('overwrite leaves the previous file whole until the run completes', async () => {
    const out = join(dir.path, 'out');
    await mkdir(out);
    const file = join(out, 'users.jsonl');
    await writeFile(file, '{"old":1}\n{"old":2}\n');
    const live = new LiveConnector('destination-jsonl', [
      'write',
      '--config', await dir.file('config.json', { destination_path: out }),
      '--catalog', await dir.file('catalog.json', catalogOf({ name: 'users', destinationSyncMode: 'overwrite' })),
    ]);
    live.send(statusLine('users', 'STARTED'), recordLine('users', { id: 1 }), stateLine('users', 1));
    await live.waitForLines(1);
    // Mid-run, with a STATE echoed: readers still see the previous complete file.
    expect(await lines(file)).toEqual(['{"old":1}', '{"old":2}']);
    live.send(recordLine('users', { id: 2 }), statusLine('users', 'COMPLETE'));
    live.end();
    expect(await live.exited).toBe(0);
    expect(await lines(file)).toEqual(['{"id":1}', '{"id":2}']);
    expect(await readdir(out)).toEqual(['users.jsonl']);
  });

  it('an input cut short (STARTED, then EOF without COMPLETE): appends go back to the last STATE, overwrites keep the old file', async () => {
    const out = join(dir.path, 'out');
    await mkdir(out);
    await writeFile(join(out, 'kept.jsonl'), '{"old":true}\n');
    await writeFile(join(out, 'replaced.jsonl'), '{"old":true}\n');
    const config = await dir.file('config.json', { destination_path: out });
    const catalog = await dir.file(
      'catalog.json',
      catalogOf({ name: 'kept', destinationSyncMode: 'append' }, { name: 'replaced', destinationSyncMode: 'overwrite' }),
    );
    const input = [
      statusLine('kept', 'STARTED'),
      statusLine('replaced', 'STARTED'),
      recordLine('kept', { id: 1 }),
      recordLine('replaced', { id: 1 }),
      stateLine('kept', 1),
      // Past the 1 MiB write buffer: on disk, but after the last STATE.
      ...Array.from({ length: 12_000 }, (_, i) => recordLine('kept', { id: i + 2, pad: 'x'.repeat(100) })),
      recordLine('replaced', { id: 2 }),
    ];
    const result = await run('destination-jsonl', ['write', '--config', config, '--catalog', catalog], `${input.join('\n')}\n`);
    expect(result.code).toBe(1);
    expect(errorTraces(result.messages)).toEqual([
      expect.objectContaining({
        failure_type: 'system_error',
        message: 'input ended before streams kept, replaced were complete: the orchestrator stopped mid-sync',
      }),
    ]);
    expect(result.messages.filter((message) => message.type === 'STATE')).toHaveLength(1);
    expect(await lines(join(out, 'kept.jsonl'))).toEqual(['{"old":true}', '{"id":1}']);
    expect(await lines(join(out, 'replaced.jsonl'))).toEqual(['{"old":true}']);
    expect((await readdir(out)).sort()).toEqual(['kept.jsonl', 'replaced.jsonl']);

    // The same input with COMPLETE for both: finalized as without statuses.
    const complete = [...input, statusLine('kept', 'COMPLETE'), statusLine('replaced', 'COMPLETE')];
    const done = await run('destination-jsonl', ['write', '--config', config, '--catalog', catalog], `${complete.join('\n')}\n`);
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    expect(await lines(join(out, 'kept.jsonl'))).toHaveLength(2 + 12_001);
    expect(await lines(join(out, 'replaced.jsonl'))).toEqual(['{"id":1}', '{"id":2}']);
  });

  it('fails on a record for a stream that is not in the catalog', async () => {
    const config = await dir.file('config.json', { destination_path: join(dir.path, 'out') });
    const catalog = await dir.file('catalog.json', catalogOf({ name: 'users' }));
    const result = await run(
      'destination-jsonl',
      ['write', '--config', config, '--catalog', catalog],
      `${recordLine('users', { id: 1 })}\n${recordLine('orders', { id: 1 })}\n${stateLine('users', 1)}\n`,
    );
    expect(result.code).toBe(1);
    const [error] = errorTraces(result.messages);
    expect(error?.message).toContain('orders');
    expect(result.messages.filter((message) => message.type === 'STATE')).toEqual([]);
  });

  it('rejects a config without destination_path as a config_error', async () => {
    const result = await run('destination-jsonl', ['check', '--config', await dir.file('config.json', { path: '/tmp' })]);
    expect(result.code).toBe(1);
    const [error] = errorTraces(result.messages);
    expect(error?.failure_type).toBe('config_error');
    expect(error?.message).toContain('destination_path');
  });
});
