/**
 * inspect-source: everything that can be checked before a byte moves. Re-validates the request
 * (it may not have come through our client), applies the worker's policies (the tenant's key
 * prefix, the webhook's address), stats the source, compares the declared size, checks that the
 * bucket exists (a found bucket is remembered for a few seconds, see s3/bucket-check.ts), and plans
 * the parts. Read-only, so it needs no compensation.
 */
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { permanentFailure, UploadFailureType, type RequestProblem } from '../upload/errors';
import { PartPlanError, planParts, type PartPlan } from '../upload/part-plan';
import { checkUrlTarget, shownUrl } from '../net/guarded-fetch';
import { findRequestProblems, type UploadRequestWithDefaults } from '../upload/request';
import type { UploadActivityDeps } from './deps';
import { transferModeOf, type TransferMode } from './sources/byte-source';
import { webhookPolicy } from './notify';
import { isS3Error, s3Failure } from '../s3/classify-error';
import { DEFAULT_S3_STORE_RULES, multipartLimitsOf } from '../s3/store-rules';
import { BucketCheck } from '../s3/bucket-check';
import type { StoreChecksums } from '../upload/integrity';

export interface Inspection {
  plan: PartPlan;
  /** The source's version at inspection; later steps fail with SourceChanged if it differs. */
  sourceVersion: string;
  sourceDescription: string;
  /**
   * How upload-parts will move the bytes: `server-side-copy` when the source lives in the store
   * the upload writes to (see ByteSource.serverSideCopy). Absent in inspections recorded before
   * server-side copies existed: `stream`.
   */
  transfer?: TransferMode;
  /**
   * What the destination store does with additional checksums (the worker's S3_ADDITIONAL_CHECKSUMS
   * and S3_CHECKSUMMED_PART_COPY). Absent in inspections recorded before they were configurable:
   * ASSUMED_STORE_CHECKSUMS.
   */
  storeChecksums?: StoreChecksums;
}

/** The key prefix `template` gives `tenant` (`{tenant}` replaced). */
export function tenantKeyPrefixFor(template: string, tenant: string): string {
  return template.split('{tenant}').join(tenant);
}

/** Throws the permanent failure `type` listing every problem of a request, when there are any. */
export function refuseProblems(type: UploadFailureType, what: 'upload' | 'delete', problems: RequestProblem[]): void {
  if (problems.length === 0) return;
  throw ApplicationFailure.create({
    type,
    nonRetryable: true,
    message: `invalid ${what} request: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
    details: [problems],
  });
}

/** Throws the permanent failure `type` when `key` is outside the tenant's prefix (UPLOAD_SAGA_TENANT_KEY_PREFIX, when set). */
export function refuseOutsideTenantPrefix(
  deps: Pick<UploadActivityDeps, 'tenantKeyPrefix'>,
  tenant: string,
  key: string,
  type: UploadFailureType,
): void {
  if (!deps.tenantKeyPrefix) return;
  const prefix = tenantKeyPrefixFor(deps.tenantKeyPrefix, tenant);
  if (!key.startsWith(prefix)) {
    throw permanentFailure(
      type,
      `key "${key}" is outside tenant ${tenant}'s prefix: keys must start with "${prefix}" (UPLOAD_SAGA_TENANT_KEY_PREFIX)`,
    );
  }
}

export function inspectSourceActivity(deps: UploadActivityDeps) {
  const webhooks = webhookPolicy(deps.webhook);
  const rules = deps.storeRules ?? DEFAULT_S3_STORE_RULES;
  const buckets = new BucketCheck((bucket) => deps.s3.send(new HeadBucketCommand({ Bucket: bucket })));
  return async function inspectSource(request: UploadRequestWithDefaults): Promise<Inspection> {
    refuseProblems(UploadFailureType.InvalidUploadRequest, 'upload', findRequestProblems(request));
    refuseOutsideTenantPrefix(deps, request.tenant, request.destination.key, UploadFailureType.DestinationNotAllowed);
    if (request.webhookUrl) {
      // Refused now rather than after the merge, when the object exists and the event has nowhere to go.
      const refusal = await checkUrlTarget(request.webhookUrl, webhooks, deps.webhook?.resolve);
      if (refusal)
        throw permanentFailure(UploadFailureType.WebhookNotAllowed, `webhook ${shownUrl(request.webhookUrl)}: ${refusal.message}`);
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
        plan = planParts(stat.size, request.partSize, multipartLimitsOf(rules));
      } catch (err) {
        if (err instanceof PartPlanError)
          throw permanentFailure(UploadFailureType.InvalidUploadRequest, `${source.description}: ${err.message}`);
        throw err;
      }
      try {
        await buckets.ensure(request.destination.bucket);
      } catch (err) {
        if (isS3Error(err, 'NotFound', 'NoSuchBucket', 'Http404')) {
          throw permanentFailure(UploadFailureType.BucketNotFound, `bucket "${request.destination.bucket}" does not exist`);
        }
        throw s3Failure(`HeadBucket ${request.destination.bucket}`, err);
      }
      return {
        plan,
        sourceVersion: stat.version,
        sourceDescription: source.description,
        transfer: transferModeOf(source),
        storeChecksums: { additional: rules.additionalChecksums, onCopies: rules.checksummedPartCopy },
      };
    } finally {
      await source.close();
    }
  };
}
