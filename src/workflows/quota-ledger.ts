/**
 * The embedded quota ledger: one long-lived workflow per tenant that owns the tenant's quota.
 *
 * Why a workflow: it needs nothing beyond Temporal (no database), it is durable, and because a
 * workflow handles one update at a time, reservations are exact under any concurrency — two
 * uploads can never both take the last gigabyte. Activities reach it with Update-with-Start, so
 * the first upload of a tenant creates its ledger.
 *
 * Why batches and signals (measured, see docs/explanation/performance.md): many concurrent updates to one
 * workflow are expensive — each opens its own speculative workflow task, they collide, and the
 * worker ends up replaying the ledger's history over and over (≈ 30 ms of server and ≈ 55 ms of
 * worker CPU per update with 20 in flight, against ≈ 1 ms per reservation when the same 20 arrive
 * as one update). So a worker sends the reservations waiting at one moment as ONE `reserveBatch`
 * update and gets one outcome per reservation back; the handler decides them one after another
 * without awaiting, so exactness is unchanged. Commit and release need no answer: they are
 * signals — durable once the server has them, ordered with the updates, applied idempotently, and
 * batched the same way (one signal carries the settlements that waited for the previous one: each
 * signal is a transaction on the ledger's execution, and fifty at once queue up for it). The single-item updates stay for
 * workers of earlier versions.
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
  defineSignal,
  defineUpdate,
  getExternalWorkflowHandle,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { quotaFreedSignal } from '../upload/pause';

export interface QuotaLedgerState {
  tenant: string;
  /** Bytes of committed (merged) uploads. */
  usedBytes: number;
  /** Open reservations by upload id. */
  reservations: Record<string, number>;
  /** Uploads refused for quota that wait for space: upload id → the workflow to wake. Absent in ledgers from before quota waits. */
  waiting?: Record<string, string>;
  /** Recently settled upload ids (committed, released, or freed by a delete), so repeats stay no-ops. Bounded. */
  settled: Record<string, SettledAs>;
}

/** How an upload left the ledger: its bytes used, its reservation given back, or its stored bytes given back by a delete. */
export type SettledAs = 'committed' | 'released' | 'freed';

export interface ReserveRequest {
  uploadId: string;
  bytes: number;
  /** The tenant's quota in bytes, from the worker's configuration at the time of the request. */
  limitBytes: number;
  /** When refused, wake this workflow (signal `quotaFreed`) once space is given back. */
  wakeWorkflowId?: string;
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

/** One reservation's outcome in a {@link reserveBatchUpdate}: the usage after it, or why it was refused. */
export type ReserveOutcome =
  { ok: true; usage: QuotaUsage } | { ok: false; failure: { type: string; message: string; nonRetryable: boolean; details?: unknown[] } };

/**
 * Several reservations in one update, decided in order; each gets its own outcome (one refused
 * reservation does not fail the others). At most {@link MAX_LEDGER_BATCH} per update.
 */
export const reserveBatchUpdate = defineUpdate<ReserveOutcome[], [ReserveRequest[]]>('reserveBatch');
/** Reservations to settle, by upload id: at most {@link MAX_LEDGER_BATCH} in one signal. */
export interface Settlements {
  /** Move these reservations to "used" (their uploads were merged). */
  commit?: string[];
  /** Give these reservations back (compensation). */
  release?: string[];
  /** Lower these reservations to the given bytes (never raise them); applied before commits of the same signal. */
  shrink?: { uploadId: string; bytes: number }[];
  /**
   * Give back the bytes of these uploads, whose objects were deleted; applied after the commits
   * and releases of the same signal. Once per upload id: a freed upload is never freed again.
   */
  free?: { uploadId: string; bytes: number }[];
}
/** Commits and releases reservations. Idempotent; unknown ids are ignored. */
export const settleSignal = defineSignal<[Settlements]>('settleReservations');
/**
 * Wakes every upload waiting for quota, so each tries to reserve again now: for an operator who
 * raised the tenant's quota (`temporal workflow signal --workflow-id quota-ledger:<tenant> --name wakeQuotaWaiters`).
 */
export const wakeWaitersSignal = defineSignal('wakeQuotaWaiters');

/** Largest {@link reserveBatchUpdate} or {@link settleSignal}: keeps one payload and history event small. */
export const MAX_LEDGER_BATCH = 200;

/**
 * Where one upload stands in the ledger: holding a reservation, settled one way or the other, or
 * `unknown` (it never reserved — e.g. refused for quota — or it was settled so long ago that the
 * bounded `settled` map forgot it). Read-only, so adding it changed no command of the ledger.
 */
export type ReservationStatus = { status: 'reserved'; bytes: number } | { status: SettledAs | 'unknown' };
export const reservationQuery = defineQuery<ReservationStatus, [string]>('reservation');

/** The ledger's failure type when a reservation does not fit. Non-retryable. */
export const QUOTA_EXCEEDED = 'QuotaExceeded';

/** Settled ids remembered across continue-as-new; older ones are forgotten. */
const MAX_SETTLED = 10_000;
/** Requests (updates, batched reservations, signals) handled before the ledger continues as new, to keep each run's history small. */
const UPDATES_PER_RUN = 500;

/** Why a reservation request is malformed, or undefined when it is well-formed. */
function invalidReservation(request: ReserveRequest | undefined): string | undefined {
  const { uploadId, bytes, limitBytes } = request ?? ({} as ReserveRequest);
  if (
    !uploadId ||
    typeof uploadId !== 'string' ||
    !Number.isSafeInteger(bytes) ||
    bytes < 0 ||
    !Number.isSafeInteger(limitBytes) ||
    limitBytes < 0
  ) {
    return 'reserve needs { uploadId, bytes ≥ 0, limitBytes ≥ 0 } with whole byte counts';
  }
  return undefined;
}

export function quotaLedgerWorkflowId(tenant: string): string {
  return `quota-ledger:${tenant}`;
}

/** One tenant's quota ledger: reservations and usage, changed by Updates, read by Queries. */
export async function quotaLedgerWorkflow(initial: QuotaLedgerState): Promise<void> {
  const state: QuotaLedgerState = {
    ...initial,
    reservations: { ...initial.reservations },
    settled: { ...initial.settled },
    ...(initial.waiting ? { waiting: { ...initial.waiting } } : {}),
  };
  let handled = 0;
  // Wake-ups in flight: awaited before continuing as new. A waiter that already ended is not an error.
  const wakes: Promise<void>[] = [];
  /** Signals every waiting upload once and forgets them (each asks again if still refused). Issues commands only when some wait. */
  const wakeWaiters = () => {
    const waiting = state.waiting;
    if (!waiting || Object.keys(waiting).length === 0) return;
    delete state.waiting;
    for (const workflowId of new Set(Object.values(waiting))) {
      wakes.push(
        getExternalWorkflowHandle(workflowId)
          .signal(quotaFreedSignal)
          .catch(() => undefined),
      );
    }
  };

  const usage = (): QuotaUsage => {
    const amounts = Object.values(state.reservations);
    return {
      tenant: state.tenant,
      usedBytes: state.usedBytes,
      reservedBytes: amounts.reduce((a, b) => a + b, 0),
      reservations: amounts.length,
    };
  };
  // Own keys only: an upload id such as "constructor" must not find Object's members.
  const holds = (uploadId: string) => Object.prototype.hasOwnProperty.call(state.reservations, uploadId);
  const settledAs = (uploadId: string) =>
    Object.prototype.hasOwnProperty.call(state.settled, uploadId) ? state.settled[uploadId] : undefined;
  // Counted, not listed per settlement: listing up to MAX_SETTLED ids for every commit made each
  // signal cost O(settled) per upload. The oldest are still the ones forgotten, as Object.keys orders them.
  let settledCount = Object.keys(state.settled).length;
  const settle = (uploadId: string, how: SettledAs) => {
    delete state.reservations[uploadId];
    if (settledAs(uploadId) === undefined) settledCount++;
    state.settled[uploadId] = how;
    if (settledCount <= MAX_SETTLED) return;
    const ids = Object.keys(state.settled);
    for (const old of ids.slice(0, ids.length - MAX_SETTLED)) delete state.settled[old];
    settledCount = MAX_SETTLED;
  };

  setHandler(usageQuery, usage);
  setHandler(reservationQuery, (uploadId): ReservationStatus => {
    const bytes = state.reservations[uploadId];
    if (bytes !== undefined) return { status: 'reserved', bytes };
    return { status: state.settled[uploadId] ?? 'unknown' };
  });

  /** Decides one reservation; throws the refusal as a non-retryable ApplicationFailure. */
  const reserve = ({ uploadId, bytes, limitBytes, wakeWorkflowId }: ReserveRequest): QuotaUsage => {
    if (state.waiting && Object.prototype.hasOwnProperty.call(state.waiting, uploadId)) delete state.waiting[uploadId];
    if (holds(uploadId)) return usage(); // a retried reserve: already held
    const settled = settledAs(uploadId);
    if (settled)
      throw ApplicationFailure.nonRetryable(`upload ${uploadId} was already ${settled}; it cannot reserve again`, 'ReservationSettled');
    const current = usage();
    if (current.usedBytes + current.reservedBytes + bytes > limitBytes) {
      if (typeof wakeWorkflowId === 'string' && wakeWorkflowId) (state.waiting ??= {})[uploadId] = wakeWorkflowId;
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
  };
  const release = (uploadId: string) => {
    if (!holds(uploadId)) return;
    settle(uploadId, 'released');
    wakeWaiters();
  };
  const shrink = (uploadId: string, bytes: number) => {
    if (holds(uploadId) && Number.isSafeInteger(bytes) && bytes >= 0 && bytes < state.reservations[uploadId]!) {
      state.reservations[uploadId] = bytes;
      wakeWaiters();
    }
  };
  const commit = (uploadId: string) => {
    if (!holds(uploadId)) return;
    state.usedBytes += state.reservations[uploadId]!;
    settle(uploadId, 'committed');
  };
  // The object of a committed upload was deleted: its bytes leave "used". Still reserved (deleted
  // between the merge and commit-quota): the reservation is dropped, so the later commit is a
  // no-op. Released or freed before: nothing. Unknown (never here, or forgotten among the oldest
  // settlements): the bytes are given back, at most down to zero used.
  const free = (uploadId: string, bytes: number) => {
    if (!Number.isSafeInteger(bytes) || bytes < 0) return;
    const settled = settledAs(uploadId);
    if (settled === 'released' || settled === 'freed') return;
    if (!holds(uploadId)) state.usedBytes = Math.max(0, state.usedBytes - bytes);
    settle(uploadId, 'freed');
    wakeWaiters();
  };

  setHandler(
    reserveUpdate,
    (request) => {
      handled++;
      return reserve(request);
    },
    {
      validator: (request) => {
        const problem = invalidReservation(request);
        if (problem) throw new Error(problem);
      },
    },
  );

  setHandler(
    reserveBatchUpdate,
    (requests) => {
      handled += requests.length;
      return requests.map((request): ReserveOutcome => {
        const problem = invalidReservation(request);
        if (problem) return { ok: false, failure: { type: 'InvalidReservation', message: problem, nonRetryable: true } };
        try {
          return { ok: true, usage: reserve(request) };
        } catch (err) {
          const failure = err as ApplicationFailure;
          return {
            ok: false,
            failure: {
              type: failure.type ?? 'Error',
              message: failure.message,
              nonRetryable: true,
              ...(failure.details ? { details: [...failure.details] } : {}),
            },
          };
        }
      });
    },
    {
      validator: (requests) => {
        if (!Array.isArray(requests) || requests.length === 0 || requests.length > MAX_LEDGER_BATCH) {
          throw new Error(`reserveBatch needs 1 to ${MAX_LEDGER_BATCH} reservations`);
        }
      },
    },
  );

  setHandler(releaseUpdate, ({ uploadId }) => {
    handled++;
    release(uploadId);
    return usage();
  });

  setHandler(commitUpdate, ({ uploadId }) => {
    handled++;
    commit(uploadId);
    return usage();
  });

  setHandler(settleSignal, (settlements) => {
    // A signal cannot be refused: anything malformed in it is ignored rather than thrown.
    for (const item of Array.isArray(settlements?.shrink) ? settlements.shrink : []) {
      handled++;
      if (typeof item?.uploadId === 'string' && typeof item.bytes === 'number') shrink(item.uploadId, item.bytes);
    }
    for (const uploadId of Array.isArray(settlements?.commit) ? settlements.commit : []) {
      handled++;
      if (typeof uploadId === 'string') commit(uploadId);
    }
    for (const uploadId of Array.isArray(settlements?.release) ? settlements.release : []) {
      handled++;
      if (typeof uploadId === 'string') release(uploadId);
    }
    for (const item of Array.isArray(settlements?.free) ? settlements.free : []) {
      handled++;
      if (typeof item?.uploadId === 'string' && typeof item.bytes === 'number') free(item.uploadId, item.bytes);
    }
  });

  setHandler(wakeWaitersSignal, wakeWaiters);

  await condition(() => handled >= UPDATES_PER_RUN || workflowInfo().continueAsNewSuggested);
  await condition(allHandlersFinished);
  await Promise.all(wakes);
  await continueAsNew<typeof quotaLedgerWorkflow>(state);
}
