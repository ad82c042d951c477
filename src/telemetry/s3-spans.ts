/**
 * A span around every S3 request, as a middleware on the S3 client's stack rather than the
 * `@opentelemetry/instrumentation-aws-sdk` package: that one patches the SDK's modules when they
 * are `require`d, which must happen before anything loads `@aws-sdk/client-s3` — fragile under
 * tsx, vitest and bundlers. A middleware added to the client we construct is explicit and a few lines.
 *
 * Each span is named by operation (`S3.UploadPart`, `S3.CompleteMultipartUpload`…), kind CLIENT,
 * with `rpc.*` attributes, the bucket and the HTTP status. It sits in the `initialize` step, before
 * the SDK's retries, so one span covers an operation with its retries (`aws.retry_attempts`
 * says how many). Object keys, credentials and signed URLs are never recorded. With tracing off
 * the API hands out no-op spans: the cost is a function call per request.
 */
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { S3Client } from '@aws-sdk/client-s3';
import { TRACER_NAME } from './tracing';

/** The span middleware's name in the client's stack. */
export const TRACE_MIDDLEWARE = 'uploadSagaS3Span';

/** Adds the span middleware to `s3` (once; a second call does nothing). Returns `s3`. */
export function traceS3Client<T extends Pick<S3Client, 'middlewareStack'>>(s3: T): T {
  const stack = s3.middlewareStack as unknown as {
    add(mw: unknown, options: { step: string; name: string; priority: string }): void;
    identify(): string[];
  };
  if (stack.identify().some((entry) => entry.startsWith(TRACE_MIDDLEWARE))) return s3;
  stack.add(
    (
      next: (args: unknown) => Promise<{ response: unknown; output: { $metadata?: { attempts?: number } } }>,
      ctx: { commandName?: string },
    ) =>
      async (args: { input?: { Bucket?: unknown } }) => {
        const operation = (ctx.commandName ?? 'Request').replace(/Command$/, '');
        const bucket = typeof args.input?.Bucket === 'string' ? args.input.Bucket : undefined;
        return trace.getTracer(TRACER_NAME).startActiveSpan(
          `S3.${operation}`,
          {
            kind: SpanKind.CLIENT,
            attributes: {
              'rpc.system': 'aws-api',
              'rpc.service': 'S3',
              'rpc.method': operation,
              ...(bucket ? { 'aws.s3.bucket': bucket } : {}),
            },
          },
          async (span) => {
            try {
              const result = await next(args);
              const status = (result.response as { statusCode?: number } | undefined)?.statusCode;
              if (status !== undefined) span.setAttribute('http.response.status_code', status);
              const attempts = result.output?.$metadata?.attempts;
              if (attempts !== undefined) span.setAttribute('aws.retry_attempts', attempts - 1);
              return result;
            } catch (err) {
              const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
              if (e.$metadata?.httpStatusCode !== undefined) span.setAttribute('http.response.status_code', e.$metadata.httpStatusCode);
              // The error's name only (NoSuchUpload, SlowDown…): messages can quote keys.
              span.setStatus({ code: SpanStatusCode.ERROR, message: e.name ?? 'Error' });
              throw err;
            } finally {
              span.end();
            }
          },
        );
      },
    { step: 'initialize', name: TRACE_MIDDLEWARE, priority: 'high' },
  );
  return s3;
}
