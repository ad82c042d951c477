/**
 * `upload-saga status` of a batch: Temporal status, phase, outcome, files and bytes done of the
 * totals, failures, pause; once it ended, its summary (one line per outcome, failures by type).
 *
 * Why it is built this way: as for an upload, phase and outcome come from the search attributes
 * (no worker needed); the counts of a running batch are a query a worker answers under a time
 * limit, and the summary of a batch that ended is its result (or the failure's details).
 */
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { BatchFailedError, type BatchHandle } from '../../batch-client';
import type { BatchProgress } from '../../batch/batch-types';
import { UploadOutcome, UploadPhase } from '../../upload/search-attributes';
import { formatBytes } from '../format';
import { note, out, type CliIo } from '../io';
import { labelled } from '../upload-report';
import { uploadUiLink } from '../web-ui';
import { batchSummaryLines } from './upload-batch';

/** What {@link printBatchStatus} needs besides the batch. */
export interface BatchStatusContext {
  client: Client;
  /** How long to wait for a worker to answer (progress, result). */
  timeoutMs: number;
  uiUrl: string;
  namespace: string;
}

/** Files and bytes done of the totals, and failures: `12 of 40 files, 3.0 MiB of 10.0 MiB, 1 failed`. */
export function batchProgressLine(progress: BatchProgress): string {
  const files = `${progress.filesDone} of ${progress.filesTotal ?? '?'} files`;
  const bytes = `${formatBytes(progress.bytesDone)} of ${progress.bytesTotal === undefined ? '?' : formatBytes(progress.bytesTotal)}`;
  return `${files}, ${bytes}${progress.filesFailed ? `, ${progress.filesFailed} failed` : ''}`;
}

/** Prints where the batch stands and, once it ended, its summary. */
export async function printBatchStatus(
  handle: BatchHandle,
  description: WorkflowExecutionDescription,
  context: BatchStatusContext,
  io: CliIo,
): Promise<void> {
  const attrs = description.typedSearchAttributes;
  const running = description.status.name === 'RUNNING';
  const withinTime = <T>(call: () => Promise<T>) => context.client.withAbortSignal(AbortSignal.timeout(context.timeoutMs), call);
  const progress = running ? await withinTime(() => handle.progress()).catch(() => undefined) : undefined;
  const pause = progress?.pause;
  out(
    io,
    `${handle.workflowId} (batch)`,
    ...labelled([
      ['status', description.status.name],
      ['phase', pause?.paused ? 'paused' : (progress?.phase ?? attrs.get(UploadPhase))],
      ['outcome', progress?.outcome ?? attrs.get(UploadOutcome)],
      ['progress', progress ? batchProgressLine(progress) : running ? '(no worker answered the progress query)' : undefined],
      [
        'paused',
        pause?.paused
          ? `since ${pause.since}${pause.held ? '' : ' (chunks in flight finishing)'}${pause.reason ? ` — ${pause.reason}` : ''}`
          : undefined,
      ],
      ['run', progress ? String(progress.run) : undefined],
      ['started', description.startTime.toISOString()],
      ['closed', description.closeTime?.toISOString()],
      ['web ui', uploadUiLink({ workflowId: handle.workflowId, namespace: context.namespace, uiUrl: context.uiUrl })],
    ]),
  );
  if (running) return;
  const ending = await withinTime(() => handle.result()).then(
    (result) => ({
      lines: [
        `${result.outcome}: ${batchProgressLine({ ...result, phase: 'done', run: 0 })}`,
        ...batchSummaryLines({ ...result, phase: 'done', run: 0 }),
      ],
    }),
    (error: unknown) =>
      error instanceof BatchFailedError
        ? { lines: [`${error.outcome}: ${error.message}`, ...(error.summary ? batchSummaryLines(error.summary) : [])] }
        : undefined,
  );
  if (!ending) return note(io, '(the result could not be read: no worker answered in time)');
  out(io, '', ...ending.lines);
}
