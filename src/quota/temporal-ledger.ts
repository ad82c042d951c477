/**
 * The embedded {@link QuotaLedger}: each tenant's quota is a ledger workflow (quota-ledger.ts),
 * created on first use by Update-with-Start.
 *
 * Why it batches: concurrent updates to one workflow collide (each opens its own speculative
 * workflow task) and cost the server and the worker tens of milliseconds each; the same
 * reservations sent as one update cost about one millisecond each (docs/explanation/performance.md). So the
 * reservations of one tenant that arrive while an update is in flight wait and leave together as
 * the next `reserveBatch` update — group commit: one update in flight per tenant and process,
 * nobody waits longer than for the update before theirs.
 *
 * Why commit and release are signals: they need no answer, a signal is durable once the server
 * has it, and waiting for the ledger's workflow task is what a local activity must not do (it
 * holds a workflow-task slot of the worker that also serves the ledger). They are grouped the same
 * way: each signal is a transaction on the ledger's execution, one after another. Only reserve
 * waits for the ledger; at most `maxWaitingReservations` of this process wait at once, further
 * ones are refused at once with the retryable `QuotaLedgerBusy`, so the workflow retries after a
 * timer instead of holding a slot the ledger may need.
 */
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { quotaLedgerWorkflow } from '../workflows/quota-ledger';
import {
  MAX_LEDGER_BATCH,
  quotaLedgerWorkflowId,
  reservationQuery,
  reserveBatchUpdate,
  settleSignal,
  usageQuery,
  type Settlements,
  type ReservationStatus,
  type ReserveOutcome,
  type ReserveRequest,
} from '../workflows/quota-ledger';
import { quotaLimitFor, type QuotaLedger, type QuotaLimits, type QuotaUsage } from './ledger';

/** Retryable failure type of a reservation refused because too many already wait for the ledger. */
export const QUOTA_LEDGER_BUSY = 'QuotaLedgerBusy';

export interface TemporalQuotaLedgerOptions {
  client: Client;
  /** Task queue the ledger workflows run on (the upload worker's queue). */
  taskQueue: string;
  limits: QuotaLimits;
  /**
   * How many reservations made through this object may wait for their ledger at once; more fail
   * at once with the retryable {@link QUOTA_LEDGER_BUSY}. The upload worker's reservations run as
   * local activities, which keep their workflow task (and its slot) while they wait: keep this
   * below the worker's workflow-task slots, so the ledger's own workflow task always finds one
   * (`createUploadWorker` sets half of them).
   * @default no limit
   */
  maxWaitingReservations?: number;
}

/**
 * Group commit: items submitted while a send is in flight wait and leave together in the next one,
 * so one sender has at most one request in flight and nobody waits for more than the one before.
 */
class GroupCommit<Item, Result> {
  private waiting: { item: Item; resolve: (result: Result) => void; reject: (error: unknown) => void }[] = [];
  private inFlight = false;

  constructor(
    /** Sends up to {@link MAX_LEDGER_BATCH} items; resolves with one result per item, in order. */
    private readonly send: (items: Item[]) => Promise<Result[]>,
    /** Called when nothing waits or is in flight any more (to forget this queue). */
    private readonly onIdle: () => void,
  ) {}

  submit(item: Item): Promise<Result> {
    const result = new Promise<Result>((resolve, reject) => this.waiting.push({ item, resolve, reject }));
    // On the next microtask, so that items submitted in the same tick leave together.
    if (!this.inFlight) queueMicrotask(() => this.sendNext());
    return result;
  }

  private sendNext(): void {
    if (this.inFlight || this.waiting.length === 0) return;
    const batch = this.waiting.splice(0, MAX_LEDGER_BATCH);
    this.inFlight = true;
    this.send(batch.map((w) => w.item))
      .then(
        (results) => batch.forEach((w, i) => w.resolve(results[i]!)),
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        this.inFlight = false;
        if (this.waiting.length > 0) this.sendNext();
        else this.onIdle();
      });
  }
}

type Settlement = { kind: 'commit' | 'release'; uploadId: string } | { kind: 'shrink' | 'free'; uploadId: string; bytes: number };

/** The quota ledger kept by one workflow per tenant (`quotaLedgerWorkflow`), on the worker's task queue. */
export class TemporalQuotaLedger implements QuotaLedger {
  private readonly reservations = new Map<string, GroupCommit<ReserveRequest, ReserveOutcome>>();
  private readonly settlements = new Map<string, GroupCommit<Settlement, void>>();
  private readonly maxWaiting: number;
  private waitingNow = 0;

  constructor(private readonly options: TemporalQuotaLedgerOptions) {
    this.maxWaiting = options.maxWaitingReservations ?? Infinity;
    if (this.maxWaiting !== Infinity && (!Number.isSafeInteger(this.maxWaiting) || this.maxWaiting < 1)) {
      throw new RangeError(`maxWaitingReservations must be a whole number ≥ 1, got ${options.maxWaitingReservations}`);
    }
  }

  /**
   * Reserves space; joins the tenant's next batch.
   * @throws ApplicationFailure `QuotaExceeded` or `ReservationSettled` (non-retryable), `QuotaLedgerBusy` (retryable)
   */
  async reserve({
    tenant,
    uploadId,
    bytes,
    wakeWorkflowId,
  }: {
    tenant: string;
    uploadId: string;
    bytes: number;
    wakeWorkflowId?: string;
  }): Promise<QuotaUsage> {
    if (this.waitingNow >= this.maxWaiting) {
      throw ApplicationFailure.retryable(
        `${this.waitingNow} reservations of this worker already wait for their quota ledger (at most ${this.maxWaiting}); ` +
          `upload ${uploadId} of tenant "${tenant}" retries later, so that the ledger's workflow task finds a free slot`,
        QUOTA_LEDGER_BUSY,
      );
    }
    this.waitingNow++;
    try {
      const queue = queueOf(this.reservations, tenant, (requests) => this.reserveBatch(tenant, requests));
      const outcome = await queue.submit({
        uploadId,
        bytes,
        limitBytes: quotaLimitFor(this.options.limits, tenant),
        ...(wakeWorkflowId ? { wakeWorkflowId } : {}),
      });
      if (!outcome) throw ApplicationFailure.retryable(`the quota ledger returned no outcome for upload ${uploadId}`, 'QuotaLedgerError');
      if (outcome.ok) return outcome.usage;
      const { type, message, nonRetryable, details } = outcome.failure;
      throw ApplicationFailure.create({ type, message, nonRetryable, ...(details ? { details } : {}) });
    } finally {
      this.waitingNow--;
    }
  }

  /** Releases a reservation: durable once this resolves; the ledger applies it in order with later requests. */
  release({ tenant, uploadId }: { tenant: string; uploadId: string }): Promise<void> {
    return queueOf(this.settlements, tenant, (items) => this.settle(tenant, items)).submit({ kind: 'release', uploadId });
  }

  /** Lowers a reservation: durable once this resolves; the ledger applies it before commits sent with or after it. */
  shrink({ tenant, uploadId, bytes }: { tenant: string; uploadId: string; bytes: number }): Promise<void> {
    return queueOf(this.settlements, tenant, (items) => this.settle(tenant, items)).submit({ kind: 'shrink', uploadId, bytes });
  }

  /** Commits a reservation: durable once this resolves; the ledger applies it in order with later requests. */
  commit({ tenant, uploadId }: { tenant: string; uploadId: string }): Promise<void> {
    return queueOf(this.settlements, tenant, (items) => this.settle(tenant, items)).submit({ kind: 'commit', uploadId });
  }

  /** Gives back the bytes of a deleted object's upload: durable once this resolves; once per upload id. */
  free({ tenant, uploadId, bytes }: { tenant: string; uploadId: string; bytes: number }): Promise<void> {
    return queueOf(this.settlements, tenant, (items) => this.settle(tenant, items)).submit({ kind: 'free', uploadId, bytes });
  }

  /** The tenant's usage now. */
  async usage(tenant: string): Promise<QuotaUsage> {
    try {
      return await this.options.client.workflow.getHandle(quotaLedgerWorkflowId(tenant)).query(usageQuery);
    } catch (err) {
      if (err instanceof Error && err.name === 'WorkflowNotFoundError') return { tenant, usedBytes: 0, reservedBytes: 0, reservations: 0 };
      throw err;
    }
  }

  /** Where one upload stands in the tenant's ledger (for audits and the fault-injection suite's invariants). */
  async reservation(tenant: string, uploadId: string): Promise<ReservationStatus> {
    try {
      return await this.options.client.workflow.getHandle(quotaLedgerWorkflowId(tenant)).query(reservationQuery, uploadId);
    } catch (err) {
      if (err instanceof Error && err.name === 'WorkflowNotFoundError') return { status: 'unknown' };
      throw err;
    }
  }

  private async reserveBatch(tenant: string, requests: ReserveRequest[]): Promise<ReserveOutcome[]> {
    const workflowId = quotaLedgerWorkflowId(tenant);
    try {
      try {
        // The ledger usually runs: a plain update is cheaper for the client than Update-with-Start.
        return await this.options.client.workflow
          .getHandle<typeof quotaLedgerWorkflow>(workflowId)
          .executeUpdate(reserveBatchUpdate, { args: [requests] });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        return await this.options.client.workflow.executeUpdateWithStart(reserveBatchUpdate, {
          args: [requests],
          startWorkflowOperation: new WithStartWorkflowOperation<typeof quotaLedgerWorkflow>('quotaLedgerWorkflow', {
            workflowId,
            taskQueue: this.options.taskQueue,
            args: [{ tenant, usedBytes: 0, reservations: {}, settled: {} }],
            workflowIdConflictPolicy: 'USE_EXISTING',
            staticSummary: `quota ledger of tenant ${tenant}`,
          }),
        });
      }
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
        // A ledger still running the code of an earlier version knows no batches: retry until it moved on.
        if (/No registered handler for update/.test(err.cause.message)) {
          throw ApplicationFailure.retryable(
            `the quota ledger of tenant "${tenant}" runs an earlier version without batched reservations: ${err.cause.message}`,
            'QuotaLedgerOutdated',
          );
        }
        throw err.cause;
      }
      throw err;
    }
  }

  private async settle(tenant: string, items: Settlement[]): Promise<void[]> {
    const settlements: Settlements = {
      commit: items.filter((i) => i.kind === 'commit').map((i) => i.uploadId),
      release: items.filter((i) => i.kind === 'release').map((i) => i.uploadId),
      ...sized(items, 'shrink'),
      ...sized(items, 'free'),
    };
    try {
      await this.options.client.workflow.getHandle(quotaLedgerWorkflowId(tenant)).signal(settleSignal, settlements);
    } catch (err) {
      // No ledger (never created, or ended): it holds no reservation, so there is nothing to settle.
      if (!isNotFound(err)) throw err;
    }
    return items.map(() => undefined);
  }
}

/** The settlements of `kind` as the signal carries them; no field at all when there are none (ledgers of earlier versions). */
function sized(items: Settlement[], kind: 'shrink' | 'free'): Partial<Record<'shrink' | 'free', { uploadId: string; bytes: number }[]>> {
  const picked = items.flatMap((i) => (i.kind === kind ? [{ uploadId: i.uploadId, bytes: i.bytes }] : []));
  return picked.length ? { [kind]: picked } : {};
}

function queueOf<Item, Result>(
  queues: Map<string, GroupCommit<Item, Result>>,
  tenant: string,
  send: (items: Item[]) => Promise<Result[]>,
): GroupCommit<Item, Result> {
  let queue = queues.get(tenant);
  if (!queue) {
    const created = new GroupCommit(send, () => {
      if (queues.get(tenant) === created) queues.delete(tenant);
    });
    queues.set(tenant, (queue = created));
  }
  return queue;
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && err.name === 'WorkflowNotFoundError';
}
