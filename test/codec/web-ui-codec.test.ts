/**
 * The Web UI with a codec server: a dev server started with `--ui-codec-endpoint` (what
 * `upload-saga stack --encrypt` does) shows an encrypted upload's input decoded in headless
 * Chromium, because the browser sends the payloads to the codec server (CORS preflight and all).
 * The run's own dev server, which has no codec endpoint, shows the same kind of upload without any
 * of its request. Screenshots go to test/artifacts/ (`web-ui-codec-decoded.png`, `web-ui-codec-encrypted.png`).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { UploadClient } from '../../src/client';
import { AesGcmPayloadCodec, startCodecServer, type RunningCodecServer } from '../../src/codec';
import { startTemporalDevServer, workflowUiUrl, type TemporalDevServer } from '../../src/embedded';
import { UPLOAD_SEARCH_ATTRIBUTE_TYPES } from '../../src/upload/search-attributes';
import { uiOrigins } from '../../src/cli/commands/codec-server';
import { makeRandomFile, makeTempDir, MiB, type TestFile } from '../support/files';
import { connectTestStack, startUploadWorker, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { randomBytes } from 'node:crypto';

const ARTIFACTS = path.join(__dirname, '..', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const KEY = randomBytes(32);
const ENV = { UPLOAD_SAGA_ENCRYPTION_KEY: KEY.toString('base64'), UPLOAD_SAGA_ENCRYPTION_KEY_ID: 'ui-key' };
const TENANT = uniqueId('uienc');

let tmp: { dir: string; remove(): Promise<void> };
let file: TestFile;
let codecServer: RunningCodecServer;
const codecLog: string[] = [];
let devServer: TemporalDevServer;
let decodingStack: TestStack;
let plainUiStack: TestStack;
const workers: RunningWorker[] = [];
let browser: Browser;

beforeAll(async () => {
  tmp = await makeTempDir();
  file = await makeRandomFile(tmp.dir, `ui-confidential-${uniqueId('f')}.bin`, 6 * MiB);
  // The codec server first: the dev server is told its URL at start; the UI's origin is allowed once known.
  codecServer = await startCodecServer({
    codec: new AesGcmPayloadCodec({ encryption: { keys: [{ id: 'ui-key', key: KEY }] } }),
    log: (line) => codecLog.push(line),
  });
  devServer = await startTemporalDevServer({
    dataDir: path.join(tmp.dir, 'temporal'),
    uiCodecEndpoint: codecServer.url,
    searchAttributes: UPLOAD_SEARCH_ATTRIBUTE_TYPES,
  });
  for (const origin of uiOrigins(devServer.uiUrl)) codecServer.allowOrigin(origin);

  decodingStack = await connectTestStack({ env: { ...ENV, TEMPORAL_ADDRESS: devServer.address } });
  plainUiStack = await connectTestStack({ env: ENV }); // the run's shared dev server: its UI has no codec endpoint
  workers.push(await startUploadWorker(decodingStack), await startUploadWorker(plainUiStack));
  await mkdir(ARTIFACTS, { recursive: true });
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
  await Promise.all(workers.map((w) => w.stop()));
  await decodingStack?.close();
  await plainUiStack?.close();
  await devServer?.stop();
  await codecServer?.close();
  await tmp?.remove();
});

async function encryptedUpload(stack: TestStack, key: string): Promise<string> {
  const uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
  const handle = await uploads.start({
    uploadId: uniqueId('ui'),
    tenant: TENANT,
    source: { type: 'file', path: file.path },
    destination: { bucket: 'uploads', key },
    partSize: 5 * MiB,
  });
  await handle.result();
  return handle.workflowId;
}

/** Text of the page and of every frame (the UI renders some payloads in sandboxed frames). */
const pageText = async (page: Page) =>
  (
    await Promise.all(
      page.frames().map((f) =>
        f
          .locator('body')
          .innerText()
          .catch(() => ''),
      ),
    )
  ).join('\n');

// The server on PostgreSQL (UPLOAD_SAGA_TEST_TEMPORAL=postgres) has no Web UI.
describe.skipIf(inject('temporalUiUrl') === '')('Web UI with the codec server', () => {
  it('shows the decoded workflow input of an encrypted upload', async () => {
    const key = `webui-enc/${uniqueId('private')}.bin`;
    const workflowId = await encryptedUpload(decodingStack, key);
    const page = await browser.newPage({ viewport: { width: 1440, height: 1200 } });
    await page.goto(workflowUiUrl({ uiUrl: devServer.uiUrl, namespace: devServer.namespace, workflowId }), {
      waitUntil: 'domcontentloaded',
    });
    await expect.poll(() => pageText(page), { timeout: 60_000 }).toContain(key);
    await expect.poll(() => pageText(page), { timeout: 30_000 }).toContain(path.basename(file.path));
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-codec-decoded.png'), fullPage: true });
    await page.close();
    // The browser called the codec server: preflight first, then decode.
    expect(codecLog.some((line) => line.startsWith('OPTIONS /decode') && line.includes('→ 204'))).toBe(true);
    expect(codecLog.some((line) => line.startsWith('POST /decode') && line.includes('(namespace default)') && line.includes('→ 200'))).toBe(
      true,
    );
  });

  it('shows none of the request where the UI has no codec endpoint', async () => {
    const key = `webui-enc/${uniqueId('hidden')}.bin`;
    const workflowId = await encryptedUpload(plainUiStack, key);
    const page = await browser.newPage({ viewport: { width: 1440, height: 1200 } });
    await page.goto(workflowUiUrl({ uiUrl: inject('temporalUiUrl'), namespace: inject('namespace'), workflowId }), {
      waitUntil: 'domcontentloaded',
    });
    await expect.poll(() => pageText(page), { timeout: 60_000 }).toContain(workflowId); // the page has loaded the workflow
    await expect.poll(() => pageText(page), { timeout: 30_000 }).toMatch(/Completed/i);
    await new Promise((r) => setTimeout(r, 2000)); // let every panel render
    const text = await pageText(page);
    expect(text).toContain('YmluYXJ5L2VuY3J5cHRlZA=='); // the input as stored: encoding binary/encrypted, in base64
    expect(text).not.toContain(key);
    expect(text).not.toContain(path.basename(file.path));
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-codec-encrypted.png'), fullPage: true });
    await page.close();
  });
});
