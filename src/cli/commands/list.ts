/**
 * `upload-saga list [--tenant T] [--outcome O] [--limit N]`: recent uploads as a table.
 *
 * Why it is built this way: `UploadClient.list` queries Temporal's visibility store by the
 * upload's search attributes, so the list needs no database of our own; it is eventually
 * consistent (an upload started a second ago may not be listed yet).
 */
import { InvalidUploadRequestError } from '../../upload/errors';
import type { UploadOutcomeKind } from '../../upload/outcome';
import { findUploadIdProblems } from '../../upload/request';
import { withUploads } from '../connect';
import { renderTable } from '../format';
import { note, out, type CliIo } from '../io';

/** Options of the `list` command. */
export interface ListCommandOptions {
  tenant?: string;
  outcome?: UploadOutcomeKind;
  /** @default 20 */
  limit?: number;
}

/** Runs the command: a table on stdout, or a note on stderr when nothing matches. */
export async function runList(options: ListCommandOptions, io: CliIo): Promise<void> {
  const problems = findUploadIdProblems({ tenant: options.tenant });
  if (problems.length) throw new InvalidUploadRequestError(problems); // exit 2, before connecting
  await withUploads(io.env, async ({ uploads }) => {
    const summaries = await uploads.list({
      ...(options.tenant ? { tenant: options.tenant } : {}),
      ...(options.outcome ? { outcome: options.outcome } : {}),
      limit: options.limit ?? 20,
    });
    if (summaries.length === 0) return note(io, 'no uploads found');
    out(
      io,
      ...renderTable(
        ['WORKFLOW ID', 'TENANT', 'DESTINATION', 'PHASE', 'OUTCOME', 'STATUS', 'STARTED'],
        summaries.map((s) => [
          s.workflowId,
          s.tenant,
          s.bucket && s.key ? `s3://${s.bucket}/${s.key}` : undefined,
          s.phase,
          s.outcome,
          s.status,
          s.startTime.toISOString().replace(/\.\d+Z$/, 'Z'),
        ]),
      ),
    );
  });
}
