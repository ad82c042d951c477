/**
 * The embedded {@link QuotaLedger}: reaches each tenant's ledger workflow with Update-with-Start,
 * so the ledger is created on first use and every change is one atomic, durable update.
 */
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { quotaLedgerWorkflow } from '../workflows/quota-ledger';
import {
  commitUpdate,
  quotaLedgerWorkflowId,
  releaseUpdate,
  reserveUpdate,
  usageQuery,
} from '../workflows/quota-ledger';
import { quotaLimitFor, type QuotaLedger, type QuotaLimits, type QuotaUsage } from './ledger';

export interface TemporalQuotaLedgerOptions {
  client: Client;
  /** Task queue the ledger workflows run on (the upload worker's queue). */
  taskQueue: string;
  limits: QuotaLimits;
}

export class TemporalQuotaLedger implements QuotaLedger {
  constructor(private readonly options: TemporalQuotaLedgerOptions) {}

  reserve({ tenant, uploadId, bytes }: { tenant: string; uploadId: string; bytes: number }): Promise<QuotaUsage> {
    return this.update(tenant, reserveUpdate, { uploadId, bytes, limitBytes: quotaLimitFor(this.options.limits, tenant) });
  }

  release({ tenant, uploadId }: { tenant: string; uploadId: string }): Promise<QuotaUsage> {
    return this.update(tenant, releaseUpdate, { uploadId });
  }

  commit({ tenant, uploadId }: { tenant: string; uploadId: string }): Promise<QuotaUsage> {
    return this.update(tenant, commitUpdate, { uploadId });
  }

  async usage(tenant: string): Promise<QuotaUsage> {
    try {
      return await this.options.client.workflow.getHandle(quotaLedgerWorkflowId(tenant)).query(usageQuery);
    } catch (err) {
      if (err instanceof Error && err.name === 'WorkflowNotFoundError') return { tenant, usedBytes: 0, reservedBytes: 0, reservations: 0 };
      throw err;
    }
  }

  private async update<Arg>(tenant: string, update: typeof reserveUpdate | typeof releaseUpdate | typeof commitUpdate, arg: Arg): Promise<QuotaUsage> {
    const startWorkflowOperation = new WithStartWorkflowOperation<typeof quotaLedgerWorkflow>('quotaLedgerWorkflow', {
      workflowId: quotaLedgerWorkflowId(tenant),
      taskQueue: this.options.taskQueue,
      args: [{ tenant, usedBytes: 0, reservations: {}, settled: {} }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: `quota ledger of tenant ${tenant}`,
    });
    try {
      return await this.options.client.workflow.executeUpdateWithStart(update as typeof reserveUpdate, {
        args: [arg as never],
        startWorkflowOperation,
      });
    } catch (err) {
      // Surface the ledger's own failure (e.g. QuotaExceeded) rather than the update wrapper.
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) throw err.cause;
      throw err;
    }
  }
}
