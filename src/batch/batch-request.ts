/**
 * Validation of a {@link BatchRequest}, in one place, run twice: by the client before the batch
 * starts (a typo fails fast, with no workflow) and by the batch's first activity (a request that
 * reached Temporal some other way is checked too, before any byte moves). Every message says what
 * was wrong and what is allowed.
 */
import { ApplicationFailure } from '@temporalio/common';
import { bucketNameProblem, CHECKSUM_ALGORITHMS, MAX_PART_CONCURRENCY, objectKeyProblem, STAGING_PREFIX } from '../upload/request';
import type { RequestProblem } from '../upload/errors';
import { partSizeProblem } from '../upload/part-plan';
import { ONE_PUT_MAX_BYTES } from '../upload/one-put';
import { BatchFailureType } from './batch-failure-types';
import { BATCH_DEFAULTS, BATCH_MODES, MAX_FILES_PER_CHUNK, type BatchRequest, type BatchRequestWithDefaults } from './batch-types';

export { BatchFailureType };

/** A permanent failure of a batch, of one of the {@link BatchFailureType}s. */
export function batchFailure(type: BatchFailureType, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** Thrown by client-side validation, before a workflow starts or a byte moves. */
export class InvalidBatchRequestError extends Error {
  override readonly name = 'InvalidBatchRequestError';
  readonly type = BatchFailureType.InvalidBatchRequest;
  constructor(readonly problems: RequestProblem[]) {
    super(`invalid batch request: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
  }
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isAbsolute = (p: string) => p.startsWith('/');

function idProblem(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return 'is required (a string)';
  if (value.length === 0) return 'must not be empty';
  if (value.length > max) return `must be at most ${max} characters`;
  if (!ID_PATTERN.test(value)) return 'may contain only letters, digits, ".", "_" and "-", starting with a letter or digit';
  return undefined;
}

function wholeNumberProblem(value: unknown, min: number, max: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max)
    return `must be a whole number ${min}–${max}`;
  return undefined;
}

/** The problem with a destination prefix, or undefined: a key of its own, or "" (a key must then follow). */
export function prefixProblem(prefix: string): string | undefined {
  if (prefix === '') return undefined;
  // A prefix is a key with something after it: check it as the key of a file named "x".
  const asKey = objectKeyProblem(`${prefix}x`);
  if (asKey) return asKey.replace('must not start with "/"', 'must not start with "/" (keys are relative to the bucket)');
  if (prefix.startsWith(STAGING_PREFIX.slice(0, -1)))
    return `must not start with "${STAGING_PREFIX}" (reserved for the saga's own objects)`;
  return undefined;
}

/** Every problem with `input` as a batch request (empty when it is valid). */
export function findBatchProblems(input: unknown): RequestProblem[] {
  const problems: RequestProblem[] = [];
  const add = (field: string, message: string | undefined) => {
    if (message) problems.push({ field, message });
  };
  if (!isObject(input)) return [{ field: 'request', message: 'must be an object' }];
  // 100, not 128: child uploads are named `<batchId>.f<n>`.
  add('batchId', idProblem(input.batchId, 100));
  add('tenant', idProblem(input.tenant, 63));
  const source = input.source;
  if (!isObject(source)) add('source', 'is required: { type: "directory", path } | { type: "list", paths } | { type: "manifest", path }');
  else if (source.type === 'directory' || source.type === 'manifest') {
    if (typeof source.path !== 'string' || !isAbsolute(source.path)) add('source.path', 'must be an absolute path on the worker host');
    if (source.type === 'directory') {
      for (const name of ['include', 'exclude'] as const) {
        const globs = source[name];
        if (globs !== undefined && (!Array.isArray(globs) || globs.some((g) => typeof g !== 'string' || g.length === 0)))
          add(`source.${name}`, 'must be a list of non-empty glob patterns');
      }
    }
  } else if (source.type === 'list') {
    if (!Array.isArray(source.paths) || source.paths.length === 0) add('source.paths', 'must be a non-empty list of absolute paths');
    else {
      const bad = source.paths.findIndex((p) => typeof p !== 'string' || !isAbsolute(p));
      if (bad >= 0) add(`source.paths[${bad}]`, 'must be an absolute path on the worker host');
    }
  } else add('source.type', 'must be "directory", "list" or "manifest"');
  const destination = input.destination;
  if (!isObject(destination)) add('destination', 'is required: { bucket, prefix }');
  else {
    add('destination.bucket', typeof destination.bucket === 'string' ? bucketNameProblem(destination.bucket) : 'is required (a string)');
    add(
      'destination.prefix',
      typeof destination.prefix === 'string' ? prefixProblem(destination.prefix) : 'is required (a string; "" for none)',
    );
  }
  if (input.mode !== undefined && !BATCH_MODES.includes(input.mode as never)) add('mode', `must be one of ${BATCH_MODES.join(', ')}`);
  if (input.checksumAlgorithm !== undefined && !CHECKSUM_ALGORITHMS.includes(input.checksumAlgorithm as never))
    add('checksumAlgorithm', `must be one of ${CHECKSUM_ALGORITHMS.join(', ')}`);
  if (input.contentType !== undefined && (typeof input.contentType !== 'string' || input.contentType.length === 0))
    add('contentType', 'must be a non-empty string');
  if (input.partSize !== undefined) {
    add(
      'partSize',
      typeof input.partSize === 'number' && input.partSize <= ONE_PUT_MAX_BYTES
        ? partSizeProblem(input.partSize)
        : `must be a whole number of bytes, at most ${ONE_PUT_MAX_BYTES} (64 MiB)`,
    );
  }
  add('filesPerChunk', wholeNumberProblem(input.filesPerChunk, 1, MAX_FILES_PER_CHUNK));
  add('fileConcurrency', wholeNumberProblem(input.fileConcurrency, 1, MAX_PART_CONCURRENCY));
  add('chunkConcurrency', wholeNumberProblem(input.chunkConcurrency, 1, 16));
  add('chunksPerRun', wholeNumberProblem(input.chunksPerRun, 1, 500));
  return problems;
}

/**
 * The request with its defaults filled in.
 * @throws InvalidBatchRequestError listing every problem
 */
export function normalizeBatchRequest(input: unknown): BatchRequestWithDefaults {
  const problems = findBatchProblems(input);
  if (problems.length) throw new InvalidBatchRequestError(problems);
  const request = input as BatchRequest;
  return { ...BATCH_DEFAULTS, ...stripUndefined(request) } as BatchRequestWithDefaults;
}

/** `value` without its properties that are `undefined`, so defaults spread under it stay. */
export function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
