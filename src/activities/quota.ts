/**
 * reserve-space and its compensation, the commit after merge and the give-back after a delete: thin adapters from the saga's
 * steps to the injected {@link QuotaLedger}, which carries the idempotency and exactness.
 */
import { Context } from '@temporalio/activity';
import type { QuotaUsage } from '../quota/ledger';
import type { UploadActivityDeps } from './deps';

export interface ReservationRef {
  tenant: string;
  uploadId: string;
}

export function quotaActivities(deps: UploadActivityDeps) {
  return {
    /** Reserves the upload's bytes in the quota ledger; `wakeWorkflowId` asks to be woken when space is given back after a refusal. */
    async reserveSpace(request: ReservationRef & { bytes: number; wakeWorkflowId?: string }): Promise<QuotaUsage> {
      // The reservation waits for the tenant's ledger workflow, which may need a worker that is not
      // there (the only one is stopping). Cancellation (its timeout, the worker's shutdown) ends
      // the wait; the request itself cannot be called back and settles in the ledger as it would.
      return Promise.race([deps.quota.reserve(request), Context.current().cancelled]);
    },
    /** Compensation of `reserveSpace`: gives the reservation back. */
    async releaseReservation(ref: ReservationRef): Promise<void> {
      await deps.quota.release(ref);
    },
    /** Lowers the reservation to the upload's real size (a tus upload whose length was deferred reserved the maximum). */
    async shrinkReservation(request: ReservationRef & { bytes: number }): Promise<void> {
      await deps.quota.shrink?.(request);
    },
    /**
     * After a delete: gives the deleted object's bytes back to the upload's tenant, once per upload
     * (the ledger ignores a repeat). A ledger without `free` keeps them counted.
     */
    async freeQuota(request: ReservationRef & { bytes: number }): Promise<void> {
      await deps.quota.free?.(request);
    },
    /** Moves the reservation to "used" once the object exists. */
    async commitReservation(ref: ReservationRef): Promise<void> {
      await deps.quota.commit(ref);
    },
  };
}
