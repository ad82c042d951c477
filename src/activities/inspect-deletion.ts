/**
 * inspect-object, the first step of a delete: everything checked before anything is deleted.
 * Re-validates the request, applies the tenant's key prefix, and reads what is at the key: its
 * size, version and ETag, and the saga's stamp (which upload stored it, for which tenant).
 * Read-only, so it needs no compensation; its result, recorded in history, is what the later
 * steps act on, so a retried delete never re-reads a key that it already emptied.
 */
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { findDeleteRequestProblems, type DeleteRequest } from '../upload/delete-request';
import { permanentFailure, UploadFailureType } from '../upload/errors';
import { stampedUpload } from '../upload/object-stamp';
import { headObjectIfPresent } from '../s3/head-object';
import { isS3Error, s3Failure } from '../s3/classify-error';
import type { UploadActivityDeps } from './deps';
import { refuseOutsideTenantPrefix, refuseProblems } from './inspect-source';

/** What is at the key, as the delete will act on it. */
export type DeletionTarget =
  | { found: false }
  | {
      found: true;
      size: number;
      etag: string;
      /** In a bucket with versioning: the version the delete removes (and only that one). */
      versionId?: string;
      /** The upload that stored the object, when the saga stamped it (always this tenant's). */
      uploadId?: string;
    };

export function inspectDeletionActivity(deps: UploadActivityDeps) {
  return async function inspectDeletion(request: DeleteRequest): Promise<DeletionTarget> {
    refuseProblems(UploadFailureType.InvalidDeleteRequest, 'delete', findDeleteRequestProblems(request));
    refuseOutsideTenantPrefix(deps, request.tenant, request.key, UploadFailureType.ObjectNotAllowed);
    const where = `s3://${request.bucket}/${request.key}`;
    const head = await headObjectIfPresent(deps.s3, { bucket: request.bucket, key: request.key }).catch((err: unknown) => {
      throw s3Failure(`read ${where} before deleting it`, err);
    });
    if (!head) {
      // A HEAD answers a bare 404 for a missing bucket too: a missing bucket is an error, an empty key is not.
      try {
        await deps.s3.send(new HeadBucketCommand({ Bucket: request.bucket }));
      } catch (err) {
        if (isS3Error(err, 'NotFound', 'NoSuchBucket', 'Http404'))
          throw permanentFailure(UploadFailureType.BucketNotFound, `bucket "${request.bucket}" does not exist`);
        throw s3Failure(`HeadBucket ${request.bucket}`, err);
      }
      return { found: false };
    }
    const stamp = stampedUpload(head.Metadata);
    if (stamp && stamp.tenant !== request.tenant) {
      throw permanentFailure(
        UploadFailureType.ObjectNotAllowed,
        `${where} was stored by an upload of another tenant; tenant ${request.tenant} may not delete it`,
      );
    }
    return {
      found: true,
      size: head.ContentLength ?? 0,
      etag: head.ETag ?? '',
      ...(head.VersionId && head.VersionId !== 'null' ? { versionId: head.VersionId } : {}),
      ...(stamp ? { uploadId: stamp.uploadId } : {}),
    };
  };
}
