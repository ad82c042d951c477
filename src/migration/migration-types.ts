/**
 * The migration request and what a migration reports, as types and pure helpers only: workflow
 * code imports this module, so it holds no validation library and no Node built-in (validation is
 * in migration-request.ts, run by the client and by the migration's first activity).
 *
 * A migration copies every object under an S3 prefix to a destination prefix, in ONE durable
 * orchestration built like a batch (src/workflows/migration-workflow.ts; design in
 * docs/explanation/migration.md).
 */
import type { PauseState } from '../upload/pause';
import type { ChecksumAlgorithm } from '../upload/request-types';
import type { BatchFileFailure } from '../batch/batch-types';

/**
 * The objects a migration copies: every key under `prefix` in `bucket` ("" for the whole bucket).
 * Without `profile`, the bucket is in the worker's own store and objects are copied server-side
 * (CopyObject: no byte passes through the worker); with it, the bucket is in the store the
 * worker's `UPLOAD_SAGA_S3_SOURCE_PROFILES` names, and each object is streamed through the worker.
 */
export interface MigrationSource {
  bucket: string;
  prefix: string;
  profile?: string;
}

/** What application code asks for: the objects under a source prefix, copied under a destination prefix. */
export interface MigrationRequest {
  /** The application's id for this migration; the workflow id derives from it. Letters, digits, `.`, `_`, `-`; 1–100. */
  migrationId: string;
  /** Whose quota pays for the bytes copied. */
  tenant: string;
  source: MigrationSource;
  /** A source key `source.prefix + rest` is copied to `prefix + rest`. */
  destination: { bucket: string; prefix: string };
  /** Checksum every copied object carries (S3 computes it on a server-side copy, validates it on a streamed one). @default 'CRC32C' */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** Objects one chunk activity copies (one listing page). @default 250 */
  objectsPerChunk?: number;
  /** Copies in flight inside one chunk. @default 16 */
  objectConcurrency?: number;
  /** Chunk activities in flight at once. @default 2 */
  chunkConcurrency?: number;
  /** Chunks one workflow run starts before it continues as new (each chunk adds about 1 KB of history). @default 200 */
  chunksPerRun?: number;
}

/** {@link MigrationRequest} with every default filled in (`source.profile` stays optional). */
export type MigrationRequestWithDefaults = Required<MigrationRequest>;

/** What a {@link MigrationRequest} gets for each option it leaves out. */
export const MIGRATION_DEFAULTS = {
  checksumAlgorithm: 'CRC32C' as ChecksumAlgorithm,
  objectsPerChunk: 250,
  objectConcurrency: 16,
  chunkConcurrency: 2,
  chunksPerRun: 200,
};

/** Largest chunk: one ListObjectsV2 page. */
export const MAX_OBJECTS_PER_CHUNK = 1000;

/** An object that was not copied, and why (`key` is the source key; `path` is `s3://bucket/key`). */
export type MigrationFailure = BatchFileFailure;

/** Counts so far. */
export interface MigrationCounts {
  /** Objects copied by this migration. */
  objectsCopied: number;
  bytesCopied: number;
  /** Objects found at the destination with the same size and checksum: not copied. */
  objectsSkipped: number;
  bytesSkipped: number;
  objectsFailed: number;
}

/** running → completed (every object copied or skipped) | partial (some failed) | failed | cancelled */
export type MigrationOutcomeKind = 'running' | 'completed' | 'partial' | 'failed' | 'cancelled';

/** What the `migrationProgress` query answers. */
export interface MigrationProgress extends MigrationCounts {
  phase: 'inspect' | 'copy' | 'paused' | 'done';
  outcome: MigrationOutcomeKind;
  /** Known once the migration was inspected. */
  objectsTotal?: number;
  bytesTotal?: number;
  /** Runs of the workflow so far (continue-as-new). */
  run: number;
  /** Present while the migration is paused: since when, why, and whether its chunks in flight have finished (`held`). */
  pause?: PauseState;
}

/** The result of a migration that ended without throwing. */
export interface MigrationResult extends MigrationCounts {
  migrationId: string;
  tenant: string;
  workflowId: string;
  source: MigrationSource;
  destination: { bucket: string; prefix: string };
  outcome: 'completed' | 'partial';
  objectsTotal: number;
  bytesTotal: number;
  /** At most 1,000; `objectsFailed` is the exact count. The per-object report has them all. */
  failures: MigrationFailure[];
  /** Where the per-object report is: JSONL objects in the destination bucket, one per chunk (see {@link MigrationReportLine}). */
  reportPrefix: string;
}

/** One line of the per-object report. */
export interface MigrationReportLine {
  /** Source key. */
  key: string;
  /** Destination key. */
  destinationKey: string;
  size: number;
  status: 'copied' | 'skipped' | 'failed';
  /** Failed: the stable failure type (`SourceChanged`, `S3.<Code>`, …) and its message. */
  type?: string;
  message?: string;
}

/** The workflow id of a migration: `migration:<tenant>:<migrationId>`. */
export function migrationWorkflowId(tenant: string, migrationId: string): string {
  return `migration:${tenant}:${migrationId}`;
}

/** Where a migration's per-object report lives in the destination bucket, under the saga's reserved prefix. */
export function migrationReportPrefix(tenant: string, migrationId: string): string {
  return `.upload-saga/migrations/${tenant}/${migrationId}/`;
}

/** The report object of chunk `chunk`. */
export function migrationReportKey(tenant: string, migrationId: string, chunk: number): string {
  return `${migrationReportPrefix(tenant, migrationId)}chunk-${String(chunk).padStart(7, '0')}.jsonl`;
}

/** The quota reservation of chunk `chunk`. */
export function migrationReservationId(migrationId: string, chunk: number): string {
  return `migration.${migrationId}.c${chunk}`;
}

/** The destination key of source key `key`. */
export function migratedKey(request: Pick<MigrationRequest, 'source' | 'destination'>, key: string): string {
  return `${request.destination.prefix}${key.slice(request.source.prefix.length)}`;
}

/**
 * User metadata a copied object carries when its ETag cannot prove it is a copy of its source (the
 * source was a multipart upload): the source's ETag. A later run skips it when size and this match.
 */
export const MIGRATION_SOURCE_ETAG_METADATA = 'upload-saga-source-etag';
/** The failure types a migration may end with; per-object failures use the upload's types (src/upload/errors.ts). */
export const MigrationFailureType = {
  InvalidMigrationRequest: 'InvalidMigrationRequest',
  /** No object under the source prefix (or the source bucket is empty). */
  MigrationSourceEmpty: 'MigrationSourceEmpty',
} as const;
/** One of {@link MigrationFailureType}. */
export type MigrationFailureType = (typeof MigrationFailureType)[keyof typeof MigrationFailureType];
