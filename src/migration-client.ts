/**
 * Following migrations from application code: {@link MigrationHandle}, started by
 * `BatchClient.migrate` (src/batch-client.ts), and {@link readMigrationReport} for the
 * per-object report.
 *
 * ```ts
 * const batches = new BatchClient({ client, taskQueue: 'upload-saga' });
 * const handle = await batches.migrate({
 *   migrationId: 'archive-2026', tenant: 'acme',
 *   source: { bucket: 'old-bucket', prefix: 'photos/' },      // add profile: 'archive' for another store
 *   destination: { bucket: 'uploads', prefix: 'photos/' },
 * });
 * await handle.pause(); await handle.resume();
 * const result = await handle.result(); // { outcome, objectsCopied, objectsSkipped, objectsFailed, failures, reportPrefix, … }
 * for await (const line of readMigrationReport(s3, result.destination.bucket, result.reportPrefix)) console.log(line.status, line.key);
 * ```
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, TemporalFailure } from '@temporalio/common';
import type { MigrationFailure, MigrationProgress, MigrationReportLine, MigrationResult } from './migration/migration-types';
import { sendPauseUpdate } from './pause-refusal';
import { pauseStateQuery, pauseUpdate, resumeUpdate, type PauseState } from './upload/pause';
import type { migrationWorkflow } from './workflows/migration-workflow';

/** Thrown by {@link MigrationHandle.result} when a migration stopped or was cancelled (the objects copied stay). */
export class MigrationFailedError extends Error {
  override readonly name = 'MigrationFailedError';
  constructor(
    readonly workflowId: string,
    /** `failed` (stopped by a failure of the migration as a whole, or of the store) or `cancelled`. */
    readonly outcome: 'failed' | 'cancelled',
    /** The failure type (`MigrationSourceEmpty`, `DestinationNotAllowed`, `S3.<Code>`, …). */
    readonly type: string | undefined,
    message: string,
    /** Counts when it stopped, and the failures listed so far (absent when it failed before copying). */
    readonly summary: (MigrationProgress & { failures: MigrationFailure[] }) | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One migration as listed by `BatchClient.listMigrations` (from Temporal's visibility store). */
export interface MigrationSummary {
  workflowId: string;
  runId: string;
  /** Temporal's status of the latest run (a migration that continued as new is listed once, by its latest run). */
  status: string;
  migrationId: string;
  tenant?: string;
  /** `s3://bucket/prefix` of the objects copied (migrations started before it was recorded have none). */
  source?: string;
  /** The source profile, when the source is in another store. */
  profile?: string;
  /** The destination bucket. */
  bucket?: string;
  /** The destination prefix (migrations started before it was recorded have none). */
  prefix?: string;
  /** inspect, copy, paused, done. */
  phase?: string;
  outcome?: string;
  /** Bytes under the source prefix, once inspected. */
  bytesTotal?: number;
  /** When the latest run started. */
  startTime: Date;
  closeTime?: Date;
}

/** A running or finished migration. */
export class MigrationHandle {
  constructor(
    readonly workflowId: string,
    /** The workflow handle (follows the migration's continue-as-new runs). */
    readonly workflow: WorkflowHandle<typeof migrationWorkflow>,
  ) {}

  /** Objects and bytes copied, skipped and failed of the totals, phase and outcome. */
  progress(): Promise<MigrationProgress> {
    return this.workflow.query<MigrationProgress>('migrationProgress');
  }

  /**
   * Pauses: resolves once the chunks in flight have finished and nothing of the migration runs (no
   * new page is listed); what was copied stays. The pause is in the workflow's history: it survives
   * worker restarts. Pausing a paused migration is a no-op.
   * @throws PauseRefusedError when the migration has ended
   */
  pause(reason?: string): Promise<PauseState> {
    return sendPauseUpdate(this.workflow, this.workflowId, 'pause', 'migration', () =>
      this.workflow.executeUpdate(pauseUpdate, { args: [reason !== undefined ? { reason } : {}] }),
    );
  }

  /**
   * Resumes a paused migration from its cursor: nothing copied is copied again.
   * @throws PauseRefusedError when the migration is not paused (or has ended)
   */
  resume(): Promise<PauseState> {
    return sendPauseUpdate(this.workflow, this.workflowId, 'resume', 'migration', () =>
      this.workflow.executeUpdate(resumeUpdate, { args: [] }),
    );
  }

  /** Whether the migration is paused now. */
  pauseState(): Promise<PauseState> {
    return this.workflow.query(pauseStateQuery);
  }

  /** Asks the migration to stop: chunks in flight stop (what they copied stays) and it ends `cancelled`. */
  async cancel(): Promise<void> {
    await this.workflow.cancel();
  }

  /**
   * Waits for the migration to end.
   * @throws MigrationFailedError when it stopped or was cancelled
   */
  async result(): Promise<MigrationResult> {
    try {
      return await this.workflow.result();
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      let cause: unknown = err.cause;
      while (
        cause instanceof TemporalFailure &&
        !(cause instanceof ApplicationFailure) &&
        !(cause instanceof CancelledFailure) &&
        cause.cause
      )
        cause = cause.cause;
      if (cause instanceof CancelledFailure)
        throw new MigrationFailedError(this.workflowId, 'cancelled', 'Cancelled', `migration ${this.workflowId} was cancelled`, undefined, {
          cause: err,
        });
      const failure = cause instanceof ApplicationFailure ? cause : undefined;
      const summary = failure?.details?.[0] as (MigrationProgress & { failures: MigrationFailure[] }) | undefined;
      throw new MigrationFailedError(this.workflowId, 'failed', failure?.type ?? undefined, failure?.message ?? err.message, summary, {
        cause: err,
      });
    }
  }
}

/**
 * Every line of a migration's per-object report, chunk by chunk in key order: what happened to each
 * object (copied, skipped, failed with its cause). `s3` reads the destination store.
 */
export async function* readMigrationReport(s3: S3Client, bucket: string, reportPrefix: string): AsyncGenerator<MigrationReportLine> {
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: reportPrefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) {
      const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: object.Key }));
      for (const line of (await body.Body!.transformToString()).split('\n')) if (line) yield JSON.parse(line) as MigrationReportLine;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}
