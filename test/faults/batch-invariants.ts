/**
 * What must hold after ANY batch settles, whatever failed on the way (issue 13), on top of what a
 * scenario expects:
 *
 * 1. every object under the batch's prefix is one of its files, byte-identical to that file as it
 *    was when the batch started (SHA-256 over a GetObject): nothing half-written, nothing mixed;
 * 2. which files are stored follows from the outcome: all (`completed`); all but the listed
 *    failures, whose keys are absent (`partial`); exactly `filesDone` (`failed`, independent: the
 *    chunks finished before stay); none (`compensated`, and `cancelled` in atomic mode);
 * 3. no chunk manifest is left under `.upload-saga/batches/<tenant>/<batchId>/`, no incomplete
 *    multipart upload under the prefix, no staged object of a child upload;
 * 4. the tenant's ledger (checked per tenant by `assertTenantLedgerInvariants`, which adds
 *    {@link batchStoredBytes}): used bytes equal what stays stored, nothing stays reserved.
 *
 * Why it is built this way: like invariants.ts, every check reads the real systems (S3 with root
 * credentials, the ledger's query) and collects every violation before failing. The bytes a batch
 * leaves are measured in the bucket, not taken from its result, so a result that misreports what
 * it stored cannot balance the ledger check.
 */
import { AssertionError } from 'node:assert';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { BatchFailedError, type BatchHandle } from '../../src/batch-client';
import { batchManifestPrefix, type BatchFileFailure, type BatchMode, type BatchResult } from '../../src/batch/batch-types';
import { multipartKeysUnder, keysUnder, objectSha256 } from '../support/s3-inspect';
import { stagingPrefixOf } from '../../src/upload/staging';
import type { InvariantContext } from './invariants';

/** One file of a tracked batch, as it was when the batch started. */
export interface BatchSourceFile {
  readonly path: string;
  /** Its destination key (prefix included). */
  readonly key: string;
  readonly size: number;
  readonly sha256: string;
}

/** A batch started by the scenario; the runner asserts its invariants. */
export interface TrackedBatch {
  readonly tenant: string;
  readonly batchId: string;
  readonly workflowId: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly mode: BatchMode;
  readonly files: readonly BatchSourceFile[];
  readonly handle: BatchHandle;
  /** Set once its invariants were asserted. */
  checked: boolean;
}

/** How a batch ended. */
export type BatchSettledOutcome = 'completed' | 'partial' | 'failed' | 'compensated' | 'cancelled';

/** The end of a batch, as its handle reports it. */
export type BatchSettled =
  | { readonly outcome: 'completed' | 'partial'; readonly result: BatchResult }
  | { readonly outcome: 'failed' | 'compensated' | 'cancelled'; readonly error: BatchFailedError };

/** What a scenario expects on top of the invariants. */
export interface BatchExpectation {
  /** @default any outcome */
  readonly outcome?: BatchSettledOutcome | readonly BatchSettledOutcome[];
  /** The batch's failure type (`BatchFailedError.type`), when it failed. */
  readonly type?: string | RegExp;
  /**
   * Files that must be listed as failed, by key, with their cause type; every listed failure must
   * be one of them when given.
   */
  readonly failures?: Readonly<Record<string, string | RegExp>>;
  /** @default 300_000 */
  readonly settleTimeoutMs?: number;
}

/** What was found. */
export interface BatchInvariantReport {
  readonly settled: BatchSettled;
  /** Keys of the batch's files stored when it settled. */
  readonly stored: readonly string[];
  /** Bytes of those files. */
  readonly storedBytes: number;
  /** The failures the batch listed (result or error summary). */
  readonly failures: readonly BatchFileFailure[];
}

const settledCache = new WeakMap<TrackedBatch, Promise<BatchSettled>>();

/** Waits until the batch's workflow has closed (undo included) and tells how it ended. */
export function settleBatch(batch: TrackedBatch, timeoutMs = 300_000): Promise<BatchSettled> {
  let settled = settledCache.get(batch);
  if (!settled) {
    settled = (async (): Promise<BatchSettled> => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const result = await Promise.race([
          batch.handle.result(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${batch.workflowId} did not end within ${timeoutMs / 1000} s`)), timeoutMs);
          }),
        ]);
        return { outcome: result.outcome, result };
      } catch (error) {
        if (error instanceof BatchFailedError) return { outcome: error.outcome, error };
        throw error;
      } finally {
        clearTimeout(timer);
      }
    })();
    settledCache.set(batch, settled);
    settled.catch(() => settledCache.delete(batch));
  }
  return settled;
}

/** Every key under `prefix` with its size. */
async function objectsUnder(ctx: InvariantContext, bucket: string, prefix: string): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  let token: string | undefined;
  do {
    const page = await ctx.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) found.set(o.Key!, o.Size ?? 0);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return found;
}

/** The batch's error, when it did not end completed or partial. */
const errorOf = (settled: BatchSettled): BatchFailedError | undefined => ('error' in settled ? settled.error : undefined);

const matches = (expected: string | RegExp, actual: string | undefined) =>
  actual !== undefined && (typeof expected === 'string' ? expected === actual : expected.test(actual));

/** The failures a settled batch listed. */
export function listedFailures(settled: BatchSettled): readonly BatchFileFailure[] {
  return 'result' in settled ? settled.result.failures : (settled.error.summary?.failures ?? []);
}

/**
 * Waits for the batch to settle, then asserts every invariant and `expectation`.
 *
 * @throws AssertionError listing every violation found
 */
export async function assertBatchInvariants(
  ctx: InvariantContext,
  batch: TrackedBatch,
  expectation: BatchExpectation = {},
): Promise<BatchInvariantReport> {
  const settled = await settleBatch(batch, expectation.settleTimeoutMs);
  const violations: string[] = [];
  const failures = listedFailures(settled);
  const error = errorOf(settled);
  const why = error ? ` (${error.type}: ${error.message})` : '';

  if (expectation.outcome !== undefined && ![expectation.outcome].flat().includes(settled.outcome))
    violations.push(`outcome is ${settled.outcome}, expected ${[expectation.outcome].flat().join(' or ')}${why}`);
  if (expectation.type !== undefined) {
    const type = error?.type;
    if (!matches(expectation.type, type))
      violations.push(`the batch's failure type is ${type ?? '(none)'}, expected ${String(expectation.type)}${why}`);
  }
  if (expectation.failures) {
    const listed = new Map(failures.map((f) => [f.key ?? f.path, f]));
    for (const [key, type] of Object.entries(expectation.failures)) {
      const failure = listed.get(key);
      if (!failure) violations.push(`${key} is not listed as failed (listed: ${[...listed.keys()].join(', ') || 'none'})`);
      else if (!matches(type, failure.type))
        violations.push(`${key} failed with ${failure.type}, expected ${String(type)}: ${failure.message}`);
    }
    for (const key of listed.keys())
      if (!(key in expectation.failures))
        violations.push(`${key} is listed as failed, which the scenario did not expect: ${listed.get(key)!.type}`);
  }

  // 1. Every object under the prefix is a file of the batch, byte-identical to it as it was at the start.
  const byKey = new Map(batch.files.map((f) => [f.key, f]));
  const present = await objectsUnder(ctx, batch.bucket, batch.prefix);
  let storedBytes = 0;
  for (const [key, size] of present) {
    const file = byKey.get(key);
    if (!file) {
      violations.push(`s3://${batch.bucket}/${key} is under the batch's prefix but is none of its files`);
      continue;
    }
    storedBytes += size;
    const sha256 = await objectSha256(ctx.s3, batch.bucket, key);
    if (sha256 !== file.sha256)
      violations.push(`s3://${batch.bucket}/${key} is not byte-identical to ${file.path} as it was when the batch started`);
  }

  // 2. Which files are stored follows from the outcome.
  const stored = [...present.keys()].filter((k) => byKey.has(k));
  const missing = batch.files.filter((f) => !present.has(f.key)).map((f) => f.key);
  const failedKeys = new Set(failures.map((f) => f.key));
  for (const key of failedKeys) if (key !== undefined && present.has(key)) violations.push(`${key} is listed as failed, but it is stored`);
  switch (settled.outcome) {
    case 'completed':
      if (missing.length > 0)
        violations.push(`the batch completed, but ${missing.length} file(s) are not stored: ${missing.slice(0, 3).join(', ')}`);
      break;
    case 'partial': {
      const unexplained = missing.filter((k) => !failedKeys.has(k));
      if (unexplained.length > 0)
        violations.push(`${unexplained.length} file(s) are neither stored nor listed as failed: ${unexplained.slice(0, 3).join(', ')}`);
      if ('result' in settled && settled.result.filesDone !== stored.length)
        violations.push(
          `the result says ${settled.outcome === 'partial' ? settled.result.filesDone : '?'} files done, ${stored.length} are stored`,
        );
      break;
    }
    case 'failed':
      if (batch.mode === 'atomic' && stored.length > 0)
        violations.push(`an atomic batch failed, but ${stored.length} of its files are stored`);
      if (error?.summary && error.summary.filesDone !== stored.length)
        violations.push(`the batch says ${error.summary.filesDone} files done when it stopped, ${stored.length} are stored`);
      break;
    case 'compensated':
    case 'cancelled':
      if ((settled.outcome === 'compensated' || batch.mode === 'atomic') && stored.length > 0)
        violations.push(
          `the batch ended ${settled.outcome}, but ${stored.length} of its files are stored: ${stored.slice(0, 3).join(', ')}`,
        );
      break;
  }

  // 3. Nothing of the saga's own left.
  const manifests = await keysUnder(ctx.s3, batch.bucket, batchManifestPrefix(batch.tenant, batch.batchId));
  if (manifests.length > 0) violations.push(`${manifests.length} chunk manifest(s) left: ${manifests.slice(0, 3).join(', ')}`);
  const multipart = await multipartKeysUnder(ctx.s3, batch.bucket, batch.prefix);
  if (multipart.length > 0)
    violations.push(`${multipart.length} incomplete multipart upload(s) left under ${batch.prefix}: ${multipart.slice(0, 3).join(', ')}`);
  const staged = await keysUnder(ctx.s3, batch.bucket, stagingPrefixOf(batch.tenant, `${batch.batchId}.f`).slice(0, -1));
  if (staged.length > 0) violations.push(`${staged.length} staged object(s) of child uploads left: ${staged.slice(0, 3).join(', ')}`);

  if (violations.length > 0)
    throw new AssertionError({ message: `invariants violated for batch ${batch.workflowId}:\n  - ${violations.join('\n  - ')}` });
  return { settled, stored, storedBytes, failures };
}

/** Bytes the batch leaves stored (measured in the bucket): what its tenant's ledger must hold as used for it. */
export async function batchStoredBytes(ctx: InvariantContext, batch: TrackedBatch): Promise<number> {
  await settleBatch(batch).catch(() => undefined);
  const byKey = new Set(batch.files.map((f) => f.key));
  let bytes = 0;
  for (const [key, size] of await objectsUnder(ctx, batch.bucket, batch.prefix)) if (byKey.has(key)) bytes += size;
  return bytes;
}
