/**
 * `upload-saga upload <dir|files…> --prefix P --bucket B --tenant T` (or `--manifest file.jsonl`):
 * many files as ONE batch (a durable orchestration on the worker), with one progress bar for the
 * batch and a summary per outcome at the end.
 *
 * As for single uploads: the request is validated here first (exit 2 before connecting); Ctrl-C
 * detaches (the batch goes on; re-running with the same `--batch-id` attaches to it).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { BatchClient, BatchFailedError } from '../../batch-client';
import { findBatchProblems } from '../../batch/batch-request';
import type { BatchFileFailure, BatchMode, BatchProgress, BatchRequest, BatchResult, BatchSource } from '../../batch/batch-types';
import { batchWorkflowId } from '../../batch/batch-types';
import type { ChecksumAlgorithm } from '../../upload/request-types';
import { BatchProgressBar } from '../batch-progress-bar';
import { withUploads } from '../connect';
import { CliError, ExitCode, UsageError } from '../errors';
import { formatBytes } from '../format';
import { note, out, type CliIo } from '../io';
import { waitForShutdownSignal } from '../signals';
import { defaultUploadId } from '../upload-id';

/** Options of `upload` that make it a batch. */
export interface UploadBatchOptions {
  bucket: string;
  tenant: string;
  prefix?: string;
  manifest?: string;
  include?: string[];
  exclude?: string[];
  mode?: BatchMode;
  batchId?: string;
  contentType?: string;
  checksum?: ChecksumAlgorithm;
  partSize?: number;
  wait?: boolean;
  progress?: boolean;
}

/** The batch the arguments describe (not yet validated): a directory, a list of files, or a manifest. */
export async function buildBatchRequest(sources: string[], options: UploadBatchOptions): Promise<BatchRequest> {
  let source: BatchSource;
  if (options.manifest) {
    if (sources.length) throw new UsageError('give either --manifest or source paths, not both');
    source = { type: 'manifest', path: path.resolve(options.manifest) };
  } else if (
    sources.length === 1 &&
    (await stat(sources[0]!).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  ) {
    source = {
      type: 'directory',
      path: path.resolve(sources[0]!),
      ...(options.include?.length ? { include: options.include } : {}),
      ...(options.exclude?.length ? { exclude: options.exclude } : {}),
    };
  } else {
    if (options.include?.length || options.exclude?.length) throw new UsageError('--include and --exclude filter a directory source');
    source = { type: 'list', paths: sources.map((s) => path.resolve(s)) };
  }
  const name = source.type === 'list' ? 'files' : path.basename(source.path);
  return {
    batchId: options.batchId ?? defaultUploadId(`batch-${name}`),
    tenant: options.tenant,
    source,
    destination: { bucket: options.bucket, prefix: options.prefix ?? '' },
    ...(options.mode ? { mode: options.mode } : {}),
    ...(options.contentType ? { contentType: options.contentType } : {}),
    ...(options.checksum ? { checksumAlgorithm: options.checksum } : {}),
    ...(options.partSize !== undefined ? { partSize: options.partSize } : {}),
  };
}

/** The end-of-batch summary: one line per outcome, failures grouped by type (a few paths each). */
export function batchSummaryLines(summary: BatchProgress & { failures: BatchFileFailure[] }, shownPerType = 5): string[] {
  const lines = [`stored: ${summary.filesDone} files, ${formatBytes(summary.bytesDone)}`];
  if (summary.filesFailed === 0) return lines;
  lines.push(`failed: ${summary.filesFailed} files`);
  const byType = new Map<string, BatchFileFailure[]>();
  for (const f of summary.failures) byType.set(f.type, [...(byType.get(f.type) ?? []), f]);
  for (const [type, failures] of byType) {
    lines.push(`  ${type}: ${failures.length}${summary.failures.length < summary.filesFailed ? '+' : ''}`);
    for (const f of failures.slice(0, shownPerType)) lines.push(`    ${f.path}: ${f.message}`);
    if (failures.length > shownPerType) lines.push(`    … and ${failures.length - shownPerType} more`);
  }
  return lines;
}

/**
 * Runs the batch and prints its summary to stdout.
 * @throws InvalidBatchRequestError-like UsageError (exit 2) before connecting, CliError for a failed batch
 */
export async function runUploadBatch(sources: string[], options: UploadBatchOptions, io: CliIo): Promise<BatchResult | undefined> {
  const request = await buildBatchRequest(sources, options);
  const problems = findBatchProblems(request);
  if (problems.length)
    throw new UsageError(
      'invalid batch request:',
      problems.map((p) => `  - ${p.field}: ${p.message}`),
    );
  const workflowId = batchWorkflowId(request.tenant, request.batchId);
  return withUploads(io.env, async ({ client, config }) => {
    const batches = new BatchClient({ client, taskQueue: config.temporal.taskQueue });
    const handle = await batches.start(request);
    if (options.wait === false) {
      out(io, `started ${workflowId}`);
      return undefined;
    }
    note(
      io,
      `batch ${request.batchId} → s3://${request.destination.bucket}/${request.destination.prefix} (${request.mode ?? 'independent'})`,
      `workflow ${workflowId}`,
    );
    const bar = options.progress === false ? undefined : new BatchProgressBar({ stream: io.stderr });
    const interrupt = waitForShutdownSignal();
    let polling = true;
    const poll = (async () => {
      while (polling) {
        try {
          bar?.update(await handle.progress());
        } catch {
          // Between runs (continue-as-new) or before the first workflow task: ask again.
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
    try {
      const detached = interrupt.received.then((signal) => {
        throw new CliError(`\n${signal}: detached; the batch continues on the worker`, ExitCode.Interrupted, [`  workflow ${workflowId}`]);
      });
      const result = await Promise.race([handle.result(), detached]);
      polling = false;
      await poll;
      if (bar) {
        bar.update({ ...result, phase: 'done', run: 0 });
        bar.stop();
      }
      out(
        io,
        `${result.outcome}: batch ${request.batchId} → s3://${result.bucket}/${result.prefix}`,
        ...batchSummaryLines({ ...result, phase: 'done', run: 0 }),
      );
      if (result.outcome === 'partial') throw new CliError(`${result.filesFailed} files failed (listed above)`, ExitCode.Failure);
      return result;
    } catch (error) {
      polling = false;
      await poll;
      bar?.stop();
      if (error instanceof BatchFailedError) {
        throw new CliError(`${error.outcome}: ${error.message}`, ExitCode.Failure, error.summary ? batchSummaryLines(error.summary) : [], {
          cause: error,
        });
      }
      throw error;
    } finally {
      interrupt.dispose();
    }
  });
}
