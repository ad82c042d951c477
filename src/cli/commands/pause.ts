/**
 * `upload-saga pause <tenant> <id> [--reason …]` and `upload-saga resume <tenant> <id>`, where the id
 * names an upload, a batch or a migration (find-target.ts).
 *
 * Why it is built this way: both are Updates to the workflow, so the command returns only once the
 * workflow took them — a pause once the parts in flight have finished (a batch or a migration: its
 * chunks in flight; a batch's running child uploads are told to pause) — or says why it refused
 * (past the merge, every file of the batch started, ended, not paused), exit 1. Nothing else
 * changes: the reservations and what is already stored stay.
 */
import { PauseRefusedError } from '../../client';
import { pauseExpiryProblem, type PauseExpiry, type PauseState } from '../../upload/pause';
import { InvalidUploadRequestError } from '../../upload/errors';
import { findUploadIdProblems } from '../../upload/request';
import { withUploads } from '../connect';
import { CliError, ExitCode, UsageError } from '../errors';
import { note, out, type CliIo } from '../io';
import { findTarget, type Target } from './find-target';

/** Options of the `pause` command. */
export interface PauseCommandOptions {
  /** Who paused it and why. */
  reason?: string;
  /** A gateway upload's expiry clock during this pause (default: the upload's, as its gateway was configured). */
  expiry?: string;
}

/** Runs `pause`. @throws CliError when the upload, batch or migration refuses (exit 1) */
export async function runPause(tenant: string, id: string, options: PauseCommandOptions, io: CliIo): Promise<void> {
  const expiryProblem = pauseExpiryProblem(options.expiry);
  if (expiryProblem) throw new UsageError(`--expiry: ${expiryProblem}`); // before connecting
  const expiry = options.expiry as PauseExpiry | undefined;
  await onTarget(tenant, id, io, async (target) => {
    if (expiry && target.kind !== 'upload')
      throw new UsageError(`--expiry is for uploads through the gateway, which expire; ${target.handle.workflowId} is a ${target.kind}`);
    if (target.kind === 'migration') await target.handle.pause(options.reason);
    else if (target.kind === 'batch') await target.handle.pause(options.reason ? { reason: options.reason } : {});
    else await target.handle.pause({ ...(options.reason ? { reason: options.reason } : {}), ...(expiry ? { expiry } : {}) });
    const after = {
      upload: 'parts in flight finished, nothing new starts',
      batch: 'chunks in flight finished, nothing new starts, child uploads told to pause',
      migration: 'chunks in flight finished, no new page is copied',
    }[target.kind];
    out(io, `paused ${target.handle.workflowId}: ${after}`);
    note(io, `  resume: upload-saga resume ${tenant} ${id}`);
  });
}

/** Runs `resume`. @throws CliError when the upload, batch or migration is not paused (exit 1) */
export async function runResume(tenant: string, id: string, io: CliIo): Promise<void> {
  await onTarget(tenant, id, io, async (target) => {
    const resumed: PauseState = await target.handle.resume();
    out(io, `resumed ${target.handle.workflowId}${resumed.paused ? ' (paused again meanwhile)' : ''}`);
  });
}

async function onTarget(tenant: string, id: string, io: CliIo, act: (target: Target) => Promise<void>): Promise<void> {
  const problems = findUploadIdProblems({ tenant, uploadId: id });
  if (problems.length) throw new InvalidUploadRequestError(problems); // exit 2, before connecting
  await withUploads(io.env, async (connection) => {
    try {
      await act(await findTarget(connection, tenant, id));
    } catch (err) {
      if (err instanceof PauseRefusedError) throw new CliError(err.message, ExitCode.Failure);
      throw err;
    }
  });
}
