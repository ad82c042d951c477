/**
 * Validation of a {@link MigrationRequest}, in one place, run twice: by the client before the
 * migration starts (a typo fails fast, with no workflow) and by the migration's first activity (a
 * request that reached Temporal some other way is checked too, before any byte moves).
 */
import { ApplicationFailure } from '@temporalio/common';
import { prefixProblem, stripUndefined } from '../batch/batch-request';
import type { RequestProblem } from '../upload/errors';
import { bucketNameProblem, CHECKSUM_ALGORITHMS, MAX_PART_CONCURRENCY, PROFILE_PATTERN, STAGING_PREFIX } from '../upload/request';
import {
  MAX_OBJECTS_PER_CHUNK,
  MigrationFailureType,
  MIGRATION_DEFAULTS,
  type MigrationRequest,
  type MigrationRequestWithDefaults,
} from './migration-types';

export { MigrationFailureType };

/** Thrown by client-side validation, before a workflow starts or a byte moves. */
export class InvalidMigrationRequestError extends Error {
  override readonly name = 'InvalidMigrationRequestError';
  readonly type = MigrationFailureType.InvalidMigrationRequest;
  constructor(readonly problems: RequestProblem[]) {
    super(`invalid migration request: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
  }
}

/** A permanent failure of a migration as a whole. */
export function migrationFailure(type: MigrationFailureType, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

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

/** Every problem with `input` as a migration request (empty when it is valid). */
export function findMigrationProblems(input: unknown): RequestProblem[] {
  const problems: RequestProblem[] = [];
  const add = (field: string, message: string | undefined) => {
    if (message) problems.push({ field, message });
  };
  if (!isObject(input)) return [{ field: 'request', message: 'must be an object' }];
  add('migrationId', idProblem(input.migrationId, 100));
  add('tenant', idProblem(input.tenant, 63));
  const source = input.source;
  if (!isObject(source)) add('source', 'is required: { bucket, prefix, profile? }');
  else {
    add('source.bucket', typeof source.bucket === 'string' ? bucketNameProblem(source.bucket) : 'is required (a string)');
    if (typeof source.prefix !== 'string') add('source.prefix', 'is required (a string; "" for the whole bucket)');
    else if (source.prefix.startsWith(STAGING_PREFIX.slice(0, -1)))
      add('source.prefix', `must not start with "${STAGING_PREFIX}" (reserved for the saga's own objects)`);
    if (source.profile !== undefined && (typeof source.profile !== 'string' || !PROFILE_PATTERN.test(source.profile)))
      add('source.profile', 'must be the name of a source profile (letters, digits, "_", "-"; 1–63)');
  }
  const destination = input.destination;
  if (!isObject(destination)) add('destination', 'is required: { bucket, prefix }');
  else {
    add('destination.bucket', typeof destination.bucket === 'string' ? bucketNameProblem(destination.bucket) : 'is required (a string)');
    add(
      'destination.prefix',
      typeof destination.prefix === 'string' ? prefixProblem(destination.prefix) : 'is required (a string; "" for none)',
    );
  }
  if (
    isObject(source) &&
    isObject(destination) &&
    source.profile === undefined &&
    source.bucket === destination.bucket &&
    typeof source.prefix === 'string' &&
    typeof destination.prefix === 'string' &&
    (destination.prefix.startsWith(source.prefix) || source.prefix.startsWith(destination.prefix))
  )
    add(
      'destination',
      `s3://${String(destination.bucket)}/${destination.prefix} overlaps the source s3://${String(source.bucket)}/${source.prefix}: a migration would copy objects onto themselves or copy its own copies; choose prefixes neither of which starts with the other`,
    );
  if (input.checksumAlgorithm !== undefined && !CHECKSUM_ALGORITHMS.includes(input.checksumAlgorithm as never))
    add('checksumAlgorithm', `must be one of ${CHECKSUM_ALGORITHMS.join(', ')}`);
  add('objectsPerChunk', wholeNumberProblem(input.objectsPerChunk, 1, MAX_OBJECTS_PER_CHUNK));
  add('objectConcurrency', wholeNumberProblem(input.objectConcurrency, 1, MAX_PART_CONCURRENCY));
  add('chunkConcurrency', wholeNumberProblem(input.chunkConcurrency, 1, 16));
  add('chunksPerRun', wholeNumberProblem(input.chunksPerRun, 1, 1000));
  return problems;
}

/**
 * The request with its defaults filled in.
 * @throws InvalidMigrationRequestError listing every problem
 */
export function normalizeMigrationRequest(input: unknown): MigrationRequestWithDefaults {
  const problems = findMigrationProblems(input);
  if (problems.length) throw new InvalidMigrationRequestError(problems);
  const request = input as MigrationRequest;
  return { ...MIGRATION_DEFAULTS, ...stripUndefined(request) } as MigrationRequestWithDefaults;
}
