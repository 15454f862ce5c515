// Finding the program a connector `command` names, the way spawn() will: a name with a slash is
// a path; a bare name is looked up in PATH. Used to fail at once, with a clear reason, when the
// program is not there — rather than spawn's bare ENOENT, taken for a crash and retried.
import { constants } from 'node:fs';
import { access, realpath, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

/** path: absolute, as given (a venv's bin/python must stay a symlink); real: symlinks resolved. */
export type Resolved = { ok: true; path: string; real: string } | { ok: false; problem: string };

export async function resolveProgram(file: string, pathEnv: string, cwd: string = process.cwd()): Promise<Resolved> {
  if (file.includes('/')) {
    const path = isAbsolute(file) ? file : resolve(cwd, file);
    return (await executable(path)) ?? { ok: false, problem: `${file}: ${await whyNot(path)}` };
  }
  const dirs = pathEnv.split(delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    const found = await executable(join(dir, file));
    if (found) return found;
  }
  return { ok: false, problem: `"${file}" was not found in PATH (${dirs.join(delimiter) || 'empty'})` };
}

async function executable(path: string): Promise<Resolved | undefined> {
  try {
    const s = await stat(path);
    if (!s.isFile()) return undefined;
    await access(path, constants.X_OK);
    return { ok: true, path, real: await realpath(path) };
  } catch {
    return undefined;
  }
}

async function whyNot(path: string): Promise<string> {
  try {
    const s = await stat(path);
    if (s.isDirectory()) return 'is a directory, not a program';
    return 'is not executable (chmod +x it)';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
  }
}

/** Describes a spawn() error for a person: what was run and why it could not be. */
export function describeSpawnError(file: string, err: NodeJS.ErrnoException): string {
  if (err.code === 'ENOENT') return `${file}: no such file (or its interpreter, on its #! line, is missing)`;
  if (err.code === 'EACCES') return `${file}: permission denied (not executable?)`;
  return `${file}: ${err.message}`;
}
