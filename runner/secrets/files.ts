// SecretSource adapter for a host: a directory laid out like Kubernetes Secrets mounted side by
// side, `<secretsDir>/<name>/<key>`, one file per value (`kubectl create secret` and a volume
// mount give exactly this; so does `install -m 0600`). A value is the file's bytes as they are:
// nothing is trimmed, so a PEM key keeps its last newline and a password written with `echo`
// keeps one too (write it with printf).
import { readFile, realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { TidepoolError } from '../../shared/errors.js';
import { formatSecretRef, parseSecretRef, type SecretRef } from '../../shared/secret-ref.js';
import type { SecretSource } from '../../shared/ports/secret-source.js';

/** A Kubernetes Secret holds at most 1 MiB; a file bigger than that is no secret value. */
const MAX_VALUE_BYTES = 1024 * 1024;

export class FileSecretSource implements SecretSource {
  readonly where: string;
  private readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
    this.where = `files under ${this.dir}`;
  }

  async read(ref: SecretRef): Promise<string | undefined> {
    // The shape is checked again here: a reference that did not come through the schema (a
    // store written some other way) must not name "../" or an absolute path.
    const checked = parseSecretRef(formatSecretRef(ref));
    if (typeof checked === 'string') throw new TidepoolError(checked, false, 'runner', 'config_error');
    const root = await this.realRoot();
    let real: string;
    try {
      real = await realpath(join(root, checked.name, checked.key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw this.failure(ref, err);
    }
    // Symlinks are followed (a mounted Secret is one: key → ..data/key), but only within the
    // directory: a link to /etc/shadow or another user's file is refused, not read.
    if (!real.startsWith(root + sep)) {
      throw new TidepoolError(`secretRef ${JSON.stringify(formatSecretRef(ref))} leads out of ${this.dir} (a symbolic link): refused`, false, 'runner', 'config_error');
    }
    try {
      const info = await stat(real);
      if (!info.isFile()) return undefined;
      if (info.size > MAX_VALUE_BYTES) throw new TidepoolError(`secretRef ${JSON.stringify(formatSecretRef(ref))}: the file is over 1 MiB`, false, 'runner', 'config_error');
      return await readFile(real, 'utf8');
    } catch (err) {
      if (err instanceof TidepoolError) throw err;
      throw this.failure(ref, err);
    }
  }

  private async realRoot(): Promise<string> {
    try {
      return await realpath(this.dir);
    } catch (err) {
      throw new TidepoolError(`secretsDir ${this.dir} cannot be read: ${(err as Error).message}`, false, 'runner', 'config_error');
    }
  }

  /** Permission denied is the set-up's fault, like a missing file; anything else may pass. */
  private failure(ref: SecretRef, err: unknown): TidepoolError {
    const code = (err as NodeJS.ErrnoException).code;
    const permanent = code === 'EACCES' || code === 'EPERM' || code === 'ELOOP';
    return new TidepoolError(`secretRef ${JSON.stringify(formatSecretRef(ref))} cannot be read from ${this.dir}: ${code ?? (err as Error).message}`, !permanent, 'runner', permanent ? 'config_error' : 'system_error');
  }
}
