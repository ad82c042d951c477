/**
 * Source versions: a changed source is noticed, and uploads inspected before local-file versions
 * carried the change time keep running after a deploy.
 */
import { describe, expect, it } from 'vitest';
import { sourceVersionMatches } from '../../src/activities/sources/byte-source';

describe('sourceVersionMatches', () => {
  it('matches equal versions and nothing else', () => {
    expect(sourceVersionMatches('12:100:1700000000000.5:ctime=1700000000001.25', '12:100:1700000000000.5:ctime=1700000000001.25')).toBe(
      true,
    );
    expect(sourceVersionMatches('12:100:1700000000000.5:ctime=1700000000001.25', '12:100:1700000000000.5:ctime=1700000000009')).toBe(false);
    expect(sourceVersionMatches('"etag-1"', '"etag-2"')).toBe(false);
  });

  it('accepts a version recorded without the change time, but only if the rest is unchanged', () => {
    expect(sourceVersionMatches('12:100:1700000000000.5', '12:100:1700000000000.5:ctime=1700000000001.25')).toBe(true);
    expect(sourceVersionMatches('12:100:1700000000000.5', '12:101:1700000000000.5:ctime=1700000000001.25')).toBe(false);
    expect(sourceVersionMatches('12:100:1700000000000', '12:100:1700000000000.5:ctime=1')).toBe(false);
    expect(sourceVersionMatches('12:100:1700000000000.5', '12:100:1700000000000.5:ctime=1:extra')).toBe(false);
  });

  it('grants the allowance to local-file versions only', () => {
    expect(sourceVersionMatches('100:"etag":', '100:"etag"::ctime=5')).toBe(false);
  });
});
