import { writeFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { WriteContext } from '../lib/cli.js';
import { ConnectorError } from '../lib/errors.js';
import { parseInputMessage, readLineBatches } from '../lib/input.js';
import type { Output } from '../lib/output.js';
import { errorTrace } from '../lib/trace.js';
import type { E2eDestinationConfig } from './config.js';

const NAME = 'destination-e2e-test';

/** Runs the configured mode and resolves the exit code; `hang` and `stop_reading` may never resolve. */
export async function writeE2e({ config, catalog, input, out }: WriteContext<E2eDestinationConfig>): Promise<number> {
  if (config.catalogPath) await writeFile(config.catalogPath, JSON.stringify(catalog));
  switch (config.mode) {
    case 'echo':
    case 'no_state':
      return finish(out, await consume(input, out, { echo: config.mode === 'echo' }));
    case 'stop_reading':
      if (config.stopAfterBytes === 0) return stop(0);
      // Input that ends before the limit is consumed as in echo.
      return finish(out, await consume(input, out, { echo: true, stopAfterBytes: config.stopAfterBytes }));
    case 'fail':
      // Input that ends before the record count fails there.
      if (config.failAfterRecords > 0) await consume(input, out, { echo: true, untilRecords: config.failAfterRecords });
      return fail(config, out);
    case 'hang':
      // stdin is never even opened: the writer's pipe fills and stays full.
      return forever();
  }
}

interface ConsumeOptions {
  /** Echo each STATE at once: nothing is stored, so everything before it is as written as it gets. */
  echo: boolean;
  /** Stop reading, for good, once this many bytes have been read. */
  stopAfterBytes?: number;
  /** Return once this many records have been read. */
  untilRecords?: number;
}

/**
 * Reads and parses stdin (a line that breaks the protocol fails as in a real destination) and
 * resolves the number of records read, at end of input or at the `untilRecords`-th record.
 */
async function consume(input: Readable, out: Output, options: ConsumeOptions): Promise<number> {
  let lineNumber = 0;
  let records = 0;
  let bytes = 0;
  for await (const lines of readLineBatches(input)) {
    for (const line of lines) {
      lineNumber += 1;
      bytes += Buffer.byteLength(line) + 1;
      const message = parseInputMessage(line, lineNumber);
      if (message?.type === 'RECORD') {
        records += 1;
        if (records === options.untilRecords) return records;
      } else if (message?.type === 'STATE' && options.echo) {
        void out.line(line);
        await out.flush();
      }
    }
    // Awaited inside the loop, never a `break`: leaving it would destroy stdin, and the writer
    // would see EPIPE where the test wants a pipe that stays full.
    if (options.stopAfterBytes !== undefined && bytes >= options.stopAfterBytes) await stop(bytes);
  }
  return records;
}

function finish(out: Output, records: number): number {
  void out.message({ type: 'LOG', log: { level: 'INFO', message: `${NAME}: consumed ${records} records` } });
  return 0;
}

function stop(bytes: number): Promise<never> {
  process.stderr.write(`${NAME}: stopped reading stdin after ${bytes} bytes\n`);
  return forever();
}

async function fail(config: E2eDestinationConfig, out: Output): Promise<number> {
  void out.message(errorTrace(new ConnectorError(config.message, config.failureType)));
  await out.flush();
  process.stderr.write(`${NAME}: ${config.message}\n`);
  return config.exitCode;
}

/** Never resolves; the timer is what keeps Node from exiting on an empty event loop. */
function forever(): Promise<never> {
  return new Promise<never>(() => {
    setInterval(() => undefined, 60_000);
  });
}
