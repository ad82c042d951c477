/**
 * The upload page the gateway serves: `GET /` (src/gateway/public/index.html), `GET /app.js` and
 * `GET /app.css` (src/gateway/public/app.js with Uppy's Dashboard and its style sheets, bundled by
 * esbuild), all public — the page holds no secret; the person using it enters the tenant's bearer
 * token, or opens `/#token=…`.
 *
 * Why it is built this way: bundling at start, in memory, keeps a generated file out of the
 * repository and the page always in step with the installed Uppy. The bundle (≈350 KB of script,
 * ≈70 KB of style, minified) is built once, on the first request or by {@link buildPageBundle}
 * ahead of time, in well under a second. The published package ships it prebuilt
 * ({@link PREBUILT_PAGE_BUNDLE}); from the sources, esbuild and the Uppy packages are needed at run
 * time for this (devDependencies); when they are not installed the page answers 503 saying so, and
 * the rest of the gateway is unaffected.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { companionClientSubstitution } from './page-companion-client';
import type { GatewayPlugin } from './plugin-types';

const PUBLIC_DIR = path.join(__dirname, 'public');

/**
 * The page's script and style sheet bundled ahead of time by `npm run build` (dist/ only): served
 * as they are, so a gateway from the published package needs neither esbuild nor Uppy at run time.
 */
export const PREBUILT_PAGE_BUNDLE = {
  script: path.join(PUBLIC_DIR, 'app.bundle.js'),
  style: path.join(PUBLIC_DIR, 'app.bundle.css'),
} as const;

/** The page's bundle: one script (an IIFE) and the style sheet its imports bring. */
export interface PageBundle {
  script: string;
  style: string;
}

/**
 * Bundles the page's script (Uppy core, Dashboard, golden-retriever, @uppy/aws-s3, @uppy/tus and
 * the page's modules) into one IIFE, and the style sheets it imports into one CSS file.
 */
export async function buildPageBundle(options: { minify?: boolean } = {}): Promise<PageBundle> {
  // Loaded only here: the gateway runs without esbuild when nobody asks for the page.
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [path.join(PUBLIC_DIR, 'app.js')],
    bundle: true,
    write: false,
    // Names the outputs (nothing is written): app.js and the app.css its CSS imports become.
    outdir: PUBLIC_DIR,
    format: 'iife',
    platform: 'browser',
    target: ['chrome109', 'firefox115', 'safari16'],
    minify: options.minify ?? true,
    legalComments: 'none',
    logLevel: 'silent',
    plugins: [companionClientSubstitution()],
  });
  const script = result.outputFiles.find((file) => file.path.endsWith('.js'));
  const style = result.outputFiles.find((file) => file.path.endsWith('.css'));
  if (!script || !style) throw new Error('esbuild produced no script or no style sheet for the page');
  return { script: script.text, style: style.text };
}

async function readPrebuiltBundle(): Promise<PageBundle> {
  const [script, style] = await Promise.all([readFile(PREBUILT_PAGE_BUNDLE.script, 'utf8'), readFile(PREBUILT_PAGE_BUNDLE.style, 'utf8')]);
  return { script, style };
}

/** Options of {@link pagePlugin}. */
export interface PagePluginOptions {
  /** @default true */
  minify?: boolean;
}

/** `GET /`, `GET /app.js` and `GET /app.css`: the page where a person drops files and watches their uploads. */
export function pagePlugin(options: PagePluginOptions = {}): GatewayPlugin {
  return async (app) => {
    let bundle: Promise<PageBundle> | undefined;
    const html = await readFile(path.join(PUBLIC_DIR, 'index.html'), 'utf8');
    const headers = {
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      // The page talks to this origin only (API, tus, progress); parts go to S3 (connect-src *).
      // The Dashboard shows thumbnails from blob: URLs and styles its elements inline.
      'content-security-policy':
        "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src *; img-src 'self' data: blob:; frame-ancestors 'none'",
    };

    app.get('/', { config: { public: true } }, async (request, reply) => {
      // The page loads app.js and calls the API by relative URLs: under a prefix it must be seen as a directory.
      const [pathname, query] = request.url.split('?', 2);
      if (!pathname!.endsWith('/')) return reply.redirect(`${pathname}/${query !== undefined ? `?${query}` : ''}`);
      return reply.headers(headers).type('text/html; charset=utf-8').send(html);
    });

    // Browsers ask for it on their own; without this route they would get a 401.
    app.get('/favicon.ico', { config: { public: true } }, async (_request, reply) => reply.code(204).send());

    const assets = [
      ['/app.js', 'text/javascript; charset=utf-8', 'script'],
      ['/app.css', 'text/css; charset=utf-8', 'style'],
    ] as const;
    for (const [url, type, part] of assets) {
      app.get(url, { config: { public: true } }, async (request, reply) => {
        bundle ??= readPrebuiltBundle().catch(() => buildPageBundle(options));
        try {
          const built = await bundle;
          return reply.headers(headers).type(type).send(built[part]);
        } catch (err) {
          bundle = undefined;
          request.log.error({ err }, 'the upload page could not be bundled');
          return reply
            .code(503)
            .type('text/plain; charset=utf-8')
            .send(
              `the upload page needs esbuild and @uppy/core, @uppy/dashboard, @uppy/golden-retriever, @uppy/aws-s3, @uppy/tus installed: ${err instanceof Error ? err.message : String(err)}`,
            );
        }
      });
    }
  };
}
