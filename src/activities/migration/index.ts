/**
 * The migration activities (src/workflows/migration-workflow.ts), built from the upload activities' dependencies.
 */
import type { UploadActivityDeps } from '../deps';
import { copyMigrationChunkActivity } from './copy-migration-chunk';
import { inspectMigrationActivity } from './inspect-migration';
import { listMigrationPageActivity } from './list-migration-page';

export function migrationActivities(deps: UploadActivityDeps) {
  return {
    /** Checks the migration as a whole and counts its objects and bytes. */
    inspectMigration: inspectMigrationActivity(deps),
    /** The bounds of the next page of the source after a cursor. */
    listMigrationPage: listMigrationPageActivity(deps),
    /** Copies (or skips) and verifies the objects of one key range, and reports each. */
    copyMigrationChunk: copyMigrationChunkActivity(deps),
  };
}

export type { CopyMigrationChunkInput, CopyMigrationChunkResult } from './copy-migration-chunk';
export type { MigrationInspection } from './inspect-migration';
export type { MigrationPageRange } from './migration-listing';
