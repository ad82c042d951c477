/**
 * The upload page the gateway serves: `GET /` (src/gateway/public/index.html) and `GET /app.js`
 * (src/gateway/public/app.js with Uppy, bundled by esbuild), both public — the page holds no
 * secret; the person using it enters the tenant's bearer token, or opens `/#token=…`.
 *
 * Why it is built this way: bundling at start, in memory, keeps a generated file out of the
 * repository and the page always in step with the installed Uppy. The bundle (≈140 KB minified)
 * is built once, on the first request or by {@link buildPageBundle} ahead of time, in a fraction
 * of a second. The published package ships it prebuilt ({@link PREBUILT_PAGE_BUNDLE}); from the
 * sources, esbuild and the Uppy packages are needed at run time for this (devDependencies); when
 * they are not installed the page answers 503 saying so, and the rest of the gateway is unaffected.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { GatewayPlugin } from './plugin-types';

const PUBLIC_DIR = path.join(__dirname, 'public');

/**
 * The page's script bundled ahead of time by `npm run build` (dist/ only): served as it is, so a
 * gateway from the published package needs neither esbuild nor Uppy at run time.
 */
export const PREBUILT_PAGE_BUNDLE = path.join(PUBLIC_DIR, 'app.bundle.js');

/** Bundles the page's script (Uppy core, @uppy/aws-s3, @uppy/tus and app.js) into one IIFE. */
export async function buildPageBundle(options: { minify?: boolean } = {}): Promise<string> {
  // Loaded only here: the gateway runs without esbuild when nobody asks for the page.
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [path.join(PUBLIC_DIR, 'app.js')],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: ['chrome109', 'firefox115', 'safari16'],
    minify: options.minify ?? true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const output = result.outputFiles[0];
  if (!output) throw new Error('esbuild produced no output for the page');
  return output.text;
}

/** Options of {@link pagePlugin}. */
export interface PagePluginOptions {
  /** @default true */
  minify?: boolean;
}

/** `GET /` and `GET /app.js`: the page where a person drops a file and watches its upload. */
export function pagePlugin(options: PagePluginOptions = {}): GatewayPlugin {
  return async (app) => {
    let bundle: Promise<string> | undefined;
    const html = await readFile(path.join(PUBLIC_DIR, 'index.html'), 'utf8');
    const headers = {
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      // The page talks to this origin only (API, tus, progress); parts go to S3 (connect-src *).
      'content-security-policy':
        "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src *; img-src 'self' data:; frame-ancestors 'none'",
    };

    app.get('/', { config: { public: true } }, async (request, reply) => {
      // The page loads app.js and calls the API by relative URLs: under a prefix it must be seen as a directory.
      const [pathname, query] = request.url.split('?', 2);
      if (!pathname!.endsWith('/')) return reply.redirect(`${pathname}/${query !== undefined ? `?${query}` : ''}`);
      return reply.headers(headers).type('text/html; charset=utf-8').send(html);
    });

    // Browsers ask for it on their own; without this route they would get a 401.
    app.get('/favicon.ico', { config: { public: true } }, async (_request, reply) => reply.code(204).send());

    app.get('/app.js', { config: { public: true } }, async (request, reply) => {
      bundle ??= readFile(PREBUILT_PAGE_BUNDLE, 'utf8').catch(() => buildPageBundle(options));
      try {
        return reply
          .headers(headers)
          .type('text/javascript; charset=utf-8')
          .send(await bundle);
      } catch (err) {
        bundle = undefined;
        request.log.error({ err }, 'the upload page could not be bundled');
        return reply
          .code(503)
          .type('text/plain; charset=utf-8')
          .send(
            `the upload page needs esbuild and @uppy/core, @uppy/aws-s3, @uppy/tus installed: ${err instanceof Error ? err.message : String(err)}`,
          );
      }
    });
  };
}
