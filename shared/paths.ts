// Where tidepool's own files are, whether running from dist/ (node) or from sources (vitest, tsx).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find tidepool package root');
    dir = up;
  }
  return dir;
}

export const PACKAGE_ROOT = findRoot();

export const PACKAGE_VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The compiled CLI: what local runners are started with. */
export const CLI_PATH = join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');

/** argv to run a reference connector shipped with tidepool. */
export function builtinConnectorCommand(name: string): string[] {
  return [process.execPath, join(PACKAGE_ROOT, 'dist', 'connectors', name, 'main.js')];
}
