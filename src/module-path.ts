/**
 * Finds a module file next to the caller, whether the project runs from TypeScript sources
 * (tsx, vitest) or compiled JavaScript. `require.resolve` cannot: under vitest it does not know
 * `.ts`. Temporal's bundler needs a real file path for workflow code and workflow interceptors.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

export function siblingModule(dirname: string, relative: string): string {
  const base = path.resolve(dirname, relative);
  for (const candidate of [`${base}.ts`, `${base}.js`, path.join(base, 'index.ts'), path.join(base, 'index.js')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`module ${base} not found (looked for .ts and .js)`);
}
