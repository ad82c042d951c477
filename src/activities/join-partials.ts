/**
 * join-partials: fills a final upload's multipart upload from its partials' stored objects, part by
 * part as {@link planJoin} cuts them — UploadPartCopy (server-side) for stretches of 5 MiB and
 * more, a read through the worker for shorter ones, assembled into one part.
 *
 * Idempotent: every attempt writes the same part numbers with the same bytes (a retry overwrites),
 * and every read or copy is conditional on the partial's ETag, so a partial changed or deleted
 * since it was claimed fails the step for good instead of joining other bytes.
 */
import { GetObjectCommand, UploadPartCommand, UploadPartCopyCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { planJoin, type JoinSource, type SourceRange } from '../upload/concatenation';
import { GatewayUploadFailureType, type GatewayPart } from '../upload/gateway-upload';
import { s3Failure, isS3Error } from '../s3/classify-error';
import { copySourceOf } from './sources/s3-object';
import type { UploadActivityDeps } from './deps';

export interface JoinPartialsInput {
  bucket: string;
  key: string;
  multipartUploadId: string;
  /** The partials, in the order the final names them. */
  partials: JoinSource[];
}

export interface JoinPartialsResult {
  /** The final's parts, in order, with the ETags S3 answered. */
  parts: GatewayPart[];
  /** Bytes copied server-side, and bytes read through the worker. */
  copiedBytes: number;
  assembledBytes: number;
}

export function joinPartialsActivity(deps: UploadActivityDeps) {
  return async function joinPartials(input: JoinPartialsInput): Promise<JoinPartialsResult> {
    const ctx = Context.current();
    const signal = ctx.cancellationSignal;
    const where = `s3://${input.bucket}/${input.key}`;
    const target = { Bucket: input.bucket, Key: input.key, UploadId: input.multipartUploadId };
    const describe = (range: SourceRange) => `s3://${input.bucket}/${input.partials[range.source]!.key} bytes ${range.start}–${range.end}`;
    const changed = (range: SourceRange, err: unknown) =>
      isS3Error(err, 'PreconditionFailed', 'Http412', 'NoSuchKey')
        ? ApplicationFailure.create({
            type: GatewayUploadFailureType.PartsMismatch,
            message: `partial upload ${input.partials[range.source]!.uploadId} is no longer the object it was when claimed (${describe(range)})`,
            nonRetryable: true,
          })
        : undefined;
    const plan = planJoin(input.partials.map((p) => p.size));
    const parts: GatewayPart[] = [];
    let copiedBytes = 0;
    let assembledBytes = 0;
    for (const [i, part] of plan.entries()) {
      const partNumber = i + 1;
      let etag: string | undefined;
      if (part.kind === 'copy') {
        const { range } = part;
        const source = input.partials[range.source]!;
        try {
          const answer = await deps.s3.send(
            new UploadPartCopyCommand({
              ...target,
              PartNumber: partNumber,
              CopySource: copySourceOf({ bucket: input.bucket, key: source.key }),
              CopySourceRange: `bytes=${range.start}-${range.end - 1}`,
              CopySourceIfMatch: source.etag,
            }),
            { abortSignal: signal },
          );
          etag = answer.CopyPartResult?.ETag;
        } catch (err) {
          throw changed(range, err) ?? s3Failure(`UploadPartCopy of ${describe(range)} into ${where}`, err);
        }
        copiedBytes += range.end - range.start;
      } else {
        const chunks: Uint8Array[] = [];
        for (const range of part.ranges) {
          const source = input.partials[range.source]!;
          try {
            const answer = await deps.s3.send(
              new GetObjectCommand({
                Bucket: input.bucket,
                Key: source.key,
                Range: `bytes=${range.start}-${range.end - 1}`,
                IfMatch: source.etag,
              }),
              { abortSignal: signal },
            );
            chunks.push((await answer.Body?.transformToByteArray()) ?? new Uint8Array());
          } catch (err) {
            throw changed(range, err) ?? s3Failure(`GetObject of ${describe(range)}`, err);
          }
        }
        const body = Buffer.concat(chunks);
        try {
          const answer = await deps.s3.send(
            new UploadPartCommand({ ...target, PartNumber: partNumber, Body: body, ContentLength: body.length }),
            {
              abortSignal: signal,
            },
          );
          etag = answer.ETag;
        } catch (err) {
          throw s3Failure(`UploadPart ${partNumber} of ${where}`, err);
        }
        assembledBytes += body.length;
      }
      if (!etag) throw new Error(`part ${partNumber} of ${where}: S3 answered no ETag`);
      parts.push({ partNumber, etag });
      ctx.heartbeat({ partsDone: partNumber });
    }
    return { parts, copiedBytes, assembledBytes };
  };
}
