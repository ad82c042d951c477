/**
 * `upload-saga upload <source> --bucket B --key K --tenant T …`: start an upload and follow it.
 * The source is a file path on the worker's host or an http(s) URL the worker downloads.
 *
 * Why it is built this way: the request is validated here first (the same `findRequestProblems`
 * the client and the worker use), so a typo exits 2 naming the field before anything connects.
 * The upload itself runs on a worker, durably: Ctrl-C only detaches this command (the upload goes
 * on; `status` and `cancel` find it by tenant + upload id), and re-running with the same
 * `--upload-id` attaches to the running upload instead of starting a second one.
 */
import { stat } from 'node:fs/promises';
import { UploadFailedError } from '../../client';
import { InvalidUploadRequestError } from '../../upload/errors';
import {
  describeSource,
  findRequestProblems,
  uploadWorkflowId,
  type ChecksumAlgorithm,
  type SourceDescriptor,
  type UploadRequest,
} from '../../upload/request';
import type { UploadResult } from '../../upload/outcome';
import { withUploads } from '../connect';
import { CliError, ExitCode } from '../errors';
import { note, out, type CliIo } from '../io';
import { UploadProgressBar } from '../progress-bar';
import { waitForShutdownSignal } from '../signals';
import { sourceFromArgument, sourceName } from '../source-argument';
import { defaultUploadId } from '../upload-id';
import { failureReportLines, resultLines } from '../upload-report';
import { watchUpload } from '../watch-upload';
import { createProgressRedis } from '../../connections';
import { createProgressBus } from '../../progress/bus';
import { uploadUiLink, webUiBaseUrl } from '../web-ui';

/** Options of the `upload` command, as commander parses them. */
export interface UploadCommandOptions {
  bucket: string;
  key: string;
  tenant: string;
  /** @default slug of the file (or URL) name + random suffix (see upload-id.ts); `upload-` + random hex with encryption on */
  uploadId?: string;
  partSize?: number;
  concurrency?: number;
  checksum?: ChecksumAlgorithm;
  contentType?: string;
  meta?: Record<string, string>;
  webhook?: string;
  expectSha256?: string;
  failIfExists?: boolean;
  /** What to do when the tenant's quota is full: fail (default) or wait. */
  onQuota?: 'fail' | 'wait';
  /** With `onQuota: 'wait'`: how long, in milliseconds. */
  quotaWaitDeadline?: number;
  /** `--no-wait` sets this to false: start and return. @default true */
  wait?: boolean;
  /** `--no-progress` sets this to false: no progress bar. @default true */
  progress?: boolean;
}

/**
 * The request the options describe (not yet validated); see source-argument.ts for `source`.
 * `opaqueUploadId`: the default upload id carries no file name — with payload encryption on, the
 * workflow id (`upload:<tenant>:<uploadId>`) is the one part of the request stored in plain text.
 */
export function buildUploadRequest(sourceArgument: string, options: UploadCommandOptions, { opaqueUploadId = false } = {}): UploadRequest {
  const source = sourceFromArgument(sourceArgument);
  return {
    uploadId: options.uploadId ?? (opaqueUploadId ? defaultUploadId('upload', { suffixLength: 12 }) : defaultUploadId(sourceName(source))),
    tenant: options.tenant,
    source,
    destination: { bucket: options.bucket, key: options.key },
    ...(options.partSize !== undefined ? { partSize: options.partSize } : {}),
    ...(options.concurrency !== undefined ? { partConcurrency: options.concurrency } : {}),
    ...(options.checksum ? { checksumAlgorithm: options.checksum } : {}),
    ...(options.contentType ? { contentType: options.contentType } : {}),
    ...(options.meta && Object.keys(options.meta).length ? { metadata: options.meta } : {}),
    ...(options.webhook ? { webhookUrl: options.webhook } : {}),
    ...(options.expectSha256 ? { expectedChecksum: { algorithm: 'SHA256' as const, value: options.expectSha256 } } : {}),
    ...(options.failIfExists ? { failIfExists: true } : {}),
    ...(options.onQuota ? { onQuota: options.onQuota } : {}),
    ...(options.quotaWaitDeadline !== undefined ? { quotaWaitMs: options.quotaWaitDeadline } : {}),
  };
}

/** The size of a file source as this machine sees it, for the bar until the worker reports the real size. */
async function localSize(source: SourceDescriptor): Promise<number | undefined> {
  if (source.type !== 'file') return undefined;
  try {
    const s = await stat(source.path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined; // The file only has to exist on the worker's host.
  }
}

/**
 * Runs the command. Prints the result to stdout.
 * @throws InvalidUploadRequestError (exit 2) before connecting, CliError for a failed or detached upload
 */
export async function runUpload(sourceArgument: string, options: UploadCommandOptions, io: CliIo): Promise<UploadResult | undefined> {
  const request = buildUploadRequest(sourceArgument, options, { opaqueUploadId: Boolean(io.env.UPLOAD_SAGA_ENCRYPTION_KEY) });
  const problems = findRequestProblems(request);
  if (problems.length) throw new InvalidUploadRequestError(problems);
  const fallbackTotal = await localSize(request.source);
  if (fallbackTotal === undefined && request.source.type === 'file') {
    note(io, `note: ${request.source.path} is not a file here; the worker reads it on its own host`);
  }

  return withUploads(io.env, async ({ uploads, config, client }) => {
    const handle = await uploads.start(request);
    const workflowId = uploadWorkflowId(request.tenant, request.uploadId);
    const uiLink = uploadUiLink({ workflowId, namespace: config.temporal.namespace, uiUrl: webUiBaseUrl(io.env) });
    const follow = [
      `  status: upload-saga status ${request.tenant} ${request.uploadId}`,
      `  cancel: upload-saga cancel ${request.tenant} ${request.uploadId}`,
    ];

    if (options.wait === false) {
      out(io, `started ${workflowId}`, `  web ui: ${uiLink}`, ...follow);
      return undefined;
    }
    note(
      io,
      `upload ${describeSource(request.source)} → s3://${request.destination.bucket}/${request.destination.key}`,
      `workflow ${workflowId}`,
    );

    const bar =
      options.progress === false
        ? undefined
        : new UploadProgressBar({ stream: io.stderr, ...(fallbackTotal !== undefined ? { fallbackTotal } : {}) });
    // Ctrl-C detaches: the calls in flight are cancelled before the connection closes.
    const detach = new AbortController();
    const interrupt = waitForShutdownSignal();
    void interrupt.received.then((signal) =>
      detach.abort(new CliError(`\n${signal}: detached; the upload continues on the worker`, ExitCode.Interrupted, follow)),
    );
    // With UPLOAD_SAGA_PROGRESS_REDIS_URL the bar follows the workers' progress on the bus instead of polling.
    const redis = bar && config.progress ? createProgressRedis(config.progress.redisUrl) : undefined;
    const bus = redis ? { bus: createProgressBus({ redis }), tenant: request.tenant, uploadId: request.uploadId } : undefined;
    try {
      const result = await watchUpload(handle, {
        ...(bar ? { sink: bar } : {}),
        stop: detach.signal,
        scope: client,
        ...(bus ? { bus } : {}),
      });
      out(io, ...resultLines(result, { uiLink }));
      return result;
    } catch (error) {
      if (error instanceof UploadFailedError) {
        const [first = '', ...rest] = failureReportLines(error, { workflowId, uiLink });
        throw new CliError(first, ExitCode.Failure, rest, { cause: error });
      }
      throw error;
    } finally {
      interrupt.dispose();
      await bus?.bus.close();
      redis?.disconnect();
    }
  });
}
