/**
 * The quota port: what the reserve-space step needs from a quota store. The embedded default is
 * a Temporal workflow per tenant (see temporal-ledger.ts); a deployment with its own billing or
 * quota service implements this interface and passes it to `createActivities`.
 *
 * Contract, which every implementation must keep:
 * - `reserve` is idempotent per (tenant, uploadId) and exact under concurrency: the sum of used
 *   and reserved bytes never exceeds the limit. When the upload does not fit it throws a
 *   non-retryable failure of type `QuotaExceeded`.
 * - `release`, `shrink`, `commit` and `free` are idempotent; the first three on an unknown upload are no-ops.
 *   They may take effect after they return (the embedded ledger sends them as signals), but never
 *   later than a request that reaches the ledger after them, and never lost once they returned.
 */
export interface QuotaUsage {
  tenant: string;
  usedBytes: number;
  reservedBytes: number;
  reservations: number;
}

/** Keeps per-tenant storage quotas: reservations before an upload, settled after it. */
export interface QuotaLedger {
  /**
   * Reserves `bytes` for the upload; throws a permanent `QuotaExceeded` failure beyond the quota.
   * With `wakeWorkflowId`, a refused upload waits for quota: the ledger sends that workflow the
   * `quotaFreed` signal (src/upload/pause.ts) when space is given back. A ledger that cannot
   * ignores it; the waiting upload then finds space at its next poll.
   */
  reserve(request: { tenant: string; uploadId: string; bytes: number; wakeWorkflowId?: string }): Promise<QuotaUsage>;
  /** Gives the reservation back (the upload did not complete). */
  release(request: { tenant: string; uploadId: string }): Promise<void>;
  /**
   * Lowers the upload's reservation to `bytes` (never raises it): a tus upload with a deferred
   * length reserves the tenant's maximum and shrinks to the real size once it is known. A no-op
   * for an unknown or settled upload, or when the reservation is already at most `bytes`.
   * Optional: a ledger without it keeps the maximum reserved until the upload commits or is released.
   */
  shrink?(request: { tenant: string; uploadId: string; bytes: number }): Promise<void>;
  /**
   * Gives back `bytes` of a committed upload whose object was deleted (a still-open reservation of
   * it is dropped instead). Idempotent per upload id: a second call for the same upload is a no-op.
   * Optional: a ledger without it keeps deleted objects counted.
   */
  free?(request: { tenant: string; uploadId: string; bytes: number }): Promise<void>;
  /** Moves the reservation to "used" once the object is merged. */
  commit(request: { tenant: string; uploadId: string }): Promise<void>;
  /** The tenant's usage now. */
  usage(tenant: string): Promise<QuotaUsage>;
}

/** Quota limits by tenant. */
export interface QuotaLimits {
  /** Bytes a tenant may store when it has no entry of its own. */
  defaultBytes: number;
  /** Per-tenant overrides. */
  perTenant?: Record<string, number>;
}

export function quotaLimitFor(limits: QuotaLimits, tenant: string): number {
  // Own entries only: a tenant named "constructor" or "toString" must not find Object's members.
  const perTenant = limits.perTenant;
  return perTenant && Object.prototype.hasOwnProperty.call(perTenant, tenant)
    ? (perTenant[tenant] ?? limits.defaultBytes)
    : limits.defaultBytes;
}
