// The folders' layering, read from the sources' import lines: cli/ and bench/ over scaler/,
// scaler/ and runner/ side by side over shared/. Nothing imports upward or sideways (the scaler
// launches runners; it does not reach into their code), and shared/ has no import cycle.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../shared/paths.js';

function sources(folder: string): string[] {
  return readdirSync(join(PACKAGE_ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(folder, f));
}

/** The project files `file` imports (relative specifiers), as paths from the package root. */
function imports(file: string): string[] {
  const text = readFileSync(join(PACKAGE_ROOT, file), 'utf8');
  const specifiers = [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'/gm)].map((m) => m[1]!);
  return specifiers.map((s) => relative(PACKAGE_ROOT, resolve(PACKAGE_ROOT, dirname(file), s)).replace(/\.js$/, '.ts'));
}

const FORBIDDEN: Record<string, string[]> = {
  shared: ['runner/', 'scaler/', 'cli/', 'bench/', 'test/'],
  runner: ['scaler/', 'cli/', 'bench/', 'test/'],
  scaler: ['runner/', 'cli/', 'bench/', 'test/'],
  // Benchmarks are built into dist/ and run there; test code is not (it stays out of images).
  bench: ['test/'],
  cli: ['bench/', 'test/'],
  connectors: ['runner/', 'scaler/', 'cli/', 'bench/', 'test/'],
};

describe('layers', () => {
  it.each(Object.entries(FORBIDDEN))('%s/ imports nothing above or beside it', (folder, above) => {
    const offending = sources(folder).flatMap((file) => imports(file).filter((target) => above.some((a) => target.startsWith(a))).map((target) => `${file} → ${target}`));
    expect(offending).toEqual([]);
  });

  it('shared/ has no import cycle', () => {
    const graph = new Map(sources('shared').map((file) => [file, imports(file).filter((t) => t.startsWith('shared/'))]));
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'open');
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });
});
