/**
 * Scenario 11: 100 uploads of 1 MiB start at once for one tenant whose quota fits 30 of them.
 * The ledger workflow serialises the reservations, so the tenant is never over-committed: exactly
 * 30 complete, the other 70 fail fast at reserve-space with `QuotaExceeded` — before a byte moves —
 * and leave nothing behind. The invariants are asserted on all 100.
 */
import assert from 'node:assert/strict';
import { MiB } from '../../support/files';
import type { FaultScenario, TrackedUpload } from '../framework';
import { settle } from '../invariants';

const UPLOADS = 100;
const FITS = 30;
const SIZE = 1 * MiB;

/** Runs `work` over `items`, at most `limit` at a time. */
async function inBatches<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += limit) results.push(...(await Promise.all(items.slice(i, i + limit).map(work))));
  return results;
}

export const scenario: FaultScenario = {
  name: 'quota-100-concurrent',
  exclusive: true,
  proves: `${UPLOADS} concurrent uploads against a quota that fits ${FITS}: never over-committed, the rest fail fast with QuotaExceeded and leave nothing`,
  timeoutMs: 600_000,
  async run(ctx) {
    const quota = FITS * SIZE;
    await ctx.startWorker({ env: { UPLOAD_SAGA_QUOTAS: `${ctx.tenant}=${quota}`, UPLOAD_SAGA_MAX_CONCURRENT_ACTIVITIES: '16' } });
    const file = await ctx.makeFile(SIZE);

    const startedAt = Date.now();
    const uploads: TrackedUpload[] = await Promise.all(Array.from({ length: UPLOADS }, () => ctx.startUpload({ file })));
    const endedAt = new Map<TrackedUpload, number>();
    await Promise.all(
      uploads.map(async (u) => {
        await settle(u, 420_000).catch(() => undefined);
        endedAt.set(u, Date.now());
      }),
    );
    const allEndedAfter = (Date.now() - startedAt) / 1000;

    const reports = await inBatches(uploads, 10, async (u) => {
      const settled = await settle(u);
      return settled.outcome === 'completed'
        ? ctx.assertInvariants(u, { outcome: 'completed' })
        : ctx.assertInvariants(u, { outcome: 'compensated', failedStep: 'reserve-space', causeType: 'QuotaExceeded' });
    });
    const completed = reports.filter((r) => r.outcome === 'completed');
    const refused = reports.filter((r) => r.outcome !== 'completed');
    assert.ok(completed.length * SIZE <= quota, `over-committed: ${completed.length} × ${SIZE} bytes > quota ${quota}`);
    // Refusals never reserve, so nothing is given back: exactly what fits completes.
    assert.equal(completed.length, FITS, `${completed.length} uploads completed, ${FITS} fit the quota`);
    for (const r of refused) {
      assert.ok(
        r.settled.outcome !== 'completed' && r.settled.report?.compensations.every((c) => c.step === 'reserve-space'),
        'a refused upload had nothing but its reservation to undo: no byte moved',
      );
    }
    const refusalSeconds = uploads
      .filter((u, i) => reports[i]!.outcome !== 'completed')
      .map((u) => ((endedAt.get(u) ?? startedAt) - startedAt) / 1000)
      .sort((a, b) => a - b);
    const median = refusalSeconds[Math.floor(refusalSeconds.length / 2)] ?? 0;
    ctx.summary(
      `${completed.length} completed, ${refused.length} refused (median ${median.toFixed(1)} s after start), all ended after ${allEndedAfter.toFixed(0)} s`,
    );
  },
};
