/**
 * The activities only a gateway upload needs (see src/workflows/gateway-upload-workflow.ts):
 * opening its multipart upload, and verifying what the client (or the gateway on its behalf)
 * put there before the merge. Everything else — reserve, cleanup, merge, commit, notify — is the
 * upload saga's own activities, reused.
 *
 * - `openMultipartUpload` creates the multipart upload. Its compensation is `cleanupUpload`,
 *   registered before it runs; if the answer is lost and the activity retried, the compensation
 *   finds uploads of the key initiated after the step began, so no attempt's upload is orphaned.
 * - `verifyClientUpload` is the last look before the pivot. ListParts must show exactly the parts
 *   that were recorded: for tus, parts 1..n of the planned sizes whose listed checksums (S3
 *   validated them on receipt) fold into the fingerprint the gateways recorded; for presigned
 *   uploads, exactly the parts the client reported, with the same ETags, each but the last at
 *   least 5 MiB. The size must be the declared one and within the tenant's limit. Any mismatch
 *   is permanent: the saga compensates instead of merging a wrong object.
 */
import { requireMultipartUploadId, WIRE_NAMES } from '../upload/wire-names';
import { createMultipartUpload } from '../s3/create-multipart-upload';
import { GetObjectAttributesCommand, type ObjectPart } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { GatewayUploadFailureType, partCountOf, type GatewayPart } from '../upload/gateway-upload';
import { permanentFailure, UploadFailureType } from '../upload/errors';
import { S3_LIMITS } from '../upload/part-plan';
import { DEFAULT_S3_STORE_RULES, partSizesProblem } from '../s3/store-rules';
import type { ChecksumAlgorithm } from '../upload/request';
import type { UploadActivityDeps } from './deps';
import { checksumField } from '../s3/checksums';
import { isS3Error, s3Failure } from '../s3/classify-error';
import { headObjectIfPresent } from '../s3/head-object';
import { listAllParts } from '../s3/list-parts';
import { multipartETag, sameETag } from '../s3/multipart-etag';
import { extendPartsFingerprint } from '../s3/parts-fingerprint';
import { STAMP_KEY, withStamp } from '../upload/object-stamp';

export interface OpenMultipartUploadInput {
  bucket: string;
  key: string;
  contentType: string;
  metadata: Record<string, string>;
  /** The per-part checksum every part must carry; omit for parts sent with presigned URLs. */
  checksumAlgorithm?: ChecksumAlgorithm;
  /**
   * When the upload's workflow started (epoch ms). The step runs as a local activity, and a
   * workflow task that is retried (its worker died before reporting it) runs it again, later:
   * the earlier run's multipart upload, which nobody recorded, was initiated after this time, not
   * after the new run was scheduled. Its orphans are looked for from here. Absent in inputs
   * recorded before it existed.
   */
  workflowStartedMs?: number;
}

export interface OpenMultipartUploadResult {
  /** S3's id of the multipart upload (read with multipartUploadIdOf: recorded results name it `uploadId`). */
  multipartUploadId: string;
}

/** What verify expects: the tus gateway's record, or the parts a presigned client reported. */
export type GatewayUploadExpectation =
  | {
      kind: 'tus';
      length: number;
      partSize: number;
      partsCompleted: number;
      /**
       * The parts may differ in size (patch `gateway-tail-parts`): a PATCH folds the remainder at its
       * end into its last part. Then each part but the last must hold at least `partSize` bytes and
       * their sum must be the length; without it, each part has exactly its planned size.
       */
      varyingParts?: boolean;
      fingerprint: string;
      checksumAlgorithm: ChecksumAlgorithm;
    }
  | {
      kind: 'client-parts';
      parts: GatewayPart[];
      /** The size declared at creation, if any. */
      length?: number;
    };

export interface VerifyGatewayUploadInput {
  bucket: string;
  key: string;
  /** S3's id of the multipart upload (read with requireMultipartUploadId: recorded inputs name it `uploadId`). */
  multipartUploadId: string;
  expected: GatewayUploadExpectation;
  /** The tenant's maximum upload size. */
  maxLength: number;
}

export interface VerifyGatewayUploadResult {
  size: number;
  partCount: number;
  /** The ETag the completed object will have. */
  expectedETag: string;
}

/** A permanent failure of a gateway upload: retrying cannot change what S3 holds. */
function gatewayUploadFailure(type: GatewayUploadFailureType, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

export function gatewayUploadActivities(deps: UploadActivityDeps) {
  return {
    /** Creates the multipart upload of a gateway upload (compensated by `cleanupUpload`). */
    async openMultipartUpload(input: OpenMultipartUploadInput): Promise<OpenMultipartUploadResult> {
      const where = `s3://${input.bucket}/${input.key}`;
      try {
        const ctx = Context.current();
        const created = await createMultipartUpload(
          deps.s3,
          {
            Bucket: input.bucket,
            Key: input.key,
            ContentType: input.contentType,
            Metadata: withStamp(input.metadata, ctx.info.workflowExecution?.workflowId ?? ''),
            ...(input.checksumAlgorithm ? { ChecksumAlgorithm: input.checksumAlgorithm } : {}),
          },
          Math.min(ctx.info.scheduledTimestampMs, input.workflowStartedMs ?? Infinity),
          ctx.cancellationSignal,
        );
        if (created.abortedOrphans.length > 0)
          ctx.log.warn('aborted multipart uploads whose create answer was lost', {
            bucket: input.bucket,
            key: input.key,
            aborted: created.abortedOrphans,
          });
        return { multipartUploadId: created.multipartUploadId };
      } catch (err) {
        throw s3Failure(`CreateMultipartUpload of ${where}`, err);
      }
    },

    /** The last look before the pivot: the parts the client sent are exactly those recorded. */
    // Registered under its wire name: see src/upload/wire-names.ts.
    async [WIRE_NAMES.verifyGatewayUpload](input: VerifyGatewayUploadInput): Promise<VerifyGatewayUploadResult> {
      const ctx = Context.current();
      return verifyGatewayUpload(deps, input, ctx.cancellationSignal, ctx.info.workflowExecution?.workflowId);
    },
  };
}

/**
 * What `verifyClientUpload` checks, for any activity that needs it (join-partials verifies the
 * parts it wrote with it before it answers). Throws a permanent failure on any mismatch.
 *
 * `ownWorkflowId` (the verify step's own run): a tus verify that finds its multipart upload gone
 * (`NoSuchUpload`) accepts the object at the key when it is the one its own merge completed (see
 * {@link ownCompletedUpload}): a local verify runs again when its workflow task is retried, after
 * the merge of that task may have completed the upload.
 */
export async function verifyGatewayUpload(
  deps: Pick<UploadActivityDeps, 's3' | 'storeRules'>,
  input: VerifyGatewayUploadInput,
  signal?: AbortSignal,
  ownWorkflowId?: string,
): Promise<VerifyGatewayUploadResult> {
  const where = `s3://${input.bucket}/${input.key}`;
  let parts;
  try {
    parts = await listAllParts(
      deps.s3,
      { ...input, multipartUploadId: requireMultipartUploadId(input, 'verifyClientUpload input') },
      signal,
    );
  } catch (err) {
    if (ownWorkflowId && input.expected.kind === 'tus' && isS3Error(err, 'NoSuchUpload')) {
      const completed = await ownCompletedUpload(deps, { ...input, expected: input.expected }, ownWorkflowId, signal);
      if (completed) return completed;
    }
    throw s3Failure(`ListParts of ${where}`, err);
  }
  const mismatch = (message: string) => gatewayUploadFailure(GatewayUploadFailureType.PartsMismatch, `${where}: ${message}`);
  const size = parts.reduce((sum, p) => sum + (p.Size ?? 0), 0);
  try {
    const { expected } = input;
    if (expected.kind === 'tus') {
      const planned = partCountOf(expected.length, expected.partSize);
      const count = expected.varyingParts ? expected.partsCompleted : planned;
      if (expected.varyingParts ? count < 1 || count > planned : expected.partsCompleted !== count)
        throw mismatch(`the gateway recorded ${expected.partsCompleted} parts, but ${expected.length} bytes need ${count}`);
      if (parts.length !== count) throw mismatch(`S3 lists ${parts.length} parts, but ${count} were recorded`);
      if (expected.varyingParts && size !== expected.length)
        throw mismatch(`the parts hold ${size} bytes in S3, but the upload's length is ${expected.length}`);
      const field = checksumField(expected.checksumAlgorithm);
      let fingerprint = '';
      for (let n = 1; n <= count; n++) {
        const part = parts[n - 1]!;
        if (part.PartNumber !== n) throw mismatch(`part ${n} is missing`);
        if (expected.varyingParts) {
          // Every part but the last holds at least a part size (≥ S3's 5 MiB minimum).
          if (n < count && (part.Size ?? 0) < expected.partSize)
            throw mismatch(`part ${n} has ${part.Size} bytes in S3; every part but the last needs at least ${expected.partSize}`);
        } else {
          const partBytes = n < count ? expected.partSize : expected.length - (count - 1) * expected.partSize;
          if (part.Size !== partBytes) throw mismatch(`part ${n} has ${part.Size} bytes in S3, but ${partBytes} were recorded`);
        }
        const checksum = part[field];
        if (!checksum) throw mismatch(`S3 lists no ${expected.checksumAlgorithm} checksum for part ${n}`);
        fingerprint = extendPartsFingerprint(fingerprint, n, checksum);
      }
      if (expected.varyingParts) {
        // A store that needs equal parts (S3_EQUAL_PARTS) would refuse the merge: refused here instead.
        const ruleProblem = partSizesProblem(
          parts.map((p) => p.Size ?? 0),
          deps.storeRules ?? DEFAULT_S3_STORE_RULES,
        );
        if (ruleProblem) throw mismatch(ruleProblem);
      }
      if (fingerprint !== expected.fingerprint) {
        throw permanentFailure(
          UploadFailureType.ChecksumMismatch,
          `${where}: the ${expected.checksumAlgorithm} checksums S3 lists for the ${count} parts differ from those the gateway computed from the bytes it received`,
        );
      }
    } else {
      const listed = new Map(parts.map((p) => [p.PartNumber, p]));
      if (parts.length !== expected.parts.length) {
        throw mismatch(`S3 lists ${parts.length} parts, but the client reported ${expected.parts.length}`);
      }
      expected.parts.forEach((reported, i) => {
        const part = listed.get(reported.partNumber);
        if (!part) throw mismatch(`part ${reported.partNumber}, which the client reported, is not in S3`);
        if (!sameETag(part.ETag, reported.etag))
          throw mismatch(`part ${reported.partNumber} has ETag ${part.ETag} in S3, but the client reported ${reported.etag}`);
        if (i < expected.parts.length - 1 && (part.Size ?? 0) < S3_LIMITS.minPartSize) {
          throw mismatch(`part ${reported.partNumber} has ${part.Size} bytes; every part but the last needs at least 5 MiB`);
        }
      });
      // The store's own rules (S3_MAX_PARTS, S3_EQUAL_PARTS), refused here rather than by the merge.
      const ruleProblem = partSizesProblem(
        expected.parts.map((reported) => listed.get(reported.partNumber)?.Size ?? 0),
        deps.storeRules ?? DEFAULT_S3_STORE_RULES,
      );
      if (ruleProblem) throw mismatch(ruleProblem);
      if (expected.length !== undefined && size !== expected.length) {
        throw mismatch(`the parts hold ${size} bytes, but ${expected.length} were declared`);
      }
    }
    if (size > input.maxLength) {
      throw gatewayUploadFailure(
        GatewayUploadFailureType.UploadTooLarge,
        `${where}: ${size} bytes exceed the tenant's maximum upload size of ${input.maxLength}`,
      );
    }
    return { size, partCount: parts.length, expectedETag: multipartETag(parts.map((p) => p.ETag ?? '')) };
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    throw s3Failure(`verify ${where}`, err);
  }
}

/**
 * The object at the key, when it is what this upload's own merge completed from the verified
 * parts: stamped with `workflowId` (open-multipart stamps the upload, so the object carries it),
 * of the recorded length, made of the recorded number of parts whose checksums (as S3 keeps them
 * with the object, GetObjectAttributes) fold into the recorded fingerprint. The result is the one
 * the first verify answered (size, part count, the object's ETag: the merge's re-run accepts the
 * object by it). Anything else — no object, another upload's, other bytes — is undefined, and the
 * caller fails as before.
 */
async function ownCompletedUpload(
  deps: Pick<UploadActivityDeps, 's3'>,
  input: VerifyGatewayUploadInput & { expected: Extract<GatewayUploadExpectation, { kind: 'tus' }> },
  workflowId: string,
  signal?: AbortSignal,
): Promise<VerifyGatewayUploadResult | undefined> {
  const { expected } = input;
  const where = `s3://${input.bucket}/${input.key}`;
  try {
    const head = await headObjectIfPresent(deps.s3, input, signal);
    if (!head?.ETag || head.Metadata?.[STAMP_KEY] !== workflowId || head.ContentLength !== expected.length) return undefined;
    const field = checksumField(expected.checksumAlgorithm);
    const parts: ObjectPart[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await deps.s3.send(
        new GetObjectAttributesCommand({
          Bucket: input.bucket,
          Key: input.key,
          VersionId: head.VersionId,
          ObjectAttributes: ['ObjectParts'],
          MaxParts: 1000,
          PartNumberMarker: marker,
        }),
        { abortSignal: signal },
      );
      parts.push(...(page.ObjectParts?.Parts ?? []));
      if (!page.ObjectParts?.IsTruncated || !page.ObjectParts.NextPartNumberMarker) break;
      marker = page.ObjectParts.NextPartNumberMarker;
    }
    if (parts.length !== expected.partsCompleted) return undefined;
    parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    let fingerprint = '';
    for (const [i, part] of parts.entries()) {
      const checksum = part[field];
      if (part.PartNumber !== i + 1 || !checksum) return undefined;
      fingerprint = extendPartsFingerprint(fingerprint, i + 1, checksum);
    }
    if (fingerprint !== expected.fingerprint) return undefined;
    return { size: expected.length, partCount: parts.length, expectedETag: head.ETag };
  } catch (err) {
    throw s3Failure(`reading ${where} back (its multipart upload is gone: completed by this upload's merge?)`, err);
  }
}
