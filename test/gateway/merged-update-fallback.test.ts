/**
 * `waitUntilMerged`'s fallback, against a worker of an earlier version: its gateway-upload workflow
 * does not know the Update (test/gateway/workflows-without-merged-update.ts), as during a rolling
 * deploy, and rejects it as unknown. The gateway then waits for the workflow's end, as before the
 * Update existed: a finishing PATCH and a concatenation final's creation answer only once the saga
 * ended (held at notify by the tenant's webhook receiver), with the state of a completed upload.
 * Real worker activities, Temporal and MinIO; only the workflow bundle differs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { siblingModule } from '../../src/module-path';
import { waitUntilMergedUpdate } from '../../src/upload/gateway-upload-messages';
import type { GatewayUploadState } from '../../src/upload/gateway-upload';
import { uploadWorkflowId } from '../../src/upload/request';
import { createUploadWorker } from '../../src/worker';
import { connectTestStack, runInBackground, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { objectSha256 } from '../support/s3-inspect';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';
import { idOf, startTestGateway, storedPartials, testTenant, tusRequest, type TestGateway } from './gateway-harness';

const BUCKET = 'uploads';
let stack: TestStack;
let worker: RunningWorker;
let gateway: TestGateway;
let webhooks: WebhookReceiver;
const tenant = testTenant('merged-fallback');

beforeAll(async () => {
  stack = await connectTestStack();
  worker = runInBackground(
    await createUploadWorker({
      config: stack.config,
      connection: stack.workerConnection,
      client: stack.client,
      s3: stack.s3,
      workflowsPath: siblingModule(__dirname, './workflows-without-merged-update'),
    }),
  );
  webhooks = await startWebhookReceiver();
  gateway = await startTestGateway(stack, [tenant], {
    overrides: { tenants: { [tenant.name]: { webhookUrl: webhooks.url(`/${tenant.name}`) } } },
  });
});

afterAll(async () => {
  await gateway?.close();
  await webhooks?.close();
  await worker?.stop();
  await stack?.close();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const handleOf = (uploadId: string) => stack.client.workflow.getHandle(uploadWorkflowId(tenant.name, uploadId));

/** The tus uploads the gateway's metric counts with `outcome`. */
async function tusUploadsCounted(outcome: string): Promise<number> {
  const counter = await gateway.app.metrics.uploads.get();
  return counter.values.find((v) => v.labels.protocol === 'tus' && v.labels.outcome === outcome)?.value ?? 0;
}

/**
 * Sends `request` while the tenant's webhook receiver holds its answer, and checks that the gateway
 * answers only after the saga of `uploadId()` ended: not while it waits at notify (after its merge),
 * only once the receiver answered and the workflow closed. Returns the answer.
 */
async function answeredAfterTheEnd(request: () => Promise<Response>, uploadId: () => string | undefined): Promise<Response> {
  let release!: () => void;
  webhooks.holdUntil.set(`/${tenant.name}`, new Promise<void>((resolve) => (release = resolve)));
  let answeredAt: number | undefined;
  const answer = request().then((response) => {
    answeredAt = Date.now();
    return response;
  });
  let releasedAt: number;
  try {
    // The saga merged and reached notify, where the receiver holds it…
    await expect.poll(() => webhooks.received.some((w) => w.json.uploadId === uploadId()), { timeout: 30_000 }).toBe(true);
    // …and the gateway has not answered: it waits for the end, not for the merge.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(answeredAt, 'answered while the saga waited at notify').toBeUndefined();
    expect((await handleOf(uploadId()!).describe()).status.name).toBe('RUNNING');
  } finally {
    releasedAt = Date.now();
    release();
  }
  const response = await answer;
  expect(answeredAt).toBeGreaterThanOrEqual(releasedAt);
  const ended = await handleOf(uploadId()!).describe();
  expect(ended.status.name).toBe('COMPLETED');
  expect(ended.closeTime!.getTime(), 'the workflow closed before the answer').toBeLessThanOrEqual(answeredAt!);
  return response;
}

describe("waitUntilMerged's fallback: a worker that does not know the Update", () => {
  it('rejects the Update as unknown; the finishing PATCH then answers after the saga ended, with the completed state', async () => {
    const data = randomBytes(MiB + 3);
    const created = await tusRequest(`${gateway.url}/files`, 'POST', { ...tenant.auth, 'Upload-Length': String(data.length) });
    expect(created.status, await created.text()).toBe(201);
    const url = new URL(created.headers.get('location')!, gateway.url).toString();
    const uploadId = idOf(url);
    // Once open (HEAD waits for it; the creation answered when the saga started): an Update that
    // reached the run's first task would meet the handler before this fixture removes it.
    expect((await tusRequest(url, 'HEAD', tenant.auth)).status).toBe(200);
    // What an earlier version answers: the Update is rejected, not accepted.
    const rejected = await handleOf(uploadId)
      .executeUpdate(waitUntilMergedUpdate)
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(rejected).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((rejected as WorkflowUpdateFailedError).cause?.message).toBe('No registered handler for update: waitUntilMerged');

    // The states the gateway answered with (published to progress streams), read without a query.
    const seen: GatewayUploadState[] = [];
    const stopObserving = gateway.app.uploads.observe((state) => state.uploadId === uploadId && seen.push(state));
    const completedBefore = await tusUploadsCounted('completed');
    try {
      const patched = await answeredAfterTheEnd(
        () => tusRequest(url, 'PATCH', { ...tenant.auth, 'Upload-Offset': '0' }, data),
        () => uploadId,
      );
      expect([patched.status, patched.headers.get('upload-offset')]).toEqual([204, String(data.length)]);
    } finally {
      stopObserving();
    }
    expect(seen.pop()).toMatchObject({
      outcome: 'completed',
      phase: 'done',
      offset: data.length,
      result: { size: data.length, notification: { status: 'delivered' } },
    });
    expect(await tusUploadsCounted('completed')).toBe(completedBefore + 1);
    expect(await objectSha256(stack.s3, BUCKET, `${tenant.name}/${uploadId}/file`)).toBe(sha256(data));
    const head = await tusRequest(url, 'HEAD', tenant.auth);
    expect([head.status, head.headers.get('upload-offset'), head.headers.get('upload-expires')]).toEqual([200, String(data.length), null]);
  });

  it("a concatenation final's creation answers 201 after its saga ended, with its Upload-Concat", async () => {
    const parts = [randomBytes(MiB), randomBytes(2 * MiB + 1)];
    const paths = await storedPartials(gateway, tenant, parts);
    // The final's id is not known before its answer: it is the upload the next webhook names (partials send none).
    const from = webhooks.received.length;
    const finalId = () => webhooks.received.slice(from).map((w) => w.json.uploadId as string | undefined)[0];
    const completedBefore = await tusUploadsCounted('completed');
    const created = await answeredAfterTheEnd(
      () => tusRequest(`${gateway.url}/files`, 'POST', { ...tenant.auth, 'Upload-Concat': `final;${paths.join(' ')}` }),
      finalId,
    );
    expect([created.status, created.headers.get('location'), created.headers.get('upload-concat')], await created.text()).toEqual([
      201,
      `/files/${finalId()}`,
      `final;${paths.join(' ')}`,
    ]);
    expect(await tusUploadsCounted('completed')).toBe(completedBefore + 1);
    expect(await objectSha256(stack.s3, BUCKET, `${tenant.name}/${finalId()}/file`)).toBe(sha256(Buffer.concat(parts)));
  });
});
