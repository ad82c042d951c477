/**
 * `upload-saga status <tenant> <uploadId>`: where an upload stands — Temporal status, saga phase,
 * outcome, bytes and parts done — and, once it has ended, its result or failure report.
 *
 * Why it is built this way: phase and outcome come from the workflow's search attributes (via
 * describe), which the server answers without a worker; byte-level progress and the result of a
 * closed upload need a worker to answer a query, so they are fetched with a time limit and left
 * out, with a note, when no worker answers.
 */
import { UploadFailedError, type UploadHandle } from '../../client';
import { UploadOutcome, UploadPhase } from '../../workflows/search-attributes';
import { withUploads } from '../connect';
import { note, out, type CliIo } from '../io';
import { settleWithin } from '../timeout';
import { failureReportLines, labelled, progressLine, resultLines } from '../upload-report';
import { uploadUiLink, webUiBaseUrl } from '../web-ui';

/** Options of the `status` command. */
export interface StatusCommandOptions {
  /** How long to wait for a worker to answer the progress query. @default 5000 ms */
  queryTimeoutMs?: number;
}

/** Runs the command. @throws WorkflowNotFoundError when there is no such upload */
export async function runStatus(tenant: string, uploadId: string, options: StatusCommandOptions, io: CliIo): Promise<void> {
  const timeoutMs = options.queryTimeoutMs ?? 5000;
  await withUploads(io.env, async ({ uploads, config }) => {
    const handle = uploads.getHandle(tenant, uploadId);
    const description = await handle.workflow.describe();
    const attrs = description.typedSearchAttributes;
    const running = description.status.name === 'RUNNING';
    const progress = await settleWithin(handle.progress(), timeoutMs);
    const uiLink = uploadUiLink({ workflowId: handle.workflowId, namespace: config.temporal.namespace, uiUrl: webUiBaseUrl(io.env) });

    out(
      io,
      handle.workflowId,
      ...labelled([
        ['status', description.status.name],
        ['phase', progress?.phase ?? attrs.get(UploadPhase)],
        ['outcome', progress?.outcome ?? attrs.get(UploadOutcome)],
        ['progress', progress ? progressLine(progress) : running ? '(no worker answered the progress query)' : undefined],
        ['started', description.startTime.toISOString()],
        ['closed', description.closeTime?.toISOString()],
        ['web ui', uiLink],
      ]),
    );
    if (!running) await printEnding(handle, timeoutMs, io);
  });
}

/** The result or failure report of a closed upload. */
async function printEnding(handle: UploadHandle, timeoutMs: number, io: CliIo): Promise<void> {
  const ending = await settleWithin(
    handle.result().then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    ),
    timeoutMs,
  );
  if (!ending) return note(io, '(the result could not be read: no worker answered)');
  out(io, '');
  if ('result' in ending) return out(io, ...resultLines(ending.result));
  if (ending.error instanceof UploadFailedError) return out(io, ...failureReportLines(ending.error));
  out(io, `ended: ${ending.error instanceof Error ? ending.error.message : String(ending.error)}`);
}
