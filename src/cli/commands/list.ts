/**
 * `upload-saga list [--tenant T] [--outcome O] [--kind uploads|batches|migrations] [--limit N]`:
 * recent uploads, then recent batches, then recent migrations, as tables.
 *
 * Why it is built this way: `UploadClient.list`, `BatchClient.list` and `BatchClient.listMigrations`
 * query Temporal's visibility store by the workflows' search attributes, so the list needs no
 * database of our own; it is eventually consistent (an upload started a second ago may not be
 * listed yet). The child uploads of a batch are uploads and are listed with them. An outcome that
 * one kind never has (`expired`: uploads only; `compensated`: uploads and batches; `partial`:
 * batches and migrations) skips that kind instead of asking.
 */
import { BatchClient } from '../../batch-client';
import type { BatchOutcomeKind } from '../../batch/batch-types';
import type { MigrationOutcomeKind } from '../../migration/migration-types';
import { InvalidUploadRequestError } from '../../upload/errors';
import type { UploadOutcomeKind } from '../../upload/outcome';
import { findUploadIdProblems } from '../../upload/request';
import { withUploads } from '../connect';
import { formatBytes, renderTable } from '../format';
import { note, out, type CliIo } from '../io';

/** What `list --kind` selects. */
export type ListKind = 'uploads' | 'batches' | 'migrations';

/** Options of the `list` command. */
export interface ListCommandOptions {
  tenant?: string;
  outcome?: UploadOutcomeKind | BatchOutcomeKind | MigrationOutcomeKind;
  /** Only this kind. @default all three */
  kind?: ListKind;
  /** At most this many of each kind. @default 20 */
  limit?: number;
}

/** The outcomes each kind can have (an outcome another kind only has skips this kind). */
const UPLOAD_OUTCOMES = [
  'running',
  'completed',
  'compensated',
  'cancelled',
  'failed',
  'expired',
] as const satisfies readonly UploadOutcomeKind[];
const BATCH_OUTCOMES = [
  'running',
  'completed',
  'partial',
  'failed',
  'compensated',
  'cancelled',
] as const satisfies readonly BatchOutcomeKind[];
const MIGRATION_OUTCOMES = ['running', 'completed', 'partial', 'failed', 'cancelled'] as const satisfies readonly MigrationOutcomeKind[];
// Each list names every outcome of its kind (the type check fails if one is missing).
const _everyOutcome: [
  Exclude<UploadOutcomeKind, (typeof UPLOAD_OUTCOMES)[number]>,
  Exclude<BatchOutcomeKind, (typeof BATCH_OUTCOMES)[number]>,
  Exclude<MigrationOutcomeKind, (typeof MIGRATION_OUTCOMES)[number]>,
] extends [never, never, never]
  ? true
  : never = true;

const shortTime = (date: Date) => date.toISOString().replace(/\.\d+Z$/, 'Z');

/** Runs the command: tables on stdout, or a note on stderr when nothing matches. */
export async function runList(options: ListCommandOptions, io: CliIo): Promise<void> {
  const problems = findUploadIdProblems({ tenant: options.tenant });
  if (problems.length) throw new InvalidUploadRequestError(problems); // exit 2, before connecting
  /** The filter of one kind, or undefined when it is not listed: not the --kind asked for, or it never has the outcome asked for. */
  const filterFor = <K extends string>(kind: ListKind, outcomes: readonly K[]) => {
    if (options.kind !== undefined && options.kind !== kind) return undefined;
    const outcome = outcomes.find((o) => o === options.outcome);
    if (options.outcome !== undefined && outcome === undefined) return undefined;
    return { ...(options.tenant ? { tenant: options.tenant } : {}), ...(outcome ? { outcome } : {}), limit: options.limit ?? 20 };
  };
  const uploadFilter = filterFor('uploads', UPLOAD_OUTCOMES);
  const batchFilter = filterFor('batches', BATCH_OUTCOMES);
  const migrationFilter = filterFor('migrations', MIGRATION_OUTCOMES);
  await withUploads(io.env, async ({ uploads, client, config }) => {
    const batchClient = new BatchClient({ client, taskQueue: config.temporal.taskQueue });
    const summaries = uploadFilter ? await uploads.list(uploadFilter) : [];
    const batches = batchFilter ? await batchClient.list(batchFilter) : [];
    const migrations = migrationFilter ? await batchClient.listMigrations(migrationFilter) : [];
    if (summaries.length + batches.length + migrations.length === 0)
      return note(io, `no ${options.kind ?? 'uploads, batches or migrations'} found`);
    const tables: string[][] = [];
    if (summaries.length > 0)
      tables.push(
        renderTable(
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
      tables.push(
        renderTable(
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
    if (migrations.length > 0)
      tables.push(
        renderTable(
          ['MIGRATION WORKFLOW ID', 'TENANT', 'SOURCE', 'DESTINATION', 'BYTES', 'PHASE', 'OUTCOME', 'STATUS', 'STARTED'],
          migrations.map((m) => [
            m.workflowId,
            m.tenant,
            m.source ? `${m.source}${m.profile ? ` (${m.profile})` : ''}` : undefined,
            m.bucket ? `s3://${m.bucket}/${m.prefix ?? ''}` : undefined,
            m.bytesTotal === undefined ? undefined : formatBytes(m.bytesTotal),
            m.phase,
            m.outcome,
            m.status,
            shortTime(m.startTime),
          ]),
        ),
      );
    out(io, ...tables.flatMap((table, i) => (i > 0 ? ['', ...table] : table)));
  });
}
