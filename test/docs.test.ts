/**
 * The documentation (README.md and docs/**) states behaviour and names; these tests keep it honest
 * as the code changes. Each test compares a page with the code it describes, row by row, so a
 * renamed variable, a changed default, a reordered saga step or a moved page fails `npm test`.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { webUiBaseUrl } from '../src/cli/web-ui';
import { CONFIG_VARIABLES, loadConfig, type ConfigVariable } from '../src/config';
import { GATEWAY_CONFIG_VARIABLES, loadGatewayConfig } from '../src/gateway/config';
import { PERMANENT_UPLOAD_FAILURES, UploadFailureType } from '../src/upload/errors';
import { UPLOAD_DEFAULTS } from '../src/upload/request';
import { UPLOAD_SEARCH_ATTRIBUTE_TYPES } from '../src/upload/search-attributes';
import { uploadSteps } from '../src/workflows/upload-steps';
import packageJson from '../package.json';
import {
  codeBlocks,
  codeSpans,
  documentationFiles,
  headings,
  links,
  plain,
  readRepoFile,
  REPO_ROOT,
  section,
  tables,
  type Table,
} from './support/markdown';

const readme = readRepoFile('README.md');
const doc = (relative: string) => readRepoFile(relative);

/** The one table of `markdown` whose first column is `firstColumn`. */
function tableWith(markdown: string, firstColumn: string): Table {
  const found = tables(markdown).filter((t) => t.header[0] === firstColumn);
  expect(found.length, `a table whose first column is "${firstColumn}"`).toBe(1);
  return found[0]!;
}

describe('README', () => {
  it('shows the two commands, and they exist', () => {
    expect(readme).toContain('npm install && npm run demo');
    expect(readme).toContain('npm test');
    expect(packageJson.scripts).toHaveProperty('demo');
    expect(packageJson.scripts).toHaveProperty('test');
  });

  it('stays short: details live in docs/', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(250);
  });

  it('names the whole saga, in the order of the step table', () => {
    expect(stepChains(readme)).toContainEqual(Object.keys(uploadSteps));
  });
});

// ---- configuration: docs/reference/configuration.md against CONFIG_VARIABLES

const CONFIGURATION = 'docs/reference/configuration.md';

interface ConfigRow {
  name: string;
  meaning: string;
  default: string;
  secret: string;
}

function configRows(): ConfigRow[] {
  const found = tables(doc(CONFIGURATION)).filter((t) => t.header[0] === 'variable');
  expect(found.length, `${CONFIGURATION} has tables whose first column is "variable"`).toBeGreaterThan(0);
  return found.flatMap((table) => {
    expect(table.header).toEqual(['variable', 'meaning', 'default', 'secret']);
    return table.rows.map(([variable, meaning, dflt, secret]) => {
      const spans = codeSpans(variable!);
      expect(spans.length === 1 && variable === `\`${spans[0]}\``, `one variable per row, as a code span: ${variable}`).toBe(true);
      return { name: spans[0]!, meaning: plain(meaning!), default: plain(dflt!), secret: plain(secret!) };
    });
  });
}

/** Source of src/, without the declarations of CONFIG_VARIABLES themselves: where variables are read. */
function sourcesReadingVariables(): string {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true })) {
      const relative = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(relative);
      else if (/\.ts$/.test(entry.name) && relative !== 'src/gateway/config-variables.ts') files.push(relative);
    }
  };
  walk('src');
  return files
    .map((file) => {
      const text = readRepoFile(file);
      if (file !== 'src/config.ts') return text;
      const start = text.indexOf('export const CONFIG_VARIABLES');
      return text.slice(0, start) + text.slice(text.indexOf('\n];', start));
    })
    .join('\n');
}

/** The loader that applies a variable's default, as a function of the environment. */
function loaderOf(variable: ConfigVariable): (env: NodeJS.ProcessEnv) => unknown {
  if (GATEWAY_CONFIG_VARIABLES.some((v) => v.name === variable.name)) return loadGatewayConfig;
  if (variable.name === 'TEMPORAL_UI_URL') return webUiBaseUrl;
  return loadConfig;
}

/** A default written as a value (`8`, `127.0.0.1:7233`), not as prose or another variable's name. */
const isLiteral = (value: string) => /^[\w.:/-]+$/.test(value) && !CONFIG_VARIABLES.some((v) => v.name === value);

describe(`the configuration reference (${CONFIGURATION})`, () => {
  const rows = configRows();
  const declared = new Map(CONFIG_VARIABLES.map((v) => [v.name, v]));

  it('has one row for every variable the code declares, and none for a variable it does not', () => {
    const names = rows.map((r) => r.name);
    expect(
      names.filter((n, i) => names.indexOf(n) !== i),
      'documented twice',
    ).toEqual([]);
    expect(
      names.filter((n) => !declared.has(n)),
      'documented, but not in CONFIG_VARIABLES',
    ).toEqual([]);
    expect(
      [...declared.keys()].filter((n) => !names.includes(n)),
      'in CONFIG_VARIABLES, but not documented',
    ).toEqual([]);
  });

  it('documents only variables the code reads', () => {
    const source = sourcesReadingVariables();
    expect(rows.map((r) => r.name).filter((name) => !new RegExp(`\\b${name}\\b`).test(source))).toEqual([]);
  });

  it.each(rows.map((r) => [r.name, r] as const))('%s: meaning, default and secrecy are the code’s', (name, row) => {
    const variable = declared.get(name);
    if (!variable) return; // reported above
    expect(variable.description.trim(), 'the code describes it').not.toBe('');
    expect(
      row.meaning.startsWith(plain(variable.description)),
      `meaning starts with the code's description:\n  ${variable.description}`,
    ).toBe(true);
    expect(row.default).toBe(variable.default === undefined ? '—' : plain(variable.default));
    expect(row.secret).toBe(variable.secret ? 'yes' : 'no');
  });

  it.each(CONFIG_VARIABLES.filter((v) => v.default !== undefined && isLiteral(v.default)).map((v) => [v.name, v] as const))(
    '%s: setting the documented default changes nothing',
    (_name, variable) => {
      const load = loaderOf(variable);
      expect(load({ [variable.name]: variable.default })).toEqual(load({}));
    },
  );
});

// ---- the saga: docs/explanation/saga-semantics.md against uploadSteps

const SAGA = 'docs/explanation/saga-semantics.md';

/** Sequences of saga step names written as `a → b → c` (at least three), in the order written. */
function stepChains(markdown: string): string[][] {
  const names = new Set(Object.keys(uploadSteps));
  const chains: string[][] = [];
  for (const line of markdown.split('\n')) {
    if (!line.includes('→')) continue;
    let run: string[] = [];
    const close = () => {
      if (run.length >= 3) chains.push(run);
      run = [];
    };
    line.split('→').forEach((segment, i) => {
      const words = segment
        .replace(/[*`]/g, '')
        .trim()
        .split(/\s+/)
        .map((w) => w.replace(/^\W+|\W+$/g, ''));
      if (i > 0) {
        // A chain goes on while the word after an arrow is a step name.
        if (run.length && names.has(words[0]!)) {
          run.push(words[0]!);
          if (words.length === 1) return;
        }
        close();
      }
      const last = words.at(-1)!;
      run = names.has(last) ? [last] : [];
    });
    close();
  }
  return chains;
}

describe(`the saga's description (${SAGA})`, () => {
  const steps = section(doc(SAGA), 'The steps');
  const table = tableWith(steps, 'step');
  const order = Object.keys(uploadSteps) as (keyof typeof uploadSteps)[];

  it('lists the steps of uploadSteps, in their order', () => {
    expect(table.rows.map((r) => plain(r[0]!.replace(/\(\*\*pivot\*\*\)/, '')))).toEqual(order);
  });

  it('names each step’s activity, its compensation and the pivot as the code declares them', () => {
    const activity = table.header.indexOf('activity');
    const undoneBy = table.header.indexOf('undone by');
    expect(activity).toBeGreaterThan(0);
    expect(undoneBy).toBeGreaterThan(0);
    table.rows.forEach((row, i) => {
      const step = uploadSteps[order[i]!] as { action: { activity: string }; compensation?: { activity: string }; pivot?: boolean };
      expect(codeSpans(row[activity]!)[0], `${order[i]}: activity`).toBe(step.action.activity);
      if (step.compensation) expect(codeSpans(row[undoneBy]!)[0], `${order[i]}: undone by`).toBe(step.compensation.activity);
      else expect(row[undoneBy], `${order[i]}: nothing to undo`).toMatch(/^—/);
      expect(row[0]!.includes('**pivot**'), `${order[i]}: pivot`).toBe(Boolean(step.pivot));
    });
  });

  it('writes every chain of steps in the order of the saga, and the whole saga once', () => {
    const chains = stepChains(steps);
    expect(chains).toContainEqual(order);
    for (const file of documentationFiles()) {
      for (const chain of stepChains(doc(file))) {
        expect(
          chain.map((s) => order.indexOf(s as (typeof order)[number])),
          `${file}: ${chain.join(' → ')}`,
        ).toEqual([...chain.map((s) => order.indexOf(s as (typeof order)[number]))].sort((a, b) => a - b));
      }
    }
  });

  it('states the compensations in reverse order of the steps', () => {
    const compensations = order
      .map((name) => (uploadSteps[name] as { compensation?: { activity: string } }).compensation?.activity)
      .filter((a): a is string => a !== undefined)
      .reverse();
    const sentence = steps.split('\n\n').find((paragraph) => /compensations, in reverse/.test(paragraph));
    expect(sentence, 'a paragraph stating "the compensations, in reverse: …"').toBeDefined();
    expect(codeSpans(sentence!).filter((span) => compensations.includes(span))).toEqual(compensations);
  });
});

// ---- other reference pages against the code

describe('the reference pages', () => {
  it('list every search attribute with its type, and the commands to register them', () => {
    const table = tableWith(doc('docs/reference/web-ui.md'), 'name');
    expect(Object.fromEntries(table.rows.map((r) => [plain(r[0]!), plain(r[1]!)]))).toEqual(UPLOAD_SEARCH_ATTRIBUTE_TYPES);
    const howTo = doc('docs/how-to/temporal-cloud-and-aws-s3.md');
    for (const [name, type] of Object.entries(UPLOAD_SEARCH_ATTRIBUTE_TYPES)) expect(howTo).toContain(`${name}:${type}`);
  });

  it('state the request defaults the code uses', () => {
    const client = doc('docs/reference/client.md');
    expect(client).toContain(`\`partSize\` ${UPLOAD_DEFAULTS.partSize / 1024 / 1024} MiB`);
    expect(client).toContain(`\`partConcurrency\` ${UPLOAD_DEFAULTS.partConcurrency}`);
    expect(client).toContain(`\`checksumAlgorithm\` \`${UPLOAD_DEFAULTS.checksumAlgorithm}\``);
    expect(client).toContain(`\`partsPerActivity\` ${UPLOAD_DEFAULTS.partsPerActivity}`);
    expect(client).toContain(`\`verify\` \`${UPLOAD_DEFAULTS.verify}\``);
  });

  it('list every failure type, and which are retried', () => {
    const table = tableWith(doc('docs/reference/errors.md'), 'type');
    const documented = Object.fromEntries(table.rows.map((r) => [plain(r[0]!), plain(r[1]!)]));
    const expected = Object.fromEntries(
      Object.values(UploadFailureType).map((type) => [type, PERMANENT_UPLOAD_FAILURES.includes(type) ? 'no' : 'yes']),
    );
    expect(documented).toEqual(expected);
  });
});

// ---- imports in examples: the package's public entry points only

const PUBLIC_ENTRY_POINTS = [
  'upload-saga',
  'upload-saga/worker',
  'upload-saga/workflows',
  'upload-saga/saga',
  'upload-saga/gateway',
  'upload-saga/codec',
];

interface ExampleImport {
  file: string;
  specifier: string;
  names: string[];
}

function exampleImports(): ExampleImport[] {
  return documentationFiles().flatMap((file) =>
    codeBlocks(doc(file))
      .filter((block) => /^(ts|js|typescript|javascript)$/.test(block.lang))
      .flatMap((block) =>
        [...block.code.matchAll(/import\s+(type\s+)?\{([^}]*)\}\s+from\s+'(upload-saga[^']*)'/g)].map((m) => ({
          file,
          specifier: m[3]!,
          names: m[1]
            ? []
            : m[2]!
                .split(',')
                .map((n) => n.trim())
                .filter((n) => n && !n.startsWith('type '))
                .map((n) => n.split(/\s+as\s+/)[0]!),
        })),
      ),
  );
}

/** The files package.json's `exports` maps a subpath to (sources first, for an unbuilt checkout). */
function exportTargets(specifier: string): string[] | undefined {
  const exportsField = (packageJson as { exports?: unknown }).exports;
  if (exportsField === undefined) return undefined;
  const key = specifier === 'upload-saga' ? '.' : `.${specifier.slice('upload-saga'.length)}`;
  const entry =
    typeof exportsField === 'string' ? (key === '.' ? exportsField : undefined) : (exportsField as Record<string, unknown>)[key];
  if (entry === undefined) return [];
  const leaves: string[] = [];
  const collect = (value: unknown) => {
    if (typeof value === 'string') leaves.push(value);
    else if (value && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect(entry);
  return leaves.flatMap((leaf) => [leaf.replace(/^\.\/dist\//, './src/').replace(/(\.d)?\.(c|m)?(j|t)s$/, '.ts'), leaf]);
}

describe('examples in the docs', () => {
  const imports = exampleImports();

  it('import the package through its public entry points', () => {
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.filter((i) => !PUBLIC_ENTRY_POINTS.includes(i.specifier)).map((i) => `${i.file}: ${i.specifier}`)).toEqual([]);
  });

  it('import only names the entry points export (once package.json declares `exports`)', async () => {
    for (const { file, specifier, names } of imports) {
      const targets = exportTargets(specifier);
      if (targets === undefined) return; // no `exports` yet: nothing to check against
      expect(targets.length, `${file}: package.json exports no "${specifier}"`).toBeGreaterThan(0);
      const module = targets
        .map((t) => path.join(REPO_ROOT, t))
        .find((t) => existsSync(t) && statSync(t).isFile() && !t.endsWith('.d.ts') && /\.(c|m)?(j|t)s$/.test(t));
      if (!module) continue; // only built output: nothing loadable in this checkout
      const exported = (await import(module)) as Record<string, unknown>;
      expect(
        names.filter((n) => !(n in exported)),
        `${file}: names ${specifier} (${path.relative(REPO_ROOT, module)}) does not export`,
      ).toEqual([]);
    }
  });
});

// ---- links between the pages

describe('links between README.md and docs/', () => {
  const files = documentationFiles();
  const anchors = new Map(files.map((f) => [f, new Set(headings(doc(f)).map((h) => h.slug))]));

  it.each(files)('%s: every code fence is closed', (file) => {
    expect(
      doc(file)
        .split('\n')
        .filter((line) => /^\s*```/.test(line)).length % 2,
    ).toBe(0);
  });

  it.each(files)('%s: every relative link and #anchor resolves', (file) => {
    const broken: string[] = [];
    for (const link of links(doc(file))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) continue; // https:, mailto:, …
      const [targetPath, anchor] = link.target.split('#', 2) as [string, string | undefined];
      const resolved = targetPath ? path.posix.normalize(path.posix.join(path.posix.dirname(file), decodeURI(targetPath))) : file;
      const where = `${file}:${link.line} [${link.text}](${link.target})`;
      // Generated by `npm run docs:api`: checked only when it has been generated.
      if ((resolved === 'docs/api' || resolved.startsWith('docs/api/')) && !existsSync(path.join(REPO_ROOT, 'docs/api'))) continue;
      if (resolved.startsWith('..')) broken.push(`${where}: leaves the repository`);
      else if (!existsSync(path.join(REPO_ROOT, resolved))) broken.push(`${where}: ${resolved} does not exist`);
      else if (anchor !== undefined) {
        const slugs = anchors.get(resolved) ?? new Set(headings(readRepoFile(resolved)).map((h) => h.slug));
        if (!resolved.endsWith('.md')) broken.push(`${where}: an anchor into a file that is not Markdown`);
        else if (!slugs.has(anchor)) broken.push(`${where}: ${resolved} has no heading #${anchor}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('the index, docs/README.md, links every page of docs/', () => {
    const index = 'docs/README.md';
    const linked = new Set(links(doc(index)).map((l) => path.posix.normalize(path.posix.join('docs', l.target.split('#')[0]!))));
    expect(files.filter((f) => f.startsWith('docs/') && f !== index && !linked.has(f))).toEqual([]);
  });
});
