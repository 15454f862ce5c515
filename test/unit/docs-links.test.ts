// Every relative link in the README, the changelog and docs/ leads somewhere: the file exists, and
// an #anchor names a heading of its page as GitHub renders it. No network: links to other sites
// are not followed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../shared/paths.js';

/** The page's text outside fenced code blocks and inline code, where Markdown makes no links. */
function prose(text: string): string {
  return text.replace(/^ *(```|~~~)[\s\S]*?^ *\1/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: lowercase, punctuation dropped, each space a hyphen. */
function slug(heading: string): string {
  const text = heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '').replace(/\s/g, '-');
}

/** Every anchor of a page, numbered as GitHub numbers repeated headings (-1, -2, …). */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  const headings = text.replace(/^ *(```|~~~)[\s\S]*?^ *\1/gm, '').matchAll(/^#{1,6} +(.+?) *#* *$/gm);
  for (const [, heading] of headings) {
    const base = slug(heading!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    result.add(n === 0 ? base : `${base}-${n}`);
  }
  return result;
}

/** The links of `file` that lead nowhere, each as `file: target (why)`. */
function brokenLinks(file: string, text: string, read: (path: string) => string | undefined): string[] {
  const broken: string[] = [];
  for (const [, target] of prose(text).matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue;
    const [path, anchor] = target!.split('#', 2) as [string, string | undefined];
    const to = path === '' ? file : join(dirname(file), decodeURIComponent(path));
    const page = read(to);
    if (page === undefined) broken.push(`${file}: ${target} (no such file)`);
    else if (anchor !== undefined && to.endsWith('.md') && !anchors(page).has(anchor)) broken.push(`${file}: ${target} (no such heading)`);
  }
  return broken;
}

function markdownFiles(): string[] {
  const docs = readdirSync(join(PACKAGE_ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f));
  return ['README.md', 'CHANGELOG.md', ...docs.sort()];
}

function readIn(root: string): (path: string) => string | undefined {
  return (path) => {
    const full = resolve(root, path);
    if (relative(root, full).startsWith('..') || !existsSync(full)) return undefined;
    try {
      return readFileSync(full, 'utf8');
    } catch {
      return ''; // a directory: it exists, and has no headings
    }
  };
}

describe('links in the documentation', () => {
  it.each(markdownFiles())('%s: every relative link and anchor resolves', (file) => {
    const read = readIn(PACKAGE_ROOT);
    expect(brokenLinks(file, read(file)!, read)).toEqual([]);
  });

  it('anchors are GitHub’s', () => {
    expect(slug('Capacity benchmark (one runner forwarding, trivial connectors)')).toBe('capacity-benchmark-one-runner-forwarding-trivial-connectors');
    expect(slug('Redis keys (all under `<prefix>:`)')).toBe('redis-keys-all-under-prefix');
    expect(slug("Reference connectors' settings")).toBe('reference-connectors-settings');
    expect(slug('The connector contract: negotiated, not assumed')).toBe('the-connector-contract-negotiated-not-assumed');
    expect([...anchors('# A\n## B\n```\n# not a heading\n```\n## B\n')]).toEqual(['a', 'b', 'b-1']);
  });

  it('finds what is broken, and leaves code and other sites alone', () => {
    const pages: Record<string, string> = { 'docs/a.md': '# A\n## Here\n', 'docs/b.png': '' };
    const read = (path: string) => pages[path];
    const text = ['[ok](a.md#here)', '[self](#a)', '![img](b.png)', '[web](https://example.com/x.md)', '`[code](nope.md)`', '```\n[fenced](nope.md)\n```', '[gone](c.md)', '[bad anchor](a.md#there)'].join('\n');
    expect(brokenLinks('docs/a.md', text, read)).toEqual(['docs/a.md: c.md (no such file)', 'docs/a.md: a.md#there (no such heading)']);
  });
});
