/**
 * Tenants cannot reach each other's uploads through the API: an UploadClient bound to one tenant
 * starts, finds, awaits, cancels and lists only that tenant's uploads — also when a workflow was
 * started around the client under a crafted id — and a worker with a tenant key prefix refuses
 * keys outside the tenant's prefix before a byte moves. Real dev server, real worker, real MinIO.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantAccessDeniedError, UploadClient, UploadFailedError } from '../../src/client';
import { InvalidUploadRequestError } from '../../src/upload/errors';
import type { UploadRequest } from '../../src/upload/request';
import { createUploadWorker } from '../../src/worker';
import { UploadTenant } from '../../src/upload/search-attributes';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { connectTestStack, runInBackground, startUploadWorker, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { incompleteUploads, objectExists } from '../support/s3-inspect';

const A = uniqueId('tenant-a');
const B = uniqueId('tenant-b');
const BUCKET = 'uploads';

let stack: TestStack;
let worker: RunningWorker;
let tmp: { dir: string; remove(): Promise<void> };
let asA: UploadClient;
let asB: UploadClient;
let admin: UploadClient;

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  tmp = await makeTempDir();
  const taskQueue = stack.config.temporal.taskQueue;
  asA = new UploadClient({ client: stack.client, taskQueue, tenant: A });
  asB = new UploadClient({ client: stack.client, taskQueue, tenant: B });
  admin = new UploadClient({ client: stack.client, taskQueue });
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
  await tmp?.remove();
});

async function request(tenant: string, extra: Partial<UploadRequest> = {}): Promise<UploadRequest> {
  const uploadId = uniqueId('up');
  const file = await makeRandomFile(tmp.dir, `${uploadId}.bin`, 1 * MiB);
  return {
    uploadId,
    tenant,
    source: { type: 'file', path: file.path },
    destination: { bucket: BUCKET, key: `tenants/${tenant}/${uploadId}.bin` },
    ...extra,
  };
}

const thrown = async (fn: () => unknown): Promise<unknown> => {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  return undefined;
};

describe('a client bound to a tenant', () => {
  it("cannot start, find, await, cancel or list another tenant's upload", async () => {
    const reqA = await request(A);
    await (await asA.start(reqA)).result();

    // start for another tenant: refused before anything starts
    const forA = await request(A);
    const startErr = await thrown(() => asB.start(forA));
    expect(startErr).toBeInstanceOf(TenantAccessDeniedError);
    expect((startErr as Error).message).toBe(`this client acts for tenant ${B} and may not start an upload for tenant ${A}`);
    expect(await thrown(() => admin.getHandle(A, forA.uploadId).workflow.describe())).toBeInstanceOf(WorkflowNotFoundError);

    // find A's upload: refused; the same upload id under B's own name is simply another (absent) upload
    const handleErr = await thrown(() => asB.getHandle(A, reqA.uploadId));
    expect(handleErr).toBeInstanceOf(TenantAccessDeniedError);
    expect((handleErr as Error).message).toBe(`this client acts for tenant ${B} and may not reach upload ${reqA.uploadId} of tenant ${A}`);
    expect(await thrown(() => asB.getHandle(B, reqA.uploadId).result())).toBeInstanceOf(WorkflowNotFoundError);

    // ids cannot be crafted to reach into another tenant's workflow ids
    expect(await thrown(() => asB.getHandle(`${B}:x`, 'y'))).toBeInstanceOf(InvalidUploadRequestError);
    expect(await thrown(() => asA.getHandle(A, `${reqA.uploadId}:x`))).toBeInstanceOf(InvalidUploadRequestError);

    // list: only its own, and never another tenant's on request
    expect(await thrown(() => asB.list({ tenant: A }))).toBeInstanceOf(TenantAccessDeniedError);
    const reqB = await request(B);
    await (await asB.start(reqB)).result();
    await expect
      .poll(async () => (await asB.list()).map((s) => s.workflowId), { timeout: 20_000 })
      .toContain(`upload:${B}:${reqB.uploadId}`);
    const listedByB = await asB.list({ limit: 100 });
    expect(listedByB.every((s) => s.tenant === B)).toBe(true);
    await expect
      .poll(async () => (await admin.list({ tenant: A })).map((s) => s.workflowId), { timeout: 20_000 })
      .toContain(`upload:${A}:${reqA.uploadId}`);

    // A still reaches its own
    expect((await asA.getHandle(A, reqA.uploadId).result()).key).toBe(reqA.destination.key);
  });

  it('refuses a workflow started around the client under its id pattern but for another tenant, and does not cancel it', async () => {
    // Someone with direct Temporal access starts upload:<B>:x for tenant A, on a queue no worker serves.
    const uploadId = uniqueId('crafted');
    const crafted = await request(A, { uploadId });
    const workflowId = `upload:${B}:${uploadId}`;
    const raw = await stack.client.workflow.start('uploadWorkflow', {
      workflowId,
      taskQueue: `nobody-${randomUUID()}`,
      args: [crafted],
      typedSearchAttributes: [{ key: UploadTenant, value: A }],
    });
    try {
      const handle = asB.getHandle(B, uploadId);
      for (const call of [() => handle.cancel(), () => handle.progress(), () => handle.result()]) {
        const err = await thrown(call);
        expect(err).toBeInstanceOf(TenantAccessDeniedError);
        expect((err as Error).message).toBe(`workflow ${workflowId} is not an upload of tenant ${B} (its UploadTenant is "${A}")`);
      }
      const description = await raw.describe();
      expect(description.status.name).toBe('RUNNING');
      expect((await raw.fetchHistory()).events?.some((e) => e.workflowExecutionCancelRequestedEventAttributes)).toBe(false);
    } finally {
      await raw.terminate('test cleanup');
    }
  });

  it('cannot be constructed for a malformed tenant', () => {
    expect(() => new UploadClient({ client: stack.client, tenant: 'a:b' })).toThrow(InvalidUploadRequestError);
  });
});

describe('a worker with a tenant key prefix', () => {
  let prefixed: RunningWorker;
  let uploads: UploadClient;
  const tenant = uniqueId('prefixed');

  beforeAll(async () => {
    const taskQueue = uniqueId('prefix');
    const config = { ...stack.config, temporal: { ...stack.config.temporal, taskQueue }, tenantKeyPrefix: 'tenants/{tenant}/' };
    prefixed = runInBackground(
      await createUploadWorker({ config, connection: stack.workerConnection, client: stack.client, s3: stack.s3 }),
    );
    uploads = new UploadClient({ client: stack.client, taskQueue, tenant });
  });

  afterAll(async () => {
    await prefixed?.stop();
  });

  it("refuses a key outside the tenant's prefix before a byte moves, and accepts one inside", async () => {
    const outside = await request(tenant, { destination: { bucket: BUCKET, key: `tenants/${A}/stolen.bin` } });
    const err = await (await uploads.start(outside)).result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UploadFailedError);
    expect((err as UploadFailedError).report).toMatchObject({
      failedStep: 'inspect-source',
      cause: { type: 'DestinationNotAllowed' },
      compensations: [],
    });
    expect((err as UploadFailedError).report?.cause.message).toBe(
      `key "tenants/${A}/stolen.bin" is outside tenant ${tenant}'s prefix: keys must start with "tenants/${tenant}/" (UPLOAD_SAGA_TENANT_KEY_PREFIX)`,
    );
    expect(await incompleteUploads(stack.s3, BUCKET, outside.destination.key)).toEqual([]);
    expect(await objectExists(stack.s3, BUCKET, outside.destination.key)).toBe(false);

    const inside = await request(tenant);
    expect((await (await uploads.start(inside)).result()).key).toBe(`tenants/${tenant}/${inside.uploadId}.bin`);
  });
});
