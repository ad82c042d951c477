/**
 * inspect-source: everything that can be checked before a byte moves. Re-validates the request
 * (it may not have come through our client), stats the source, compares the declared size, checks
 * that the bucket exists, and plans the parts. Read-only, so it needs no compensation.
 */
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { permanentFailure, UploadFailureType } from '../upload/errors';
import { PartPlanError, planParts, type PartPlan } from '../upload/part-plan';
import { findRequestProblems, type UploadRequestWithDefaults } from '../upload/request';
import type { UploadActivityDeps } from './deps';
import { isS3Error, s3Failure } from './s3/classify-error';

export interface Inspection {
  plan: PartPlan;
  /** The source's version at inspection; later steps fail with SourceChanged if it differs. */
  sourceVersion: string;
  sourceDescription: string;
}

export function inspectSourceActivity(deps: UploadActivityDeps) {
  return async function inspectSource(request: UploadRequestWithDefaults): Promise<Inspection> {
    const problems = findRequestProblems(request);
    if (problems.length) {
      throw ApplicationFailure.create({
        type: UploadFailureType.InvalidUploadRequest,
        nonRetryable: true,
        message: `invalid upload request: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
        details: [problems],
      });
    }
    const source = await deps.sources.open(request.source);
    try {
      const stat = await source.stat();
      if (request.declaredSize !== undefined && request.declaredSize !== stat.size) {
        throw permanentFailure(
          UploadFailureType.SourceSizeMismatch,
          `${source.description} has ${stat.size} bytes, but the request declared ${request.declaredSize}`,
        );
      }
      let plan: PartPlan;
      try {
        plan = planParts(stat.size, request.partSize);
      } catch (err) {
        if (err instanceof PartPlanError) throw permanentFailure(UploadFailureType.InvalidUploadRequest, `${source.description}: ${err.message}`);
        throw err;
      }
      try {
        await deps.s3.send(new HeadBucketCommand({ Bucket: request.destination.bucket }));
      } catch (err) {
        if (isS3Error(err, 'NotFound', 'NoSuchBucket', 'Http404')) {
          throw permanentFailure(UploadFailureType.BucketNotFound, `bucket "${request.destination.bucket}" does not exist`);
        }
        throw s3Failure(`HeadBucket ${request.destination.bucket}`, err);
      }
      return { plan, sourceVersion: stat.version, sourceDescription: source.description };
    } finally {
      await source.close();
    }
  };
}
