/**
 * The layout of src/ as invariants, checked on every test run (the same checks `npx madge
 * --circular --extensions ts src` and a grep would make, without a dependency):
 * - no import cycle between modules (type-only imports included: they couple modules as much);
 * - the gateway imports neither workflow code (src/workflows) nor activity internals
 *   (src/activities): what it shares with them lives in src/upload and src/s3;
 * - no two exported classes share a name.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.ts$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** The src/ modules a file imports (relative imports, resolved to files). */
function importsOf(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles
    .map((ref) => ref.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => {
      const base = path.resolve(path.dirname(file), name);
      return [`${base}.ts`, path.join(base, 'index.ts'), base].find((candidate) => existsSync(candidate) && candidate.endsWith('.ts'));
    })
    .filter((resolved): resolved is string => resolved !== undefined);
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((file) => [file, importsOf(file)]));
const rel = (file: string) => path.relative(SRC, file);

/** Every import cycle, each as the chain of modules that closes it. */
function cycles(): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next].map(rel));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return found;
}

describe('module layout of src/', () => {
  it('has no import cycle', () => {
    expect(cycles()).toEqual([]);
  });

  it('keeps the gateway out of workflow code and activity internals', () => {
    const reaching = [...graph]
      .filter(([file]) => rel(file).startsWith(`gateway${path.sep}`))
      .flatMap(([file, imports]) =>
        imports.filter((target) => /^(workflows|activities)\b/.test(rel(target))).map((target) => `${rel(file)} → ${rel(target)}`),
      );
    expect(reaching).toEqual([]);
  });

  it('gives every exported class its own name', () => {
    const byName = new Map<string, string[]>();
    for (const file of files) {
      for (const match of readFileSync(file, 'utf8').matchAll(/export (?:abstract )?class (\w+)/g)) {
        byName.set(match[1]!, [...(byName.get(match[1]!) ?? []), rel(file)]);
      }
    }
    expect([...byName].filter(([, where]) => where.length > 1)).toEqual([]);
  });
});
