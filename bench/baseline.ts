/**
 * The latency baseline: a minimal hand-written Temporal workflow that makes the same S3 calls as
 * a one-part saga upload (create, upload the part, complete) with no saga, quota, verify or
 * webhook. The benchmark compares the saga's per-upload latency against it.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { createBaselineActivities } from './baseline-activities';

const { baselineCreate, baselinePart, baselineComplete } = proxyActivities<ReturnType<typeof createBaselineActivities>>({
  startToCloseTimeout: '1m',
});

export async function baselineUploadWorkflow(input: { bucket: string; key: string; path: string }): Promise<string> {
  const uploadId = await baselineCreate(input);
  const etag = await baselinePart({ ...input, uploadId });
  return baselineComplete({ ...input, uploadId, etag });
}
