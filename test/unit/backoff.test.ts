import { describe, expect, it } from 'vitest';
import { exponentialDelayMs, jitterDelayMs, nextRetryDelayMs } from '../../src/saga/shared/backoff';

const schedule = { initialIntervalMs: 1000, backoffCoefficient: 2, maximumIntervalMs: 30_000 };

describe('retry backoff', () => {
  it("follows Temporal's exponential schedule, capped at the maximum interval", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => exponentialDelayMs(schedule, a))).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  it('full jitter spans [0, delay], equal jitter [delay/2, delay], none keeps it', () => {
    expect(jitterDelayMs(8000, 'full', 0)).toBe(0);
    expect(jitterDelayMs(8000, 'full', 0.999)).toBe(7992);
    expect(jitterDelayMs(8000, 'equal', 0)).toBe(4000);
    expect(jitterDelayMs(8000, 'equal', 0.5)).toBe(6000);
    expect(jitterDelayMs(8000, 'none', 0.3)).toBe(8000);
  });

  it("never goes below the store's Retry-After hint or 1 ms", () => {
    expect(nextRetryDelayMs({ schedule, attempt: 1, jitter: 'full', random: 0, storeHintMs: 5000 })).toBe(5000);
    expect(nextRetryDelayMs({ schedule, attempt: 1, jitter: 'full', random: 0 })).toBe(1);
    expect(nextRetryDelayMs({ schedule, attempt: 3, jitter: 'none', random: 0, storeHintMs: 100 })).toBe(4000);
  });
});
