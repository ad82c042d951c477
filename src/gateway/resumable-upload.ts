/**
 * The IETF resumable-upload draft (draft-ietf-httpbis-resumable-upload, interop versions 3 to 6)
 * on the tus endpoint, beside tus 1.0: upload creation (POST with `Upload-Complete`), `104 Upload
 * Resumption Supported` with the upload's `Location` before the final answer, offset retrieval
 * (HEAD), append (PATCH) and cancellation (DELETE). An upload created this way is a gateway
 * upload like any other: the same saga, reservation, verify, merge, compensation and progress.
 *
 * Why it is built this way: the draft is tus 1.0 with other header fields, so a draft request is
 * translated into the tus request it stands for and served by the same @tus/server instance and
 * store (through its public `handleWeb`): authentication, tenants, limits, rate limits, upload
 * tokens, the upload's lock and the saga apply to both protocols by construction, not by copy.
 * This module adds only what differs:
 * - checks the draft makes before anything is recorded (resumable-upload-checks.ts), and, for an
 *   append, against the upload's state: an append to a completed upload is 400
 *   (`completed-upload`), an offset that is not the upload's is 409 with the right
 *   `Upload-Offset` (`mismatching-upload-offset`), a final size that contradicts the recorded one
 *   is 400 — answered as RFC 9457 problem details where the draft names a problem type;
 * - the 104, written when the store has created the upload and before the content is read
 *   (informational-response.ts: Node has no API for a 104);
 * - the answer in the draft's terms: `Upload-Complete` (interop 3: `Upload-Incomplete`),
 *   `Upload-Limit`, 204 for offset retrieval, 201 for a creation or an append, 404 for an upload
 *   that is no longer active (tus answers 410), no `Tus-*` fields.
 *
 * - an upload of unknown length (no final size at creation) is a tus upload with a deferred length;
 *   its size is declared by the append that makes it known, or, for complete content sent without
 *   Content-Length, by an empty tus PATCH at the offset that content reached.
 *
 * One deliberate simplification: the saga completes an upload when its offset reaches its final
 * size (as tusd does), even if that request said `Upload-Complete: ?0`; an empty append with
 * `Upload-Complete: ?1` at that offset is then answered as a success.
 */
import type { ServerResponse } from 'node:http';
import { requestBodyStream } from './tus-web-request';
import type { Server } from '@tus/server';
import { parse as parseContentDisposition } from 'content-disposition';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { assertNotPaused, GatewayError, InvalidRequestError, RedisUnavailableError, UploadGoneError } from './errors';
import { writeInformational } from './informational-response';
import { completenessField, type DraftRequest } from './resumable-upload-checks';
import { tusRequestContext, type TusRequestContext } from './tus-request-context';
import { TUS_VERSION, type TusRefusal } from './tus-request-checks';
import type { GatewayUploadState } from '../upload/gateway-upload';
import type { UploadsService } from './uploads-service';

/** The problem types the draft defines (RFC 9457 `type`). */
const PROBLEM = {
  mismatchingOffset: 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset',
  completedUpload: 'https://iana.org/assignments/http-problem-types#completed-upload',
} as const;

/** Request fields of the draft a browser may send (CORS preflight), beside tus's own. */
export const DRAFT_REQUEST_HEADERS = ['Upload-Draft-Interop-Version', 'Upload-Complete', 'Upload-Incomplete', 'Content-Disposition'];

/** Response fields a browser may read on a draft answer (CORS). */
const EXPOSED_HEADERS = ['Location', 'Upload-Offset', 'Upload-Complete', 'Upload-Incomplete', 'Upload-Length', 'Upload-Limit'];

/** Fields the store or the route set for tus answers that a draft answer does not carry. */
const TUS_ONLY_HEADERS = ['Tus-Resumable', 'Tus-Checksum-Algorithm', 'Upload-Expires'];

/** A draft answer before it is written. */
interface Answer {
  status: number;
  headers: Record<string, string>;
  /** Text, or problem details (sent as application/problem+json). */
  body?: string | Record<string, unknown>;
}

/** What {@link serveDraftRequest} needs from the tus endpoint. */
export interface DraftEndpoint {
  /** The tus endpoint's @tus/server (with the gateway's store, locker and hooks). */
  server: Server;
  /** For the state an append is checked against. */
  uploads: UploadsService;
}

/**
 * Serves one checked draft request: translates it to tus, runs it through `endpoint.server`
 * inside `context`, and answers in the draft's terms (with a 104 first on creation).
 */
export async function serveDraftRequest(
  endpoint: DraftEndpoint,
  request: FastifyRequest,
  reply: FastifyReply,
  draft: DraftRequest,
  context: TusRequestContext,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  const limit = `min-size=0,max-size=${context.maxUploadBytes}`;
  let answer: Answer;
  try {
    if (draft.method === 'POST') {
      context.uploadMetadata = creationMetadata(request.headers['content-type'], request.headers['content-disposition']);
      context.onUploadCreated = (location) =>
        writeInformational(res, 104, 'Upload Resumption Supported', {
          Location: location,
          'Upload-Draft-Interop-Version': draft.version,
          'Upload-Limit': limit,
        });
    }
    answer = await tusRequestContext.run(context, async () => {
      const uploadId = uploadIdOf(request);
      const before = draft.method === 'PATCH' ? await endpoint.uploads.get(context.tenant, uploadId) : undefined;
      const early = before ? checkAppend(before, uploadId, draft) : undefined;
      if (early) return early;
      const declared = lengthToDeclare(draft, before);
      const response = await endpoint.server.handleWeb(tusRequestFor(request, draft, context, declared));
      // Complete content of unknown length (no Content-Length): its end is the final size, declared once it arrived.
      const declareAfter = draft.complete && declared === undefined && (before ? before.length === undefined : draft.length === undefined);
      if (!declareAfter || !response.ok) return translateAnswer(response, draft, context, limit);
      const end = Number(response.headers.get('upload-offset') ?? '0');
      const path = draft.method === 'POST' ? new URL(response.headers.get('location') ?? '', 'http://gateway').pathname : undefined;
      const declaration = await endpoint.server.handleWeb(declarationRequest(request, path, end));
      if (!declaration.ok) return translateAnswer(declaration, { ...draft, method: 'PATCH', offset: end }, context, limit);
      return translateAnswer(response, draft, context, limit, end);
    });
  } catch (err) {
    // The reply is hijacked: every failure is answered here, an unexpected one with the request id its log line carries.
    if (err instanceof GatewayError) answer = errorAnswer(err);
    else {
      request.log.error({ err }, 'request failed');
      answer = { status: 500, headers: {}, body: `the gateway failed; see its log (request id ${request.id})\n` };
    }
  }
  writeAnswer(res, answer, draft.method === 'HEAD');
}

/** Answers a draft request that resumable-upload-checks.ts refused; nothing was recorded. */
export function refuseDraftRequest(request: FastifyRequest, reply: FastifyReply, refusal: TusRefusal): void {
  reply.hijack();
  writeAnswer(reply.raw, { status: refusal.status, headers: refusal.headers, body: `${refusal.body}\n` }, request.method === 'HEAD');
}

/** Writes a draft answer (CORS as on tus answers: any origin may read it). */
function writeAnswer(res: ServerResponse, answer: Answer, isHead: boolean): void {
  for (const name of TUS_ONLY_HEADERS) res.removeHeader(name);
  const body = answer.body === undefined ? undefined : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
  const headers: Record<string, string> = {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Expose-Headers': EXPOSED_HEADERS.join(', '),
    ...answer.headers,
  };
  if (body === undefined || isHead || answer.status === 204) {
    res.writeHead(answer.status, headers).end();
    return;
  }
  headers['Content-Type'] = typeof answer.body === 'string' ? 'text/plain; charset=utf-8' : 'application/problem+json';
  headers['Content-Length'] = String(Buffer.byteLength(body));
  res.writeHead(answer.status, headers).end(body);
}

/** The upload id at the end of the request's path. */
function uploadIdOf(request: FastifyRequest): string {
  return (request.params as Record<string, string | undefined>)['*'] ?? '';
}

/** tus `Upload-Metadata` from a creation's representation metadata (the file's media type and name), as tusd keeps them. */
function creationMetadata(contentType: string | undefined, contentDisposition: string | undefined): string | undefined {
  const pairs: string[] = [];
  if (contentDisposition !== undefined) {
    let filename: string | undefined;
    try {
      filename = parseContentDisposition(contentDisposition).parameters.filename;
    } catch {
      throw new InvalidRequestError(
        `Content-Disposition ${JSON.stringify(contentDisposition)} is not one (RFC 6266), e.g. attachment; filename="photo.jpg"`,
      );
    }
    if (filename) pairs.push(`filename ${Buffer.from(filename).toString('base64')}`);
  }
  const mediaType = contentType?.split(';')[0]?.trim();
  if (mediaType) pairs.push(`filetype ${Buffer.from(mediaType).toString('base64')}`);
  return pairs.length > 0 ? pairs.join(',') : undefined;
}

/**
 * The final size a request makes known to the store with its content (tus `Upload-Length`): a
 * creation's; for an append to an upload of unknown length, the one it sends, or where its
 * complete content ends when its Content-Length says so.
 */
function lengthToDeclare(draft: DraftRequest, before: GatewayUploadState | undefined): number | undefined {
  if (draft.method === 'POST') return draft.length;
  if (draft.method !== 'PATCH' || !before || before.length !== undefined) return undefined;
  if (draft.length !== undefined) return draft.length;
  return draft.complete && draft.contentLength !== undefined ? draft.offset! + draft.contentLength : undefined;
}

/** An empty tus PATCH that declares an upload's length at its end (the upload's path: the request's, or `path`). */
function declarationRequest(request: FastifyRequest, path: string | undefined, end: number): Request {
  const url = new URL(request.raw.url ?? '/', 'http://gateway');
  url.search = '';
  if (path !== undefined) url.pathname = path;
  return new Request(url, {
    method: 'PATCH',
    headers: {
      'Tus-Resumable': TUS_VERSION,
      'Upload-Offset': String(end),
      'Upload-Length': String(end),
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': '0',
    },
  });
}

/** The tus 1.0 request a draft request stands for, its content streamed from the raw request. */
function tusRequestFor(request: FastifyRequest, draft: DraftRequest, context: TusRequestContext, length: number | undefined): Request {
  const headers = new Headers({ 'Tus-Resumable': TUS_VERSION });
  const hasContent =
    (draft.method === 'POST' || draft.method === 'PATCH') &&
    (draft.contentLength !== undefined ? draft.contentLength > 0 : request.headers['transfer-encoding'] !== undefined);
  if (draft.method === 'POST') {
    // Of unknown length: the saga reserves the maximum until a later request declares the size.
    if (length === undefined) headers.set('Upload-Defer-Length', '1');
    if (context.uploadMetadata !== undefined) headers.set('Upload-Metadata', context.uploadMetadata);
  }
  if (length !== undefined) headers.set('Upload-Length', String(length));
  if (draft.method === 'PATCH') headers.set('Upload-Offset', String(draft.offset));
  if (draft.method === 'PATCH' || hasContent) headers.set('Content-Type', 'application/offset+octet-stream');
  if (hasContent && draft.contentLength !== undefined) headers.set('Content-Length', String(draft.contentLength));
  // The path names the upload; a query (`access_token`) was for authentication, which is done.
  const url = new URL(request.raw.url ?? '/', 'http://gateway');
  url.search = '';
  return new Request(url, {
    method: draft.method,
    headers,
    ...(hasContent ? { body: requestBodyStream(request.raw), duplex: 'half' } : {}),
  });
}

/** Whether the upload has all its bytes. */
const isComplete = (state: Pick<GatewayUploadState, 'offset' | 'length'>) => state.length !== undefined && state.offset === state.length;

/**
 * An append checked against the upload's state before any byte is read: the answer when the
 * draft refuses it (or it only confirms completion), else undefined. The store checks the offset
 * again under the upload's lock.
 */
function checkAppend(state: GatewayUploadState, uploadId: string, draft: DraftRequest): Answer | undefined {
  assertNotPaused(state);
  const offset = draft.offset!;
  const contentLength = draft.contentLength;
  const offsetField = { 'Upload-Offset': String(state.offset) };
  if (isComplete(state)) {
    if (draft.complete && offset === state.offset && contentLength === 0)
      return { status: 201, headers: { ...offsetField, ...Object.fromEntries([completenessField(draft.version, true)]) } };
    return {
      status: 400,
      headers: offsetField,
      body: {
        type: PROBLEM.completedUpload,
        title: 'upload is already completed',
        detail: `upload ${uploadId} has all its ${state.length} bytes; an append cannot change it`,
      },
    };
  }
  if (offset !== state.offset) return mismatchingOffset(offset, state.offset);
  if (draft.length !== undefined && state.length !== undefined && draft.length !== state.length)
    return {
      status: 400,
      headers: offsetField,
      body: `Upload-Length ${draft.length} contradicts the upload's final size ${state.length}, recorded at creation`,
    };
  // Of an upload of unknown length: the size this append declares, if any.
  const length = state.length ?? draft.length;
  if (length !== undefined && length < offset)
    return { status: 400, headers: offsetField, body: `Upload-Length ${length} is below the upload's offset ${offset}` };
  if (contentLength !== undefined && length !== undefined) {
    const end = offset + contentLength;
    if (end > length)
      return {
        status: 400,
        headers: offsetField,
        body: `the append would end at ${end}, past the upload's final size ${length}; send at most ${length - offset} bytes`,
      };
    if (draft.complete && end !== length)
      return {
        status: 400,
        headers: offsetField,
        body: `the append says it completes the upload but ends at ${end}, and the upload's final size is ${length}`,
      };
  }
  return undefined;
}

function mismatchingOffset(provided: number, expected: number): Answer {
  return {
    status: 409,
    headers: { 'Upload-Offset': String(expected) },
    body: {
      type: PROBLEM.mismatchingOffset,
      title: 'offset from request does not match offset of resource',
      detail: `Upload-Offset ${provided} is not the upload's offset ${expected}; append from ${expected} (HEAD tells it too)`,
      'expected-offset': expected,
      'provided-offset': provided,
    },
  };
}

/** A failure the uploads service raised outside @tus/server, as a draft answer (an upload that is gone is not active: 404). */
function errorAnswer(err: GatewayError): Answer {
  const headers: Record<string, string> = err instanceof RedisUnavailableError ? { 'Retry-After': String(err.retryAfterSeconds) } : {};
  return { status: err instanceof UploadGoneError ? 404 : err.status, headers, body: `${err.message}\n` };
}

/** @tus/server's answer to the translated request, in the draft's terms. */
async function translateAnswer(
  response: Response,
  draft: DraftRequest,
  context: TusRequestContext,
  limit: string,
  declaredAtEnd?: number,
): Promise<Answer> {
  const text = draft.method === 'HEAD' ? '' : await response.text();
  const header = (name: string) => response.headers.get(name);
  const state = context.state;
  if (response.status === 409 && draft.offset !== undefined && state && state.offset !== draft.offset)
    return mismatchingOffset(draft.offset, state.offset);
  if (response.status < 200 || response.status > 299) {
    const headers: Record<string, string> = {};
    for (const name of ['Retry-After', 'WWW-Authenticate', 'Connection']) if (header(name) !== null) headers[name] = header(name)!;
    if (state && response.status !== 410 && response.status !== 404) headers['Upload-Offset'] = String(state.offset);
    // An upload that is no longer active is 404 in the draft (tus: 410 Gone).
    return { status: response.status === 410 ? 404 : response.status, headers, ...(text ? { body: text } : {}) };
  }
  if (draft.method === 'DELETE') return { status: 204, headers: {} };
  const offset = Number(header('upload-offset') ?? '0');
  const length = declaredAtEnd ?? (draft.method === 'POST' ? draft.length : state?.length);
  const complete = length !== undefined && offset === length;
  const completeness = Object.fromEntries([completenessField(draft.version, complete)]);
  if (draft.method === 'HEAD') {
    return {
      status: 204,
      headers: {
        'Upload-Offset': String(offset),
        ...completeness,
        ...(length !== undefined ? { 'Upload-Length': String(length) } : {}),
        'Upload-Limit': limit,
        'Upload-Draft-Interop-Version': draft.version,
        'Cache-Control': 'no-store',
      },
    };
  }
  const headers: Record<string, string> = { 'Upload-Offset': String(offset), ...completeness };
  if (draft.method === 'POST') {
    headers.Location = header('location') ?? '';
    headers['Upload-Limit'] = limit;
  }
  // A complete request whose content (sent without Content-Length) ended short of the final size.
  if (draft.complete && !complete)
    return {
      status: 400,
      headers,
      body: `the request says it completes the upload, but its content ended at ${offset} of ${String(length)} bytes; append the rest`,
    };
  return { status: 201, headers, ...(text ? { body: text } : {}) };
}
