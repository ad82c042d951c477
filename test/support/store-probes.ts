/**
 * Probes of what an S3 store does where stores differ: each sends the real requests and answers
 * yes or no. test/s3-store-capabilities.test.ts runs them against the run's store and compares
 * with docs/reference/store-capabilities.md, so the table says what the stores were seen to do.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListPartsCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  PutBucketCorsCommand,
  PutBucketLifecycleConfigurationCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type LifecycleRule,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { checksumField, partChecksum } from '../../src/s3/checksums';
import { combineBase64Crcs } from '../../src/s3/crc-combine';
import type { S3StoreKind } from '../../src/embedded';
import { codeSpans, readRepoFile, tables } from './markdown';

const MiB = 1024 * 1024;

/** The capabilities probed, by the id the table's first column names. */
export const STORE_CAPABILITIES = [
  'part-copy',
  'checksummed-part-copy',
  'checksummed-part-copy-of-checksummed-source',
  'part-copy-if-match',
  'full-object-crc',
  'full-object-crc-refused',
  'list-parts-checksums',
  'if-none-match-put',
  'if-none-match-complete',
  'unequal-parts',
  'lifecycle',
  'lifecycle-abort-incomplete',
  'cors-any-origin',
  'bucket-cors',
] as const;
export type StoreCapability = (typeof STORE_CAPABILITIES)[number];

interface ProbeContext {
  s3: S3Client;
  bucket: string;
  /** A fresh key under the probes' prefix. */
  key(name: string): string;
}

const refused = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e ?? new Error('refused'),
  );

async function withUpload<T>(
  ctx: ProbeContext,
  key: string,
  create: { ChecksumAlgorithm?: 'CRC32C'; ChecksumType?: 'FULL_OBJECT' },
  body: (uploadId: string) => Promise<T>,
): Promise<T> {
  const { UploadId } = await ctx.s3.send(new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, ...create }));
  try {
    return await body(UploadId!);
  } finally {
    await ctx.s3.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId })).catch(() => undefined);
  }
}

/** Stores `body` as a copy source; with `checksum`, the object carries that additional checksum, else a SHA-1 one. */
async function sourceObject(ctx: ProbeContext, body: Buffer, checksum: 'CRC32C' | 'SHA1' = 'SHA1'): Promise<{ key: string; etag: string }> {
  const key = ctx.key('copy-source');
  const { ETag } = await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: body, ChecksumAlgorithm: checksum }));
  return { key, etag: ETag! };
}

/** Whether UploadPartCopy of the second 5 MiB of `source` into a CRC32C upload is accepted and reports that range's CRC32C. */
async function copiedRangeCrcIsTheRanges(ctx: ProbeContext, sourceChecksum: 'CRC32C' | 'SHA1'): Promise<boolean> {
  const body = randomBytes(10 * MiB + 10);
  const source = await sourceObject(ctx, body, sourceChecksum);
  const key = ctx.key('checksummed-part-copy');
  return withUpload(ctx, key, { ChecksumAlgorithm: 'CRC32C' }, async (UploadId) => {
    const copied = await ctx.s3
      .send(
        new UploadPartCopyCommand({
          Bucket: ctx.bucket,
          Key: key,
          UploadId,
          PartNumber: 2,
          CopySource: `${ctx.bucket}/${source.key}`,
          CopySourceRange: `bytes=${5 * MiB}-${10 * MiB - 1}`,
        }),
      )
      .catch(() => undefined);
    return copied?.CopyPartResult?.ChecksumCRC32C === (await partChecksum('CRC32C', body.subarray(5 * MiB, 10 * MiB)));
  });
}

/** Sends `parts` with CRC32C checksums into an upload created with `create`; returns the completed parts. */
async function sendParts(ctx: ProbeContext, key: string, uploadId: string, parts: readonly Buffer[]): Promise<CompletedPart[]> {
  const completed: CompletedPart[] = [];
  for (const [i, body] of parts.entries()) {
    const checksum = await partChecksum('CRC32C', body);
    const sent = await ctx.s3.send(
      new UploadPartCommand({
        Bucket: ctx.bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: i + 1,
        Body: body,
        ChecksumAlgorithm: 'CRC32C',
        ChecksumCRC32C: checksum,
      }),
    );
    completed.push({ PartNumber: i + 1, ETag: sent.ETag, ChecksumCRC32C: checksum });
  }
  return completed;
}

const PROBES: Record<StoreCapability, (ctx: ProbeContext) => Promise<boolean>> = {
  /** UploadPartCopy of a range into an upload without checksums; the part's ETag is the range's MD5. */
  'part-copy': async (ctx) => {
    const body = randomBytes(5 * MiB + 10);
    const source = await sourceObject(ctx, body);
    const key = ctx.key('part-copy');
    return withUpload(ctx, key, {}, async (UploadId) => {
      const copied = await ctx.s3.send(
        new UploadPartCopyCommand({
          Bucket: ctx.bucket,
          Key: key,
          UploadId,
          PartNumber: 1,
          CopySource: `${ctx.bucket}/${source.key}`,
          CopySourceRange: `bytes=0-${5 * MiB - 1}`,
          CopySourceIfMatch: source.etag,
        }),
      );
      return (
        copied.CopyPartResult?.ETag?.replace(/"/g, '') ===
        createHash('md5')
          .update(body.subarray(0, 5 * MiB))
          .digest('hex')
      );
    });
  },
  /** UploadPartCopy of a range of an object without a CRC32C into an upload created with CRC32C is accepted, and the store reports the range's CRC32C. */
  'checksummed-part-copy': (ctx) => copiedRangeCrcIsTheRanges(ctx, 'SHA1'),
  /** The same when the source object carries a CRC32C of its own (as every object upload-saga stores does). */
  'checksummed-part-copy-of-checksummed-source': (ctx) => copiedRangeCrcIsTheRanges(ctx, 'CRC32C'),
  /** UploadPartCopy whose CopySourceIfMatch no longer holds is refused with 412. */
  'part-copy-if-match': async (ctx) => {
    const source = await sourceObject(ctx, randomBytes(1024));
    const key = ctx.key('part-copy-if-match');
    return withUpload(ctx, key, {}, async (UploadId) => {
      const err = await refused(
        ctx.s3.send(
          new UploadPartCopyCommand({
            Bucket: ctx.bucket,
            Key: key,
            UploadId,
            PartNumber: 1,
            CopySource: `${ctx.bucket}/${source.key}`,
            CopySourceRange: 'bytes=0-9',
            CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"',
          }),
        ),
      );
      return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode === 412;
    });
  },
  /** A FULL_OBJECT CRC32C multipart upload completes with the full-object CRC, which HeadObject reports as FULL_OBJECT. */
  'full-object-crc': async (ctx) => {
    const parts = [randomBytes(5 * MiB), randomBytes(1234)];
    const key = ctx.key('full-object-crc');
    const expected = combineBase64Crcs(
      'CRC32C',
      await Promise.all(parts.map(async (p) => ({ checksum: await partChecksum('CRC32C', p), length: p.length }))),
    );
    const completedOk = await withUpload(ctx, key, { ChecksumAlgorithm: 'CRC32C', ChecksumType: 'FULL_OBJECT' }, async (UploadId) => {
      const completed = await sendParts(ctx, key, UploadId, parts);
      const done = await ctx.s3
        .send(
          new CompleteMultipartUploadCommand({
            Bucket: ctx.bucket,
            Key: key,
            UploadId,
            MultipartUpload: { Parts: completed },
            ChecksumCRC32C: expected,
            ChecksumType: 'FULL_OBJECT',
          }),
        )
        .catch(() => undefined);
      return done !== undefined;
    });
    if (!completedOk) return false;
    const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key, ChecksumMode: 'ENABLED' }));
    return head.ChecksumType === 'FULL_OBJECT' && head[checksumField('CRC32C')] === expected;
  },
  /** CompleteMultipartUpload with a full-object CRC that the parts do not make is refused, and no object is created. */
  'full-object-crc-refused': async (ctx) => {
    const parts = [randomBytes(5 * MiB), randomBytes(1234)];
    const key = ctx.key('full-object-crc-refused');
    return withUpload(ctx, key, { ChecksumAlgorithm: 'CRC32C', ChecksumType: 'FULL_OBJECT' }, async (UploadId) => {
      const completed = await sendParts(ctx, key, UploadId, parts);
      const err = await refused(
        ctx.s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: ctx.bucket,
            Key: key,
            UploadId,
            MultipartUpload: { Parts: completed },
            ChecksumCRC32C: await partChecksum('CRC32C', Buffer.from('not these bytes')),
            ChecksumType: 'FULL_OBJECT',
          }),
        ),
      );
      const exists = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key })).then(
        () => true,
        () => false,
      );
      return err !== undefined && !exists;
    });
  },
  /** ListParts lists each part's additional checksum. */
  'list-parts-checksums': async (ctx) => {
    const parts = [randomBytes(5 * MiB), randomBytes(10)];
    const key = ctx.key('list-parts-checksums');
    return withUpload(ctx, key, { ChecksumAlgorithm: 'CRC32C' }, async (UploadId) => {
      const completed = await sendParts(ctx, key, UploadId, parts);
      const listed = await ctx.s3.send(new ListPartsCommand({ Bucket: ctx.bucket, Key: key, UploadId }));
      return completed.every((c, i) => listed.Parts?.[i]?.ChecksumCRC32C === c.ChecksumCRC32C);
    });
  },
  /** PutObject with If-None-Match: * onto an existing key is refused with 412 and leaves the object. */
  'if-none-match-put': async (ctx) => {
    const key = ctx.key('if-none-match-put');
    await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'first' }));
    const err = await refused(ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'second', IfNoneMatch: '*' })));
    const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }));
    return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode === 412 && head.ContentLength === 5;
  },
  /** CompleteMultipartUpload with If-None-Match: * onto an existing key is refused with 412. */
  'if-none-match-complete': async (ctx) => {
    const key = ctx.key('if-none-match-complete');
    await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'first' }));
    return withUpload(ctx, key, { ChecksumAlgorithm: 'CRC32C' }, async (UploadId) => {
      const completed = await sendParts(ctx, key, UploadId, [randomBytes(10)]);
      const err = await refused(
        ctx.s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: ctx.bucket,
            Key: key,
            UploadId,
            MultipartUpload: { Parts: completed },
            IfNoneMatch: '*',
          }),
        ),
      );
      return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode === 412;
    });
  },
  /** A multipart upload whose parts but the last differ in size (6 MiB, then 5 MiB) completes. */
  'unequal-parts': async (ctx) => {
    const key = ctx.key('unequal-parts');
    return withUpload(ctx, key, { ChecksumAlgorithm: 'CRC32C' }, async (UploadId) => {
      const completed = await sendParts(ctx, key, UploadId, [randomBytes(6 * MiB), randomBytes(5 * MiB), randomBytes(10)]);
      const done = await refused(
        ctx.s3.send(new CompleteMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId, MultipartUpload: { Parts: completed } })),
      );
      return done === undefined;
    });
  },
  /** PutBucketLifecycleConfiguration with an expiration rule is accepted. */
  lifecycle: (ctx) => lifecycleAccepted(ctx.s3, { Expiration: { Days: 7 } }),
  /** PutBucketLifecycleConfiguration with an AbortIncompleteMultipartUpload rule is accepted. */
  'lifecycle-abort-incomplete': (ctx) => lifecycleAccepted(ctx.s3, { AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } }),
  /** A browser preflight for a presigned PUT from any origin, on a new bucket without a CORS configuration, is allowed. */
  'cors-any-origin': (ctx) => inOwnBucket(ctx.s3, (bucket) => preflightAllowed(ctx.s3, bucket, 'cors')),
  /** PutBucketCors is accepted, and a preflight from the origin it allows then is. */
  'bucket-cors': (ctx) =>
    inOwnBucket(ctx.s3, async (bucket) => {
      const err = await refused(ctx.s3.send(new PutBucketCorsCommand({ Bucket: bucket, CORSConfiguration: BROWSER_UPLOAD_CORS })));
      return err === undefined && (await preflightAllowed(ctx.s3, bucket, 'cors'));
    }),
};

/** Runs `body` with a fresh empty bucket, deleted afterwards: bucket settings probed there touch no other test. */
async function inOwnBucket<T>(s3: S3Client, body: (bucket: string) => Promise<T>): Promise<T> {
  const bucket = `probe-${randomBytes(6).toString('hex')}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  try {
    return await body(bucket);
  } finally {
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  }
}

/** Whether the store accepts a lifecycle configuration of one rule with `action`. */
function lifecycleAccepted(s3: S3Client, action: Omit<LifecycleRule, 'ID' | 'Status' | 'Filter'>): Promise<boolean> {
  return inOwnBucket(s3, async (bucket) => {
    const rule: LifecycleRule = { ID: 'probe', Status: 'Enabled', Filter: { Prefix: 'probe/' }, ...action };
    const err = await refused(
      s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: [rule] } })),
    );
    return err === undefined;
  });
}

/** The CORS configuration browsers need to PUT presigned parts from any origin and read their ETags. */
export const BROWSER_UPLOAD_CORS = {
  CORSRules: [{ AllowedOrigins: ['*'], AllowedMethods: ['PUT', 'POST', 'GET', 'HEAD'], AllowedHeaders: ['*'], ExposeHeaders: ['ETag'] }],
};

/** Whether a browser on another origin may PUT to a presigned URL of `key` in `bucket`. */
async function preflightAllowed(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 60 });
  const answer = await fetch(url, {
    method: 'OPTIONS',
    headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'PUT' },
  });
  await answer.arrayBuffer();
  const allowed = answer.headers.get('access-control-allow-origin');
  return answer.ok && (allowed === '*' || allowed === 'https://app.example');
}

/** Probes `capability` on the store behind `s3`, with objects under `prefix` in `bucket`. */
export function probeStore(capability: StoreCapability, s3: S3Client, bucket: string, prefix: string): Promise<boolean> {
  let n = 0;
  return PROBES[capability]({ s3, bucket, key: (name) => `${prefix}${name}-${++n}-${randomBytes(4).toString('hex')}` });
}

/** The store's column of docs/reference/store-capabilities.md: capability id → yes (true) or no (false). */
export function documentedCapabilities(store: S3StoreKind): Record<string, boolean> {
  const table = tables(readRepoFile('docs/reference/store-capabilities.md')).find((t) => t.heading === 'The table');
  if (!table) throw new Error('docs/reference/store-capabilities.md has no table under "The table"');
  const column = table.header.indexOf(store === 'minio' ? 'MinIO' : 'versitygw');
  const answers: Record<string, boolean> = {};
  for (const row of table.rows) {
    const [id] = codeSpans(row[0] ?? '');
    const cell = row[column];
    if (!id || (cell !== 'yes' && cell !== 'no')) throw new Error(`store-capabilities.md: row "${row.join(' | ')}" is not \`id\` | yes/no`);
    answers[id] = cell === 'yes';
  }
  return answers;
}
