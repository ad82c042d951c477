/**
 * list-migration-page: the bounds of the next page of a migration's source after a cursor (see
 * migration-listing.ts). A short local activity: what it records in history is two keys and two
 * counts, whatever the page's size.
 */
import type { MigrationSource } from '../../migration/migration-types';
import { s3Failure } from '../../s3/classify-error';
import type { UploadActivityDeps } from '../deps';
import { listPageRange, sourceStore, type MigrationPageRange } from './migration-listing';

export interface ListMigrationPageInput {
  source: MigrationSource;
  cursor?: string;
  maxObjects: number;
}

export function listMigrationPageActivity(deps: UploadActivityDeps) {
  return async function listMigrationPage(input: ListMigrationPageInput): Promise<MigrationPageRange> {
    const { source } = input;
    try {
      return await listPageRange(sourceStore(deps, source.profile), source.bucket, source.prefix, input.cursor, input.maxObjects);
    } catch (err) {
      throw s3Failure(`listing s3://${source.bucket}/${source.prefix}`, err);
    }
  };
}
