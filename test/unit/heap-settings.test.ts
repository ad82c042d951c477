/**
 * The gateway command's scavenges (src/gateway/heap-settings.ts): none before the settings are
 * applied, then exactly one young-generation collection each time the body bytes counted reach
 * 32 MiB, none in between. Counted with Node's own GC performance entries.
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { applyGatewayHeapSettings, bodyBytesReceived, SCAVENGE_EVERY_BYTES } from '../../src/gateway/heap-settings';

const MiB = 1024 * 1024;

/** Young-generation collections that start while `run` runs (their entries arrive just after). */
async function scavengesDuring(run: () => void): Promise<number> {
  const minors: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minors.push(entry);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const before = performance.now();
  run();
  const after = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  return minors.filter((entry) => entry.startTime >= before && entry.startTime <= after).length;
}

describe('scavenges of the gateway command', () => {
  it('collects the young generation once per 32 MiB of body once applied, and never before', async () => {
    expect(SCAVENGE_EVERY_BYTES).toBe(32 * MiB);
    expect(await scavengesDuring(() => bodyBytesReceived(3 * SCAVENGE_EVERY_BYTES))).toBe(0);

    applyGatewayHeapSettings();
    expect(await scavengesDuring(() => bodyBytesReceived(SCAVENGE_EVERY_BYTES - MiB))).toBe(0);
    expect(await scavengesDuring(() => bodyBytesReceived(MiB))).toBe(1);
    expect(
      await scavengesDuring(() => {
        for (let i = 0; i < 64; i++) bodyBytesReceived(MiB);
      }),
    ).toBe(2);
    // No global `gc` appears in the process's own context.
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });
});
