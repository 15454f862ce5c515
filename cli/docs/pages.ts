// The reference pages generated from the code, and where each one lives.
import { cliPage } from './cli.js';
import { connectorsPage } from './connectors.js';
import { metricsPage } from './metrics.js';
import { settingsPage } from './settings.js';

/** Each generated page: its path from the package root, and how it is made (deterministic). */
export const PAGES: ReadonlyArray<{ path: string; generate: () => string | Promise<string> }> = [
  { path: 'docs/reference/settings.md', generate: settingsPage },
  { path: 'docs/reference/metrics.md', generate: metricsPage },
  { path: 'docs/reference/connectors.md', generate: connectorsPage },
  { path: 'docs/reference/cli.md', generate: cliPage },
];

/** Every page as the code would write it now. */
export async function generatedPages(): Promise<Array<{ path: string; text: string }>> {
  const pages = [];
  for (const page of PAGES) pages.push({ path: page.path, text: await page.generate() });
  return pages;
}
