import { open, type FileHandle } from 'node:fs/promises';

// Records are gathered per file and written in pieces of this size: one write per record is
// a syscall per record, and 1 MiB keeps memory small even with many streams.
const WRITE_CHARS = 1024 * 1024;

/** One stream's output file: buffered appends, and a `sync` that puts everything on disk. */
export class StreamFile {
  readonly path: string;
  readonly #handle: FileHandle;
  #buffer = '';
  #dirty = false;

  private constructor(path: string, handle: FileHandle) {
    this.path = path;
    this.#handle = handle;
  }

  /** Opens for appending; `truncate` empties the file first (destination_sync_mode overwrite). */
  static async open(path: string, truncate: boolean): Promise<StreamFile> {
    return new StreamFile(path, await open(path, truncate ? 'w' : 'a'));
  }

  append(line: string): Promise<void> | undefined {
    this.#buffer += line;
    this.#buffer += '\n';
    if (this.#buffer.length < WRITE_CHARS) return undefined;
    return this.flush();
  }

  async flush(): Promise<void> {
    if (this.#buffer.length === 0) return;
    const chunk = this.#buffer;
    this.#buffer = '';
    this.#dirty = true;
    // FileHandle#writeFile loops until the whole string is written (write() may be partial).
    await this.#handle.writeFile(chunk, 'utf8');
  }

  /** Flushes, then waits until the data is on disk (fdatasync: the file size is data too). */
  async sync(): Promise<void> {
    await this.flush();
    if (!this.#dirty) return;
    await this.#handle.datasync();
    this.#dirty = false;
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}
