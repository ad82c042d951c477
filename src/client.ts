/**
 * The application API: start an upload, get a handle, await its result, read its progress,
 * cancel it, list uploads.
 *
 * Requests are validated here first, so a bad request fails with {@link InvalidUploadRequestError}
 * before any workflow exists. Starting the same upload (tenant + upload id) again returns the
 * running or completed upload instead of a second one; only a failed or cancelled upload may be
 * started again under the same id. Progress combines the workflow's own counters (finished
 * batches) with the heartbeat of the batch in flight, so it is current to about a second.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type WorkflowExecutionInfo, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { UploadPartsProgress } from './activities/upload-parts';
import type { SagaFailureReport, SagaState } from './saga/workflow';
import { describeSource, normalizeUploadRequest, uploadWorkflowId, type UploadRequest } from './upload/request';
import type { UploadOutcomeKind, UploadProgress, UploadResult } from './upload/outcome';
import type { uploadWorkflow } from './workflows/upload-workflow';
import { UploadBucket, UploadKey, UploadOutcome, UploadPhase, UploadTenant } from './workflows/search-attributes';

export interface UploadClientOptions {
  client: Client;
  /** @default 'upload-saga' */
  taskQueue?: string;
}

/** Progress as a person wants it: bytes and parts done, including the batch in flight. */
export interface LiveProgress extends UploadProgress {
  /** Bytes present in S3, including the running batch. */
  bytesDone: number;
  partsDone: number;
}

/** Thrown by {@link UploadHandle.result} when the upload did not complete. */
export class UploadFailedError extends Error {
  override readonly name = 'UploadFailedError';
  constructor(
    message: string,
    readonly outcome: 'compensated' | 'cancelled' | 'failed',
    /** The saga's report: failed step, cause, each compensation's outcome. */
    readonly report: SagaFailureReport | undefined,
    override readonly cause: unknown,
  ) {
    super(message);
  }
}

export class UploadHandle {
  constructor(
    readonly workflowId: string,
    private readonly handle: WorkflowHandle<typeof uploadWorkflow>,
  ) {}

  /** Waits for the upload to end. @throws UploadFailedError with the saga's report. */
  async result(): Promise<UploadResult> {
    try {
      return await this.handle.result();
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        const cause = err.cause;
        let report = (cause instanceof ApplicationFailure ? cause.details?.[0] : undefined) as SagaFailureReport | undefined;
        // A cancellation is recorded without details; the saga's query still has the report.
        if (cause instanceof CancelledFailure) report = (await this.handle.query<SagaState>('sagaState').catch(() => undefined))?.failure;
        const outcome = cause instanceof CancelledFailure ? 'cancelled' : report?.compensations.every((c) => c.status === 'compensated') ? 'compensated' : 'failed';
        throw new UploadFailedError(cause?.message ?? err.message, outcome, report, err);
      }
      throw err;
    }
  }

  /** Current progress, from the workflow and the heartbeat of the running batch. */
  async progress(): Promise<LiveProgress> {
    const [progress, description] = await Promise.all([this.handle.query<UploadProgress>('progress'), this.handle.describe()]);
    let bytesDone = progress.bytesUploaded;
    let partsDone = progress.partsUploaded;
    for (const pending of description.raw.pendingActivities ?? []) {
      if (pending.activityType?.name !== 'uploadParts' || !pending.heartbeatDetails?.payloads?.length) continue;
      const details = this.handle.client.options.loadedDataConverter.payloadConverter.fromPayload<UploadPartsProgress>(pending.heartbeatDetails.payloads[0]!);
      bytesDone += details.bytesDone;
      partsDone += details.partsDone;
    }
    return { ...progress, bytesDone, partsDone };
  }

  /** Requests cancellation: the saga compensates whatever was done before the merge. */
  async cancel(): Promise<void> {
    await this.handle.cancel();
  }

  /** The raw Temporal handle, for anything else. */
  get workflow(): WorkflowHandle<typeof uploadWorkflow> {
    return this.handle;
  }
}

export interface UploadSummary {
  workflowId: string;
  runId: string;
  status: string;
  tenant?: string;
  bucket?: string;
  key?: string;
  phase?: string;
  outcome?: string;
  startTime: Date;
  closeTime?: Date;
}

export class UploadClient {
  private readonly client: Client;
  private readonly taskQueue: string;

  constructor(options: UploadClientOptions) {
    this.client = options.client;
    this.taskQueue = options.taskQueue ?? 'upload-saga';
  }

  /**
   * Starts an upload, or returns the running one with the same tenant and upload id.
   * @throws InvalidUploadRequestError before anything starts, listing every problem.
   */
  async start(request: UploadRequest): Promise<UploadHandle> {
    const normalized = normalizeUploadRequest(request);
    const workflowId = uploadWorkflowId(normalized.tenant, normalized.uploadId);
    const { bucket, key } = normalized.destination;
    const started = this.client.workflow.start<typeof uploadWorkflow>('uploadWorkflow', {
      workflowId,
      taskQueue: this.taskQueue,
      args: [normalized],
      // Running: attach to it. Completed: never upload again. Failed or cancelled: may be retried.
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      staticSummary: `upload ${describeSource(normalized.source)} → s3://${bucket}/${key} (tenant ${normalized.tenant})`,
      staticDetails: [
        `**source** ${normalized.source.type} \`${describeSource(normalized.source)}\``,
        `**destination** s3://${bucket}/${key}`,
        `**tenant** ${normalized.tenant} · **upload id** ${normalized.uploadId}`,
        `**parts** ${normalized.partSize} bytes × ${normalized.partConcurrency} in flight · checksum ${normalized.checksumAlgorithm}`,
      ].join('\n\n'),
      memo: { source: `${normalized.source.type}:${describeSource(normalized.source)}`, destination: `s3://${bucket}/${key}` },
      typedSearchAttributes: [
        { key: UploadTenant, value: normalized.tenant },
        { key: UploadBucket, value: bucket },
        { key: UploadKey, value: key },
        { key: UploadPhase, value: 'inspect-source' },
        { key: UploadOutcome, value: 'running' satisfies UploadOutcomeKind },
      ],
    });
    try {
      return new UploadHandle(workflowId, await started);
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return this.getHandle(normalized.tenant, normalized.uploadId);
      throw err;
    }
  }

  /** A handle to an existing upload. */
  getHandle(tenant: string, uploadId: string): UploadHandle {
    const workflowId = uploadWorkflowId(tenant, uploadId);
    return new UploadHandle(workflowId, this.client.workflow.getHandle<typeof uploadWorkflow>(workflowId));
  }

  /** Recent uploads, newest first, optionally of one tenant and/or outcome. */
  async list(filter: { tenant?: string; outcome?: UploadOutcomeKind; limit?: number } = {}): Promise<UploadSummary[]> {
    const clauses = [`WorkflowType = 'uploadWorkflow'`];
    if (filter.tenant) clauses.push(`UploadTenant = '${filter.tenant.replace(/'/g, '')}'`);
    if (filter.outcome) clauses.push(`UploadOutcome = '${filter.outcome}'`);
    const summaries: UploadSummary[] = [];
    for await (const info of this.client.workflow.list({ query: clauses.join(' AND ') })) {
      summaries.push(toSummary(info));
      if (summaries.length >= (filter.limit ?? 20)) break;
    }
    return summaries;
  }
}

function toSummary(info: WorkflowExecutionInfo): UploadSummary {
  const attrs = info.typedSearchAttributes;
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    status: info.status.name,
    startTime: info.startTime,
    ...(info.closeTime ? { closeTime: info.closeTime } : {}),
    ...optional('tenant', attrs.get(UploadTenant)),
    ...optional('bucket', attrs.get(UploadBucket)),
    ...optional('key', attrs.get(UploadKey)),
    ...optional('phase', attrs.get(UploadPhase)),
    ...optional('outcome', attrs.get(UploadOutcome)),
  };
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}
