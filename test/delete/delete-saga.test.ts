/**
 * The delete saga against the real dev server, worker and MinIO: it deletes the object and gives
 * its bytes back to the tenant's quota once — not twice when deleted again, nothing for a key that
 * is empty or an object the saga did not store — refuses other tenants' objects and keys outside
 * the tenant's prefix before deleting anything, and in a bucket with versioning removes exactly
 * the version the saga stored.
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeleteFailedError, TenantAccessDeniedError, UploadClient } from '../../src/client';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { InvalidDeleteRequestError } from '../../src/upload/errors';
import { STAMP_KEY } from '../../src/upload/object-stamp';
import type { UploadRequest } from '../../src/upload/request';
import { UploadOutcome, UploadPhase, UploadTenant } from '../../src/upload/search-attributes';
import { deleteWorkflowId } from '../../src/upload/delete-request';
import { createUploadWorker } from '../../src/worker';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { objectExists } from '../support/s3-inspect';

const BUCKET = 'uploads';
let stack: TestStack;
let worker: RunningWorker;
let tmp: { dir: string; remove(): Promise<void> };
let admin: UploadClient;
let ledger: TemporalQuotaLedger;

beforeAll(async () => {
  stack = await connectTestStack({ taskQueue: uniqueId('delete04') });
  const config = { ...stack.config, tenantKeyPrefix: 'delete04/{tenant}/' };
  worker = runInBackground(await createUploadWorker({ config, connection: stack.workerConnection, client: stack.client, s3: stack.s3 }));
  tmp = await makeTempDir();
  admin = new UploadClient({ client: stack.client, taskQueue: config.temporal.taskQueue });
  ledger = new TemporalQuotaLedger({ client: stack.client, taskQueue: config.temporal.taskQueue, limits: config.quota });
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
  await tmp?.remove();
});

async function upload(tenant: string, size: number, extra: { bucket?: string; key?: string } = {}) {
  const uploadId = uniqueId('up');
  const file = await makeRandomFile(tmp.dir, `${uploadId}.bin`, size);
  const request: UploadRequest = {
    uploadId,
    tenant,
    source: { type: 'file', path: file.path },
    destination: { bucket: extra.bucket ?? BUCKET, key: extra.key ?? `delete04/${tenant}/${uploadId}.bin` },
    partSize: 5 * MiB,
  };
  const result = await (await admin.start(request)).result();
  return { uploadId, key: result.key, size: result.size };
}

/** The tenant's used bytes once the ledger has applied every settlement sent so far (they are signals). */
async function usedBytes(tenant: string, expected: number): Promise<number> {
  await expect.poll(async () => (await ledger.usage(tenant)).usedBytes, { timeout: 15_000 }).toBe(expected);
  return (await ledger.usage(tenant)).usedBytes;
}

describe('the delete saga', () => {
  it('deletes an object the saga stored and gives its bytes back once; deleting it again gives nothing', async () => {
    const tenant = uniqueId('d04-once');
    const small = await upload(tenant, 1 * MiB); // the one-PutObject path
    const large = await upload(tenant, 12 * MiB); // multipart
    await usedBytes(tenant, 13 * MiB);

    const first = await admin.delete({ tenant, bucket: BUCKET, key: large.key });
    expect(first).toMatchObject({ outcome: 'deleted', size: 12 * MiB, uploadId: large.uploadId, quotaFreedBytes: 12 * MiB });
    expect(await objectExists(stack.s3, BUCKET, large.key)).toBe(false);
    await usedBytes(tenant, 1 * MiB);
    expect(await ledger.reservation(tenant, large.uploadId)).toEqual({ status: 'freed' });

    const again = await admin.delete({ tenant, bucket: BUCKET, key: large.key });
    expect(again).toMatchObject({ outcome: 'not-found', quotaFreedBytes: 0 });
    expect(again.uploadId).toBeUndefined();
    await usedBytes(tenant, 1 * MiB);

    // Two deletes of one object at once are one workflow: the bytes go back once.
    const both = await Promise.all([
      admin.delete({ tenant, bucket: BUCKET, key: small.key }),
      admin.delete({ tenant, bucket: BUCKET, key: small.key }),
    ]);
    // Joined while it ran (both report the one delete), or the second came after it (nothing there).
    expect(both.filter((r) => r.outcome === 'deleted' && r.quotaFreedBytes === 1 * MiB).length).toBeGreaterThan(0);
    expect(both.every((r) => r.outcome === 'deleted' || r.outcome === 'not-found')).toBe(true);
    await usedBytes(tenant, 0);

    const described = await stack.client.workflow.getHandle(first.workflowId).describe();
    expect(first.workflowId).toBe(`delete:${tenant}:${BUCKET}/${large.key}`);
    expect(described.typedSearchAttributes.get(UploadTenant)).toBe(tenant);
    expect(described.typedSearchAttributes.get(UploadPhase)).toBe('done');
    expect(described.typedSearchAttributes.get(UploadOutcome)).toBe('completed');
    expect(await admin.list({ tenant })).toHaveLength(2); // the two uploads; deletes are not uploads
  });

  it("with an upload id, deletes only the object that upload stored: a later upload's object at the key stays", async () => {
    const tenant = uniqueId('d04-guard');
    const first = await upload(tenant, 1 * MiB);
    const second = await upload(tenant, 1 * MiB, { key: first.key }); // overwrites the key
    const refused = await admin.delete({ tenant, bucket: BUCKET, key: first.key, uploadId: first.uploadId });
    expect(refused).toMatchObject({ outcome: 'changed', uploadId: second.uploadId, quotaFreedBytes: 0 });
    expect(await objectExists(stack.s3, BUCKET, first.key)).toBe(true);

    const deleted = await admin.delete({ tenant, bucket: BUCKET, key: first.key, uploadId: second.uploadId });
    expect(deleted).toMatchObject({ outcome: 'deleted', uploadId: second.uploadId, quotaFreedBytes: 1 * MiB });
    expect(await objectExists(stack.s3, BUCKET, first.key)).toBe(false);
    await expect(admin.delete({ tenant, bucket: BUCKET, key: first.key, uploadId: 'not an id' })).rejects.toThrow(
      InvalidDeleteRequestError,
    );
  });

  it('answers not-found for an empty key, and gives nothing back for an object the saga did not store', async () => {
    const tenant = uniqueId('d04-other');
    const absent = await admin.delete({ tenant, bucket: BUCKET, key: `delete04/${tenant}/never-written.bin` });
    expect(absent).toMatchObject({ outcome: 'not-found', quotaFreedBytes: 0 });

    await upload(tenant, 1 * MiB);
    const key = `delete04/${tenant}/put-directly.bin`;
    // Written around the saga: never counted, so nothing to give back.
    await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.alloc(1000) }));
    const direct = await admin.delete({ tenant, bucket: BUCKET, key });
    expect(direct).toMatchObject({ outcome: 'deleted', size: 1000, quotaFreedBytes: 0 });
    expect(direct.uploadId).toBeUndefined();
    expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
    await usedBytes(tenant, 1 * MiB);
  });

  it("refuses a key outside the tenant's prefix and another tenant's object, deleting nothing", async () => {
    const owner = uniqueId('d04-owner');
    const intruder = uniqueId('d04-intruder');
    const stored = await upload(owner, 1 * MiB);

    const outside = await admin.delete({ tenant: intruder, bucket: BUCKET, key: stored.key }).catch((e: unknown) => e);
    expect(outside).toBeInstanceOf(DeleteFailedError);
    expect(outside).toMatchObject({ type: 'ObjectNotAllowed' });
    expect((outside as Error).message).toContain(`is outside tenant ${intruder}'s prefix: keys must start with "delete04/${intruder}/"`);

    // Inside the intruder's prefix, but stored by an upload of the owner (copied there by someone with S3 access).
    const copied = `delete04/${intruder}/copied.bin`;
    await stack.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: copied, Body: 'x', Metadata: { [STAMP_KEY]: `upload:${owner}:${stored.uploadId}` } }),
    );
    const foreign = await admin.delete({ tenant: intruder, bucket: BUCKET, key: copied }).catch((e: unknown) => e);
    expect(foreign).toMatchObject({ type: 'ObjectNotAllowed' });
    expect((foreign as Error).message).toContain('was stored by an upload of another tenant');

    expect(await objectExists(stack.s3, BUCKET, stored.key)).toBe(true);
    expect(await objectExists(stack.s3, BUCKET, copied)).toBe(true);
    await usedBytes(owner, 1 * MiB);

    const bound = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, tenant: intruder });
    await expect(bound.delete({ tenant: owner, bucket: BUCKET, key: stored.key })).rejects.toBeInstanceOf(TenantAccessDeniedError);
    await stack.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: copied }));
  });

  it('refuses a malformed request before anything starts, listing every problem', async () => {
    const err = await admin.delete({ tenant: 'a:b', bucket: 'No_Bucket', key: 'a/../b' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidDeleteRequestError);
    expect((err as InvalidDeleteRequestError).problems.map((p) => p.field)).toEqual(['tenant', 'bucket', 'key']);
    await expect(
      stack.client.workflow.getHandle(deleteWorkflowId({ tenant: 'a:b', bucket: 'No_Bucket', key: 'a/../b' })).describe(),
    ).rejects.toThrow();
  });

  it('in a bucket with versioning, removes exactly the version the saga stored; the earlier upload is current again and still counted', async () => {
    const tenant = uniqueId('d04-versions');
    const bucket = uniqueId('delete04-versioned');
    await stack.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await stack.s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    const key = `delete04/${tenant}/same-key.bin`;
    const older = await upload(tenant, 1 * MiB, { bucket, key });
    const newer = await upload(tenant, 2 * MiB, { bucket, key });
    await usedBytes(tenant, 3 * MiB);

    const first = await admin.delete({ tenant, bucket, key });
    expect(first).toMatchObject({ outcome: 'deleted', uploadId: newer.uploadId, size: 2 * MiB, quotaFreedBytes: 2 * MiB });
    expect(first.versionId).toBeTruthy();
    await usedBytes(tenant, 1 * MiB);
    const versions = await stack.s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
    expect(versions.Versions?.map((v) => v.VersionId)).not.toContain(first.versionId);
    expect(versions.Versions).toHaveLength(1);
    expect(versions.DeleteMarkers ?? []).toEqual([]); // removed for good, not hidden behind a marker

    const second = await admin.delete({ tenant, bucket, key });
    expect(second).toMatchObject({ outcome: 'deleted', uploadId: older.uploadId, quotaFreedBytes: 1 * MiB });
    await usedBytes(tenant, 0);
  });
});
