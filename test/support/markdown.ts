/**
 * Reading the documentation as data: README.md and docs/**\/*.md hold tables and statements that
 * tests compare with the code (test/docs.test.ts, test/bad-input/catalogue.test.ts).
 *
 * Why a small parser of our own: the docs use a narrow subset of GitHub-flavoured Markdown
 * (ATX headings, pipe tables, inline links, fenced code), and the tests need exactly what GitHub
 * renders — heading anchors by GitHub's slug rule, table cells with `\|` escapes, links outside
 * code — which a few functions give without another dependency.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** A file of the repository, by path relative to its root. */
export function readRepoFile(relative: string): string {
  return readFileSync(path.join(REPO_ROOT, relative), 'utf8');
}

/** README.md and every Markdown file under docs/ (but the generated docs/api/), relative paths. */
export function documentationFiles(): string[] {
  const found: string[] = ['README.md'];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true })) {
      const relative = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (relative !== 'docs/api') walk(relative);
      } else if (entry.name.endsWith('.md')) found.push(relative);
    }
  };
  walk('docs');
  return found.sort();
}

/** The text with fenced code blocks blanked out (line count kept), so their content is not read as Markdown. */
export function withoutCodeBlocks(markdown: string): string {
  let fenced = false;
  return markdown
    .split('\n')
    .map((line) => {
      if (/^\s*```/.test(line)) {
        fenced = !fenced;
        return '';
      }
      return fenced ? '' : line;
    })
    .join('\n');
}

/** Fenced code blocks with their language. */
export function codeBlocks(markdown: string): { lang: string; code: string }[] {
  return [...markdown.matchAll(/^\s*```(\w*)\n([\s\S]*?)^\s*```/gm)].map((m) => ({ lang: m[1]!, code: m[2]! }));
}

export interface Heading {
  level: number;
  text: string;
  slug: string;
}

/** Inline Markdown as rendered text: code spans, emphasis and links reduced to their text, `\|` unescaped. */
export function plain(markdown: string): string {
  return markdown
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/\*\*([^*]+)\*\*/g, '$1')
    .replace(/\\\|/g, '|')
    .replace(/\s+/g, ' ')
    .trim();
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function githubSlug(headingText: string): string {
  return plain(headingText)
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every heading, with the anchor GitHub gives it (repeated slugs get -1, -2, …). */
export function headings(markdown: string): Heading[] {
  const seen = new Map<string, number>();
  return [...withoutCodeBlocks(markdown).matchAll(/^(#{1,6})\s+(.+?)\s*#*\s*$/gm)].map((m) => {
    const base = githubSlug(m[2]!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    return { level: m[1]!.length, text: m[2]!, slug: count ? `${base}-${count}` : base };
  });
}

/** The part of the document under the heading `title` (its text, without the `#`s), up to the next heading of the same or a higher level. */
export function section(markdown: string, title: string): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => /^#{1,6}\s/.test(line) && line.replace(/^#+\s+/, '').trim() === title);
  if (start < 0) throw new Error(`no heading "${title}"`);
  const level = /^#+/.exec(lines[start]!)![0].length;
  const end = lines.findIndex((line, i) => i > start && new RegExp(`^#{1,${level}}\\s`).test(line));
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

/** Splits a table line into its cells (raw Markdown, trimmed); `\|` stays inside its cell. */
export function tableCells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());
}

export interface Table {
  /** The heading the table stands under (its text). */
  heading: string;
  header: string[];
  rows: string[][];
}

/** Every pipe table of the document, with the heading it stands under. */
export function tables(markdown: string): Table[] {
  const result: Table[] = [];
  let heading = '';
  let current: Table | undefined;
  for (const line of withoutCodeBlocks(markdown).split('\n')) {
    const h = /^#{1,6}\s+(.+)$/.exec(line);
    if (h) heading = h[1]!.trim();
    if (!line.trim().startsWith('|')) {
      current = undefined;
      continue;
    }
    if (/^\s*\|\s*:?-{3,}/.test(line)) continue; // the delimiter row
    if (!current) {
      current = { heading, header: tableCells(line).map(plain), rows: [] };
      result.push(current);
    } else current.rows.push(tableCells(line));
  }
  return result;
}

/** The text of each code span. */
/**
 * An error text as the catalogues write it, `a … b`, as a regular expression in which `…` stands for
 * any text.
 */
export const fragmentPattern = (fragment: string): RegExp =>
  new RegExp(
    fragment
      .split('…')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('[\\s\\S]*?'),
  );

export const codeSpans = (text: string): string[] => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

export interface Link {
  text: string;
  target: string;
  line: number;
}

/** Inline links `[text](target)` outside code blocks and code spans. */
export function links(markdown: string): Link[] {
  const found: Link[] = [];
  withoutCodeBlocks(markdown)
    .split('\n')
    .forEach((line, index) => {
      const outsideSpans = line.replace(/`[^`]*`/g, (span) => ' '.repeat(span.length));
      for (const m of outsideSpans.matchAll(/\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
        found.push({ text: m[1]!, target: m[2]!, line: index + 1 });
      }
    });
  return found;
}
