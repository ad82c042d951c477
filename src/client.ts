/**
 * The application API: start an upload, get a handle, await its result, read its progress,
 * cancel it, list uploads.
 *
 * Requests are validated here first, so a bad request fails with {@link InvalidUploadRequestError}
 * before any workflow exists. Starting the same upload (tenant + upload id) again returns the
 * running or completed upload instead of a second one; only a failed or cancelled upload may be
 * started again under the same id. Progress combines the workflow's own counters (finished
 * batches) with the heartbeat of the batch in flight, so it is current to about a second.
 *
 * Tenants: a client constructed with `tenant` acts for that tenant only — it starts, finds,
 * cancels and lists that tenant's uploads and refuses any other with {@link TenantAccessDeniedError}.
 * Workflow ids are `upload:<tenant>:<uploadId>` with both parts validated (no `:` inside), so an
 * id never names another tenant's upload, and a bound handle also checks the workflow's
 * `UploadTenant` search attribute before it reads, awaits or cancels the upload (a workflow
 * started around the client under a crafted id is refused too). A client without `tenant` is the
 * operator's view of all tenants.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { UploadPartsProgress } from './activities/upload-parts';
import type { SagaFailureReport, SagaState } from './saga/workflow';
import { InvalidDeleteRequestError, InvalidUploadRequestError } from './upload/errors';
import { findDeleteRequestProblems, type DeleteRequest, type DeleteResult } from './upload/delete-request';
import { startDeleteWorkflow } from './delete-start';
import { describeSource, findUploadIdProblems, normalizeUploadRequest, uploadWorkflowId, type UploadRequest } from './upload/request';
import type { UploadOutcomeKind, UploadProgress, UploadResult } from './upload/outcome';
import type { uploadWorkflow } from './workflows/upload-workflow';
import { PAUSE_REFUSED, pauseStateQuery, pauseUpdate, resumeUpdate, type PauseRequest, type PauseState } from './upload/pause';
import { tenantAndObjectAttributes, UploadBucket, UploadKey, UploadOutcome, UploadPhase, UploadTenant } from './upload/search-attributes';

/** Options of {@link UploadClient}. */
export interface UploadClientOptions {
  client: Client;
  /** @default 'upload-saga' */
  taskQueue?: string;
  /**
   * Set the `UploadBucket` and `UploadKey` search attributes. Search attributes are never encrypted
   * (the server indexes them), so a client whose data converter has a payload codec leaves the
   * destination out of them: object keys often carry names people consider private.
   * @default true without a payload codec, false with one
   */
  indexDestination?: boolean;
  /**
   * Bind the client to one tenant: it starts, finds, cancels and lists only that tenant's uploads,
   * and throws {@link TenantAccessDeniedError} for any other (for code acting on a tenant's
   * behalf, such as an HTTP gateway). @default undefined (every tenant: an operator's view)
   */
  tenant?: string;
}

/** Thrown by a tenant-bound {@link UploadClient} asked about another tenant's upload. */
export class TenantAccessDeniedError extends Error {
  override readonly name = 'TenantAccessDeniedError';
  constructor(
    /** The tenant the client is bound to. */
    readonly tenant: string,
    message: string,
  ) {
    super(message);
  }
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

/**
 * Thrown by {@link UploadHandle.pause} and {@link UploadHandle.resume} when the upload cannot
 * follow: pause after its point of no return (the merge) or once it ended, resume when it is not
 * paused. Nothing was changed.
 */
export class PauseRefusedError extends Error {
  override readonly name = 'PauseRefusedError';
}

/** Thrown by {@link UploadClient.delete} when the delete saga failed; nothing was deleted unless its pivot ran. */
export class DeleteFailedError extends Error {
  override readonly name = 'DeleteFailedError';
  constructor(
    message: string,
    /** The failure type, e.g. `ObjectNotAllowed`, `InvalidDeleteRequest`, `S3.AccessDenied`. */
    readonly type: string | undefined,
    override readonly cause: unknown,
  ) {
    super(message);
  }
}

/** The innermost application failure of a failed workflow: the step's own cause, not the saga's wrapper. */
function failureCause(err: WorkflowFailedError): { type: string | undefined; message: string } {
  let found: { type: string | undefined; message: string } = { type: undefined, message: err.message };
  for (let cause: unknown = err.cause; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof ApplicationFailure) found = { type: cause.type ?? undefined, message: cause.message };
  }
  return found;
}

/** A started upload: await its result, read its progress and state, pause, resume or cancel it. */
export class UploadHandle {
  private verified: Promise<WorkflowExecutionDescription> | undefined;

  constructor(
    readonly workflowId: string,
    private readonly handle: WorkflowHandle<typeof uploadWorkflow>,
    /** When set, every call first checks that the workflow's `UploadTenant` is this tenant. */
    readonly tenant?: string,
  ) {}

  /** Describes the workflow, and for a tenant-bound handle checks that it is that tenant's upload. */
  private async describeChecked(): Promise<WorkflowExecutionDescription> {
    if (this.tenant === undefined) return this.handle.describe();
    const tenant = this.tenant;
    this.verified ??= this.handle.describe().then((description) => {
      const owner = description.typedSearchAttributes.get(UploadTenant);
      if (owner !== tenant) {
        throw new TenantAccessDeniedError(
          tenant,
          `workflow ${this.workflowId} is not an upload of tenant ${tenant} (its UploadTenant is ${owner === undefined ? 'not set' : `"${owner}"`})`,
        );
      }
      return description;
    });
    // Only a passed check is kept: a network error is retried by the next call.
    return this.verified.catch((err: unknown) => {
      if (!(err instanceof TenantAccessDeniedError)) this.verified = undefined;
      throw err;
    });
  }

  /** Waits for the upload to end. @throws UploadFailedError with the saga's report. */
  async result(): Promise<UploadResult> {
    if (this.tenant !== undefined) await this.describeChecked();
    try {
      return await this.handle.result();
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        const cause = err.cause;
        let report = (cause instanceof ApplicationFailure ? cause.details?.[0] : undefined) as SagaFailureReport | undefined;
        // A cancellation is recorded without details; the saga's query still has the report.
        if (cause instanceof CancelledFailure) report = (await this.handle.query<SagaState>('sagaState').catch(() => undefined))?.failure;
        const outcome =
          cause instanceof CancelledFailure
            ? 'cancelled'
            : report?.compensations.every((c) => c.status === 'compensated')
              ? 'compensated'
              : 'failed';
        throw new UploadFailedError(cause?.message ?? err.message, outcome, report, err);
      }
      throw err;
    }
  }

  /** Current progress, from the workflow and the heartbeat of the running batch. */
  async progress(): Promise<LiveProgress> {
    const description = await this.describeChecked();
    const progress = await this.handle.query<UploadProgress>('progress');
    let bytesDone = progress.bytesUploaded;
    let partsDone = progress.partsUploaded;
    const { payloadCodecs, payloadConverter } = this.handle.client.options.loadedDataConverter;
    for (const pending of description.raw.pendingActivities ?? []) {
      if (pending.activityType?.name !== 'uploadParts' || !pending.heartbeatDetails?.payloads?.length) continue;
      // Raw heartbeat details are as stored: decode them (decrypt, with encryption on) before converting.
      let payloads = pending.heartbeatDetails.payloads;
      for (const codec of [...payloadCodecs].reverse()) payloads = await codec.decode(payloads);
      const details = payloadConverter.fromPayload<UploadPartsProgress>(payloads[0]!);
      bytesDone += details.bytesDone;
      partsDone += details.partsDone;
    }
    return { ...progress, bytesDone, partsDone };
  }

  /**
   * Pauses the upload: resolves once the parts in flight have finished and nothing of it runs. Its
   * reservation stays held and the parts already stored stay; a pause survives worker restarts. Pausing a
   * paused upload is a no-op.
   * @throws PauseRefusedError when the upload is past its merge or has ended
   */
  async pause(request: PauseRequest = {}): Promise<PauseState> {
    if (this.tenant !== undefined) await this.describeChecked();
    return this.pauseUpdate(() => this.handle.executeUpdate(pauseUpdate, { args: [request] }), 'pause');
  }

  /**
   * Resumes a paused upload: parts already stored are not sent again.
   * @throws PauseRefusedError when the upload is not paused (or has ended)
   */
  async resume(): Promise<PauseState> {
    if (this.tenant !== undefined) await this.describeChecked();
    return this.pauseUpdate(() => this.handle.executeUpdate(resumeUpdate, { args: [] }), 'resume');
  }

  /** Whether the upload is paused now. */
  async pauseState(): Promise<PauseState> {
    if (this.tenant !== undefined) await this.describeChecked();
    return this.handle.query(pauseStateQuery);
  }

  private async pauseUpdate(send: () => Promise<PauseState>, what: 'pause' | 'resume'): Promise<PauseState> {
    try {
      return await send();
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.type === PAUSE_REFUSED) {
        throw new PauseRefusedError(err.cause.message);
      }
      // An ended workflow takes no Update: say so in the same terms.
      if (err instanceof Error && (err.name === 'WorkflowNotFoundError' || /already completed/i.test(err.message))) {
        const { status } = await this.handle.describe().catch(() => ({ status: { name: 'UNKNOWN' } }));
        if (status.name !== 'RUNNING') throw new PauseRefusedError(`cannot ${what}: ${this.workflowId} has ended (${status.name})`);
      }
      throw err;
    }
  }

  /** Requests cancellation: the saga compensates whatever was done before the merge. */
  async cancel(): Promise<void> {
    if (this.tenant !== undefined) await this.describeChecked();
    await this.handle.cancel();
  }

  /** The raw Temporal handle, for anything else (no tenant check). */
  get workflow(): WorkflowHandle<typeof uploadWorkflow> {
    return this.handle;
  }
}

/** One upload as listed by {@link UploadClient.list}. */
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

/** Starts, finds, cancels and lists uploads (workflows) through a Temporal client. */
export class UploadClient {
  private readonly client: Client;
  private readonly taskQueue: string;
  private readonly indexDestination: boolean;
  private readonly tenant: string | undefined;

  /** @throws InvalidUploadRequestError when `options.tenant` is not a valid tenant name */
  constructor(options: UploadClientOptions) {
    if (options.tenant !== undefined) {
      const problems = findUploadIdProblems({ tenant: options.tenant });
      if (problems.length) throw new InvalidUploadRequestError(problems);
    }
    this.tenant = options.tenant;
    this.client = options.client;
    this.taskQueue = options.taskQueue ?? 'upload-saga';
    this.indexDestination = options.indexDestination ?? this.client.options.loadedDataConverter.payloadCodecs.length === 0;
  }

  /**
   * Starts an upload, or returns the running one with the same tenant and upload id.
   * @throws InvalidUploadRequestError before anything starts, listing every problem.
   * @throws TenantAccessDeniedError when the client is bound to another tenant
   */
  async start(request: UploadRequest): Promise<UploadHandle> {
    const normalized = normalizeUploadRequest(request);
    this.checkTenant(normalized.tenant, `start an upload for tenant ${normalized.tenant}`);
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
        ...tenantAndObjectAttributes(normalized.tenant, bucket, key, this.indexDestination),
        { key: UploadPhase, value: 'inspect-source' },
        { key: UploadOutcome, value: 'running' satisfies UploadOutcomeKind },
      ],
    });
    try {
      return new UploadHandle(workflowId, await started, this.tenant);
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return this.getHandle(normalized.tenant, normalized.uploadId);
      throw err;
    }
  }

  /**
   * A handle to an existing upload.
   * @throws InvalidUploadRequestError when the tenant or upload id is malformed
   * @throws TenantAccessDeniedError when the client is bound to another tenant
   */
  getHandle(tenant: string, uploadId: string): UploadHandle {
    const problems = findUploadIdProblems({ tenant, uploadId });
    if (problems.length) throw new InvalidUploadRequestError(problems);
    this.checkTenant(tenant, `reach upload ${uploadId} of tenant ${tenant}`);
    const workflowId = uploadWorkflowId(tenant, uploadId);
    return new UploadHandle(workflowId, this.client.workflow.getHandle<typeof uploadWorkflow>(workflowId), this.tenant);
  }

  /**
   * Recent uploads, newest first, optionally of one tenant and/or outcome; a tenant-bound client
   * lists only its tenant's.
   * @throws TenantAccessDeniedError when a bound client is asked for another tenant
   */
  async list(filter: { tenant?: string; outcome?: UploadOutcomeKind; limit?: number } = {}): Promise<UploadSummary[]> {
    if (filter.tenant !== undefined) {
      const problems = findUploadIdProblems({ tenant: filter.tenant });
      if (problems.length) throw new InvalidUploadRequestError(problems);
      this.checkTenant(filter.tenant, `list the uploads of tenant ${filter.tenant}`);
    }
    const tenant = this.tenant ?? filter.tenant;
    const clauses = [`WorkflowType = 'uploadWorkflow'`];
    if (tenant) clauses.push(`UploadTenant = '${tenant}'`);
    if (filter.outcome) clauses.push(`UploadOutcome = '${filter.outcome}'`);
    const summaries: UploadSummary[] = [];
    for await (const info of this.client.workflow.list({ query: clauses.join(' AND ') })) {
      const summary = toSummary(info);
      if (tenant && summary.tenant !== tenant) continue; // the query already filters; never trust one line of it
      summaries.push(summary);
      if (summaries.length >= (filter.limit ?? 20)) break;
    }
    return summaries;
  }

  /**
   * Deletes an object through the delete saga and gives its bytes back to the tenant's quota when
   * the saga stored it for this tenant (see {@link DeleteResult.quotaFreedBytes}). Deleting what
   * is already gone is no error: the result says `not-found` and gives nothing back. Two deletes
   * of one object at once are one workflow; the tenant's key prefix is applied by the worker.
   * @throws InvalidDeleteRequestError before anything starts, listing every problem
   * @throws TenantAccessDeniedError when the client is bound to another tenant
   * @throws DeleteFailedError when the delete failed (e.g. `ObjectNotAllowed`: outside the tenant's prefix, or another tenant's object)
   */
  async delete(request: DeleteRequest): Promise<DeleteResult> {
    const problems = findDeleteRequestProblems(request);
    if (problems.length) throw new InvalidDeleteRequestError(problems);
    const { tenant, bucket, key } = request;
    this.checkTenant(tenant, `delete objects of tenant ${tenant}`);
    const handle = await startDeleteWorkflow(this.client, request, { taskQueue: this.taskQueue, indexDestination: this.indexDestination });
    try {
      return await handle.result();
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        const cause = failureCause(err);
        throw new DeleteFailedError(`delete of s3://${bucket}/${key} failed: ${cause.message}`, cause.type, err);
      }
      throw err;
    }
  }

  private checkTenant(tenant: string, what: string): void {
    if (this.tenant !== undefined && tenant !== this.tenant) {
      throw new TenantAccessDeniedError(this.tenant, `this client acts for tenant ${this.tenant} and may not ${what}`);
    }
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
