import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

// Records are gathered per file and written in pieces of this size: one write per record is
// a syscall per record, and 1 MiB keeps memory small even with many streams.
const WRITE_CHARS = 1024 * 1024;

/**
 * One stream's output file: buffered appends, a `sync` that puts everything on disk, and an
 * end that either finalizes the run's rows or takes them back.
 *
 * append: written in place; `abandon` truncates the file back to its size at the last sync
 * (the last echoed STATE), so the retry from that state does not add its rows twice.
 * overwrite: written to a temporary file beside the target and renamed over it by `finish`, so
 * the previous file stays whole until a run completes; `abandon` removes the temporary file.
 */
export class StreamFile {
  readonly path: string;
  readonly #handle: FileHandle;
  /** Where the bytes go: `path` itself, or the temporary file of an overwrite. */
  readonly #writing: string;
  #buffer = '';
  #dirty = false;
  /** The file's size at the last sync: what an abandoned append is truncated back to. */
  #synced: number;

  private constructor(path: string, writing: string, handle: FileHandle, size: number) {
    this.path = path;
    this.#writing = writing;
    this.#handle = handle;
    this.#synced = size;
  }

  static async open(path: string, mode: 'append' | 'overwrite'): Promise<StreamFile> {
    if (mode === 'append') {
      const handle = await open(path, 'a');
      return new StreamFile(path, path, handle, (await handle.stat()).size);
    }
    // A name of its own per run: a destination orphaned by a killed runner may still be
    // writing when the retry's destination starts.
    const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.partial`);
    return new StreamFile(path, temporary, await open(temporary, 'wx'), 0);
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
    if (this.#writing === this.path) this.#synced = (await this.#handle.stat()).size;
  }

  /** The input was complete: everything on disk, and an overwrite's file in place. */
  async finish(): Promise<void> {
    await this.sync();
    await this.#handle.close();
    if (this.#writing === this.path) return;
    await rename(this.#writing, this.path);
    await syncDirectory(dirname(this.path));
  }

  /**
   * The input was not complete (or writing failed): what came after the last sync goes, and
   * an overwrite leaves the previous file as it was.
   */
  async abandon(): Promise<void> {
    this.#buffer = '';
    if (this.#writing !== this.path) {
      await this.#handle.close().catch(() => undefined);
      await rm(this.#writing, { force: true });
      return;
    }
    try {
      if ((await this.#handle.stat()).size > this.#synced) {
        await this.#handle.truncate(this.#synced);
        await this.#handle.datasync();
      }
    } finally {
      await this.#handle.close().catch(() => undefined);
    }
  }
}

/** A rename is durable once the directory holding it is synced. */
async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
