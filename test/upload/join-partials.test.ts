/**
 * join-partials with `verify` (finals under the patch `tus-concat-join-verifies`), against the real
 * MinIO: the activity writes the final's parts from stored partials (one server-side copy, one part
 * read through the worker), then runs the verify step's check on them and answers its result. The
 * answer must be what verify answers (the merge completes with it into the partials' bytes, in
 * order), and a check that fails — a size other than the partials', over the tenant's maximum —
 * must fail for good, as the verify step does.
 */
import { createHash, randomBytes } from 'node:crypto';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type UploadActivities } from '../../src/activities';
import type { JoinPartialsInput } from '../../src/activities/join-partials';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { multipartETag } from '../../src/s3/multipart-etag';
import { GatewayUploadFailureType } from '../../src/upload/gateway-upload';
import { MiB } from '../support/files';
import { connectTestStack, uniqueId, type TestStack } from '../support/harness';
import { incompleteUploads, objectSha256 } from '../support/s3-inspect';
import { unusedQuotaLedger } from '../support/unused-quota-ledger';

const BUCKET = 'uploads';
let stack: TestStack;
let activities: UploadActivities;

beforeAll(async () => {
  stack = await connectTestStack();
  activities = createActivities({ s3: stack.s3, sources: new LocalFileResolver({ allowedRoots: [] }), quota: unusedQuotaLedger });
});

afterAll(async () => {
  await stack?.close();
});

const run = <T>(activity: (input: never) => Promise<T>, input: unknown): Promise<T> =>
  new MockActivityEnvironment({}).run(activity, input as never);

/** Two stored partials (6 MiB: one UploadPartCopy; 1 MiB: read through the worker) and an open multipart upload for the final. */
async function setUp(): Promise<{ input: JoinPartialsInput; data: Buffer }> {
  const prefix = uniqueId('join-verifies');
  const bodies = [randomBytes(6 * MiB), randomBytes(MiB + 7)];
  const partials = await Promise.all(
    bodies.map(async (body, i) => {
      const key = `${prefix}/partial-${i}`;
      const put = await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
      return { uploadId: `partial-${i}`, workflowId: `w-${i}`, key, size: body.length, etag: put.ETag! };
    }),
  );
  const key = `${prefix}/final.bin`;
  const created = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
  return { input: { bucket: BUCKET, key, multipartUploadId: created.UploadId!, partials }, data: Buffer.concat(bodies) };
}

async function expectPermanent(promise: Promise<unknown>, type: GatewayUploadFailureType): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect({ type: (err as ApplicationFailure).type, nonRetryable: (err as ApplicationFailure).nonRetryable }).toEqual({
    type,
    nonRetryable: true,
  });
}

describe('join-partials with verify', () => {
  it("answers verify's result for the parts it wrote; the merge with it stores the partials' bytes in order", async () => {
    const { input, data } = await setUp();
    const joined = await run(activities.joinPartials, { ...input, verify: { maxLength: 64 * MiB, length: data.length } });
    expect(joined.parts.map((p) => p.partNumber)).toEqual([1, 2]);
    expect(joined.verified).toEqual({
      size: data.length,
      partCount: 2,
      expectedETag: multipartETag(joined.parts.map((p) => p.etag)),
    });
    // What the verify step answers for the same parts is what the join answered.
    const verified = await run(activities.verifyClientUpload, {
      ...input,
      maxLength: 64 * MiB,
      expected: { kind: 'client-parts', parts: joined.parts, length: data.length },
    });
    expect(verified).toEqual(joined.verified);
    const merged = await run(activities.completeUpload, {
      bucket: BUCKET,
      key: input.key,
      multipartUploadId: input.multipartUploadId,
      expectedETag: joined.verified!.expectedETag,
      failIfExists: false,
    });
    expect(merged.alreadyCompleted).toBe(false);
    expect(await objectSha256(stack.s3, BUCKET, input.key)).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('without verify answers the parts only (the saga then runs verify as a step)', async () => {
    const { input } = await setUp();
    const joined = await run(activities.joinPartials, input);
    expect(joined.verified).toBeUndefined();
    expect(joined.parts).toHaveLength(2);
    await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: input.key, UploadId: input.multipartUploadId }));
  });

  it("fails for good when the parts are not the partials' size or exceed the tenant's maximum, and leaves the upload open for the saga's abort", async () => {
    const { input, data } = await setUp();
    await expectPermanent(
      run(activities.joinPartials, { ...input, verify: { maxLength: 64 * MiB, length: data.length + 1 } }),
      GatewayUploadFailureType.PartsMismatch,
    );
    await expectPermanent(
      run(activities.joinPartials, { ...input, verify: { maxLength: data.length - 1, length: data.length } }),
      GatewayUploadFailureType.UploadTooLarge,
    );
    expect(await incompleteUploads(stack.s3, BUCKET, input.key)).toEqual([input.multipartUploadId]);
    await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: input.key, UploadId: input.multipartUploadId }));
  });
});
