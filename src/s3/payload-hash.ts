/**
 * EXPERIMENT (temporary): variants of the SigV4 payload hash, switched by UPLOAD_SAGA_EXP_PAYLOAD.
 */
import { subtle } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';

const NAME = 'uploadSagaPayloadHash';

export function hashPayloadsOffThread<T extends Pick<S3Client, 'middlewareStack'>>(s3: T): T {
  const mode = process.env.UPLOAD_SAGA_EXP_PAYLOAD;
  if (!mode) return s3;
  const stack = s3.middlewareStack as unknown as {
    add(mw: unknown, options: { step: string; name: string; priority: string }): void;
  };
  stack.add(
    (next: (args: unknown) => Promise<unknown>) =>
      async (args: { request: { headers: Record<string, string>; body: unknown } }) => {
        const body = args.request.body;
        if (ArrayBuffer.isView(body) && body.byteLength >= 1024 * 1024) {
          if (mode === 'unsigned') args.request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
          else if (mode === 'subtle') args.request.headers['x-amz-content-sha256'] = Buffer.from(await subtle.digest('SHA-256', body)).toString('hex');
        }
        return next(args);
      },
    { step: 'build', name: NAME, priority: 'low' },
  );
  return s3;
}
