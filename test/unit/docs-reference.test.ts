// The reference pages under docs/reference/ are what the code says: each is regenerated here, in
// memory, and compared with the checked-in page. A setting, metric, connector setting or command
// option changed without `npm run docs` fails here, so the pages cannot drift.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PACKAGE_ROOT } from '../../shared/paths.js';
import { configSchema } from '../../shared/config.js';
import { PAGES } from '../../cli/docs/pages.js';
import { defaultOf, descriptionProblems, typeOf } from '../../cli/docs/settings.js';
import { registeredMetrics } from '../../cli/docs/metrics.js';

describe('generated reference pages', () => {
  it.each(PAGES.map((p) => [p.path, p] as const))('%s is what the code says', async (path, page) => {
    const checkedIn = await readFile(join(PACKAGE_ROOT, path), 'utf8').catch(() => '(missing)');
    const generated = await page.generate();
    expect(checkedIn === generated, `${path} is stale: run npm run docs`).toBe(true);
  });

  it('generation is deterministic', async () => {
    for (const page of PAGES) expect(await page.generate()).toBe(await page.generate());
  });
});

describe('the settings reference', () => {
  it('describes every setting, and nothing else', () => {
    expect(descriptionProblems()).toEqual([]);
  });

  it('shows types and defaults as a setting would be written', () => {
    const shape = configSchema.shape;
    expect([typeOf(shape.pollInterval), defaultOf('pollInterval', shape.pollInterval)]).toEqual(['duration', '`1s`']);
    expect([typeOf(shape.maxLineBytes), defaultOf('maxLineBytes', shape.maxLineBytes)]).toEqual(['size', '`64MiB`']);
    expect([typeOf(shape.concurrency), defaultOf('concurrency', shape.concurrency)]).toEqual(['integer 1–64', '`2`']);
    expect(typeOf(shape.launchRate)).toBe('number > 0');
    expect(typeOf(shape.logLevel)).toContain('`info` | `debug`');
    expect([typeOf(shape.requireDigests), defaultOf('requireDigests', shape.requireDigests)]).toEqual(['boolean', '`false`']);
    expect(defaultOf('secretsDir', shape.secretsDir)).toBe('none');
    expect(defaultOf('runnerLogDir', shape.runnerLogDir)).toBe('`$TMPDIR/tidepool/runners`');
    expect(typeOf(z.string().default('x'))).toBe('string');
  });
});

describe('the metrics reference', () => {
  it('lists the scaler’s and the runner’s metrics, each once, with who exports it', () => {
    const metrics = registeredMetrics();
    const names = metrics.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    expect(metrics.find((m) => m.name === 'tidepool_syncs_total')).toMatchObject({ type: 'counter', labels: ['connection', 'outcome'], processes: ['runner'] });
    expect(metrics.find((m) => m.name === 'tidepool_broker_reconnects_total')?.processes).toEqual(['scaler', 'runner']);
    expect(names.every((n) => n.startsWith('tidepool_'))).toBe(true);
  });
});
