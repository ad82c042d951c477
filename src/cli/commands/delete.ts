/**
 * `upload-saga delete <tenant> --bucket <bucket> --key <key>`: delete an object through the delete
 * saga and give its bytes back to the tenant's quota.
 *
 * Why it waits: a delete is three short steps, so the command follows it to its end and prints
 * what happened — deleted (and how many bytes went back to the quota), nothing there, or refused.
 * Deleting what is already gone is not a failure (exit 0), so a script can delete again safely.
 */
import { InvalidDeleteRequestError } from '../../upload/errors';
import { findDeleteRequestProblems, type DeleteRequest } from '../../upload/delete-request';
import { withUploads } from '../connect';
import { out, type CliIo } from '../io';

/** Runs the command. @throws InvalidDeleteRequestError (exit 2) before connecting; DeleteFailedError when refused or failed */
export async function runDelete(request: DeleteRequest, io: CliIo): Promise<void> {
  const problems = findDeleteRequestProblems(request);
  if (problems.length) throw new InvalidDeleteRequestError(problems);
  await withUploads(io.env, async ({ uploads }) => {
    const result = await uploads.delete(request);
    const where = `s3://${result.bucket}/${result.key}`;
    if (result.outcome === 'not-found') {
      out(io, `nothing at ${where}; nothing deleted, no quota given back`);
      return;
    }
    if (result.outcome === 'changed') {
      out(io, `${where} was replaced by another object while the delete ran; it was left alone`);
      return;
    }
    out(
      io,
      `deleted ${where}${result.versionId ? ` (version ${result.versionId})` : ''}, ${result.size} bytes`,
      result.uploadId
        ? `  ${result.quotaFreedBytes} bytes given back to tenant ${result.tenant} (upload ${result.uploadId})`
        : `  not stored by the saga: no quota given back`,
    );
  });
}
