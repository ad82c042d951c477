/**
 * Uppy in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core) loads
 * the page the gateway serves, a file is set on its input as a person would choose one, and Uppy
 * uploads it — with @uppy/aws-s3 (presigned parts PUT straight to MinIO, cross-origin) and with
 * @uppy/tus (through the gateway). The gateway is the one the CLI starts (DEFAULT_GATEWAY_PLUGINS),
 * with Redis, on the run's real Temporal, worker and MinIO. Checked independently: the object's
 * SHA-256, no multipart upload or staged object left, and the page's progress stream ending in
 * `completed` with the object. Screenshots go to test/artifacts/ for a human to look at.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_GATEWAY_PLUGINS } from '../../src/gateway/plugins';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { listAllParts } from '../../src/s3/list-parts';
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
const reloader = testTenant('pagereload');
const ghost = testTenant('pageghost');

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  redis = testRedis();
  gateway = await startTestGateway(stack, [acme, reloader, ghost], { redis, plugins: DEFAULT_GATEWAY_PLUGINS });
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
async function openPage(
  target: TestGateway,
  tenant: TestTenant,
  context?: BrowserContext,
): Promise<{ page: Page; context: BrowserContext; errors: string[] }> {
  // A context of its own unless given: golden-retriever keeps files in the origin's IndexedDB.
  const ctx = context ?? (await browser.newContext({ viewport: { width: 1100, height: 1500 } }));
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${message.text()} (${message.location().url})`);
  });
  await page.goto(`${target.url}/#token=${tenant.token}`, { waitUntil: 'load' });
  // The token left the address bar once the page took it.
  expect(new URL(page.url()).hash).toBe('');
  return { page, context: ctx, errors };
}

interface PageOutcome {
  state: string | undefined;
  uploadId: string;
  result: { bucket: string; key: string; etag: string; size: string };
  events: { phase: string; outcome: string; bytes: number }[];
  sent: string;
  error: string;
}

/** What the page shows of the saga of the upload of `fileName`. */
async function readSaga(page: Page, fileName: string): Promise<PageOutcome> {
  const panel = page.locator('.saga').filter({ has: page.locator('h3', { hasText: fileName }) });
  const text = (field: string) => panel.locator(`[data-field=${field}]`).innerText();
  return {
    state: (await panel.getAttribute('data-state')) ?? undefined,
    uploadId: await text('upload-id'),
    result: {
      bucket: await text('result-bucket'),
      key: await text('result-key'),
      etag: await text('result-etag'),
      size: await text('result-size'),
    },
    events: await panel.locator('.events li').evaluateAll((items) =>
      items.map((li) => ({
        phase: li.getAttribute('data-phase')!,
        outcome: li.getAttribute('data-outcome')!,
        bytes: Number(li.getAttribute('data-bytes')),
      })),
    ),
    sent: await text('sent'),
    error: (await panel.locator('.error').innerText()) + (await page.locator('#error').innerText()),
  };
}

/**
 * The presigned parts' requests as the browser sent them: each sign request's `size` and `checksum`
 * and the headers the gateway said the signature binds, and each part PUT's headers.
 */
function watchPartRequests(context: BrowserContext) {
  const signed: { partNumber: number; size: string | null; checksum: string | null; headers?: Record<string, string> }[] = [];
  const putHeaders = new Map<number, Record<string, string>>();
  /** Parts the page reported finished and the gateway accepted (pushed progress). */
  const reported: number[] = [];
  const REPORT = /\/s3\/multipart\/[^/]+\/(\d+)\/done\?/;
  const SIGN = /\/s3\/multipart\/[^/]+\/(\d+)\?/;
  context.on('request', (request) => {
    const url = new URL(request.url());
    const sign = SIGN.exec(url.pathname + url.search);
    if (request.method() === 'GET' && sign)
      signed.push({ partNumber: Number(sign[1]), size: url.searchParams.get('size'), checksum: url.searchParams.get('checksum') });
    const part = url.searchParams.get('partNumber');
    if (request.method() === 'PUT' && part) putHeaders.set(Number(part), request.headers());
  });
  context.on('response', async (response) => {
    const report = REPORT.exec(new URL(response.url()).pathname + new URL(response.url()).search);
    if (report && response.request().method() === 'POST' && response.status() === 200) reported.push(Number(report[1]));
    const sign = SIGN.exec(new URL(response.url()).pathname + new URL(response.url()).search);
    if (response.request().method() !== 'GET' || !sign || !response.ok()) return;
    const answer = (await response.json()) as { headers?: Record<string, string> };
    const entry = signed.find((s) => s.partNumber === Number(sign[1]) && s.headers === undefined);
    if (entry) entry.headers = Object.fromEntries(Object.entries(answer.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  });
  return { signed, putHeaders, reported };
}

/** Chooses `protocol` and waits until the page has its uploader (an S3 upload session first). */
async function chooseProtocol(page: Page, protocol: 'tus' | 's3'): Promise<void> {
  await page.check(`input[name=protocol][value=${protocol}]`);
  await page.waitForSelector(`body[data-uploader=${protocol}]`, { state: 'attached', timeout: 15_000 });
}

/** Chooses files in the Dashboard as a person would (its "browse files" input). */
async function chooseFiles(page: Page, files: TestFile[]): Promise<void> {
  const input = page.locator('input.uppy-Dashboard-input[name="files[]"]:not([webkitdirectory])');
  await input.setInputFiles(files.map((file) => file.path));
}

/** The Dashboard's main button: "Upload n files", or "Resume" for a restored session. */
const startButton = (page: Page) => page.locator('button.uppy-StatusBar-actionBtn--upload');

/** Chooses `protocol` and the files, presses Upload, and waits until the page shows every outcome. */
async function uploadThroughPage(page: Page, protocol: 'tus' | 's3', files: TestFile[]): Promise<PageOutcome[]> {
  await chooseProtocol(page, protocol);
  const started = Date.now();
  await chooseFiles(page, files);
  await startButton(page).click();
  await page.waitForSelector('body[data-state=done], body[data-state=failed]', { state: 'attached', timeout: 110_000 });
  const total = files.reduce((sum, file) => sum + file.size, 0);
  // A figure, not an assertion: from choosing the files to the page showing the outcome.
  process.stderr.write(
    `[browser] ${protocol}: ${files.length} file(s), ${(total / 1024 ** 2).toFixed(0)} MiB chosen → outcome shown in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return Promise.all(files.map((file) => readSaga(page, path.basename(file.path))));
}

/**
 * Run in the page: what golden-retriever saved in IndexedDB — how many file blobs, and the uploads'
 * ids from each file's `s3Multipart` state. (Text, because the test code is type-checked without the DOM.)
 */
const SAVED_UPLOAD_STATE = `new Promise((resolve) => {
  const request = indexedDB.open('uppy-blobs');
  request.onerror = () => resolve({ blobs: 0, uploadIds: [] });
  request.onsuccess = () => {
    const db = request.result;
    const transaction = db.transaction(['metadata', 'files']);
    const meta = transaction.objectStore('metadata').get('upload-saga-page');
    const blobs = transaction.objectStore('files').count();
    transaction.oncomplete = () => {
      const files = meta.result ? Object.values(JSON.parse(meta.result.metadata).files ?? {}) : [];
      db.close();
      resolve({ blobs: blobs.result, uploadIds: files.flatMap((f) => (f.s3Multipart ? [f.s3Multipart.uploadId] : [])) });
    };
  };
})`;

async function expectStoredAndClean(tenant: string, uploadId: string, key: string, file: TestFile): Promise<void> {
  expect(await objectSha256(stack.s3, BUCKET, key)).toBe(file.sha256);
  expect(await incompleteUploads(stack.s3, BUCKET, key), 'incomplete multipart uploads').toEqual([]);
  expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(tenant, uploadId)), 'staged objects').toEqual([]);
}

/**
 * Starts a presigned upload of `file` (its own tenant: one saga expected), holds part 2 in the
 * browser, closes the tab once S3 has part 1 and golden-retriever saved the upload's state, opens
 * the page again in the same browser profile, chooses the file again if `reselect`, presses Resume
 * and checks (a) identical bytes and nothing left, (c) one saga, completed. Returns the part PUTs
 * sent after the reload, for (b).
 */
async function reloadMidUpload(
  tenant: TestTenant,
  file: TestFile,
  options: { reselect: boolean },
): Promise<{ partsAfterReload: number[] }> {
  const name = path.basename(file.path);
  // One browser profile for both tabs: golden-retriever keeps the files and the upload's state in its IndexedDB.
  const context = await browser.newContext({ viewport: { width: 1100, height: 1500 } });
  const partsAfterReload: number[] = [];
  let reopened = false;
  let part1Stored = false;
  context.on('request', (request) => {
    const part = new URL(request.url()).searchParams.get('partNumber');
    if (reopened && request.method() === 'PUT' && part) partsAfterReload.push(Number(part));
  });
  context.on('response', (response) => {
    if (response.request().method() === 'PUT' && /[?&]partNumber=1(&|$)/.test(response.url()) && response.status() === 200)
      part1Stored = true;
  });
  try {
    const first = await openPage(gateway, tenant, context);
    // Part 2 is held in the browser until the tab is gone.
    let part2Held = false;
    await first.page.route(/[?&]partNumber=2(&|$)/, () => {
      part2Held = true;
    });
    await chooseProtocol(first.page, 's3');
    await chooseFiles(first.page, [file]);
    await startButton(first.page).click();
    await expect.poll(() => part1Stored, { timeout: 60_000 }).toBe(true);
    await expect.poll(() => part2Held, { timeout: 15_000 }).toBe(true);
    // golden-retriever saved the upload's multipart state (a throttled write), and the bytes if it could.
    await expect
      .poll(() => first.page.evaluate(SAVED_UPLOAD_STATE), { timeout: 15_000 })
      .toMatchObject({ blobs: options.reselect ? 0 : 1, uploadIds: [expect.any(String)] });
    const uploadId = (await readSaga(first.page, name)).uploadId;
    const key = `${tenant.name}/${uploadId}/${name}`;
    const [multipartUploadId] = await incompleteUploads(stack.s3, BUCKET, key);
    const storedBefore = await listAllParts(stack.s3, { bucket: BUCKET, key, multipartUploadId: multipartUploadId! });
    expect(storedBefore.map((part) => [part.PartNumber, part.Size])).toEqual([[1, 5 * MiB]]);
    await first.page.close();

    reopened = true;
    const second = await openPage(gateway, tenant, context);
    // The protocol was remembered; the Dashboard says the session was restored and offers to resume.
    await second.page.waitForSelector('body[data-uploader=s3]', { state: 'attached', timeout: 15_000 });
    await second.page.locator('.uppy-Dashboard-serviceMsg').waitFor({ timeout: 15_000 });
    if (options.reselect) {
      await second.page.locator('.uppy-Dashboard-Item-reSelect').click();
      await chooseFiles(second.page, [file]);
    }
    await startButton(second.page).click();
    await second.page.waitForSelector('body[data-state=done], body[data-state=failed]', { state: 'attached', timeout: 110_000 });
    await second.page.screenshot({ path: path.join(ARTIFACTS, `gateway-page-resumed-${name}.png`), fullPage: true });
    const outcome = await readSaga(second.page, name);
    expect(outcome.error).toBe('');
    expect(outcome).toMatchObject({ state: 'done', uploadId, result: { key, size: `${file.size} bytes` } });
    // (a) identical bytes, nothing left behind
    await expectStoredAndClean(tenant.name, uploadId, key, file);
    // (c) one saga, completed
    expect(await gateway.app.uploads.state(tenant.name, uploadId)).toMatchObject({ mode: 'presigned', outcome: 'completed' });
    await expect
      .poll(async () => (await stack.client.workflow.count(`UploadTenant = '${tenant.name}'`)).count, { timeout: 15_000 })
      .toBe(1);
    expect(second.errors).toEqual([]);
    return { partsAfterReload };
  } finally {
    await context.close();
  }
}

describe('the upload page with Uppy in Chromium', () => {
  it('serves the page, its bundled script and style sheet without authentication, and nothing else without it', async () => {
    const html = await fetch(`${gateway.url}/`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    const script = await fetch(`${gateway.url}/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    const body = await script.text();
    expect(body.length).toBeGreaterThan(200_000); // Uppy and its Dashboard are in it
    expect(body).not.toContain(stack.config.s3.credentials!.secretAccessKey);
    const style = await fetch(`${gateway.url}/app.css`);
    expect(style.status).toBe(200);
    expect(style.headers.get('content-type')).toMatch(/^text\/css/);
    expect(await style.text()).toContain('.uppy-Dashboard');
    expect((await fetch(`${gateway.url}/uppy/sessions`, { method: 'POST' })).status).toBe(401);
  });

  it('uploads 12 MiB with @uppy/aws-s3 multipart (presigned parts straight to MinIO): byte-identical, nothing left, progress ends in completed', async () => {
    const { page, context, errors } = await openPage(gateway, acme);
    const file = await makeRandomFile(tmp.dir, 'browser-s3.bin', 12 * MiB);
    const parts = watchPartRequests(context);
    const [outcome] = await uploadThroughPage(page, 's3', [file]);
    await page.screenshot({ path: path.join(ARTIFACTS, 'gateway-page-s3-multipart.png'), fullPage: true });
    // Each part was signed with its size and the SHA-256 the page computed of its bytes, and sent
    // with every header the signature binds.
    const bytes = await readFile(file.path);
    const expected = [0, 1, 2].map((i) => {
      const part = bytes.subarray(i * 5 * MiB, (i + 1) * 5 * MiB);
      return { partNumber: i + 1, size: String(part.length), checksum: `sha256 ${createHash('sha256').update(part).digest('base64')}` };
    });
    expect(parts.signed.map(({ partNumber, size, checksum }) => ({ partNumber, size, checksum }))).toEqual(expected);
    await expect.poll(() => parts.signed.every((sign) => sign.headers !== undefined)).toBe(true);
    for (const sign of parts.signed) {
      expect(sign.headers).toEqual({ 'x-amz-checksum-sha256': sign.checksum!.slice('sha256 '.length) });
      expect(parts.putHeaders.get(sign.partNumber)).toMatchObject(sign.headers!);
    }
    // Parts 1 and 2 were reported as they finished (the last one travels with complete).
    await expect.poll(() => [...parts.reported].sort()).toEqual([1, 2]);
    expect(outcome!.error).toBe('');
    expect(outcome!.state).toBe('done');
    expect(outcome!.result).toMatchObject({
      bucket: BUCKET,
      key: `${acme.name}/${outcome!.uploadId}/browser-s3.bin`,
      size: `${12 * MiB} bytes`,
    });
    expect(outcome!.result.etag).toMatch(/-3"?$/); // three 5 MiB parts
    expect(outcome!.sent).toBe('12.0 MiB of 12.0 MiB');
    expect(outcome!.events.length).toBeGreaterThanOrEqual(2);
    expect(outcome!.events[0]).toMatchObject({ outcome: 'running' });
    expect(outcome!.events.at(-1)).toMatchObject({ outcome: 'completed', phase: 'done', bytes: 12 * MiB });
    expect(outcome!.events.filter((e) => e.outcome !== 'running')).toHaveLength(1);

    await expectStoredAndClean(acme.name, outcome!.uploadId, outcome!.result.key, file);
    const state = await gateway.app.uploads.state(acme.name, outcome!.uploadId);
    expect(state).toMatchObject({ mode: 'presigned', outcome: 'completed', length: 12 * MiB });
    expect(errors).toEqual([]);
    await context.close();
  });

  it('uploads 12 MiB with @uppy/tus through the gateway: byte-identical, nothing left, progress shows the recorded offsets and ends in completed', async () => {
    const { page, context, errors } = await openPage(gateway, acme);
    const file = await makeRandomFile(tmp.dir, 'browser-tus.bin', 12 * MiB);
    const [outcome] = await uploadThroughPage(page, 'tus', [file]);
    await page.screenshot({ path: path.join(ARTIFACTS, 'gateway-page-tus.png'), fullPage: true });
    expect(outcome!.error).toBe('');
    expect(outcome!.state).toBe('done');
    expect(outcome!.result).toMatchObject({
      bucket: BUCKET,
      key: `${acme.name}/${outcome!.uploadId}/browser-tus.bin`,
      size: `${12 * MiB} bytes`,
    });
    expect(outcome!.sent).toBe('12.0 MiB of 12.0 MiB');
    expect(outcome!.events.at(-1)).toMatchObject({ outcome: 'completed', phase: 'done', bytes: 12 * MiB });
    // Offsets only grow.
    const bytes = outcome!.events.map((e) => e.bytes);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));

    await expectStoredAndClean(acme.name, outcome!.uploadId, outcome!.result.key, file);
    expect(await gateway.app.uploads.state(acme.name, outcome!.uploadId)).toMatchObject({ mode: 'tus', outcome: 'completed' });
    expect(errors).toEqual([]);
    await context.close();
  });

  it('uploads several files chosen at once in the Dashboard, one saga each, each shown completed beside it', async () => {
    const { page, context, errors } = await openPage(gateway, acme);
    const files = [
      await makeRandomFile(tmp.dir, 'several-a.bin', 6 * MiB),
      await makeRandomFile(tmp.dir, 'several-b.bin', 1 * MiB),
      await makeRandomFile(tmp.dir, 'several-c.bin', 300 * 1024),
    ];
    const outcomes = await uploadThroughPage(page, 's3', files);
    await page.screenshot({ path: path.join(ARTIFACTS, 'gateway-page-several-files.png'), fullPage: true });
    expect(new Set(outcomes.map((o) => o.uploadId)).size).toBe(3);
    for (const [i, outcome] of outcomes.entries()) {
      const file = files[i]!;
      expect(outcome.error).toBe('');
      expect(outcome).toMatchObject({ state: 'done', result: { size: `${file.size} bytes` } });
      expect(outcome.events.at(-1)).toMatchObject({ outcome: 'completed', phase: 'done', bytes: file.size });
      await expectStoredAndClean(acme.name, outcome.uploadId, outcome.result.key, file);
    }
    expect(errors).toEqual([]);
    await context.close();
  });

  it('binds each presigned part to the checksum the page computed: S3 refuses a part whose bytes changed on the way, and the page says the upload failed', async () => {
    const { page, context } = await openPage(gateway, acme);
    const file = await makeRandomFile(tmp.dir, 'tampered.bin', 12 * MiB);
    // Part 2 leaves the browser with one byte changed after the page hashed it (same size).
    await page.route(/[?&]partNumber=2(&|$)/, async (route) => {
      const body = Buffer.from(route.request().postDataBuffer()!);
      body[0] = body[0]! ^ 0xff;
      await route.continue({ postData: body });
    });
    let part2Status: number | undefined;
    context.on('response', (response) => {
      if (response.request().method() === 'PUT' && /[?&]partNumber=2(&|$)/.test(response.url())) part2Status = response.status();
    });
    const [outcome] = await uploadThroughPage(page, 's3', [file]);
    expect(part2Status).toBe(400); // BadDigest / XAmzContentChecksumMismatch
    expect(outcome!.state).toBe('failed');
    expect(outcome!.error).toMatch(/Upload failed/);
    const key = `${acme.name}/${outcome!.uploadId}/tampered.bin`;
    const [multipartUploadId] = await incompleteUploads(stack.s3, BUCKET, key);
    const stored = await listAllParts(stack.s3, { bucket: BUCKET, key, multipartUploadId: multipartUploadId! });
    expect(stored.map((part) => part.PartNumber)).toEqual([1]);
    expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
    await gateway.app.uploads.cancel(acme.name, outcome!.uploadId);
    await context.close();
  });

  it('uploads an empty file from the Dashboard on the presigned path: one saga, an empty object', async () => {
    const { page, context, errors } = await openPage(gateway, acme);
    const file = await makeRandomFile(tmp.dir, 'empty.bin', 0);
    const [outcome] = await uploadThroughPage(page, 's3', [file]);
    expect(outcome!.error).toBe('');
    expect(outcome).toMatchObject({ state: 'done', result: { size: '0 bytes' } });
    await expectStoredAndClean(acme.name, outcome!.uploadId, outcome!.result.key, file);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('pauses a presigned upload from the Dashboard and resumes it from the parts S3 has', async () => {
    const { page, context, errors } = await openPage(gateway, acme);
    const file = await makeRandomFile(tmp.dir, 'paused.bin', 12 * MiB);
    const puts: number[] = [];
    let part1Stored = false;
    let part2Held = false;
    context.on('request', (request) => {
      const part = new URL(request.url()).searchParams.get('partNumber');
      if (request.method() === 'PUT' && part) puts.push(Number(part));
    });
    context.on('response', (response) => {
      if (response.request().method() === 'PUT' && /[?&]partNumber=1(&|$)/.test(response.url()) && response.status() === 200)
        part1Stored = true;
    });
    const HOLD = /[?&]partNumber=2(&|$)/;
    await page.route(HOLD, () => {
      part2Held = true;
    });
    await chooseProtocol(page, 's3');
    await chooseFiles(page, [file]);
    await startButton(page).click();
    await expect.poll(() => part1Stored && part2Held, { timeout: 60_000 }).toBe(true);
    await page.locator('button.uppy-Dashboard-Item-progressIndicator[aria-label="Pause upload"]').click();
    await page.locator('button.uppy-Dashboard-Item-progressIndicator[aria-label="Resume upload"]').waitFor();
    await page.unroute(HOLD);
    const sentBeforeResume = puts.length;
    await page.locator('button.uppy-Dashboard-Item-progressIndicator[aria-label="Resume upload"]').click();
    await page.waitForSelector('body[data-state=done], body[data-state=failed]', { state: 'attached', timeout: 110_000 });
    const outcome = await readSaga(page, 'paused.bin');
    expect(outcome.error).toBe('');
    expect(outcome).toMatchObject({ state: 'done', result: { size: `${12 * MiB} bytes` } });
    expect(puts.slice(sentBeforeResume)).toEqual([2, 3]);
    await expectStoredAndClean(acme.name, outcome.uploadId, outcome.result.key, file);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('resumes a presigned upload after the tab is closed mid-upload and opened again: the parts S3 has are not sent again, and one saga completes with identical bytes', async () => {
    // Two 5 MiB parts, within golden-retriever's 10 MiB limit: the browser keeps the file's bytes.
    const file = await makeRandomFile(tmp.dir, 'reloaded.bin', 10 * MiB);
    const { partsAfterReload } = await reloadMidUpload(reloader, file, { reselect: false });
    // (b) only the part S3 did not have was sent after the reload
    expect(partsAfterReload).toEqual([2]);
  });

  it('resumes a presigned upload of a file the browser could not keep once the person chooses it again after the reload', async () => {
    // Three parts; over golden-retriever's 10 MiB limit, the file comes back as a "ghost" to choose again.
    const file = await makeRandomFile(tmp.dir, 'reselected.bin', 12 * MiB);
    const { partsAfterReload } = await reloadMidUpload(ghost, file, { reselect: true });
    expect(partsAfterReload).toEqual([2, 3]);
  });

  it('a person who closes the tab mid-upload leaves nothing: the presigned upload expires, its multipart upload is aborted and its reservation released', async () => {
    const leaving = testTenant('pageleave');
    const short = await startTestGateway(stack, [leaving], {
      redis,
      plugins: DEFAULT_GATEWAY_PLUGINS,
      overrides: { uploadExpiryMs: 15_000 },
    });
    try {
      const { page, context } = await openPage(short, leaving);
      // Part 1 reaches MinIO; part 2 is held in the browser until the tab is gone.
      let part1Done = false;
      page.on('response', (response) => {
        if (response.request().method() === 'PUT' && /[?&]partNumber=1(&|$)/.test(response.url()) && response.status() === 200)
          part1Done = true;
      });
      await page.route(/[?&]partNumber=2(&|$)/, () => undefined);
      await chooseProtocol(page, 's3');
      await chooseFiles(page, [await makeRandomFile(tmp.dir, 'left-behind.bin', 12 * MiB)]);
      await startButton(page).click();
      await expect.poll(() => part1Done, { timeout: 60_000 }).toBe(true);
      const uploadId = (await readSaga(page, 'left-behind.bin')).uploadId;
      const key = `${leaving.name}/${uploadId}/left-behind.bin`;
      expect(await incompleteUploads(stack.s3, BUCKET, key)).toHaveLength(1);
      const ledger = new TemporalQuotaLedger({
        client: stack.client,
        taskQueue: stack.config.temporal.taskQueue,
        limits: stack.config.quota,
      });
      expect((await ledger.usage(leaving.name)).reservedBytes).toBe(12 * MiB);
      await context.close();

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
