/**
 * `upload-saga cancel <tenant> <uploadId|batchId|migrationId> [--wait]`: ask an upload, a batch or a
 * migration to stop.
 *
 * Why it is built this way: cancelling is a request to the workflow — the saga then compensates
 * what was done (aborts the multipart upload, deletes staged parts, releases the reserved quota),
 * which takes a moment and needs a worker. By default the command returns once the request is
 * recorded; `--wait` follows the upload to its end and prints the compensation report. An upload
 * that already ended cannot be cancelled, and the command says so instead of a bare "not found".
 * A batch undoes its chunks in flight (atomic: everything it stored) and cancels its child uploads.
 * A migration stops its chunks in flight and undoes nothing: what it copied stays, and a new run of
 * the same migration id skips it.
 */
import { BatchFailedError } from '../../batch-client';
import { UploadFailedError } from '../../client';
import { MigrationFailedError } from '../../migration-client';
import { InvalidUploadRequestError } from '../../upload/errors';
import { findUploadIdProblems } from '../../upload/request';
import { withUploads } from '../connect';
import { CliError, ExitCode } from '../errors';
import { note, out, type CliIo } from '../io';
import { failureReportLines, resultLines } from '../upload-report';
import { batchSummaryLines } from './upload-batch';
import { findTarget } from './find-target';
import { migrationSummaryLines } from './migrate';

/** Options of the `cancel` command. */
export interface CancelCommandOptions {
  /** Wait for the saga to finish compensating and print its report. @default false */
  wait?: boolean;
}

/** Runs the command. @throws CliError when the upload already ended, WorkflowNotFoundError when there is none */
export async function runCancel(tenant: string, uploadId: string, options: CancelCommandOptions, io: CliIo): Promise<void> {
  const problems = findUploadIdProblems({ tenant, uploadId });
  if (problems.length) throw new InvalidUploadRequestError(problems); // exit 2, before connecting
  await withUploads(io.env, async (connection) => {
    const target = await findTarget(connection, tenant, uploadId);
    const { status } = target.description;
    if (status.name !== 'RUNNING') {
      throw new CliError(`${target.handle.workflowId} already ended (${status.name}); there is nothing to cancel`, ExitCode.Failure);
    }
    if (target.kind === 'migration') {
      const migration = target.handle;
      await migration.cancel();
      out(io, `cancellation requested for ${migration.workflowId}`);
      if (!options.wait) {
        note(
          io,
          '  the migration now stops its chunks in flight (what they copied stays); follow it with `upload-saga status` (or pass --wait)',
        );
        return;
      }
      try {
        const result = await migration.result();
        out(
          io,
          `the migration ${result.outcome === 'partial' ? 'ended' : 'completed'} before the cancellation took effect:`,
          ...migrationSummaryLines(result),
        );
      } catch (error) {
        if (!(error instanceof MigrationFailedError)) throw error;
        // A cancellation carries no counts: the migration's progress query (replayed by a worker) has them.
        const summary =
          error.summary ??
          (await migration.progress().then(
            (p) => ({ ...p, failures: [] }),
            () => undefined,
          ));
        out(io, `${error.outcome}: ${error.message}`, ...(summary ? migrationSummaryLines(summary) : []));
      }
      return;
    }
    if (target.kind === 'batch') {
      const batch = target.handle;
      await batch.cancel();
      out(io, `cancellation requested for ${batch.workflowId}`);
      if (!options.wait) {
        note(
          io,
          '  the batch now undoes its chunks in flight (atomic: all it stored); follow it with `upload-saga status` (or pass --wait)',
        );
        return;
      }
      try {
        const result = await batch.result();
        out(io, 'the batch completed before the cancellation took effect:', ...batchSummaryLines({ ...result, phase: 'done', run: 0 }));
      } catch (error) {
        if (!(error instanceof BatchFailedError)) throw error;
        out(io, `${error.outcome}: ${error.message}`, ...(error.summary ? batchSummaryLines(error.summary) : []));
      }
      return;
    }
    const handle = target.handle;
    await handle.cancel();
    out(io, `cancellation requested for ${handle.workflowId}`);
    if (!options.wait) {
      note(io, '  the saga now undoes what was done; follow it with `upload-saga status` (or pass --wait)');
      return;
    }
    try {
      const result = await handle.result();
      // The request came after the pivot (the object was already merged): the upload completed.
      out(io, 'the upload completed before the cancellation took effect:', ...resultLines(result));
    } catch (error) {
      if (!(error instanceof UploadFailedError)) throw error;
      out(io, ...failureReportLines(error));
    }
  });
}
