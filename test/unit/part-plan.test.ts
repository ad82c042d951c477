import { describe, expect, it } from 'vitest';
import { GiB, MiB, partBatches, partRange, PartPlanError, partSizeProblem, planParts, TiB } from '../../src/upload/part-plan';

describe('planParts', () => {
  it('splits a file into parts of the requested size with a shorter last part', () => {
    expect(planParts(20 * MiB + 1, 8 * MiB)).toEqual({ size: 20 * MiB + 1, partSize: 8 * MiB, partCount: 3, lastPartSize: 4 * MiB + 1 });
  });

  it('makes an exact multiple end on a full last part', () => {
    expect(planParts(16 * MiB, 8 * MiB)).toMatchObject({ partCount: 2, lastPartSize: 8 * MiB });
  });

  it('plans a zero-byte file as one empty part', () => {
    expect(planParts(0)).toEqual({ size: 0, partSize: 8 * MiB, partCount: 1, lastPartSize: 0 });
  });

  it('keeps exactly 10,000 parts at the requested size', () => {
    const plan = planParts(10_000 * 5 * MiB, 5 * MiB);
    expect(plan).toMatchObject({ partCount: 10_000, partSize: 5 * MiB });
    expect(plan.adjusted).toBeUndefined();
  });

  it('raises the part size to a whole MiB when the file would need more than 10,000 parts, and says so', () => {
    const plan = planParts(10_000 * 5 * MiB + 1, 5 * MiB);
    expect(plan.partSize).toBe(6 * MiB);
    expect(plan.partCount).toBeLessThanOrEqual(10_000);
    expect(plan.adjusted?.requestedPartSize).toBe(5 * MiB);
    expect(plan.adjusted?.reason).toContain("exceed S3's limit of 10000 parts; raised the part size to 6 MiB");
  });

  it('plans a 5 TiB object within 10,000 parts', () => {
    const plan = planParts(5 * TiB);
    expect(plan.partCount).toBeLessThanOrEqual(10_000);
    expect(plan.partSize * plan.partCount).toBeGreaterThanOrEqual(5 * TiB);
    expect(plan.partSize).toBeLessThanOrEqual(5 * GiB);
  });

  it('rejects objects over 5 TiB and part sizes outside 5 MiB–5 GiB with what is allowed', () => {
    expect(() => planParts(5 * TiB + 1)).toThrow(
      new PartPlanError(`object of ${5 * TiB + 1} bytes exceeds the maximum object size of 5 TiB`),
    );
    expect(() => planParts(10, 5 * MiB - 1)).toThrow("outside S3's bounds: 5 MiB to 5 GiB");
    expect(() => planParts(10, 5 * GiB + 1)).toThrow("outside S3's bounds: 5 MiB to 5 GiB");
    expect(() => planParts(-1)).toThrow('size must be a whole number of bytes ≥ 0');
    expect(() => planParts(1.5)).toThrow('size must be a whole number of bytes ≥ 0');
  });

  it('reports no problem for part sizes at both bounds', () => {
    expect(partSizeProblem(5 * MiB)).toBeUndefined();
    expect(partSizeProblem(5 * GiB)).toBeUndefined();
    expect(partSizeProblem(5 * MiB + 0.5)).toBe(`part size must be a whole number of bytes, got ${5 * MiB + 0.5}`);
  });
});

describe('partRange and partBatches', () => {
  const plan = planParts(20 * MiB + 1, 8 * MiB);

  it('gives each part its byte range, the last one short', () => {
    expect(partRange(plan, 1)).toEqual({ offset: 0, length: 8 * MiB });
    expect(partRange(plan, 3)).toEqual({ offset: 16 * MiB, length: 4 * MiB + 1 });
    expect(() => partRange(plan, 4)).toThrow('part 4 is outside 1..3');
    expect(() => partRange(plan, 0)).toThrow(RangeError);
  });

  it('covers every part exactly once in consecutive batches', () => {
    expect(partBatches(10_000, 512)).toHaveLength(20);
    expect(partBatches(5, 2)).toEqual([
      { firstPart: 1, lastPart: 2 },
      { firstPart: 3, lastPart: 4 },
      { firstPart: 5, lastPart: 5 },
    ]);
    expect(partBatches(1, 512)).toEqual([{ firstPart: 1, lastPart: 1 }]);
  });
});
