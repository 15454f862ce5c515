import type { Writable } from 'node:stream';
import type { AirbyteMessage } from '../../shared/protocol.js';

// Lines are gathered into one string and handed to the stream in pieces of about this size:
// a write per record costs a syscall each and caps a source far below 100k records/s, while
// 64 KiB is one Linux pipe buffer, so a chunk never waits on more than one reader wake-up.
const CHUNK_CHARS = 64 * 1024;

/** The stream a connector writes its messages to has failed (usually EPIPE: the reader left). */
export class OutputClosedError extends Error {
  override name = 'OutputClosedError';
}

/**
 * Buffered writer of protocol lines. `line()` returns a promise only when the stream asked the
 * writer to wait (`write()` returned false), so a hot loop pays for an `await` only then:
 *
 *   const wait = out.line(json);
 *   if (wait) await wait;
 *
 * Call `flush()` before the process ends; nothing here exits the process.
 */
export class Output {
  readonly #stream: Writable;
  #buffer = '';
  #failure: Error | undefined;
  #drained: Promise<void> | undefined;

  constructor(stream: Writable = process.stdout) {
    this.#stream = stream;
    // Without a listener an EPIPE on stdout would crash the process before the error reaches
    // the connector's own handling.
    stream.on('error', (err: Error) => {
      this.#failure ??= err;
    });
  }

  line(text: string): Promise<void> | undefined {
    this.#buffer += text;
    this.#buffer += '\n';
    if (this.#buffer.length < CHUNK_CHARS) return undefined;
    return this.#writeBuffer();
  }

  message(message: AirbyteMessage): Promise<void> | undefined {
    return this.line(JSON.stringify(message));
  }

  /** Hands everything buffered to the stream and waits until the stream has taken it. */
  async flush(): Promise<void> {
    this.#throwIfFailed();
    const chunk = this.#buffer;
    this.#buffer = '';
    if (chunk.length > 0) {
      await new Promise<void>((resolve, reject) => {
        this.#stream.write(chunk, (err) => (err ? reject(err) : resolve()));
      });
    } else if (this.#stream.writableNeedDrain) {
      await this.#waitForDrain();
    }
  }

  #writeBuffer(): Promise<void> | undefined {
    this.#throwIfFailed();
    const chunk = this.#buffer;
    this.#buffer = '';
    if (this.#stream.write(chunk)) return undefined;
    return this.#waitForDrain();
  }

  #waitForDrain(): Promise<void> {
    if (this.#drained) return this.#drained;
    const drained = new Promise<void>((resolve, reject) => {
      const stream = this.#stream;
      if (stream.destroyed) {
        reject(new OutputClosedError('output closed while waiting to write'));
        return;
      }
      const settle = (err?: Error): void => {
        stream.off('drain', onDrain);
        stream.off('error', onError);
        stream.off('close', onClose);
        this.#drained = undefined;
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => settle();
      const onError = (err: Error): void => settle(new OutputClosedError(`output failed: ${err.message}`, { cause: err }));
      const onClose = (): void => settle(new OutputClosedError('output closed while waiting to write'));
      stream.on('drain', onDrain);
      stream.on('error', onError);
      stream.on('close', onClose);
    });
    // Callers that only queue a line (`void out.line(...)`) and learn of a failure from the
    // next flush() must not turn it into an unhandled rejection; awaiting callers still see it.
    drained.catch(() => undefined);
    this.#drained = drained;
    return drained;
  }

  #throwIfFailed(): void {
    if (this.#failure) {
      throw new OutputClosedError(`output failed: ${this.#failure.message}`, { cause: this.#failure });
    }
  }
}
