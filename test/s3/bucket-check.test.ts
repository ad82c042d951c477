/**
 * BucketCheck on the real MinIO: a found bucket is asked once per interval, concurrent checks
 * share one HeadBucket, a missing bucket is asked (and refused) every time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { BucketCheck } from '../../src/s3/bucket-check';
import { connectTestStack, type TestStack } from '../support/harness';

const BUCKET = 'uploads';
let stack: TestStack;

beforeAll(async () => {
  stack = await connectTestStack();
});

afterAll(async () => {
  await stack?.close();
});

/** A BucketCheck over the real store, counting the HeadBucket requests it sends, on a clock the test moves. */
function countingCheck(ttlMs: number) {
  const clock = { now: 1_000_000 };
  const sent: string[] = [];
  const check = new BucketCheck(
    (bucket) => {
      sent.push(bucket);
      return stack.s3.send(new HeadBucketCommand({ Bucket: bucket }));
    },
    ttlMs,
    () => clock.now,
  );
  return { check, sent, clock };
}

describe('BucketCheck', () => {
  it('asks for a found bucket once per interval, and again after it', async () => {
    const { check, sent, clock } = countingCheck(10_000);
    await check.ensure(BUCKET);
    clock.now += 9_999;
    await check.ensure(BUCKET);
    expect(sent).toEqual([BUCKET]);
    clock.now += 1;
    await check.ensure(BUCKET);
    expect(sent).toEqual([BUCKET, BUCKET]);
  });

  it('sends one HeadBucket for 20 concurrent checks of a bucket', async () => {
    const { check, sent } = countingCheck(10_000);
    await Promise.all(Array.from({ length: 20 }, () => check.ensure(BUCKET)));
    expect(sent).toEqual([BUCKET]);
  });

  it('refuses a missing bucket with the store error every time, never remembering it', async () => {
    const { check, sent } = countingCheck(10_000);
    for (let i = 0; i < 2; i++)
      await expect(check.ensure('no-such-bucket-check')).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    expect(sent).toEqual(['no-such-bucket-check', 'no-such-bucket-check']);
  });
});
