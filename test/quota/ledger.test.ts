/**
 * The embedded quota ledger on the real dev server: exact under concurrency, idempotent per upload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { QUOTA_LEDGER_BUSY, TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { quotaLedgerWorkflowId } from '../../src/workflows/quota-ledger';
import { connectTestStack, uniqueId, type RunningWorker, type TestStack, startUploadWorker } from '../support/harness';

const MiB = 1024 * 1024;
let stack: TestStack;
let worker: RunningWorker;
let ledger: TemporalQuotaLedger;
const EventType = temporal.api.enums.v1.EventType;

/** How many events of `type` the tenant's ledger history holds. */
async function ledgerEvents(tenant: string, type: temporal.api.enums.v1.EventType): Promise<number> {
  const history = await stack.client.workflow.getHandle(quotaLedgerWorkflowId(tenant)).fetchHistory();
  return (history.events ?? []).filter((e) => e.eventType === type).length;
}

beforeAll(async () => {
  stack = await connectTestStack({ env: { UPLOAD_SAGA_QUOTA_DEFAULT: '5MiB' } });
  worker = await startUploadWorker(stack);
  ledger = new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota });
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
});

describe('quota ledger', () => {
  it('never over-commits: of 20 concurrent 1 MiB reservations against 5 MiB, exactly 5 succeed', async () => {
    const tenant = uniqueId('race');
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => ledger.reserve({ tenant, uploadId: `u${i}`, bytes: MiB })),
    );
    const granted = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(granted).toHaveLength(5);
    for (const r of refused) {
      expect(r.reason).toBeInstanceOf(ApplicationFailure);
      expect(r.reason).toMatchObject({ type: 'QuotaExceeded', nonRetryable: true });
    }
    expect(await ledger.usage(tenant)).toMatchObject({ usedBytes: 0, reservedBytes: 5 * MiB, reservations: 5 });
  });

  it('is idempotent per upload: a retried reserve holds once, release and commit are no-ops when repeated', async () => {
    const tenant = uniqueId('idem');
    await ledger.reserve({ tenant, uploadId: 'a', bytes: 2 * MiB });
    await ledger.reserve({ tenant, uploadId: 'a', bytes: 2 * MiB });
    expect(await ledger.usage(tenant)).toMatchObject({ reservedBytes: 2 * MiB, reservations: 1 });

    await ledger.commit({ tenant, uploadId: 'a' });
    await ledger.commit({ tenant, uploadId: 'a' });
    expect(await ledger.usage(tenant)).toMatchObject({ usedBytes: 2 * MiB, reservedBytes: 0 });

    await ledger.reserve({ tenant, uploadId: 'b', bytes: 3 * MiB });
    await ledger.release({ tenant, uploadId: 'b' });
    await ledger.release({ tenant, uploadId: 'b' });
    expect(await ledger.usage(tenant)).toMatchObject({ usedBytes: 2 * MiB, reservedBytes: 0, reservations: 0 });
    await expect(ledger.reserve({ tenant, uploadId: 'a', bytes: 1 })).rejects.toMatchObject({ type: 'ReservationSettled' });
  });

  it('shrinks a reservation (never grows it), frees the difference for others, and commits what is left', async () => {
    const tenant = uniqueId('shrink');
    await ledger.reserve({ tenant, uploadId: 'deferred', bytes: 5 * MiB });
    await expect(ledger.reserve({ tenant, uploadId: 'other', bytes: 2 * MiB })).rejects.toMatchObject({ type: 'QuotaExceeded' });
    await ledger.shrink({ tenant, uploadId: 'deferred', bytes: 3 * MiB });
    await ledger.shrink({ tenant, uploadId: 'deferred', bytes: 4 * MiB }); // a shrink never raises
    expect(await ledger.reservation(tenant, 'deferred')).toEqual({ status: 'reserved', bytes: 3 * MiB });
    await ledger.reserve({ tenant, uploadId: 'other', bytes: 2 * MiB });
    await ledger.commit({ tenant, uploadId: 'deferred' });
    await ledger.shrink({ tenant, uploadId: 'deferred', bytes: 0 }); // settled: a no-op
    expect(await ledger.usage(tenant)).toMatchObject({ usedBytes: 3 * MiB, reservedBytes: 2 * MiB, reservations: 1 });
  });

  it("gives a deleted upload's bytes back once; for a still-open reservation it drops it, so the later commit counts nothing", async () => {
    const tenant = uniqueId('free');
    await ledger.reserve({ tenant, uploadId: 'stored', bytes: 3 * MiB });
    await ledger.commit({ tenant, uploadId: 'stored' });
    await ledger.reserve({ tenant, uploadId: 'merging', bytes: 1 * MiB });
    await expect.poll(async () => (await ledger.usage(tenant)).usedBytes).toBe(3 * MiB);

    await Promise.all([
      ledger.free({ tenant, uploadId: 'stored', bytes: 3 * MiB }),
      ledger.free({ tenant, uploadId: 'stored', bytes: 3 * MiB }), // a repeat: no-op
      ledger.free({ tenant, uploadId: 'merging', bytes: 1 * MiB }), // deleted between its merge and its commit
    ]);
    await ledger.commit({ tenant, uploadId: 'merging' }); // arrives after the delete: no-op
    await ledger.free({ tenant, uploadId: 'stored', bytes: 3 * MiB }); // in a later signal: still a no-op
    await expect.poll(async () => ledger.reservation(tenant, 'stored')).toEqual({ status: 'freed' });
    expect(await ledger.reservation(tenant, 'merging')).toEqual({ status: 'freed' });
    expect(await ledger.usage(tenant)).toMatchObject({ usedBytes: 0, reservedBytes: 0, reservations: 0 });
    // A freed upload cannot reserve again, as any settled one.
    await expect(ledger.reserve({ tenant, uploadId: 'stored', bytes: 1 })).rejects.toMatchObject({ type: 'ReservationSettled' });
  });

  it('explains a refusal with what is left, used and reserved', async () => {
    const tenant = uniqueId('explain');
    await ledger.reserve({ tenant, uploadId: 'a', bytes: 4 * MiB });
    await expect(ledger.reserve({ tenant, uploadId: 'b', bytes: 2 * MiB })).rejects.toThrow(
      `tenant "${tenant}" has ${MiB} of ${5 * MiB} bytes left (0 used, ${4 * MiB} reserved); the upload needs ${2 * MiB}`,
    );
  });

  it('never over-commits 50 concurrent reservations of which only 12 fit, and sends them as one batch', async () => {
    const tenant = uniqueId('race50');
    const bytes = 400 * 1024; // 5 MiB / 400 KiB = 12.8
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => ledger.reserve({ tenant, uploadId: `u${i}`, bytes })));
    const granted = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(granted).toHaveLength(12);
    for (const r of refused) expect(r.reason).toMatchObject({ type: 'QuotaExceeded', nonRetryable: true });
    expect(await ledger.usage(tenant)).toMatchObject({ usedBytes: 0, reservedBytes: 12 * bytes, reservations: 12 });
    // Group commit: the 50 reservations reached the ledger as one update, not 50.
    expect(await ledgerEvents(tenant, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)).toBe(1);
  });

  it('settles concurrent commits and releases exactly once each, in fewer signals than settlements', async () => {
    const tenant = uniqueId('settle');
    await Promise.all(Array.from({ length: 10 }, (_, i) => ledger.reserve({ tenant, uploadId: `u${i}`, bytes: 100 * 1024 })));
    await Promise.all([
      ...Array.from({ length: 5 }, (_, i) => ledger.commit({ tenant, uploadId: `u${i}` })),
      ...Array.from({ length: 5 }, (_, i) => ledger.release({ tenant, uploadId: `u${i + 5}` })),
      // repeats and an unknown id change nothing
      ledger.commit({ tenant, uploadId: 'u0' }),
      ledger.release({ tenant, uploadId: 'u0' }),
      ledger.commit({ tenant, uploadId: 'never-reserved' }),
    ]);
    expect(await ledger.usage(tenant)).toMatchObject({ usedBytes: 5 * 100 * 1024, reservedBytes: 0, reservations: 0 });
    expect(await ledger.reservation(tenant, 'u0')).toEqual({ status: 'committed' });
    expect(await ledger.reservation(tenant, 'u9')).toEqual({ status: 'released' });
    // The 13 settlements made in one tick left as one signal.
    expect(await ledgerEvents(tenant, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)).toBe(1);
  });

  it('refuses reservations beyond maxWaitingReservations at once, retryably, and lets the waiting ones through', async () => {
    const tenant = uniqueId('busy');
    const narrow = new TemporalQuotaLedger({
      client: stack.client,
      taskQueue: stack.config.temporal.taskQueue,
      limits: stack.config.quota,
      maxWaitingReservations: 3,
    });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => narrow.reserve({ tenant, uploadId: `u${i}`, bytes: 1024 })),
    );
    expect(outcomes.slice(0, 3).map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    for (const o of outcomes.slice(3)) {
      expect(o.status).toBe('rejected');
      expect((o as PromiseRejectedResult).reason).toMatchObject({ type: QUOTA_LEDGER_BUSY, nonRetryable: false });
    }
    // Once those returned, there is room again.
    await expect(narrow.reserve({ tenant, uploadId: 'u3', bytes: 1024 })).resolves.toMatchObject({ reservations: 4 });
  });

  it('remembers the 10,000 newest settlements: one more forgets the oldest, and a repeat settles nothing again', async () => {
    const tenant = uniqueId('bounded');
    // A ledger that continued as new with a full list of settlements (the oldest first).
    const settled = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`old-${i}`, 'committed' as const]));
    await stack.client.workflow.start('quotaLedgerWorkflow', {
      workflowId: quotaLedgerWorkflowId(tenant),
      taskQueue: stack.config.temporal.taskQueue,
      args: [{ tenant, usedBytes: 0, reservations: {}, settled }],
    });
    await ledger.reserve({ tenant, uploadId: 'new', bytes: MiB });
    await ledger.commit({ tenant, uploadId: 'new' });
    expect(await ledger.reservation(tenant, 'old-0')).toEqual({ status: 'unknown' });
    expect(await ledger.reservation(tenant, 'old-1')).toEqual({ status: 'committed' });
    expect(await ledger.reservation(tenant, 'new')).toEqual({ status: 'committed' });
    // Settling a remembered id again (committed → freed) adds none: the oldest left stays.
    await ledger.free({ tenant, uploadId: 'new', bytes: MiB });
    expect(await ledger.reservation(tenant, 'new')).toEqual({ status: 'freed' });
    expect(await ledger.reservation(tenant, 'old-1')).toEqual({ status: 'committed' });
    expect(await ledger.usage(tenant)).toMatchObject({ usedBytes: 0, reservedBytes: 0 });
  });

  it('reports zero usage for a tenant it has never seen', async () => {
    expect(await ledger.usage(uniqueId('never'))).toMatchObject({ usedBytes: 0, reservedBytes: 0, reservations: 0 });
  });
});
