/**
 * Empty files on the presigned path. @uppy/aws-s3 v6 never sends an empty file as a multipart
 * upload: it asks `GET /s3/params` for a POST policy and POSTs a form there (`{ url, fields }`,
 * the file last). `GET /s3/params` creates the saga of an empty object and points `url` at this
 * route, which takes that form and stores the empty object through the saga.
 *
 * Why it is built this way: a POST straight to S3 would write the object behind the saga's back,
 * and after it the client calls nothing more, so the saga could learn of the object only by
 * polling S3. An empty file has no bytes to carry, so the gateway can take the form itself at no
 * cost: it sends the one empty part and completes the upload, and the saga verifies, merges,
 * commits and notifies as for any upload. The form is read up to {@link MAX_FORM_BYTES}; a file
 * that is not empty is refused (413) and its saga cancelled, so nothing is left in S3.
 */
import { UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import type { FastifyInstance, FastifyRequest, RouteShorthandOptions } from 'fastify';
import type { GatewayUploadState } from '../upload/gateway-upload';
import { InvalidRequestError, UploadConflictError, UploadTooLargeError } from './errors';
import type { UploadsService } from './uploads-service';

/** The most a form may carry: its fields (the key) and the envelope; an empty file adds nothing. */
export const MAX_FORM_BYTES = 64 * 1024;

/** What the route needs from the multipart plugin. */
export interface EmptyFileRouteDeps {
  uploads: Pick<UploadsService, 'complete' | 'cancel'>;
  s3: S3Client;
  /** Authenticates the request and returns its tenant. */
  tenantOf: (request: FastifyRequest) => Promise<string>;
  /** The caller's presigned upload, with the `key` it sent checked. */
  presignedUpload: (tenant: string, uploadId: string, key: unknown) => Promise<GatewayUploadState>;
  /** S3's multipart upload id of an upload still receiving parts (409/410 otherwise). */
  receivingMultipartId: (state: GatewayUploadState) => string;
  /** The object's location as the complete route answers it. */
  locationOf: (state: GatewayUploadState) => string;
  completeWaitMs: number;
}

/** A form body as the content-type parser hands it over: its bytes, or that it was too large. */
type FormBody = { bytes: Buffer } | { tooLarge: true };

/** `POST <path>` (`<path>` ends in `/:uploadId`): takes Uppy's POST-policy form for an empty file. */
export function registerEmptyFileRoute(app: FastifyInstance, path: string, options: RouteShorthandOptions, deps: EmptyFileRouteDeps): void {
  // Encapsulated: the form parser applies to this route only.
  void app.register(async (scope) => {
    scope.addContentTypeParser('multipart/form-data', (_request, payload, done) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      payload.on('data', (chunk: Buffer) => {
        if (settled) return;
        size += chunk.length;
        if (size > MAX_FORM_BYTES) {
          settled = true;
          done(null, { tooLarge: true } satisfies FormBody);
          return;
        }
        chunks.push(chunk);
      });
      payload.on('end', () => {
        if (!settled) done(null, { bytes: Buffer.concat(chunks) } satisfies FormBody);
      });
      payload.on('error', (err) => {
        if (!settled) done(err, undefined);
      });
    });

    scope.post<{ Params: { uploadId: string }; Body: FormBody | undefined }>(path, options, async (request, reply) => {
      const tenant = await deps.tenantOf(request);
      const { uploadId } = request.params;
      const state = await deps.presignedUpload(tenant, uploadId, undefined);
      if (state.length !== 0) throw new UploadConflictError(`upload ${uploadId} is not an empty file: send its parts with presigned URLs`);
      const body = request.body;
      if (!body || !request.headers['content-type']?.startsWith('multipart/form-data'))
        throw new InvalidRequestError(
          'send the form as multipart/form-data: the fields GET /s3/params answered, then the empty file as "file"',
        );
      if ('tooLarge' in body) {
        reply.header('connection', 'close');
        throw await nonEmptyRefused(tenant, uploadId, deps);
      }
      const form = await new Response(new Uint8Array(body.bytes), {
        headers: { 'content-type': request.headers['content-type'] },
      })
        .formData()
        .catch(() => {
          throw new InvalidRequestError('the body is not a readable multipart/form-data form');
        });
      const file = form.get('file');
      if (!(file instanceof Blob))
        throw new InvalidRequestError('the form has no "file" field: send the fields GET /s3/params answered, then the file');
      const key = form.get('key');
      if (key !== null && key !== state.key)
        throw new InvalidRequestError(`key ${JSON.stringify(key)} is not the key of upload ${uploadId} (${state.key})`);
      if (file.size > 0) throw await nonEmptyRefused(tenant, uploadId, deps);

      const multipartUploadId = deps.receivingMultipartId(state);
      const part = await deps.s3.send(
        new UploadPartCommand({
          Bucket: state.bucket,
          Key: state.key,
          UploadId: multipartUploadId,
          PartNumber: 1,
          Body: new Uint8Array(0),
          ContentLength: 0,
        }),
      );
      const completed = await deps.uploads.complete(tenant, uploadId, [{ partNumber: 1, etag: part.ETag ?? '' }], {
        waitMs: deps.completeWaitMs,
      });
      const answer = { location: deps.locationOf(completed), key: completed.key, bucket: completed.bucket };
      if (!completed.result) return reply.code(202).send({ ...answer, pending: true });
      return reply
        .code(201)
        .header('etag', completed.result.etag)
        .send({ ...answer, etag: completed.result.etag, size: completed.result.size });
    });
  });
}

/** A file that is not empty: its saga is cancelled (nothing stays in S3); the error tells the client why (413). */
async function nonEmptyRefused(tenant: string, uploadId: string, deps: EmptyFileRouteDeps): Promise<UploadTooLargeError> {
  await deps.uploads.cancel(tenant, uploadId);
  return new UploadTooLargeError(
    `upload ${uploadId} was created for an empty file and is cancelled: a file with bytes goes as a multipart upload (shouldUseMultipart: true in @uppy/aws-s3)`,
  );
}
