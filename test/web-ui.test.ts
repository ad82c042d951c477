/**
 * What a person sees in the Temporal Web UI: headless Chromium (Debian's `chromium`, driven by
 * playwright-core) opens the dev server's UI, finds a completed and a compensated upload by the
 * tenant search attribute, and reads their summary, details and failure. Screenshots are saved to
 * test/artifacts/ for a human to look at.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { UploadClient, UploadFailedError } from '../src/client';
import { workflowUiUrl } from '../src/embedded';
import { makeRandomFile, makeTempDir, MiB } from './support/files';
import { connectTestStack, uniqueId, type RunningWorker, type TestStack, startUploadWorker } from './support/harness';

const ARTIFACTS = path.join(__dirname, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TENANT = uniqueId('webui');

let stack: TestStack;
let worker: RunningWorker;
let browser: Browser;
let tmp: { dir: string; remove(): Promise<void> };
let completedId: string;
let compensatedId: string;
let key: string;

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  tmp = await makeTempDir();
  await mkdir(ARTIFACTS, { recursive: true });
  const uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });

  const good = await makeRandomFile(tmp.dir, 'shown.bin', 11 * MiB);
  key = `webui/${uniqueId('obj')}.bin`;
  const completed = await uploads.start({
    uploadId: uniqueId('shown'),
    tenant: TENANT,
    source: { type: 'file', path: good.path },
    destination: { bucket: 'uploads', key },
    partSize: 5 * MiB,
  });
  await completed.result();
  completedId = completed.workflowId;

  const compensated = await uploads.start({
    uploadId: uniqueId('undone'),
    tenant: TENANT,
    source: { type: 'file', path: good.path },
    destination: { bucket: 'uploads', key: `webui/${uniqueId('obj')}.bin` },
    partSize: 5 * MiB,
    expectedChecksum: { algorithm: 'SHA256', value: 'f'.repeat(64) },
  });
  await expect(compensated.result()).rejects.toBeInstanceOf(UploadFailedError);
  compensatedId = compensated.workflowId;

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await stack?.close();
  await tmp?.remove();
});

async function open(url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  return page;
}

// The server on PostgreSQL (UPLOAD_SAGA_TEST_TEMPORAL=postgres) has no Web UI.
describe.skipIf(inject('temporalUiUrl') === '')('Temporal Web UI', () => {
  it('lists the completed and the compensated upload of a tenant by search attribute', async () => {
    const query = `UploadTenant="${TENANT}"`;
    const page = await open(`${inject('temporalUiUrl')}/namespaces/${inject('namespace')}/workflows?query=${encodeURIComponent(query)}`);
    await expect.poll(() => page.getByText(completedId).count(), { timeout: 30_000 }).toBeGreaterThan(0);
    await expect.poll(() => page.getByText(compensatedId).count(), { timeout: 30_000 }).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-list.png'), fullPage: true });

    // "All compensated uploads of tenant X"
    const compensatedQuery = `UploadTenant="${TENANT}" AND UploadOutcome="compensated"`;
    await page.goto(`${inject('temporalUiUrl')}/namespaces/${inject('namespace')}/workflows?query=${encodeURIComponent(compensatedQuery)}`);
    await expect.poll(() => page.getByText(compensatedId).count(), { timeout: 30_000 }).toBeGreaterThan(0);
    expect(await page.getByText(completedId).count()).toBe(0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-compensated-list.png'), fullPage: true });
    await page.close();
  });

  it('shows a completed upload with its summary, details and final progress details', async () => {
    const page = await open(workflowUiUrl({ uiUrl: inject('temporalUiUrl'), namespace: inject('namespace'), workflowId: completedId }));
    await expect.poll(() => page.getByText(`s3://uploads/${key}`, { exact: false }).count(), { timeout: 30_000 }).toBeGreaterThan(0);
    await expect.poll(() => page.getByText('Completed', { exact: false }).count(), { timeout: 30_000 }).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-completed.png'), fullPage: true });
    // The static summary and details, and the last current details, live under "User Metadata".
    await page.getByText('User Metadata', { exact: true }).first().click();
    // The UI renders summary and details as Markdown in sandboxed frames: read the text of every frame.
    const text = async () =>
      (
        await Promise.all(
          page.frames().map((f) =>
            f
              .locator('body')
              .innerText()
              .catch(() => ''),
          ),
        )
      )
        .join('\n')
        .replace(/\s+/g, ' ');
    await expect.poll(text, { timeout: 30_000 }).toContain(`→ s3://uploads/${key} (tenant ${TENANT})`); // static summary
    await expect.poll(text, { timeout: 30_000 }).toContain(`destination s3://uploads/${key}`); // static details
    await expect.poll(text, { timeout: 30_000 }).toContain(`completed — s3://uploads/${key}, ${11 * MiB} bytes in 3 parts`); // current details
    await expect.poll(text, { timeout: 30_000 }).toContain('upload parts 1–3 of 3'); // activity summary
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-completed-metadata.png'), fullPage: true });
    await page.close();
  });

  it('shows a compensated upload with the failed step, the cause and each compensation', async () => {
    const page = await open(workflowUiUrl({ uiUrl: inject('temporalUiUrl'), namespace: inject('namespace'), workflowId: compensatedId }));
    await expect
      .poll(() => page.getByText('step "verify" failed: ChecksumMismatch', { exact: false }).count(), { timeout: 30_000 })
      .toBeGreaterThan(0);
    await expect.poll(() => page.getByText('upload-parts compensated', { exact: false }).count(), { timeout: 30_000 }).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-compensated.png'), fullPage: true });
    await page.close();
  });
});
