/**
 * Uppy in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core) loads
 * the page the gateway serves, a file is set on its input as a person would choose one, and Uppy
 * uploads it — with @uppy/aws-s3 (presigned parts PUT straight to MinIO, cross-origin) and with
 * @uppy/tus (through the gateway). The gateway is the one the CLI starts (DEFAULT_GATEWAY_PLUGINS),
 * with Redis, on the run's real Temporal, worker and MinIO. Checked independently: the object's
 * SHA-256, no multipart upload or staged object left, and the page's progress stream ending in
 * `completed` with the object. Screenshots go to test/artifacts/ for a human to look at.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_GATEWAY_PLUGINS } from '../../src/gateway/plugins';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { stagingPrefixOf } from '../../src/upload/staging';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { makeRandomFile, makeTempDir, MiB, type TestFile } from '../support/files';
import { incompleteUploads, keysUnder, objectExists, objectSha256 } from '../support/s3-inspect';
import { startTestGateway, testRedis, testTenant, type TestGateway, type TestTenant } from './gateway-harness';

const ARTIFACTS = path.join(__dirname, '..', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const BUCKET = 'uploads';

let stack: TestStack;
let worker: RunningWorker;
let redis: Redis;
let gateway: TestGateway;
let browser: Browser;
let tmp: { dir: string; remove(): Promise<void> };
const acme = testTenant('pageacme');

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  redis = testRedis();
  gateway = await startTestGateway(stack, [acme], { redis, plugins: DEFAULT_GATEWAY_PLUGINS });
  await mkdir(ARTIFACTS, { recursive: true });
  tmp = await makeTempDir();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // playwright starts it headless with a fresh temporary profile.
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
  await tmp?.remove();
  await gateway?.close();
  await redis?.quit();
  await worker?.stop();
  await stack?.close();
});

/** The page, opened as a person would with the token in the fragment; console errors collected. */
async function openPage(target: TestGateway, tenant: TestTenant): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1300 } });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  await page.goto(`${target.url}/#token=${tenant.token}`, { waitUntil: 'load' });
  // The token left the address bar once the page took it.
  expect(new URL(page.url()).hash).toBe('');
  return { page, errors };
}

interface PageOutcome {
  state: string | undefined;
  uploadId: string;
  result: { bucket: string; key: string; etag: string; size: string };
  events: { phase: string; outcome: string; bytes: number }[];
  sent: string;
  error: string;
}

async function readPage(page: Page): Promise<PageOutcome> {
  const text = (id: string) => page.locator(`#${id}`).innerText();
  return {
    state: await page
      .locator('body')
      .getAttribute('data-state')
      .then((s) => s ?? undefined),
    uploadId: await text('upload-id'),
    result: {
      bucket: await text('result-bucket'),
      key: await text('result-key'),
      etag: await text('result-etag'),
      size: await text('result-size'),
    },
    events: await page.locator('#events li').evaluateAll((items) =>
      items.map((li) => ({
        phase: li.getAttribute('data-phase')!,
        outcome: li.getAttribute('data-outcome')!,
        bytes: Number(li.getAttribute('data-bytes')),
      })),
    ),
    sent: await text('sent'),
    error: await text('error'),
  };
}

/** Chooses `protocol`, sets the file on the input (as a person choosing it), and waits until the page shows the outcome. */
async function uploadThroughPage(page: Page, protocol: 'tus' | 's3', file: TestFile): Promise<PageOutcome> {
  await page.check(`input[name=protocol][value=${protocol}]`);
  const started = Date.now();
  await page.setInputFiles('#file', file.path);
  await page.waitForSelector('body[data-state=done], body[data-state=failed]', { timeout: 110_000 });
  // A figure, not an assertion: from choosing the file to the page showing the outcome.
  process.stderr.write(
    `[browser] ${protocol}: ${(file.size / 1024 ** 2).toFixed(0)} MiB chosen → outcome shown in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return readPage(page);
}

async function expectStoredAndClean(tenant: string, uploadId: string, key: string, file: TestFile): Promise<void> {
  expect(await objectSha256(stack.s3, BUCKET, key)).toBe(file.sha256);
  expect(await incompleteUploads(stack.s3, BUCKET, key), 'incomplete multipart uploads').toEqual([]);
  expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(tenant, uploadId)), 'staged objects').toEqual([]);
}

describe('the upload page with Uppy in Chromium', () => {
  it('serves the page and its bundled script without authentication, and nothing else without it', async () => {
    const html = await fetch(`${gateway.url}/`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    const script = await fetch(`${gateway.url}/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    const body = await script.text();
    expect(body.length).toBeGreaterThan(50_000); // Uppy is in it
    expect(body).not.toContain(stack.config.s3.credentials!.secretAccessKey);
    expect((await fetch(`${gateway.url}/uppy/sessions`, { method: 'POST' })).status).toBe(401);
  });

  it('uploads 12 MiB with @uppy/aws-s3 multipart (presigned parts straight to MinIO): byte-identical, nothing left, progress ends in completed', async () => {
    const { page, errors } = await openPage(gateway, acme);
    const file = await makeRandomFile(tmp.dir, 'browser-s3.bin', 12 * MiB);
    const outcome = await uploadThroughPage(page, 's3', file);
    await page.screenshot({ path: path.join(ARTIFACTS, 'gateway-page-s3-multipart.png'), fullPage: true });
    expect(outcome.error).toBe('');
    expect(outcome.state).toBe('done');
    expect(outcome.result).toMatchObject({
      bucket: BUCKET,
      key: `${acme.name}/${outcome.uploadId}/browser-s3.bin`,
      size: `${12 * MiB} bytes`,
    });
    expect(outcome.result.etag).toMatch(/-3"?$/); // three 5 MiB parts
    expect(outcome.sent).toBe('12.0 MiB of 12.0 MiB');
    expect(outcome.events.length).toBeGreaterThanOrEqual(2);
    expect(outcome.events[0]).toMatchObject({ outcome: 'running' });
    expect(outcome.events.at(-1)).toMatchObject({ outcome: 'completed', phase: 'done', bytes: 12 * MiB });
    expect(outcome.events.filter((e) => e.outcome !== 'running')).toHaveLength(1);

    await expectStoredAndClean(acme.name, outcome.uploadId, outcome.result.key, file);
    const state = await gateway.app.uploads.state(acme.name, outcome.uploadId);
    expect(state).toMatchObject({ mode: 'presigned', outcome: 'completed', length: 12 * MiB });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('uploads 12 MiB with @uppy/tus through the gateway: byte-identical, nothing left, progress shows the recorded offsets and ends in completed', async () => {
    const { page, errors } = await openPage(gateway, acme);
    const file = await makeRandomFile(tmp.dir, 'browser-tus.bin', 12 * MiB);
    const outcome = await uploadThroughPage(page, 'tus', file);
    await page.screenshot({ path: path.join(ARTIFACTS, 'gateway-page-tus.png'), fullPage: true });
    expect(outcome.error).toBe('');
    expect(outcome.state).toBe('done');
    expect(outcome.result).toMatchObject({
      bucket: BUCKET,
      key: `${acme.name}/${outcome.uploadId}/browser-tus.bin`,
      size: `${12 * MiB} bytes`,
    });
    expect(outcome.sent).toBe('12.0 MiB of 12.0 MiB');
    expect(outcome.events.at(-1)).toMatchObject({ outcome: 'completed', phase: 'done', bytes: 12 * MiB });
    // Offsets only grow.
    const bytes = outcome.events.map((e) => e.bytes);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));

    await expectStoredAndClean(acme.name, outcome.uploadId, outcome.result.key, file);
    expect(await gateway.app.uploads.state(acme.name, outcome.uploadId)).toMatchObject({ mode: 'tus', outcome: 'completed' });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a person who closes the tab mid-upload leaves nothing: the presigned upload expires, its multipart upload is aborted and its reservation released', async () => {
    const leaving = testTenant('pageleave');
    const short = await startTestGateway(stack, [leaving], {
      redis,
      plugins: DEFAULT_GATEWAY_PLUGINS,
      overrides: { uploadExpiryMs: 15_000 },
    });
    try {
      const { page } = await openPage(short, leaving);
      // Part 1 reaches MinIO; part 2 is held in the browser until the tab is gone.
      let part1Done = false;
      page.on('response', (response) => {
        if (response.request().method() === 'PUT' && /[?&]partNumber=1(&|$)/.test(response.url()) && response.status() === 200)
          part1Done = true;
      });
      await page.route(/[?&]partNumber=2(&|$)/, () => undefined);
      await page.check('input[name=protocol][value=s3]');
      await page.setInputFiles('#file', (await makeRandomFile(tmp.dir, 'left-behind.bin', 12 * MiB)).path);
      await expect.poll(() => part1Done, { timeout: 60_000 }).toBe(true);
      const uploadId = await page.locator('#upload-id').innerText();
      const key = `${leaving.name}/${uploadId}/left-behind.bin`;
      expect(await incompleteUploads(stack.s3, BUCKET, key)).toHaveLength(1);
      const ledger = new TemporalQuotaLedger({
        client: stack.client,
        taskQueue: stack.config.temporal.taskQueue,
        limits: stack.config.quota,
      });
      expect((await ledger.usage(leaving.name)).reservedBytes).toBe(12 * MiB);
      await page.close();

      const state = await short.app.uploads.waitForEnd(leaving.name, uploadId, 60_000);
      expect(state.outcome).toBe('expired');
      expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
      expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
      expect(await ledger.usage(leaving.name)).toMatchObject({ reservedBytes: 0, usedBytes: 0 });
    } finally {
      await short.close();
    }
  });
});
