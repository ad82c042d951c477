/**
 * A tus verify run again after its own merge (a local verify re-run in a retried workflow task,
 * patch `gateway-local-verify-merge`), against real MinIO: the multipart upload is gone, and verify
 * accepts the object at the key only when it is the one this upload's merge completed — stamped
 * with the upload's workflow id, the recorded length, parts whose checksums fold into the recorded
 * fingerprint — answering what the first verify answered, so the merge's re-run accepts it too.
 * Any other object at the key (another upload's, other bytes, none) still fails verify.
 */
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type UploadActivities } from '../../src/activities';
import type { VerifyGatewayUploadInput, VerifyGatewayUploadResult } from '../../src/activities/gateway-upload';
import type { CompleteUploadResult } from '../../src/activities/complete-upload';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { withStamp } from '../../src/upload/object-stamp';
import { uploadWorkflowId } from '../../src/upload/request';
import { WIRE_NAMES } from '../../src/upload/wire-names';
import { MiB } from '../support/files';
import { uploadCrc32cParts } from './gateway-harness';
import { connectTestStack, uniqueId, type TestStack } from '../support/harness';
import { unusedQuotaLedger } from '../support/unused-quota-ledger';

const BUCKET = 'uploads';
const PART_SIZE = 5 * MiB;
const SIZES = [PART_SIZE, 2 * MiB];
const LENGTH = SIZES.reduce((a, b) => a + b, 0);
let stack: TestStack;
let activities: UploadActivities;
const keys: string[] = [];

beforeAll(async () => {
  stack = await connectTestStack();
  activities = createActivities({ s3: stack.s3, sources: new LocalFileResolver({ allowedRoots: [] }), quota: unusedQuotaLedger });
});

afterAll(async () => {
  for (const key of keys) await stack.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key })).catch(() => undefined);
  await stack?.close();
});

/** The activity environment of the upload `workflowId`'s workflow (what the activities read their run from). */
function envOf(workflowId: string): MockActivityEnvironment {
  return new MockActivityEnvironment({ workflowExecution: { workflowId, runId: 'run' } } as never);
}

/** A multipart upload at `key` as a gateway opens and fills it: stamped with `workflowId`, CRC32C parts. */
async function openAndFill(key: string, workflowId: string): Promise<{ multipartUploadId: string; fingerprint: string }> {
  const created = await stack.s3.send(
    new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ChecksumAlgorithm: 'CRC32C', Metadata: withStamp({}, workflowId) }),
  );
  const multipartUploadId = created.UploadId!;
  return { multipartUploadId, fingerprint: await uploadCrc32cParts(stack.s3, { bucket: BUCKET, key, multipartUploadId }, SIZES) };
}

type TusExpectation = Extract<VerifyGatewayUploadInput['expected'], { kind: 'tus' }>;

function verifyInput(
  key: string,
  upload: { multipartUploadId: string; fingerprint: string },
  record: Partial<TusExpectation> = {},
): VerifyGatewayUploadInput {
  return {
    bucket: BUCKET,
    key,
    multipartUploadId: upload.multipartUploadId,
    maxLength: 1024 * MiB,
    expected: {
      kind: 'tus',
      length: LENGTH,
      partSize: PART_SIZE,
      partsCompleted: SIZES.length,
      varyingParts: true,
      fingerprint: upload.fingerprint,
      checksumAlgorithm: 'CRC32C',
      ...record,
    },
  };
}

const verify = (workflowId: string, input: VerifyGatewayUploadInput) =>
  envOf(workflowId).run(activities[WIRE_NAMES.verifyGatewayUpload] as never, input) as Promise<VerifyGatewayUploadResult>;

const merge = (workflowId: string, input: VerifyGatewayUploadInput, verified: VerifyGatewayUploadResult) =>
  envOf(workflowId).run(activities.completeUpload as never, {
    bucket: BUCKET,
    key: input.key,
    multipartUploadId: input.multipartUploadId,
    expectedETag: verified.expectedETag,
    failIfExists: false,
    checksumAlgorithm: 'CRC32C',
  }) as Promise<CompleteUploadResult>;

/** The failure verify refused with. */
async function refusal(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => expect.fail('verify should have refused'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('a tus verify run again after its merge', () => {
  it('passes for its own completed object, answering what it answered first; the merge re-run accepts it', async () => {
    const key = `verify-after-merge/${uniqueId('own')}`;
    keys.push(key);
    const workflowId = uploadWorkflowId('tenant-a', uniqueId('upload'));
    const input = verifyInput(key, await openAndFill(key, workflowId));

    const first = await verify(workflowId, input);
    expect(first).toMatchObject({ size: LENGTH, partCount: 2 });
    const merged = await merge(workflowId, input, first);
    expect(merged.alreadyCompleted).toBe(false);

    // The retried workflow task runs both again: the multipart upload is gone, the object is this upload's.
    const again = await verify(workflowId, input);
    expect(again).toEqual(first);
    const mergedAgain = await merge(workflowId, input, again);
    expect(mergedAgain).toMatchObject({ etag: merged.etag, alreadyCompleted: true });
  });

  it('still fails when the object at the key is another upload’s, holds other bytes, or is gone', async () => {
    const key = `verify-after-merge/${uniqueId('foreign')}`;
    keys.push(key);
    const workflowId = uploadWorkflowId('tenant-a', uniqueId('upload'));
    const upload = await openAndFill(key, workflowId);
    const input = verifyInput(key, upload);
    const verified = await verify(workflowId, input);
    await merge(workflowId, input, verified);

    // Another upload's verify of its own (gone) multipart upload meets this object: not its own.
    const other = uploadWorkflowId('tenant-a', uniqueId('other'));
    expect((await refusal(verify(other, input))).message).toMatch(/ListParts/);
    // The same upload, but the record says other bytes (another fingerprint, another length).
    expect((await refusal(verify(workflowId, verifyInput(key, upload, { fingerprint: 'other-bytes' })))).message).toMatch(/ListParts/);
    await refusal(verify(workflowId, verifyInput(key, upload, { length: LENGTH + 1 })));
    await refusal(verify(workflowId, verifyInput(key, upload, { partsCompleted: 3 })));

    // Another upload of the same id stored other bytes of the same length at the key (its own multipart upload, stamped alike).
    const replaced = await openAndFill(key, workflowId);
    await stack.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId: replaced.multipartUploadId,
        MultipartUpload: { Parts: await partsOf(key, replaced.multipartUploadId) },
      }),
    );
    await refusal(verify(workflowId, input));
    // The replacement's own record matches it, so the check is the bytes, not the stamp alone.
    expect(await verify(workflowId, verifyInput(key, replaced))).toMatchObject({ size: LENGTH, partCount: 2 });

    // No object at all.
    await stack.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    await refusal(verify(workflowId, input));
  });
});

async function partsOf(key: string, multipartUploadId: string) {
  const { ListPartsCommand } = await import('@aws-sdk/client-s3');
  const listed = await stack.s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: multipartUploadId }));
  return (listed.Parts ?? []).map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag, ChecksumCRC32C: p.ChecksumCRC32C }));
}
