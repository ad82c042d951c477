/**
 * inspect-migration: the migration's first step. Everything about the migration as a whole that
 * can be known before a byte is written is checked here, so a bad migration fails with one specific
 * error and nothing to undo: the request (the client's validation again), both prefixes against the
 * tenant's key prefix, the source profile, both buckets, an empty source. It walks the source once
 * (heartbeating each page of 1,000) to count objects and bytes: the progress totals.
 */
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { findMigrationProblems, migrationFailure, MigrationFailureType } from '../../migration/migration-request';
import type { MigrationRequestWithDefaults } from '../../migration/migration-types';
import { permanentFailure, UploadFailureType } from '../../upload/errors';
import { isS3Error, s3Failure } from '../../s3/classify-error';
import type { UploadActivityDeps } from '../deps';
import { tenantKeyPrefixFor } from '../inspect-source';
import { listRange, sourceStore } from './migration-listing';

/** What inspect-migration found: the totals progress is measured against. */
export interface MigrationInspection {
  objectsTotal: number;
  bytesTotal: number;
}

export function inspectMigrationActivity(deps: UploadActivityDeps) {
  return async function inspectMigration(request: MigrationRequestWithDefaults): Promise<MigrationInspection> {
    const problems = findMigrationProblems(request);
    if (problems.length) {
      throw ApplicationFailure.create({
        type: MigrationFailureType.InvalidMigrationRequest,
        nonRetryable: true,
        message: `invalid migration request: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
        details: [problems],
      });
    }
    const { source, destination, tenant } = request;
    if (deps.tenantKeyPrefix) {
      const allowed = tenantKeyPrefixFor(deps.tenantKeyPrefix, tenant);
      if (!destination.prefix.startsWith(allowed))
        throw permanentFailure(
          UploadFailureType.DestinationNotAllowed,
          `prefix "${destination.prefix}" is outside tenant ${tenant}'s prefix: keys must start with "${allowed}" (UPLOAD_SAGA_TENANT_KEY_PREFIX)`,
        );
      // In the worker's own store, a tenant reads only its own keys.
      if (source.profile === undefined && !source.prefix.startsWith(allowed))
        throw permanentFailure(
          UploadFailureType.SourceNotAllowed,
          `source prefix "${source.prefix}" is outside tenant ${tenant}'s prefix: keys must start with "${allowed}" (UPLOAD_SAGA_TENANT_KEY_PREFIX)`,
        );
    }
    const from = sourceStore(deps, source.profile);
    try {
      await deps.s3.send(new HeadBucketCommand({ Bucket: destination.bucket }));
    } catch (err) {
      if (isS3Error(err, 'NotFound', 'NoSuchBucket', 'Http404'))
        throw permanentFailure(UploadFailureType.BucketNotFound, `bucket "${destination.bucket}" does not exist`);
      throw s3Failure(`HeadBucket ${destination.bucket}`, err);
    }
    const context = Context.current();
    let objectsTotal = 0;
    let bytesTotal = 0;
    try {
      for await (const page of listRange(from, source.bucket, source.prefix, {}, context.cancellationSignal)) {
        objectsTotal += page.length;
        bytesTotal += page.reduce((sum, o) => sum + o.size, 0);
        context.heartbeat(objectsTotal);
      }
    } catch (err) {
      if (isS3Error(err, 'NoSuchBucket'))
        throw permanentFailure(
          UploadFailureType.SourceNotFound,
          `source bucket "${source.bucket}" does not exist${source.profile ? ` in profile "${source.profile}"` : ''}`,
        );
      if (isS3Error(err, 'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Http403'))
        throw permanentFailure(
          UploadFailureType.SourceNotAllowed,
          `s3://${source.bucket}/${source.prefix} cannot be listed with the credentials configured for it`,
        );
      throw s3Failure(`listing s3://${source.bucket}/${source.prefix}`, err);
    }
    if (objectsTotal === 0)
      throw migrationFailure(
        MigrationFailureType.MigrationSourceEmpty,
        `no object under s3://${source.bucket}/${source.prefix}; nothing to migrate`,
      );
    return { objectsTotal, bytesTotal };
  };
}
