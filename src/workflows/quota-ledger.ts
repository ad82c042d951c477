/**
 * The embedded quota ledger: one long-lived workflow per tenant that owns the tenant's quota.
 *
 * Why a workflow: it needs nothing beyond Temporal (no database), it is durable, and because a
 * workflow handles one update at a time, reservations are exact under any concurrency — two
 * uploads can never both take the last gigabyte. Activities reach it with Update-with-Start, so
 * the first upload of a tenant creates its ledger.
 *
 * Every operation is idempotent per upload id: a retried reserve returns the same reservation, a
 * repeated release or commit is a no-op. The ledger continues-as-new with its state when the
 * history grows, so it can run for years.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';

export interface QuotaLedgerState {
  tenant: string;
  /** Bytes of committed (merged) uploads. */
  usedBytes: number;
  /** Open reservations by upload id. */
  reservations: Record<string, number>;
  /** Recently settled upload ids (committed or released), so repeats stay no-ops. Bounded. */
  settled: Record<string, 'committed' | 'released'>;
}

export interface ReserveRequest {
  uploadId: string;
  bytes: number;
  /** The tenant's quota in bytes, from the worker's configuration at the time of the request. */
  limitBytes: number;
}

export interface QuotaUsage {
  tenant: string;
  usedBytes: number;
  reservedBytes: number;
  reservations: number;
}

export const reserveUpdate = defineUpdate<QuotaUsage, [ReserveRequest]>('reserve');
export const releaseUpdate = defineUpdate<QuotaUsage, [{ uploadId: string }]>('release');
export const commitUpdate = defineUpdate<QuotaUsage, [{ uploadId: string }]>('commit');
export const usageQuery = defineQuery<QuotaUsage>('usage');

/** The ledger's failure type when a reservation does not fit. Non-retryable. */
export const QUOTA_EXCEEDED = 'QuotaExceeded';

/** Settled ids remembered across continue-as-new; older ones are forgotten. */
const MAX_SETTLED = 10_000;
/** Updates handled before the ledger continues as new, to keep each run's history small. */
const UPDATES_PER_RUN = 500;

export function quotaLedgerWorkflowId(tenant: string): string {
  return `quota-ledger:${tenant}`;
}

export async function quotaLedgerWorkflow(initial: QuotaLedgerState): Promise<void> {
  const state: QuotaLedgerState = { ...initial, reservations: { ...initial.reservations }, settled: { ...initial.settled } };
  let handled = 0;

  const usage = (): QuotaUsage => {
    const amounts = Object.values(state.reservations);
    return {
      tenant: state.tenant,
      usedBytes: state.usedBytes,
      reservedBytes: amounts.reduce((a, b) => a + b, 0),
      reservations: amounts.length,
    };
  };
  const settle = (uploadId: string, how: 'committed' | 'released') => {
    delete state.reservations[uploadId];
    state.settled[uploadId] = how;
    const ids = Object.keys(state.settled);
    for (const old of ids.slice(0, Math.max(0, ids.length - MAX_SETTLED))) delete state.settled[old];
  };

  setHandler(usageQuery, usage);

  setHandler(
    reserveUpdate,
    ({ uploadId, bytes, limitBytes }) => {
      handled++;
      if (uploadId in state.reservations) return usage(); // a retried reserve: already held
      const settled = state.settled[uploadId];
      if (settled) throw ApplicationFailure.nonRetryable(`upload ${uploadId} was already ${settled}; it cannot reserve again`, 'ReservationSettled');
      const current = usage();
      if (current.usedBytes + current.reservedBytes + bytes > limitBytes) {
        throw ApplicationFailure.create({
          type: QUOTA_EXCEEDED,
          nonRetryable: true,
          message:
            `tenant "${state.tenant}" has ${limitBytes - current.usedBytes - current.reservedBytes} of ${limitBytes} bytes left ` +
            `(${current.usedBytes} used, ${current.reservedBytes} reserved); the upload needs ${bytes}`,
          details: [{ ...current, limitBytes, requestedBytes: bytes }],
        });
      }
      state.reservations[uploadId] = bytes;
      return usage();
    },
    {
      validator: ({ uploadId, bytes, limitBytes }) => {
        if (!uploadId || !Number.isSafeInteger(bytes) || bytes < 0 || !Number.isSafeInteger(limitBytes) || limitBytes < 0) {
          throw new Error('reserve needs { uploadId, bytes ≥ 0, limitBytes ≥ 0 } with whole byte counts');
        }
      },
    },
  );

  setHandler(releaseUpdate, ({ uploadId }) => {
    handled++;
    if (uploadId in state.reservations) settle(uploadId, 'released');
    return usage();
  });

  setHandler(commitUpdate, ({ uploadId }) => {
    handled++;
    const bytes = state.reservations[uploadId];
    if (bytes !== undefined) {
      state.usedBytes += bytes;
      settle(uploadId, 'committed');
    }
    return usage();
  });

  await condition(() => handled >= UPDATES_PER_RUN || workflowInfo().continueAsNewSuggested);
  await condition(allHandlersFinished);
  await continueAsNew<typeof quotaLedgerWorkflow>(state);
}
