/**
 * `upload-saga list [--tenant T] [--outcome O] [--kind uploads|batches] [--limit N]`: recent
 * uploads, then recent batches, as tables.
 *
 * Why it is built this way: `UploadClient.list` and `BatchClient.list` query Temporal's visibility
 * store by the workflows' search attributes, so the list needs no database of our own; it is
 * eventually consistent (an upload started a second ago may not be listed yet). The child uploads
 * of a batch are uploads and are listed with them.
 */
import { BatchClient } from '../../batch-client';
import type { BatchOutcomeKind } from '../../batch/batch-types';
import { InvalidUploadRequestError } from '../../upload/errors';
import type { UploadOutcomeKind } from '../../upload/outcome';
import { findUploadIdProblems } from '../../upload/request';
import { withUploads } from '../connect';
import { formatBytes, renderTable } from '../format';
import { note, out, type CliIo } from '../io';

/** Options of the `list` command. */
export interface ListCommandOptions {
  tenant?: string;
  outcome?: UploadOutcomeKind | BatchOutcomeKind;
  /** Only uploads or only batches. @default both */
  kind?: 'uploads' | 'batches';
  /** At most this many of each kind. @default 20 */
  limit?: number;
}

const shortTime = (date: Date) => date.toISOString().replace(/\.\d+Z$/, 'Z');

/** Runs the command: tables on stdout, or a note on stderr when nothing matches. */
export async function runList(options: ListCommandOptions, io: CliIo): Promise<void> {
  const problems = findUploadIdProblems({ tenant: options.tenant });
  if (problems.length) throw new InvalidUploadRequestError(problems); // exit 2, before connecting
  const filter = { ...(options.tenant ? { tenant: options.tenant } : {}), limit: options.limit ?? 20 };
  await withUploads(io.env, async ({ uploads, client, config }) => {
    const uploadOutcome = options.outcome === 'partial' ? undefined : options.outcome;
    const batchOutcome = options.outcome === 'expired' ? undefined : options.outcome;
    const summaries =
      options.kind === 'batches' || (options.outcome !== undefined && uploadOutcome === undefined)
        ? []
        : await uploads.list({ ...filter, ...(uploadOutcome ? { outcome: uploadOutcome } : {}) });
    const batches =
      options.kind === 'uploads' || (options.outcome !== undefined && batchOutcome === undefined)
        ? []
        : await new BatchClient({ client, taskQueue: config.temporal.taskQueue }).list({
            ...filter,
            ...(batchOutcome ? { outcome: batchOutcome } : {}),
          });
    if (summaries.length === 0 && batches.length === 0) return note(io, `no ${options.kind ?? 'uploads or batches'} found`);
    if (summaries.length > 0)
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
            shortTime(s.startTime),
          ]),
        ),
      );
    if (batches.length > 0)
      out(
        io,
        ...(summaries.length > 0 ? [''] : []),
        ...renderTable(
          ['BATCH WORKFLOW ID', 'TENANT', 'DESTINATION', 'BYTES', 'PHASE', 'OUTCOME', 'STATUS', 'STARTED'],
          batches.map((b) => [
            b.workflowId,
            b.tenant,
            b.bucket ? `s3://${b.bucket}/${b.prefix ?? ''}` : undefined,
            b.bytesTotal === undefined ? undefined : formatBytes(b.bytesTotal),
            b.phase,
            b.outcome,
            b.status,
            shortTime(b.startTime),
          ]),
        ),
      );
  });
}
