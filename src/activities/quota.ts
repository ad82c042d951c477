/**
 * reserve-space and its compensation, the commit after merge and the give-back after a delete: thin adapters from the saga's
 * steps to the injected {@link QuotaLedger}, which carries the idempotency and exactness.
 */
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
      return deps.quota.reserve(request);
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
