/**
 * S3-object sources: `{ type: 's3', bucket, key, versionId?, profile? }`.
 *
 * Two ways to move the bytes, decided by where the object lives:
 * - In the worker's own store (no `profile`): the source offers {@link ServerSideCopy}. Each part is
 *   an UploadPartCopy of a byte range (`CopySourceRange`), conditional on the ETag seen when the
 *   source was opened (`CopySourceIfMatch`): no byte passes through the worker, and an object
 *   overwritten during the upload fails it with `SourceChanged` instead of mixing two versions.
 * - Behind another endpoint or other credentials (`profile`, configured on the worker only, see
 *   `UPLOAD_SAGA_S3_SOURCE_PROFILES`): a plain {@link ByteSource}, one ranged GET per part with
 *   `If-Match` on the same ETag and a checked `Content-Range`, so parts load in parallel, a retry
 *   starts at any part, and the normal UploadPart path (with per-part checksums) applies.
 *
 * Both read ranges with GET too (verify's re-read uses it). The identity is the object's ETag (and
 * version id): `stat()` asks again, so a changed object is noticed between steps as well.
 * Credentials stay in the injected S3 clients; descriptions name the bucket, key and profile only.
 */
import { GetObjectCommand, HeadObjectCommand, UploadPartCopyCommand, type S3Client } from '@aws-sdk/client-s3';
import { permanentFailure, transientFailure, UploadFailureType } from '../../upload/errors';
import type { S3ObjectSource, SourceDescriptor } from '../../upload/request';
import { isS3Error } from '../../s3/classify-error';
import type { ByteSource, CopiedPart, PartCopyTarget, ServerSideCopy, SourceResolver, SourceStat } from './byte-source';

/** Options of {@link S3ObjectResolver}. */
export interface S3ObjectResolverOptions {
  /** The worker's own store: the one uploads write to. Sources without a profile are read (and copied) here. */
  store: S3Client;
  /**
   * Other stores sources may come from, by profile name (a request names the profile, never the
   * credentials). Built by the worker from `UPLOAD_SAGA_S3_SOURCE_PROFILES`.
   * @default {} (only the worker's own store)
   */
  profiles?: Readonly<Record<string, S3Client>>;
}

interface ObjectIdentity {
  size: number;
  etag: string;
  versionId?: string;
}

/** `CopySource` for UploadPartCopy: `bucket/key`, URL-encoded segment by segment, plus the version. */
export function copySourceOf(source: Pick<S3ObjectSource, 'bucket' | 'key' | 'versionId'>): string {
  const path = `${source.bucket}/${source.key.split('/').map(encodeURIComponent).join('/')}`;
  return source.versionId ? `${path}?versionId=${encodeURIComponent(source.versionId)}` : path;
}

function describe(source: S3ObjectSource): string {
  return `S3 object s3://${source.bucket}/${source.key}${source.versionId ? ` (version ${source.versionId})` : ''}${source.profile ? ` via profile "${source.profile}"` : ''}`;
}

/** A failure of a request to the source store, as a source failure (not a destination `S3.*` one). */
function sourceFailure(description: string, operation: string, err: unknown): Error {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const code = err instanceof Error ? err.name : 'Error';
  const message = `${operation} of ${description} failed: ${code}${status ? ` (HTTP ${status})` : ''}: ${err instanceof Error ? err.message : String(err)}`;
  if (isS3Error(err, 'NoSuchKey', 'NoSuchBucket', 'NoSuchVersion', 'NotFound', 'Http404')) {
    return permanentFailure(UploadFailureType.SourceNotFound, `${description} does not exist (${code})`);
  }
  if (isS3Error(err, 'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Http403')) {
    return permanentFailure(
      UploadFailureType.SourceNotAllowed,
      `${description} cannot be read with the credentials configured for it: ${code}`,
    );
  }
  // 5xx, throttling, timeouts, resets: the store may come back.
  if (status === undefined || status >= 500 || status === 429 || status === 408)
    return transientFailure(UploadFailureType.SourceUnreadable, message);
  return permanentFailure(UploadFailureType.SourceUnreadable, message);
}

function versionOf(identity: ObjectIdentity): string {
  return `${identity.size}:${identity.etag}:${identity.versionId ?? ''}`;
}

async function head(client: S3Client, source: S3ObjectSource, description: string): Promise<ObjectIdentity> {
  let answer;
  try {
    answer = await client.send(new HeadObjectCommand({ Bucket: source.bucket, Key: source.key, VersionId: source.versionId }));
  } catch (err) {
    throw sourceFailure(description, 'HeadObject', err);
  }
  if (answer.ContentLength === undefined || !answer.ETag) {
    throw permanentFailure(
      UploadFailureType.SourceUnreadable,
      `${description}: HeadObject returned no size or no ETag; the upload needs both`,
    );
  }
  if (answer.DeleteMarker) throw permanentFailure(UploadFailureType.SourceNotFound, `${description} is a delete marker`);
  return { size: answer.ContentLength, etag: answer.ETag, ...(answer.VersionId ? { versionId: answer.VersionId } : {}) };
}

class S3ObjectByteSource implements ByteSource {
  readonly description: string;
  readonly serverSideCopy?: ServerSideCopy;

  constructor(
    private readonly client: S3Client,
    private readonly source: S3ObjectSource,
    private readonly identity: ObjectIdentity,
    sameStore: boolean,
  ) {
    this.description = describe(source);
    if (sameStore) this.serverSideCopy = { copyPart: (target, range, signal) => this.copyPart(target, range, signal) };
  }

  async stat(): Promise<SourceStat> {
    const now = await head(this.client, this.source, this.description);
    return { size: now.size, version: versionOf(now) };
  }

  private changed(why: string): Error {
    return permanentFailure(UploadFailureType.SourceChanged, `${this.description} changed during the upload: ${why}`);
  }

  /** The version read: the one inspected (its ETag is the precondition of every request). */
  private get versionId(): string | undefined {
    return this.source.versionId ?? this.identity.versionId;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const range = `bytes=${offset}-${offset + length - 1}`;
    let answer;
    try {
      answer = await this.client.send(
        new GetObjectCommand({
          Bucket: this.source.bucket,
          Key: this.source.key,
          VersionId: this.versionId,
          Range: range,
          IfMatch: this.identity.etag,
        }),
      );
    } catch (err) {
      if (isS3Error(err, 'PreconditionFailed', 'Http412')) throw this.changed(`its ETag is no longer ${this.identity.etag}`);
      if (isS3Error(err, 'NoSuchKey', 'NoSuchVersion', 'Http404')) throw this.changed('it was deleted');
      throw sourceFailure(this.description, `GET ${range}`, err);
    }
    const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(answer.ContentRange ?? '');
    if (
      !contentRange ||
      Number(contentRange[1]) !== offset ||
      Number(contentRange[2]) !== offset + length - 1 ||
      Number(contentRange[3]) !== this.identity.size
    ) {
      await answer.Body?.transformToByteArray().catch(() => undefined);
      throw this.changed(`asked for ${range} of ${this.identity.size}, got Content-Range "${answer.ContentRange}"`);
    }
    const body = Buffer.from((await answer.Body?.transformToByteArray()) ?? new Uint8Array());
    if (body.length !== length) throw this.changed(`expected ${length} bytes at ${offset}, got ${body.length}`);
    return body;
  }

  private async copyPart(target: PartCopyTarget, range: { offset: number; length: number }, signal?: AbortSignal): Promise<CopiedPart> {
    const sourceRange = `bytes=${range.offset}-${range.offset + range.length - 1}`;
    let answer;
    try {
      answer = await this.client.send(
        new UploadPartCopyCommand({
          Bucket: target.bucket,
          Key: target.key,
          UploadId: target.multipartUploadId,
          PartNumber: target.partNumber,
          CopySource: copySourceOf({ ...this.source, ...(this.versionId ? { versionId: this.versionId } : {}) }),
          CopySourceRange: sourceRange,
          CopySourceIfMatch: this.identity.etag,
        }),
        { abortSignal: signal },
      );
    } catch (err) {
      if (isS3Error(err, 'PreconditionFailed', 'Http412'))
        throw this.changed(`its ETag is no longer ${this.identity.etag} (UploadPartCopy of ${sourceRange})`);
      if (isS3Error(err, 'NoSuchKey', 'NoSuchVersion')) throw this.changed(`it was deleted (UploadPartCopy of ${sourceRange})`);
      throw err; // a destination-side error: upload-parts classifies it as S3.<Code>
    }
    const etag = answer.CopyPartResult?.ETag;
    if (!etag) throw new Error(`UploadPartCopy of ${sourceRange} from ${this.description} returned no ETag`);
    const { ChecksumCRC32, ChecksumCRC32C, ChecksumCRC64NVME, ChecksumSHA1, ChecksumSHA256 } = answer.CopyPartResult ?? {};
    const checksums = Object.fromEntries(
      Object.entries({ ChecksumCRC32, ChecksumCRC32C, ChecksumCRC64NVME, ChecksumSHA1, ChecksumSHA256 }).filter(([, v]) => v !== undefined),
    );
    return { etag, checksums };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Opens `s3` sources: in the worker's own store (copied server-side) or behind a configured profile (read with ranged GETs). */
export class S3ObjectResolver implements SourceResolver {
  private readonly store: S3Client;
  private readonly profiles: Readonly<Record<string, S3Client>>;

  constructor(options: S3ObjectResolverOptions) {
    this.store = options.store;
    this.profiles = options.profiles ?? {};
  }

  /** Opens an S3 object, in the worker's own store or behind a profile. */
  async open(source: SourceDescriptor): Promise<ByteSource> {
    if (source.type !== 's3') throw new TypeError(`S3ObjectResolver cannot open ${source.type} sources`);
    let client = this.store;
    if (source.profile !== undefined) {
      const profile = Object.hasOwn(this.profiles, source.profile) ? this.profiles[source.profile] : undefined;
      if (!profile) {
        const known = Object.keys(this.profiles);
        throw permanentFailure(
          UploadFailureType.SourceNotAllowed,
          `S3 source profile "${source.profile}" is not configured on this worker (${known.length ? `configured: ${known.join(', ')}` : 'none configured'}); set UPLOAD_SAGA_S3_SOURCE_PROFILES`,
        );
      }
      client = profile;
    }
    const identity = await head(client, source, describe(source));
    return new S3ObjectByteSource(client, source, identity, source.profile === undefined);
  }
}
