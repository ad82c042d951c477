/**
 * `npm run build` (after `tsc -p tsconfig.build.json`): what dist/ needs besides compiled modules.
 *
 * - the files src/ reads at run time: the gateway page (src/gateway/public) and the encrypting
 *   failure converter, a plain CommonJS module loaded by path;
 * - the workflow code bundled ahead of time ({@link SHIPPED_WORKFLOW_BUNDLES}), once plain and once
 *   with the encrypting failure converter, so a worker starts without webpack;
 * - the gateway page's script and style sheet bundled with Uppy, so the gateway needs neither esbuild nor Uppy.
 */
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as PageModule from '../src/gateway/page';
import type * as WorkerModule from '../src/worker';

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');

async function main(): Promise<void> {
  // Copied before anything is loaded from dist/: dist/codec/data-converter.js names this file.
  await cp(path.join(root, 'src/codec/encrypted-failure-converter.js'), path.join(dist, 'codec/encrypted-failure-converter.js'));
  await mkdir(path.join(dist, 'gateway/public'), { recursive: true });
  await cp(path.join(root, 'src/gateway/public'), path.join(dist, 'gateway/public'), { recursive: true });

  // Loaded from dist/, so the bundles are built from exactly the JavaScript that ships.
  const worker = require(path.join(dist, 'worker.js')) as typeof WorkerModule;
  for (const [file, options] of [
    [worker.SHIPPED_WORKFLOW_BUNDLES.plain, {}],
    [worker.SHIPPED_WORKFLOW_BUNDLES.encryptedFailures, { encryptFailureMessages: true }],
  ] as const) {
    const bundle = await worker.bundleUploadWorkflows(options);
    await writeFile(file, bundle.code);
    console.error(`built ${path.relative(root, file)} (${Math.round(bundle.code.length / 1024)} KiB)`);
  }

  const page = require(path.join(dist, 'gateway/page.js')) as typeof PageModule;
  const pageBundle = await page.buildPageBundle();
  await writeFile(page.PREBUILT_PAGE_BUNDLE.script, pageBundle.script);
  await writeFile(page.PREBUILT_PAGE_BUNDLE.style, pageBundle.style);
  console.error(`built ${path.relative(root, page.PREBUILT_PAGE_BUNDLE.script)} and ${path.basename(page.PREBUILT_PAGE_BUNDLE.style)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
