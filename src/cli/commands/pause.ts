/**
 * `upload-saga pause <tenant> <uploadId> [--reason …]` and `upload-saga resume <tenant> <uploadId>`.
 *
 * Why it is built this way: both are Updates to the upload's workflow, so the command returns only
 * once the workflow took them — a pause once the parts in flight have finished — or says why it
 * refused (past the merge, ended, not paused), exit 1. Nothing else changes: the reservation and
 * the parts already stored stay.
 */
import { PauseRefusedError, type UploadHandle } from '../../client';
import { InvalidUploadRequestError } from '../../upload/errors';
import { findUploadIdProblems } from '../../upload/request';
import { withUploads } from '../connect';
import { CliError, ExitCode } from '../errors';
import { note, out, type CliIo } from '../io';

/** Options of the `pause` command. */
export interface PauseCommandOptions {
  /** Who paused it and why. */
  reason?: string;
}

/** Runs `pause`. @throws CliError when the upload refuses (exit 1) */
export async function runPause(tenant: string, uploadId: string, options: PauseCommandOptions, io: CliIo): Promise<void> {
  await onHandle(tenant, uploadId, io, async (handle) => {
    await handle.pause(options.reason ? { reason: options.reason } : {});
    out(io, `paused ${handle.workflowId}: parts in flight finished, nothing new starts`);
    note(io, `  resume: upload-saga resume ${tenant} ${uploadId}`);
  });
}

/** Runs `resume`. @throws CliError when the upload is not paused (exit 1) */
export async function runResume(tenant: string, uploadId: string, io: CliIo): Promise<void> {
  await onHandle(tenant, uploadId, io, async (handle) => {
    await handle.resume();
    out(io, `resumed ${handle.workflowId}`);
  });
}

async function onHandle(tenant: string, uploadId: string, io: CliIo, act: (handle: UploadHandle) => Promise<void>): Promise<void> {
  const problems = findUploadIdProblems({ tenant, uploadId });
  if (problems.length) throw new InvalidUploadRequestError(problems); // exit 2, before connecting
  await withUploads(io.env, async ({ uploads }) => {
    try {
      await act(uploads.getHandle(tenant, uploadId));
    } catch (err) {
      if (err instanceof PauseRefusedError) throw new CliError(err.message, ExitCode.Failure);
      throw err;
    }
  });
}
