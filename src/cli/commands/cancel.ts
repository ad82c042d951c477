/**
 * `upload-saga cancel <tenant> <uploadId> [--wait]`: ask an upload to stop.
 *
 * Why it is built this way: cancelling is a request to the workflow — the saga then compensates
 * what was done (aborts the multipart upload, deletes staged parts, releases the reserved quota),
 * which takes a moment and needs a worker. By default the command returns once the request is
 * recorded; `--wait` follows the upload to its end and prints the compensation report. An upload
 * that already ended cannot be cancelled, and the command says so instead of a bare "not found".
 */
import { UploadFailedError } from '../../client';
import { InvalidUploadRequestError } from '../../upload/errors';
import { findUploadIdProblems } from '../../upload/request';
import { withUploads } from '../connect';
import { CliError, ExitCode } from '../errors';
import { note, out, type CliIo } from '../io';
import { failureReportLines, resultLines } from '../upload-report';

/** Options of the `cancel` command. */
export interface CancelCommandOptions {
  /** Wait for the saga to finish compensating and print its report. @default false */
  wait?: boolean;
}

/** Runs the command. @throws CliError when the upload already ended, WorkflowNotFoundError when there is none */
export async function runCancel(tenant: string, uploadId: string, options: CancelCommandOptions, io: CliIo): Promise<void> {
  const problems = findUploadIdProblems({ tenant, uploadId });
  if (problems.length) throw new InvalidUploadRequestError(problems); // exit 2, before connecting
  await withUploads(io.env, async ({ uploads }) => {
    const handle = uploads.getHandle(tenant, uploadId);
    const { status } = await handle.workflow.describe();
    if (status.name !== 'RUNNING') {
      throw new CliError(`${handle.workflowId} already ended (${status.name}); there is nothing to cancel`, ExitCode.Failure);
    }
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
