// The README's two commands are the ones CI runs: .ci/run runs "the README's test command" and
// "the README's main command" (the demo), so a README that renamed them would leave CI testing
// something else than what a newcomer types.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../shared/paths.js';

const read = (path: string) => readFile(join(PACKAGE_ROOT, path), 'utf8');

/** The command on the line after `echo "== <title>`, in .ci/run. */
function stepAfter(script: string, title: string): string {
  const lines = script.split('\n');
  const i = lines.findIndex((l) => l.startsWith('echo "==') && l.includes(title));
  expect(i, `.ci/run has no step "${title}"`).toBeGreaterThanOrEqual(0);
  return lines[i + 1]!.trim();
}

describe('the README and CI', () => {
  it("CI's test step is the README's test command", async () => {
    const [readme, ci] = await Promise.all([read('README.md'), read('.ci/run')]);
    expect(stepAfter(ci, "the README's test command")).toMatch(/^npm test\b/);
    expect(readme).toMatch(/^npm test +# /m);
  });

  it("CI's demo step is the command the README's npm start runs", async () => {
    const [readme, ci, pkg] = await Promise.all([read('README.md'), read('.ci/run'), read('package.json')]);
    expect(stepAfter(ci, "the README's main command")).toMatch(/^node dist\/cli\/main\.js demo\b/);
    expect(readme).toMatch(/^npm start +# /m);
    expect((JSON.parse(pkg) as { scripts: Record<string, string> }).scripts.start).toMatch(/node dist\/cli\/main\.js demo$/);
    expect(readme).toContain('`npm start` runs `tidepool demo`');
  });
});
