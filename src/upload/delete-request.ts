/**
 * A delete through the saga: which object, for which tenant, and what the delete reports.
 * Validated here by the client before a workflow starts, and again by the delete's first step
 * (a request may not have come through the client).
 */
import { createHash } from 'node:crypto';
import { bucketNameProblem, findUploadIdProblems, objectKeyProblem } from './request';
import type { RequestProblem } from './errors';

/** What to delete: an object the tenant may reach. */
export interface DeleteRequest {
  /** The tenant whose object it is; its quota gets the bytes back. */
  tenant: string;
  bucket: string;
  key: string;
  /**
   * Delete only the object this upload stored: when the object at the key carries another
   * upload's stamp, or none, nothing is deleted and the outcome is `changed`. What tus termination
   * of a finished upload sends, so that it never deletes a later upload's object at the same key.
   */
  uploadId?: string;
}

/** How a delete ended. */
export interface DeleteResult {
  workflowId: string;
  tenant: string;
  bucket: string;
  key: string;
  /**
   * `deleted`: the object was there and is gone; `not-found`: nothing was at the key (e.g. it was
   * deleted before); `changed`: another object replaced it between the check and the delete, or
   * the object at the key is not the one the request's `uploadId` stored, and was left alone.
   */
  outcome: 'deleted' | 'not-found' | 'changed';
  /** The object's size, when it was found. */
  size?: number;
  /** The version deleted, in a bucket with versioning. */
  versionId?: string;
  /** The upload that stored the object, when the saga stored it (read from its stamp). */
  uploadId?: string;
  /**
   * Bytes given back to the tenant's quota by this delete: the object's size when the saga stored
   * it for this tenant, otherwise 0 (an object the saga did not store was never counted). The
   * ledger applies it once per upload, so a repeated delete never gives back twice.
   */
  quotaFreedBytes: number;
}

/** Every problem with a delete request; an empty list when it is fine. Never throws. */
export function findDeleteRequestProblems(input: unknown): RequestProblem[] {
  if (typeof input !== 'object' || input === null) return [{ field: 'request', message: 'must be an object { tenant, bucket, key }' }];
  const { tenant, bucket, key, uploadId } = input as Record<string, unknown>;
  const problems: RequestProblem[] = [];
  if (tenant === undefined) problems.push({ field: 'tenant', message: 'is required' });
  else problems.push(...findUploadIdProblems({ tenant }));
  if (uploadId !== undefined) problems.push(...findUploadIdProblems({ uploadId }));
  const bucketProblem = typeof bucket === 'string' ? bucketNameProblem(bucket) : 'is required (a string)';
  if (bucketProblem) problems.push({ field: 'bucket', message: bucketProblem });
  const keyProblem = typeof key === 'string' ? objectKeyProblem(key) : 'is required (a string)';
  if (keyProblem) problems.push({ field: 'key', message: keyProblem });
  return problems;
}

/** Longest workflow id Temporal accepts by default (`limit.maxIDLength`). */
const MAX_WORKFLOW_ID_LENGTH = 1000;

/**
 * The workflow id of a delete: `delete:<tenant>:<bucket>/<key>`, readable in the Web UI and the
 * same for the same object, so that two deletes of one object at once are one workflow. A key too
 * long for a workflow id is cut and followed by a hash of the whole id.
 */
export function deleteWorkflowId({ tenant, bucket, key }: DeleteRequest): string {
  const id = `delete:${tenant}:${bucket}/${key}`;
  if (id.length <= MAX_WORKFLOW_ID_LENGTH) return id;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 32);
  return `${id.slice(0, MAX_WORKFLOW_ID_LENGTH - hash.length - 2)}…#${hash}`;
}

/**
 * The workflow id of a delete that tus termination of a finished upload starts:
 * `delete-upload:<tenant>:<uploadId>`. One per upload, so the gateway can tell afterwards that the
 * upload was terminated (a HEAD then answers 410).
 */
export function uploadDeleteWorkflowId(tenant: string, uploadId: string): string {
  return `delete-upload:${tenant}:${uploadId}`;
}
