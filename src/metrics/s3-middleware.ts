/**
 * Counts failed S3 requests by their classification (src/s3/classify-error.ts), each attempt of
 * the AWS SDK's own retries included, with a middleware on the S3 client: every command of every
 * activity passes through it, so no call site has to remember to count.
 *
 * It sits in the `finalizeRequest` step at low priority, below the SDK's retry middleware (one
 * count per attempt) and above the deserializer (errors already parsed into S3 exceptions).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { classifyS3Error } from '../s3/classify-error';
import type { WorkerMetrics } from './worker-metrics';

/** The middleware's name in the client's stack. */
export const S3_METRICS_MIDDLEWARE = 'uploadSagaS3Metrics';

/**
 * Adds the counting middleware to `s3` (once: a second call replaces the first, so a client
 * shared by workers in one process counts into the newest metrics).
 */
export function instrumentS3Client(s3: S3Client, metrics: Pick<WorkerMetrics, 's3RequestFailed'>): S3Client {
  s3.middlewareStack.remove(S3_METRICS_MIDDLEWARE);
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        // A request this worker aborted (cancellation) is not the store's failure.
        if ((err as Error | undefined)?.name === 'AbortError') throw err;
        const { type, retryable } = classifyS3Error(err);
        metrics.s3RequestFailed(String(context.commandName ?? 'unknown').replace(/Command$/, ''), type, retryable);
        throw err;
      }
    },
    { step: 'finalizeRequest', priority: 'low', name: S3_METRICS_MIDDLEWARE },
  );
  return s3;
}
