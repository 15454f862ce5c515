// The generated reference pages under docs/ match what they are generated from: `npm run
// docs:connectors` rewrites them, and this fails until someone does after a connector's spec
// changed.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../shared/paths.js';
import { BEGIN, END, connectorSettingsSection, replaceSection } from '../../cli/docs.js';

describe('generated documentation', () => {
  it("the reference connector settings are what the connectors' specs say (else: npm run docs:connectors)", async () => {
    const readme = await readFile(join(PACKAGE_ROOT, 'docs', 'reference', 'connectors.md'), 'utf8');
    const current = readme.slice(readme.indexOf(BEGIN), readme.indexOf(END) + END.length);
    expect(current).toBe(await connectorSettingsSection());
  });

  it('replaces only what is between the markers', () => {
    expect(replaceSection(`a\n${BEGIN}\nold\n${END}\nb`, `${BEGIN}\nnew\n${END}`)).toBe(`a\n${BEGIN}\nnew\n${END}\nb`);
    expect(() => replaceSection('no markers', 'x')).toThrow(/markers/);
  });
});
