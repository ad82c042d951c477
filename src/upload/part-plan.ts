/**
 * S3 multipart arithmetic, as pure functions: how many parts a file needs and how large they are.
 *
 * S3's rules (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html): every part but
 * the last is 5 MiB to 5 GiB, at most 10,000 parts, and an object of at most 5 TiB. A file that
 * would need more than 10,000 parts at the requested size gets a larger part size, rounded up to a
 * whole MiB, and the plan says so. A zero-byte file is one empty part (S3 accepts an empty last
 * part, and a multipart upload needs at least one).
 */

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

/** S3's multipart limits; overridable for stores with other limits. */
export interface MultipartLimits {
  /** @default 5 MiB */
  minPartSize: number;
  /** @default 5 GiB */
  maxPartSize: number;
  /** @default 10,000 */
  maxParts: number;
  /** @default 5 TiB */
  maxObjectSize: number;
}

export const S3_LIMITS: MultipartLimits = {
  minPartSize: 5 * MiB,
  maxPartSize: 5 * GiB,
  maxParts: 10_000,
  maxObjectSize: 5 * TiB,
};

/** The default part size: 8 MiB, as the AWS CLI and lib-storage use. */
export const DEFAULT_PART_SIZE = 8 * MiB;

export interface PartPlan {
  size: number;
  partSize: number;
  partCount: number;
  lastPartSize: number;
  /** Present when the requested part size was raised to stay within the part limit. */
  adjusted?: { requestedPartSize: number; reason: string };
}

/** Thrown when no plan can satisfy the limits; `message` says what is allowed. */
export class PartPlanError extends Error {
  override readonly name = 'PartPlanError';
}

function formatBytes(n: number): string {
  if (n >= TiB && n % TiB === 0) return `${n / TiB} TiB`;
  if (n >= GiB && n % GiB === 0) return `${n / GiB} GiB`;
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  return `${n} bytes`;
}

/** Checks a requested part size against the limits, with a message that says what is allowed. */
export function partSizeProblem(partSize: number, limits: MultipartLimits = S3_LIMITS): string | undefined {
  if (!Number.isSafeInteger(partSize)) return `part size must be a whole number of bytes, got ${partSize}`;
  if (partSize < limits.minPartSize || partSize > limits.maxPartSize) {
    return `part size ${partSize} bytes is outside S3's bounds: ${formatBytes(limits.minPartSize)} to ${formatBytes(limits.maxPartSize)}`;
  }
  return undefined;
}

/**
 * Plans the parts of an object of `size` bytes.
 * @throws PartPlanError when the size or part size is outside the limits.
 */
export function planParts(size: number, requestedPartSize: number = DEFAULT_PART_SIZE, limits: MultipartLimits = S3_LIMITS): PartPlan {
  if (!Number.isSafeInteger(size) || size < 0) throw new PartPlanError(`size must be a whole number of bytes ≥ 0, got ${size}`);
  if (size > limits.maxObjectSize) {
    throw new PartPlanError(`object of ${size} bytes exceeds the maximum object size of ${formatBytes(limits.maxObjectSize)}`);
  }
  const problem = partSizeProblem(requestedPartSize, limits);
  if (problem) throw new PartPlanError(problem);

  let partSize = requestedPartSize;
  let adjusted: PartPlan['adjusted'];
  if (Math.ceil(size / partSize) > limits.maxParts) {
    partSize = Math.ceil(size / limits.maxParts / MiB) * MiB;
    if (partSize > limits.maxPartSize) {
      throw new PartPlanError(
        `object of ${size} bytes needs parts over ${formatBytes(limits.maxPartSize)} to fit in ${limits.maxParts} parts`,
      );
    }
    adjusted = {
      requestedPartSize,
      reason: `${Math.ceil(size / requestedPartSize)} parts of ${formatBytes(requestedPartSize)} exceed S3's limit of ${limits.maxParts} parts; raised the part size to ${formatBytes(partSize)}`,
    };
  }
  const partCount = Math.max(1, Math.ceil(size / partSize));
  const lastPartSize = size - (partCount - 1) * partSize;
  return { size, partSize, partCount, lastPartSize, ...(adjusted ? { adjusted } : {}) };
}

/** Byte range of a part (numbers start at 1, as in S3). */
export function partRange(plan: Pick<PartPlan, 'size' | 'partSize' | 'partCount'>, partNumber: number): { offset: number; length: number } {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > plan.partCount) {
    throw new RangeError(`part ${partNumber} is outside 1..${plan.partCount}`);
  }
  const offset = (partNumber - 1) * plan.partSize;
  return { offset, length: Math.min(plan.partSize, plan.size - offset) };
}

/** Splits parts 1..partCount into consecutive batches of at most `batchSize` parts. */
export function partBatches(partCount: number, batchSize: number): { firstPart: number; lastPart: number }[] {
  const batches: { firstPart: number; lastPart: number }[] = [];
  for (let first = 1; first <= partCount; first += batchSize) {
    batches.push({ firstPart: first, lastPart: Math.min(partCount, first + batchSize - 1) });
  }
  return batches;
}
