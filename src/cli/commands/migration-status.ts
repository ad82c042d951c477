/**
 * `upload-saga status` of a migration: Temporal status, phase, outcome, source and destination,
 * objects copied, skipped and failed of the total, bytes, the average rate, pause, where the
 * per-object report is; once it ended, its summary (copied, skipped, failed by type).
 *
 * Why it is built this way: as for a batch (batch-status.ts), phase and outcome come from the
 * search attributes and the source and destination from the memo (no worker needed); the counts of
 * a running migration are a query a worker answers under a time limit, and those of one that ended
 * are its result (or the failure's details). The rate is an average since the migration started:
 * its first run's start, since a migration continues as new every `chunksPerRun` chunks.
 */
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { MigrationFailedError, type MigrationHandle } from '../../migration-client';
import { migrationReportPrefix, type MigrationCounts } from '../../migration/migration-types';
import { UploadBucket, UploadOutcome, UploadPhase, UploadTenant } from '../../upload/search-attributes';
import { formatBytes, formatRate } from '../format';
import { note, out, type CliIo } from '../io';
import { labelled } from '../upload-report';
import { uploadUiLink } from '../web-ui';
import { migrationSummaryLines } from './migrate';

/** Counts and totals, as the progress query, the result and a failure's details have them. */
type Counts = MigrationCounts & { objectsTotal?: number; bytesTotal?: number };

/** What {@link printMigrationStatus} needs besides the migration. */
export interface MigrationStatusContext {
  client: Client;
  /** How long to wait for a worker to answer (progress, result). */
  timeoutMs: number;
  uiUrl: string;
  namespace: string;
}

const objectsDone = (counts: MigrationCounts) => counts.objectsCopied + counts.objectsSkipped + counts.objectsFailed;

/** Objects done of the total, then how: `12 of 40 objects (10 copied, 2 skipped, 1 failed), 1.2 MiB of 4.0 MiB`. */
export function migrationProgressLine(progress: Counts): string {
  const done = objectsDone(progress);
  const how = [
    `${progress.objectsCopied} copied`,
    `${progress.objectsSkipped} skipped`,
    ...(progress.objectsFailed ? [`${progress.objectsFailed} failed`] : []),
  ].join(', ');
  const bytes = `${formatBytes(progress.bytesCopied + progress.bytesSkipped)} of ${progress.bytesTotal === undefined ? '?' : formatBytes(progress.bytesTotal)}`;
  return `${done} of ${progress.objectsTotal ?? '?'} objects (${how}), ${bytes}`;
}

/** Bytes and objects per second over `seconds`: `1.3 MiB/s copied, 42.0 objects/s`. */
export function migrationRateLine(progress: MigrationCounts, seconds: number): string | undefined {
  if (!(seconds > 0)) return undefined;
  return `${formatRate(progress.bytesCopied / seconds)} copied, ${(objectsDone(progress) / seconds).toFixed(1)} objects/s (average since the start)`;
}

/** When the migration's first run started (the description's own run when it never continued as new). */
async function firstStart(client: Client, description: WorkflowExecutionDescription): Promise<Date> {
  const firstRunId = description.raw.workflowExecutionInfo?.firstRunId;
  if (!firstRunId || firstRunId === description.runId) return description.startTime;
  const first = await client.workflow
    .getHandle(description.workflowId, firstRunId)
    .describe()
    .catch(() => undefined);
  return first?.startTime ?? description.startTime;
}

/** Prints where the migration stands and, once it ended, its summary. */
export async function printMigrationStatus(
  handle: MigrationHandle,
  description: WorkflowExecutionDescription,
  context: MigrationStatusContext,
  io: CliIo,
): Promise<void> {
  const attrs = description.typedSearchAttributes;
  const running = description.status.name === 'RUNNING';
  const withinTime = <T>(call: () => Promise<T>) => context.client.withAbortSignal(AbortSignal.timeout(context.timeoutMs), call);
  const progress = running ? await withinTime(() => handle.progress()).catch(() => undefined) : undefined;
  // A migration that ended: its counts are in its result, or in the details of the failure that stopped it.
  const ending = running
    ? undefined
    : await withinTime(() => handle.result()).then(
        (result) => ({
          counts: result as Counts | undefined,
          lines: [`${result.outcome}: ${migrationProgressLine(result)}`, ...migrationSummaryLines(result)],
        }),
        (error: unknown) =>
          error instanceof MigrationFailedError
            ? {
                counts: error.summary,
                lines: [`${error.outcome}: ${error.message}`, ...(error.summary ? migrationSummaryLines(error.summary) : [])],
              }
            : undefined,
      );
  // A cancelled migration's failure carries no counts: its progress query (replayed by a worker) has them.
  const known = progress ?? ending?.counts ?? (running ? undefined : await withinTime(() => handle.progress()).catch(() => undefined));
  // A migration that ended before it was inspected copied nothing and wrote no report: nothing to count.
  const counts = !running && known && known.objectsTotal === undefined && objectsDone(known) === 0 ? undefined : known;
  const started = await firstStart(context.client, description);
  const seconds = ((description.closeTime ?? new Date()).getTime() - started.getTime()) / 1000;
  const memo = (key: string) => (typeof description.memo?.[key] === 'string' ? (description.memo[key] as string) : undefined);
  const tenant = attrs.get(UploadTenant);
  const bucket = attrs.get(UploadBucket);
  const migrationId = handle.workflowId.split(':').slice(2).join(':');
  const pause = progress?.pause;
  const profile = memo('profile');
  out(
    io,
    `${handle.workflowId} (migration)`,
    ...labelled([
      ['status', description.status.name],
      ['phase', progress?.phase ?? attrs.get(UploadPhase)],
      ['outcome', progress?.outcome ?? attrs.get(UploadOutcome)],
      ['source', memo('source') ? `${memo('source')}${profile ? ` (profile ${profile})` : ''}` : undefined],
      ['destination', bucket ? `s3://${bucket}/${memo('prefix') ?? ''}` : undefined],
      ['progress', counts ? migrationProgressLine(counts) : running ? '(no worker answered the progress query)' : undefined],
      ['rate', counts ? migrationRateLine(counts, seconds) : undefined],
      [
        'paused',
        pause?.paused
          ? `since ${pause.since}${pause.held ? '' : ' (chunks in flight finishing)'}${pause.reason ? ` — ${pause.reason}` : ''}`
          : undefined,
      ],
      ['run', progress ? String(progress.run) : undefined],
      [
        'report',
        bucket && tenant && (running || counts)
          ? `s3://${bucket}/${migrationReportPrefix(tenant, migrationId)} (one JSONL object per chunk)`
          : undefined,
      ],
      ['started', started.toISOString()],
      ['closed', description.closeTime?.toISOString()],
      ['web ui', uploadUiLink({ workflowId: handle.workflowId, namespace: context.namespace, uiUrl: context.uiUrl })],
    ]),
  );
  if (running) return;
  if (!ending) return note(io, '(the result could not be read: no worker answered in time)');
  out(io, '', ...ending.lines);
}
