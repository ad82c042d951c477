/**
 * Starting and following batches from application code: {@link BatchClient} and {@link BatchHandle}.
 *
 * ```ts
 * const batches = new BatchClient({ client, taskQueue: 'upload-saga' });
 * const handle = await batches.start({
 *   batchId: 'photos-2026-12', tenant: 'acme',
 *   source: { type: 'directory', path: '/data/photos', include: ['**\/*.jpg'] },
 *   destination: { bucket: 'uploads', prefix: 'photos/' },
 * });
 * console.log(await handle.progress()); // { filesDone, filesTotal, bytesDone, bytesTotal, filesFailed, … }
 * await handle.pause({ reason: 'maintenance' }); // chunks in flight finish, nothing new starts
 * await handle.resume();
 * const result = await handle.result(); // { outcome: 'completed' | 'partial', failures, … } or throws BatchFailedError
 * ```
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type Client,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, TemporalFailure } from '@temporalio/common';
import { InvalidBatchRequestError, normalizeBatchRequest } from './batch/batch-request';
import {
  batchWorkflowId,
  type BatchFileFailure,
  type BatchOutcomeKind,
  type BatchProgress,
  type BatchRequest,
  type BatchResult,
} from './batch/batch-types';
import { sendPauseUpdate } from './pause-refusal';
import { pauseStateQuery, pauseUpdate, resumeUpdate, type PauseRequest, type PauseState } from './upload/pause';
import { UploadBucket, UploadOutcome, UploadPhase, UploadSizeBytes, UploadTenant } from './upload/search-attributes';
import type { batchWorkflow } from './workflows/batch-workflow';
import { MigrationHandle, type MigrationSummary } from './migration-client';
import { InvalidMigrationRequestError, normalizeMigrationRequest } from './migration/migration-request';
import { migrationWorkflowId, type MigrationOutcomeKind, type MigrationRequest } from './migration/migration-types';
import type { migrationWorkflow } from './workflows/migration-workflow';

/** Options of {@link BatchClient}. */
export interface BatchClientOptions {
  client: Client;
  /** @default 'upload-saga' */
  taskQueue?: string;
}

/** Thrown by {@link BatchHandle.result} when a batch failed, was undone or was cancelled. */
export class BatchFailedError extends Error {
  override readonly name = 'BatchFailedError';
  constructor(
    readonly workflowId: string,
    /** `failed` (independent: stopped; stored files stay), `compensated` (atomic: undone), `cancelled`. */
    readonly outcome: 'failed' | 'compensated' | 'cancelled',
    /** The failure type (`QuotaExceeded`, `BatchEmpty`, `S3.<Code>`, …). */
    readonly type: string | undefined,
    message: string,
    /** Counts when it stopped, and the failures listed so far. */
    readonly summary: (BatchProgress & { failures: BatchFileFailure[] }) | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A running or finished batch. */
export class BatchHandle {
  constructor(
    readonly workflowId: string,
    /** The workflow handle (follows the batch's continue-as-new runs). */
    readonly workflow: WorkflowHandle<typeof batchWorkflow>,
  ) {}

  /** Files and bytes done of the totals, failures so far, phase and outcome. */
  progress(): Promise<BatchProgress> {
    return this.workflow.query<BatchProgress>('batchProgress');
  }

  /**
   * Waits for the batch to end.
   * @throws BatchFailedError when it failed, was undone or was cancelled
   */
  async result(): Promise<BatchResult> {
    try {
      return await this.workflow.result();
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      // The batch's own failure, or the failure of the step that ended it (inspect-batch, before any byte moved).
      let cause: unknown = err.cause;
      while (
        cause instanceof TemporalFailure &&
        !(cause instanceof ApplicationFailure) &&
        !(cause instanceof CancelledFailure) &&
        cause.cause
      )
        cause = cause.cause;
      if (cause instanceof CancelledFailure) {
        throw new BatchFailedError(this.workflowId, 'cancelled', 'Cancelled', `batch ${this.workflowId} was cancelled`, undefined, {
          cause: err,
        });
      }
      const failure = cause instanceof ApplicationFailure ? cause : undefined;
      const summary = failure?.details?.[0] as (BatchProgress & { failures: BatchFileFailure[] }) | undefined;
      const outcome = summary?.outcome === 'compensated' ? 'compensated' : 'failed';
      throw new BatchFailedError(this.workflowId, outcome, failure?.type ?? undefined, failure?.message ?? err.message, summary, {
        cause: err,
      });
    }
  }

  /** Asks the batch to stop: it undoes what is in flight (atomic: everything) and ends `cancelled`. */
  async cancel(): Promise<void> {
    await this.workflow.cancel();
  }

  /**
   * Pauses the batch: resolves once its chunks in flight have finished and it starts nothing new;
   * its running child uploads are told to pause (each lets its parts in flight finish). Reservations
   * stay held and stored files stay; the pause survives worker restarts and continue-as-new.
   * Pausing a paused batch is a no-op.
   * @throws PauseRefusedError when the batch has stored every file and is finishing, is being undone or has ended
   */
  async pause(request: PauseRequest = {}): Promise<PauseState> {
    return this.pauseUpdate(() => this.workflow.executeUpdate(pauseUpdate, { args: [request] }), 'pause');
  }

  /**
   * Resumes a paused batch and its paused children: files already stored are not sent again.
   * @throws PauseRefusedError when the batch is not paused (or has ended)
   */
  async resume(): Promise<PauseState> {
    return this.pauseUpdate(() => this.workflow.executeUpdate(resumeUpdate, { args: [] }), 'resume');
  }

  /** Whether the batch is paused now. */
  pauseState(): Promise<PauseState> {
    return this.workflow.query(pauseStateQuery);
  }

  private pauseUpdate(send: () => Promise<PauseState>, what: 'pause' | 'resume'): Promise<PauseState> {
    return sendPauseUpdate(this.workflow, this.workflowId, what, 'batch', send);
  }
}

/** One batch as listed by {@link BatchClient.list}. */
export interface BatchSummary {
  workflowId: string;
  runId: string;
  /** Temporal's status of the latest run (a batch that continued as new is listed once, by its latest run). */
  status: string;
  batchId: string;
  tenant?: string;
  bucket?: string;
  /** The destination prefix (batches started before it was recorded have none). */
  prefix?: string;
  /** inspect, upload, paused, compensating, done. */
  phase?: string;
  outcome?: string;
  /** Bytes of the whole batch, once inspected. */
  bytesTotal?: number;
  startTime: Date;
  closeTime?: Date;
}

/** Starts batches and finds them by tenant and batch id. */
export class BatchClient {
  private readonly client: Client;
  private readonly taskQueue: string;

  constructor(options: BatchClientOptions) {
    this.client = options.client;
    this.taskQueue = options.taskQueue ?? 'upload-saga';
  }

  /**
   * Starts a batch, or returns the running one with the same tenant and batch id.
   * @throws InvalidBatchRequestError before anything starts, listing every problem
   */
  async start(request: BatchRequest): Promise<BatchHandle> {
    const normalized = normalizeBatchRequest(request);
    const workflowId = batchWorkflowId(normalized.tenant, normalized.batchId);
    const { bucket, prefix } = normalized.destination;
    const from =
      normalized.source.type === 'list' ? `${normalized.source.paths.length} files` : `${normalized.source.type} ${normalized.source.path}`;
    try {
      const handle = await this.client.workflow.start<typeof batchWorkflow>('batchWorkflow', {
        workflowId,
        taskQueue: this.taskQueue,
        args: [normalized],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
        staticSummary: `batch ${from} → s3://${bucket}/${prefix} (${normalized.mode}, tenant ${normalized.tenant})`,
        staticDetails: [
          `**source** ${from}`,
          `**destination** s3://${bucket}/${prefix}`,
          `**tenant** ${normalized.tenant} · **batch id** ${normalized.batchId} · **mode** ${normalized.mode}`,
          `**chunks** ${normalized.filesPerChunk} files × ${normalized.chunkConcurrency} in flight · files up to ${normalized.partSize} bytes in one PutObject`,
        ].join('\n\n'),
        memo: { prefix },
        typedSearchAttributes: [
          { key: UploadTenant, value: normalized.tenant },
          { key: UploadBucket, value: bucket },
          { key: UploadPhase, value: 'inspect' },
          { key: UploadOutcome, value: 'running' },
        ],
      });
      return new BatchHandle(workflowId, handle);
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return this.getHandle(normalized.tenant, normalized.batchId);
      throw err;
    }
  }

  /**
   * Starts a bucket-to-bucket migration (docs/explanation/migration.md), or returns the running one
   * with the same tenant and migration id. A finished one started again runs again: it skips every
   * object already copied.
   * @throws InvalidMigrationRequestError before anything starts, listing every problem
   */
  async migrate(request: MigrationRequest): Promise<MigrationHandle> {
    const normalized = normalizeMigrationRequest(request);
    const workflowId = migrationWorkflowId(normalized.tenant, normalized.migrationId);
    const { source, destination } = normalized;
    const from = `s3://${source.bucket}/${source.prefix}${source.profile ? ` (profile ${source.profile})` : ''}`;
    try {
      const handle = await this.client.workflow.start<typeof migrationWorkflow>('migrationWorkflow', {
        workflowId,
        taskQueue: this.taskQueue,
        args: [normalized],
        workflowIdConflictPolicy: 'USE_EXISTING',
        staticSummary: `migration ${from} → s3://${destination.bucket}/${destination.prefix} (tenant ${normalized.tenant})`,
        // For listings: visibility answers the memo with each workflow, the search attributes hold no prefixes.
        memo: {
          source: `s3://${source.bucket}/${source.prefix}`,
          prefix: destination.prefix,
          ...(source.profile ? { profile: source.profile } : {}),
        },
        typedSearchAttributes: [
          { key: UploadTenant, value: normalized.tenant },
          { key: UploadBucket, value: destination.bucket },
          { key: UploadPhase, value: 'inspect' },
          { key: UploadOutcome, value: 'running' },
        ],
      });
      return new MigrationHandle(workflowId, handle);
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return this.getMigrationHandle(normalized.tenant, normalized.migrationId);
      throw err;
    }
  }

  /** A handle to an existing migration. */
  getMigrationHandle(tenant: string, migrationId: string): MigrationHandle {
    const workflowId = migrationWorkflowId(tenant, migrationId);
    return new MigrationHandle(workflowId, this.client.workflow.getHandle<typeof migrationWorkflow>(workflowId));
  }

  /** A handle to an existing batch. */
  getHandle(tenant: string, batchId: string): BatchHandle {
    const workflowId = batchWorkflowId(tenant, batchId);
    return new BatchHandle(workflowId, this.client.workflow.getHandle<typeof batchWorkflow>(workflowId));
  }

  /**
   * Recent batches, newest first, optionally of one tenant and/or outcome (from Temporal's
   * visibility store: eventually consistent). A batch that continued as new is listed once.
   */
  async list(filter: { tenant?: string; outcome?: BatchOutcomeKind; limit?: number } = {}): Promise<BatchSummary[]> {
    const summaries: BatchSummary[] = [];
    for await (const info of this.latestRuns('batchWorkflow', filter)) {
      summaries.push(toBatchSummary(info));
      if (summaries.length >= (filter.limit ?? 20)) break;
    }
    return summaries;
  }

  /**
   * Recent migrations, newest first, optionally of one tenant and/or outcome (from Temporal's
   * visibility store: eventually consistent). A migration that continued as new is listed once.
   */
  async listMigrations(filter: { tenant?: string; outcome?: MigrationOutcomeKind; limit?: number } = {}): Promise<MigrationSummary[]> {
    const summaries: MigrationSummary[] = [];
    for await (const info of this.latestRuns('migrationWorkflow', filter)) {
      summaries.push(toMigrationSummary(info));
      if (summaries.length >= (filter.limit ?? 20)) break;
    }
    return summaries;
  }

  /** The latest run of each workflow of this type and filter, newest first. */
  private async *latestRuns(type: string, filter: { tenant?: string; outcome?: string }): AsyncGenerator<WorkflowExecutionInfo> {
    const quote = (value: string) => `'${value.replace(/[\\']/g, '')}'`;
    const clauses = [`WorkflowType = '${type}'`];
    if (filter.tenant) clauses.push(`UploadTenant = ${quote(filter.tenant)}`);
    if (filter.outcome) clauses.push(`UploadOutcome = ${quote(filter.outcome)}`);
    const seen = new Set<string>();
    for await (const info of this.client.workflow.list({ query: clauses.join(' AND ') })) {
      // Each run is a visibility record: the newest comes first, the older runs are skipped.
      if (seen.has(info.workflowId)) continue;
      seen.add(info.workflowId);
      yield info;
    }
  }
}

const optional = <K extends string, V>(key: K, value: V | undefined) => (value === undefined ? {} : ({ [key]: value } as Record<K, V>));
const memoString = (info: WorkflowExecutionInfo, key: string) => {
  const value = info.memo?.[key];
  return typeof value === 'string' ? value : undefined;
};

/** What a batch's and a migration's summaries share: the run, its id after `<kind>:<tenant>:`, and the search attributes. */
function summaryOf(info: WorkflowExecutionInfo) {
  const attrs = info.typedSearchAttributes;
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    status: info.status.name,
    id: info.workflowId.split(':').slice(2).join(':'),
    startTime: info.startTime,
    ...(info.closeTime ? { closeTime: info.closeTime } : {}),
    ...optional('tenant', attrs.get(UploadTenant)),
    ...optional('bucket', attrs.get(UploadBucket)),
    ...optional('prefix', memoString(info, 'prefix')),
    ...optional('phase', attrs.get(UploadPhase)),
    ...optional('outcome', attrs.get(UploadOutcome)),
    ...optional('bytesTotal', attrs.get(UploadSizeBytes)),
  };
}

function toMigrationSummary(info: WorkflowExecutionInfo): MigrationSummary {
  const { id, ...common } = summaryOf(info);
  return {
    ...common,
    migrationId: id,
    ...optional('source', memoString(info, 'source')),
    ...optional('profile', memoString(info, 'profile')),
  };
}

function toBatchSummary(info: WorkflowExecutionInfo): BatchSummary {
  const { id, ...common } = summaryOf(info);
  return { ...common, batchId: id };
}

export { InvalidBatchRequestError, InvalidMigrationRequestError };
