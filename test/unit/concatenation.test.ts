/**
 * The pure parts of tus concatenation: how a final's parts are cut from its partials (S3's part
 * rules), the claim rules, when a tus DELETE may terminate a partial, and the Upload-Concat header.
 */
import { describe, expect, it } from 'vitest';
import { claimProblem, planJoin, withdrawProblem, type JoinPart } from '../../src/upload/concatenation';
import { parseUploadConcat, partialIdsOf, uploadConcatHeader } from '../../src/gateway/tus-concatenation';

const MiB = 1024 * 1024;
const limits = { minPartSize: 5 * MiB, maxPartSize: 5 * 1024 * MiB, maxParts: 10_000 };
const sizeOf = (part: JoinPart) =>
  part.kind === 'copy' ? part.range.end - part.range.start : part.ranges.reduce((sum, r) => sum + r.end - r.start, 0);

/** Every byte of every partial exactly once, in order; every part but the last at least 5 MiB. */
function expectValid(sizes: number[], parts: JoinPart[]): void {
  const ranges = parts.flatMap((p) => (p.kind === 'copy' ? [p.range] : p.ranges));
  let source = 0;
  let at = 0;
  for (const range of ranges) {
    while (source < sizes.length && at === sizes[source]) [source, at] = [source + 1, 0];
    expect([range.source, range.start]).toEqual([source, at]);
    at = range.end;
  }
  while (source < sizes.length && at === sizes[source]) [source, at] = [source + 1, 0];
  expect(source).toBe(sizes.length);
  parts.slice(0, -1).forEach((p) => expect(sizeOf(p)).toBeGreaterThanOrEqual(limits.minPartSize));
  parts.forEach((p) => expect(sizeOf(p)).toBeLessThanOrEqual(limits.maxPartSize));
}

describe('planJoin', () => {
  it('copies each partial of at least 5 MiB server-side, one part each', () => {
    const sizes = [8 * MiB, 8 * MiB, 8 * MiB + 3];
    const parts = planJoin(sizes, limits);
    expect(parts.map((p) => p.kind)).toEqual(['copy', 'copy', 'copy']);
    expectValid(sizes, parts);
  });

  it('assembles partials under 5 MiB through the worker into parts of at least 5 MiB', () => {
    const sizes = [3 * MiB, 3 * MiB, 3 * MiB];
    const parts = planJoin(sizes, limits);
    expect(parts.map((p) => [p.kind, sizeOf(p)])).toEqual([
      ['assemble', 5 * MiB],
      ['assemble', 4 * MiB],
    ]);
    expectValid(sizes, parts);
  });

  it('tops a short stretch up from the next partial and copies the rest of it', () => {
    const sizes = [1 * MiB, 20 * MiB, 2];
    const parts = planJoin(sizes, limits);
    expect(parts.map((p) => [p.kind, sizeOf(p)])).toEqual([
      ['assemble', 5 * MiB],
      ['copy', 16 * MiB],
      ['assemble', 2],
    ]);
    expectValid(sizes, parts);
  });

  it('splits a partial over the largest part into near-equal copies, skips empty partials, and gives an all-empty final one empty part', () => {
    const big = [11 * 1024 * MiB, 0, 7 * MiB];
    const parts = planJoin(big, limits);
    expect(parts.map((p) => p.kind)).toEqual(['copy', 'copy', 'copy', 'copy']);
    expectValid(big, parts);
    expect(planJoin([0, 0], limits)).toEqual([{ kind: 'assemble', ranges: [] }]);
  });

  it('holds for many mixed sizes', () => {
    for (let seed = 1; seed < 200; seed++) {
      const sizes = Array.from({ length: 1 + (seed % 7) }, (_, i) => ((seed * 7919 + i * 104729) % (12 * MiB)) * ((seed + i) % 3));
      expectValid(sizes, planJoin(sizes, limits));
    }
  });

  it('refuses a join that needs more parts than S3 allows', () => {
    expect(() => planJoin([6 * MiB, 6 * MiB, 6 * MiB], { ...limits, maxParts: 2 })).toThrow(/needs 3 parts; S3 allows 2/);
  });
});

describe('claimProblem', () => {
  const stored = {
    uploadId: 'p1',
    phase: 'await-join' as const,
    outcome: 'running' as const,
    expiresAt: 2_000,
    concat: { kind: 'partial' as const, stored: { size: 5, etag: '"e"' } },
  };
  it('lets a final claim a stored partial, and claim it again', () => {
    expect(claimProblem(stored, 'f1', 1_000)).toBeUndefined();
    expect(claimProblem({ ...stored, concat: { ...stored.concat, claimedBy: 'f1' } }, 'f1', 1_000)).toBeUndefined();
  });
  it('refuses what is not a stored, unclaimed, unexpired partial', () => {
    expect(claimProblem({ ...stored, concat: undefined }, 'f1', 1_000)?.message).toMatch(/is not a partial upload/);
    expect(claimProblem({ ...stored, phase: 'receive-parts', concat: { kind: 'partial' } }, 'f1', 1_000)?.message).toMatch(
      /is not finished/,
    );
    expect(claimProblem({ ...stored, concat: { ...stored.concat, claimedBy: 'f2' } }, 'f1', 1_000)).toMatchObject({
      type: 'OffsetConflict',
    });
    expect(claimProblem({ ...stored, concat: { ...stored.concat, joinedInto: 'f2' } }, 'f1', 1_000)?.message).toMatch(/already joined/);
    expect(claimProblem(stored, 'f1', 2_000)).toMatchObject({ type: 'UploadExpired' });
    // A partial a DELETE is terminating, stored or not yet.
    for (const withdrawn of [
      { ...stored, concat: { ...stored.concat, withdrawn: true as const } },
      { ...stored, phase: 'receive-parts' as const, concat: { kind: 'partial' as const, withdrawn: true as const } },
    ])
      expect(claimProblem(withdrawn, 'f1', 1_000)).toEqual({
        type: 'OffsetConflict',
        message: 'partial upload p1 is being terminated (tus DELETE)',
      });
  });
});

describe('withdrawProblem', () => {
  const partial = { uploadId: 'p1', outcome: 'running' as const, concat: { kind: 'partial' as const, stored: { size: 5, etag: '"e"' } } };
  it('lets a DELETE terminate a partial no final claimed, stored or not, and one that ended', () => {
    expect(withdrawProblem(partial)).toBeUndefined();
    expect(withdrawProblem({ ...partial, concat: { kind: 'partial' } })).toBeUndefined();
    expect(withdrawProblem({ ...partial, concat: { ...partial.concat, withdrawn: true } })).toBeUndefined();
    expect(withdrawProblem({ ...partial, outcome: 'cancelled', concat: { ...partial.concat, claimedBy: 'f1' } })).toBeUndefined();
  });
  it('refuses a partial a final claimed or joined, naming the final', () => {
    const refusal = {
      type: 'OffsetConflict',
      message: 'partial upload p1 is being joined by final upload f1: it cannot be terminated while a final joins it',
    };
    expect(withdrawProblem({ ...partial, concat: { ...partial.concat, claimedBy: 'f1' } })).toEqual(refusal);
    expect(withdrawProblem({ ...partial, concat: { ...partial.concat, claimedBy: 'f1', joinedInto: 'f1' } })).toEqual(refusal);
    expect(withdrawProblem({ ...partial, concat: undefined })?.message).toMatch(/is not a partial upload/);
  });
});

describe('the Upload-Concat header', () => {
  it('parses partial and final, and refuses anything else', () => {
    expect(parseUploadConcat('partial')).toEqual({ kind: 'partial' });
    expect(parseUploadConcat('final;/files/a  http://h/files/b')).toEqual({ kind: 'final', urls: ['/files/a', 'http://h/files/b'] });
    expect(parseUploadConcat('final;')).toHaveProperty('problem');
    expect(parseUploadConcat('Partial')).toHaveProperty('problem');
  });
  it('reads upload ids from URLs of the endpoint only', () => {
    expect(partialIdsOf(['/files/a', 'https://gw.example/files/b'], '/files')).toEqual(['a', 'b']);
    expect(partialIdsOf(['/other/a'], '/files')).toHaveProperty('problem');
    expect(partialIdsOf(['/files/a/b'], '/files')).toHaveProperty('problem');
  });
  it('names what an upload is for HEAD', () => {
    expect(uploadConcatHeader({ concat: { kind: 'partial' } }, '/files')).toBe('partial');
    expect(uploadConcatHeader({ concat: { kind: 'final', partials: ['a', 'b'] } }, '/files')).toBe('final;/files/a /files/b');
    expect(uploadConcatHeader({}, '/files')).toBeUndefined();
  });
});
