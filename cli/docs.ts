// `npm run docs`: writes the reference pages under docs/reference/ from the code they describe
// (settings, metrics, the reference connectors' settings, the CLI's help), so they cannot drift;
// test/unit/docs-reference.test.ts fails when a checked-in page differs from what this writes.
//
//   node dist/cli/docs.js [--check]   write the pages, or only list the stale ones (exit 1)
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from '../shared/paths.js';
import { generatedPages } from './docs/pages.js';

async function current(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const { path, text } of await generatedPages()) {
    const file = join(PACKAGE_ROOT, path);
    if ((await current(file)) === text) continue;
    stale.push(path);
    if (!check) {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, text);
    }
  }
  process.stderr.write(stale.length === 0 ? 'docs: every reference page is up to date\n' : `docs: ${check ? 'stale (run npm run docs)' : 'wrote'}: ${stale.join(', ')}\n`);
  if (check && stale.length > 0) process.exitCode = 1;
}
