// `tidepool --version` and `-V` print the version package.json holds (and the changelog names).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../shared/paths.js';
import { main } from '../../cli/dispatch.js';

async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, {}, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out, err };
}

describe('tidepool --version', () => {
  it.each([['--version'], ['-V']])('%s prints the package version and exits 0', async (flag) => {
    const { version } = JSON.parse(await readFile(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(await run([flag])).toEqual({ code: 0, out: [`tidepool ${version}`], err: [] });
  });

  it('is in the usage', async () => {
    const { code, out } = await run(['--help']);
    expect(code).toBe(0);
    expect(out.join('\n')).toContain('tidepool --version');
  });

  it('the changelog has a section for the current version', async () => {
    const { version } = JSON.parse(await readFile(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
    const changelog = await readFile(join(PACKAGE_ROOT, 'CHANGELOG.md'), 'utf8');
    expect(changelog).toMatch(new RegExp(`^## \\[${version.replace(/\./g, '\\.')}\\]`, 'm'));
  });
});
