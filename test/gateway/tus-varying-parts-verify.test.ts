/**
 * Verify of a tus upload with parts of varying size (patch `gateway-tail-parts`), against real
 * multipart uploads in MinIO: parts a PATCH folded its remainder into pass, and wrong parts are
 * still refused — a sum that is not the length, a part but the last below the part size, a count
 * other than the recorded one, checksums that do not fold into the recorded fingerprint.
 */
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type UploadActivities } from '../../src/activities';
import type { VerifyGatewayUploadInput } from '../../src/activities/gateway-upload';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { WIRE_NAMES } from '../../src/upload/wire-names';
import { MiB } from '../support/files';
import { uploadCrc32cParts } from './gateway-harness';
import { connectTestStack, uniqueId, type TestStack } from '../support/harness';
import { unusedQuotaLedger } from '../support/unused-quota-ledger';

const BUCKET = 'uploads';
const PART_SIZE = 5 * MiB;
let stack: TestStack;
let activities: UploadActivities;
const opened: { key: string; uploadId: string }[] = [];

beforeAll(async () => {
  stack = await connectTestStack();
  activities = createActivities({ s3: stack.s3, sources: new LocalFileResolver({ allowedRoots: [] }), quota: unusedQuotaLedger });
});

afterAll(async () => {
  for (const { key, uploadId } of opened)
    await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId })).catch(() => undefined);
  await stack?.close();
});

/** A multipart upload with parts of these sizes (CRC32C, as the gateway sends them); the fingerprint of their checksums. */
async function partsOf(sizes: number[]): Promise<{ key: string; multipartUploadId: string; fingerprint: string }> {
  const key = `verify-varying/${uniqueId('upload')}`;
  const created = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ChecksumAlgorithm: 'CRC32C' }));
  const multipartUploadId = created.UploadId!;
  opened.push({ key, uploadId: multipartUploadId });
  return { key, multipartUploadId, fingerprint: await uploadCrc32cParts(stack.s3, { bucket: BUCKET, key, multipartUploadId }, sizes) };
}

async function verify(
  upload: { key: string; multipartUploadId: string; fingerprint: string },
  expected: { length: number; partsCompleted: number; fingerprint?: string },
) {
  const input: VerifyGatewayUploadInput = {
    bucket: BUCKET,
    key: upload.key,
    multipartUploadId: upload.multipartUploadId,
    maxLength: 1024 * MiB,
    expected: {
      kind: 'tus',
      length: expected.length,
      partSize: PART_SIZE,
      partsCompleted: expected.partsCompleted,
      varyingParts: true,
      fingerprint: expected.fingerprint ?? upload.fingerprint,
      checksumAlgorithm: 'CRC32C',
    },
  };
  return new MockActivityEnvironment({}).run(activities[WIRE_NAMES.verifyGatewayUpload] as never, input) as Promise<{
    size: number;
    partCount: number;
  }>;
}

/** The failure type and message verify refused with. */
async function refusal(promise: Promise<unknown>): Promise<{ type: string | undefined; message: string }> {
  const err = await promise.then(
    () => expect.fail('verify should have refused'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return { type: (err as ApplicationFailure).type ?? undefined, message: (err as ApplicationFailure).message };
}

describe('verify of tus parts of varying size', () => {
  it('accepts parts a PATCH folded its remainder into: 8, 5 and 8 MiB, then a small last part', async () => {
    const upload = await partsOf([8 * MiB, PART_SIZE, 8 * MiB, MiB]);
    expect(await verify(upload, { length: 22 * MiB, partsCompleted: 4 })).toMatchObject({ size: 22 * MiB, partCount: 4 });
  });

  it('refuses parts whose sum is not the length, a part but the last below the part size, another count, other checksums', async () => {
    const upload = await partsOf([8 * MiB, MiB]);
    expect(await refusal(verify(upload, { length: 10 * MiB, partsCompleted: 2 }))).toMatchObject({
      type: 'PartsMismatch',
      message: expect.stringMatching(/the parts hold 9437184 bytes in S3, but the upload's length is 10485760/),
    });
    expect(await refusal(verify(upload, { length: 9 * MiB, partsCompleted: 1 }))).toMatchObject({
      type: 'PartsMismatch',
      message: expect.stringMatching(/S3 lists 2 parts, but 1 were recorded/),
    });
    expect(await refusal(verify(upload, { length: 9 * MiB, partsCompleted: 2, fingerprint: 'not-these-parts' }))).toMatchObject({
      type: 'ChecksumMismatch',
    });

    const small = await partsOf([4 * MiB, 6 * MiB]);
    expect(await refusal(verify(small, { length: 10 * MiB, partsCompleted: 2 }))).toMatchObject({
      type: 'PartsMismatch',
      message: expect.stringMatching(/part 1 has 4194304 bytes in S3; every part but the last needs at least 5242880/),
    });
  });
});
