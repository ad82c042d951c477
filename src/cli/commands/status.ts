/**
 * `upload-saga status <tenant> <uploadId|batchId|migrationId>`: where an upload stands — Temporal
 * status, saga phase, outcome, bytes and parts done — and, once it has ended, its result or failure
 * report. For a batch, see batch-status.ts; for a migration, migration-status.ts.
 *
 * Why it is built this way: phase and outcome come from the workflow's search attributes (via
 * describe), which the server answers without a worker. Byte-level progress of a running upload,
 * and the report of a cancelled one, are queries a worker must answer: they run under a time
 * limit (the call is cancelled, not abandoned, so the connection can close) and are left out,
 * with a note, when no worker answers.
 */
import { UploadFailedError } from '../../client';
import { InvalidUploadRequestError } from '../../upload/errors';
import { findUploadIdProblems } from '../../upload/request';
import type { UploadResult } from '../../upload/outcome';
import { UploadOutcome, UploadPhase } from '../../upload/search-attributes';
import { withUploads } from '../connect';
import { printBatchStatus } from './batch-status';
import { findTarget } from './find-target';
import { printMigrationStatus } from './migration-status';
import { note, out, type CliIo } from '../io';
import { failureReportLines, labelled, progressLine, resultLines } from '../upload-report';
import { uploadUiLink, webUiBaseUrl } from '../web-ui';

/** Options of the `status` command. */
export interface StatusCommandOptions {
  /** How long to wait for a worker to answer a query (progress; the report of a cancelled upload). @default 5000 ms */
  queryTimeoutMs?: number;
}

/** Runs the command. @throws WorkflowNotFoundError when there is no such upload, batch or migration */
export async function runStatus(tenant: string, uploadId: string, options: StatusCommandOptions, io: CliIo): Promise<void> {
  const problems = findUploadIdProblems({ tenant, uploadId });
  if (problems.length) throw new InvalidUploadRequestError(problems); // exit 2, before connecting
  const timeoutMs = options.queryTimeoutMs ?? 5000;
  await withUploads(io.env, async (connection) => {
    const { config, client } = connection;
    const target = await findTarget(connection, tenant, uploadId);
    const context = { client, timeoutMs, uiUrl: webUiBaseUrl(io.env), namespace: config.temporal.namespace };
    if (target.kind === 'batch') return printBatchStatus(target.handle, target.description, context, io);
    if (target.kind === 'migration') return printMigrationStatus(target.handle, target.description, context, io);
    const { handle, description } = target;
    const attrs = description.typedSearchAttributes;
    const running = description.status.name === 'RUNNING';
    // A closed upload's result says more than its last progress, and needs no worker (unless cancelled).
    const progress = running
      ? await client.withAbortSignal(AbortSignal.timeout(timeoutMs), () => handle.progress()).catch(() => undefined)
      : undefined;
    const uiLink = uploadUiLink({ workflowId: handle.workflowId, namespace: config.temporal.namespace, uiUrl: webUiBaseUrl(io.env) });

    out(
      io,
      handle.workflowId,
      ...labelled([
        ['status', description.status.name],
        ['phase', progress?.phase ?? attrs.get(UploadPhase)],
        ['outcome', progress?.outcome ?? attrs.get(UploadOutcome)],
        ['progress', progress ? progressLine(progress) : running ? '(no worker answered the progress query)' : undefined],
        [
          'paused',
          progress?.pause?.paused
            ? `since ${progress.pause.since}${progress.pause.held ? '' : ' (parts in flight finishing)'}${progress.pause.reason ? ` — ${progress.pause.reason}` : ''}`
            : undefined,
        ],
        [
          'waiting',
          progress?.waitingForQuota
            ? `for quota until ${progress.waitingForQuota.deadline}: ${progress.waitingForQuota.reason}`
            : undefined,
        ],
        ['started', description.startTime.toISOString()],
        ['closed', description.closeTime?.toISOString()],
        ['web ui', uiLink],
      ]),
    );
    if (!running)
      await printEnding(
        client.withAbortSignal(AbortSignal.timeout(timeoutMs), () => handle.result()),
        io,
      );
  });
}

/** The result or failure report of a closed upload (`undefined` if it could not be read in time). */
async function printEnding(result: Promise<UploadResult>, io: CliIo): Promise<void> {
  const ending = await result.then(
    (value) => ({ result: value }),
    (error: unknown) => (error instanceof UploadFailedError ? { error } : undefined),
  );
  if (!ending) return note(io, '(the result could not be read: no worker answered in time)');
  out(io, '');
  if ('result' in ending) return out(io, ...resultLines(ending.result));
  out(io, ...failureReportLines(ending.error));
}
