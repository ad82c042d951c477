/**
 * The batch request and what a batch reports, as types and pure helpers only: workflow code
 * imports this module, so it holds no validation library and no Node built-in (validation is in
 * batch-request.ts, run by the client and by the batch's first activity).
 *
 * A batch is many files under one destination prefix, uploaded by ONE durable orchestration
 * (src/workflows/batch-workflow.ts; design in docs/explanation/batches.md).
 */
import type { PauseState } from '../upload/pause';
import type { ChecksumAlgorithm } from '../upload/request-types';

/**
 * Where a batch's files come from, all on the worker's host and under its allowed roots:
 * - `directory`: every regular file below `path`, recursively, in byte order of their relative
 *   paths, filtered by `include` / `exclude` globs (matched against the relative path, `/`-separated);
 *   the key is the prefix + the relative path;
 * - `list`: the given files, in order; the key is the prefix + the file's name;
 * - `manifest`: a JSONL file, one `{"path": "/abs/file", "key": "relative/key"}` per line (`key`
 *   optional: the file's name); the key is the prefix + `key`.
 *
 * A further kind (e.g. the objects under an S3 prefix) is one more member here and one more lister
 * in src/activities/batch/list-batch-page.ts.
 */
export type BatchSource =
  | { type: 'directory'; path: string; include?: string[]; exclude?: string[] }
  | { type: 'list'; paths: string[] }
  | { type: 'manifest'; path: string };

/**
 * `independent`: each file commits on its own (with its chunk); failed files are compensated and
 * listed with their causes. `atomic`: all or nothing; after a failed or cancelled batch no object
 * of the batch exists and no quota is held.
 */
export type BatchMode = 'independent' | 'atomic';
export const BATCH_MODES = ['independent', 'atomic'] as const satisfies readonly BatchMode[];

/** What application code asks for: a batch of files under one destination prefix. */
export interface BatchRequest {
  /** The application's id for this batch; the workflow id derives from it. Letters, digits, `.`, `_`, `-`; 1–100. */
  batchId: string;
  /** Whose quota pays for it. */
  tenant: string;
  source: BatchSource;
  /** `prefix` is prepended to every key as it is ("" for none; end it with `/` for a folder). */
  destination: { bucket: string; prefix: string };
  /** @default 'independent' */
  mode?: BatchMode;
  /** Checksum every object carries and S3 validates on receipt. @default 'CRC32C' */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** @default 'application/octet-stream' */
  contentType?: string;
  /**
   * Files up to this size are stored with one PutObject inside a chunk activity; larger ones are
   * uploaded by a child upload workflow each (multipart, resumable part by part), and also the
   * part size of those children. @default 8 MiB
   */
  partSize?: number;
  /** Files one chunk activity stores (one listing page). @default 128 */
  filesPerChunk?: number;
  /** PutObjects in flight inside one chunk. @default 16 */
  fileConcurrency?: number;
  /** Chunk activities in flight at once. @default 2 */
  chunkConcurrency?: number;
  /**
   * Chunks one workflow run starts before it continues as new; bounds each run's history (each
   * chunk records its page twice, about 300 bytes a file). @default 50
   */
  chunksPerRun?: number;
}

/** {@link BatchRequest} with every default filled in: what the workflow runs on. */
export type BatchRequestWithDefaults = Required<BatchRequest>;

/** What a {@link BatchRequest} gets for each option it leaves out. */
export const BATCH_DEFAULTS = {
  mode: 'independent' as BatchMode,
  checksumAlgorithm: 'CRC32C' as ChecksumAlgorithm,
  contentType: 'application/octet-stream',
  partSize: 8 * 1024 * 1024,
  filesPerChunk: 128,
  fileConcurrency: 16,
  chunkConcurrency: 2,
  chunksPerRun: 50,
};

/** Largest chunk: bounds one activity's input and result in history (≈ 300 bytes a file). */
export const MAX_FILES_PER_CHUNK = 1000;
/** Failures kept in the batch's state and result; the counts are exact beyond it. */
export const MAX_LISTED_FAILURES = 1000;

/** One file of a batch, as the listing found it. */
export interface BatchFile {
  /** Absolute path on the worker host. */
  path: string;
  /** Full destination key (prefix included). */
  key: string;
  /** Size seen by the listing; the upload reserves this and fails the file if it changed. */
  size: number;
  /**
   * Version seen by the listing (a local file's inode, size, modification and change time): a
   * chunk fails the file with `SourceChanged` if it is another when read. Absent in pages listed
   * by workers that did not record it.
   */
  version?: string;
}

/** A file that did not make it, and why. */
export interface BatchFileFailure {
  /** The source path (or the manifest line / directory, for listing failures). */
  path: string;
  key?: string;
  /** A stable failure type: `SourceNotAllowed`, `SourceUnreadable`, `SourceChanged`, `S3.<Code>`, … */
  type: string;
  message: string;
}

/** Counts so far: files and bytes stored, files failed. */
export interface BatchCounts {
  filesDone: number;
  bytesDone: number;
  filesFailed: number;
}

/** running → completed (every file stored) | partial (independent: some failed) | failed | compensated | cancelled */
export type BatchOutcomeKind = 'running' | 'completed' | 'partial' | 'failed' | 'compensated' | 'cancelled';

/** What the `progress` query of a batch answers. */
export interface BatchProgress extends BatchCounts {
  phase: 'inspect' | 'upload' | 'compensating' | 'done';
  outcome: BatchOutcomeKind;
  /** Known once the batch was inspected. */
  filesTotal?: number;
  bytesTotal?: number;
  /** Runs of the workflow so far (continue-as-new). */
  run: number;
  /** Present once the batch was paused (in this run): whether it is paused now and, if so, since when and why. */
  pause?: PauseState;
}

/** The result of a batch that ended without throwing (independent mode may list failures). */
export interface BatchResult extends BatchCounts {
  batchId: string;
  tenant: string;
  workflowId: string;
  bucket: string;
  prefix: string;
  mode: BatchMode;
  outcome: 'completed' | 'partial';
  filesTotal: number;
  bytesTotal: number;
  /** At most 1,000 (`MAX_LISTED_FAILURES`); `filesFailed` is the exact count. */
  failures: BatchFileFailure[];
}

/** The workflow id of a batch: `batch:<tenant>:<batchId>` (uploads are `upload:…`). */
export function batchWorkflowId(tenant: string, batchId: string): string {
  return `batch:${tenant}:${batchId}`;
}

/** Where a batch keeps its chunk manifests (the keys each chunk may write), under the saga's reserved prefix. */
export function batchManifestPrefix(tenant: string, batchId: string): string {
  return `.upload-saga/batches/${tenant}/${batchId}/`;
}

/** The manifest object of chunk `chunk`. */
export function chunkManifestKey(tenant: string, batchId: string, chunk: number): string {
  return `${batchManifestPrefix(tenant, batchId)}chunk-${String(chunk).padStart(7, '0')}.json`;
}

/** The quota reservation of chunk `chunk` (the ledger's ids are per tenant). */
export function chunkReservationId(batchId: string, chunk: number): string {
  return `batch.${batchId}.c${chunk}`;
}

/** The upload id of the child upload of a large file (the `ordinal`-th large file of the batch). */
export function childUploadId(batchId: string, ordinal: number): string {
  return `${batchId}.f${ordinal}`;
}

/** User metadata every object of a batch carries: undo deletes only objects that carry their batch's mark. */
export const BATCH_MARK_METADATA = 'upload-saga-batch';

/** The value of {@link BATCH_MARK_METADATA} for a batch. */
export function batchMark(tenant: string, batchId: string): string {
  return `${tenant}/${batchId}`;
}
