/**
 * join-partials: fills a final upload's multipart upload from its partials' stored objects, part by
 * part as {@link planJoin} cuts them — UploadPartCopy (server-side) for stretches of 5 MiB and
 * more, a read through the worker for shorter ones, assembled into one part. Parts are written
 * {@link JOIN_CONCURRENCY} at a time (a final of four 32 MiB partials is four copies S3 makes at
 * once, as tusd does), and the answer lists them in part order whatever order they finished in.
 *
 * Idempotent: every attempt writes the same part numbers with the same bytes (a retry overwrites),
 * and every read or copy is conditional on the partial's ETag, so a partial changed or deleted
 * since it was claimed fails the step for good instead of joining other bytes.
 *
 * With `verify` (finals started under the patch `tus-concat-join-verifies`), the activity ends
 * with the verify step's own check of the parts it wrote (ListParts: exactly these parts, these
 * ETags, the declared size, within the tenant's maximum) and answers what verify answers, so the
 * final's saga goes from the join to the merge without a verify step between them: one activity
 * trip less between the last byte and the client's answer, the same look before the pivot.
 */
import { GetObjectCommand, UploadPartCommand, UploadPartCopyCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { planJoin, type JoinSource, type SourceRange } from '../upload/concatenation';
import { GatewayUploadFailureType, type GatewayPart } from '../upload/gateway-upload';
import { s3Failure, isS3Error } from '../s3/classify-error';
import { copySourceOf } from './sources/s3-object';
import { runPool } from './worker-pool';
import type { UploadActivityDeps } from './deps';
import { verifyGatewayUpload, type VerifyGatewayUploadResult } from './gateway-upload';

/** Parts of a final written at once (copies S3 makes, or parts the worker assembles, at most twice the minimum part size each). */
export const JOIN_CONCURRENCY = 8;

/** What {@link joinPartialsActivity} joins. */
export interface JoinPartialsInput {
  bucket: string;
  key: string;
  multipartUploadId: string;
  /** The partials, in the order the final names them. */
  partials: JoinSource[];
  /** Verify the parts written (as the verify step does) and answer its result in `verified`. */
  verify?: {
    /** The tenant's maximum upload size. */
    maxLength: number;
    /** The final's size (the partials' sizes added up). */
    length?: number;
  };
}

/** What {@link joinPartialsActivity} wrote. */
export interface JoinPartialsResult {
  /** The final's parts, in order, with the ETags S3 answered. */
  parts: GatewayPart[];
  /** Bytes copied server-side, and bytes read through the worker. */
  copiedBytes: number;
  assembledBytes: number;
  /** With `verify`: what the verify step answers for these parts. */
  verified?: VerifyGatewayUploadResult;
}

/** The join-partials activity, bound to its dependencies. */
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
    const parts: GatewayPart[] = new Array<GatewayPart>(plan.length);
    let copiedBytes = 0;
    let assembledBytes = 0;
    let partsDone = 0;
    const writePart = async (partNumber: number): Promise<string | undefined> => {
      const part = plan[partNumber - 1]!;
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
          copiedBytes += range.end - range.start;
          return answer.CopyPartResult?.ETag;
        } catch (err) {
          throw changed(range, err) ?? s3Failure(`UploadPartCopy of ${describe(range)} into ${where}`, err);
        }
      }
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
          { abortSignal: signal },
        );
        assembledBytes += body.length;
        return answer.ETag;
      } catch (err) {
        throw s3Failure(`UploadPart ${partNumber} of ${where}`, err);
      }
    };
    await runPool(plan.keys(), JOIN_CONCURRENCY, async (i) => {
      const partNumber = i + 1;
      const etag = await writePart(partNumber);
      if (!etag) throw new Error(`part ${partNumber} of ${where}: S3 answered no ETag`);
      parts[i] = { partNumber, etag };
      ctx.heartbeat({ partsDone: ++partsDone });
    });
    if (!input.verify) return { parts, copiedBytes, assembledBytes };
    const verified = await verifyGatewayUpload(
      deps,
      {
        bucket: input.bucket,
        key: input.key,
        multipartUploadId: input.multipartUploadId,
        maxLength: input.verify.maxLength,
        expected: { kind: 'client-parts', parts, ...(input.verify.length !== undefined ? { length: input.verify.length } : {}) },
      },
      signal,
    );
    return { parts, copiedBytes, assembledBytes, verified };
  };
}
