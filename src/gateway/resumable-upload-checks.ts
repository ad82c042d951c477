/**
 * What the gateway reads from a request of the IETF resumable-upload draft
 * (draft-ietf-httpbis-resumable-upload) before anything is recorded: the interop version, the
 * upload's completeness, offset and length, each checked against what the draft requires, and
 * refused with the status it names and a body that says what was wrong.
 *
 * Interop versions, as tusd v2.9.1 serves them: 3 (draft -01: `Upload-Incomplete`), 4 (-02:
 * `Upload-Complete`), 5 (-03), 6 (-04 and -05: `Content-Type: application/partial-upload` on an
 * append, `Upload-Length`, `Upload-Limit`). A request whose `Upload-Draft-Interop-Version` names
 * another version is answered 412 unless it also carries `Tus-Resumable` (then it is a tus 1.0
 * request, as tusd reads it).
 *
 * Why hand-written: the two structured-field types used (RFC 8941 Boolean `?0`/`?1`, and the
 * non-negative Integer of offsets and lengths) are one pattern each; `structured-headers`, the
 * maintained parser, ships as an ES module only, which this CommonJS package cannot load in
 * its tests' and tools' every path. Pure functions of the method and the headers.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { TusRefusal } from './tus-request-checks';

/** The interop versions served (tusd v2.9.1 serves the same). */
export const DRAFT_INTEROP_VERSIONS = ['3', '4', '5', '6'] as const;
/** One of {@link DRAFT_INTEROP_VERSIONS}. */
export type DraftInteropVersion = (typeof DRAFT_INTEROP_VERSIONS)[number];

/** The media type of an append's content from interop version 6 (draft -04) on. */
export const PARTIAL_UPLOAD_MEDIA_TYPE = 'application/partial-upload';

/** What a draft request says, once checked. */
export interface DraftRequest {
  version: DraftInteropVersion;
  method: 'POST' | 'HEAD' | 'PATCH' | 'DELETE';
  /** The request's content ends the upload (`Upload-Complete: ?1`, interop 3: `Upload-Incomplete: ?0`); false when absent on PATCH. */
  complete: boolean;
  /** PATCH: where the content starts. */
  offset?: number;
  /**
   * The upload's final size: POST from `Upload-Length`, or the content of a complete creation with
   * `Content-Length` (absent: an upload of unknown length); PATCH when `Upload-Length` is sent.
   */
  length?: number;
  /** The request's `Content-Length`, when it has one. */
  contentLength?: number;
}

/** The header that says whether the upload is complete, in `version`. */
export function completenessHeader(version: DraftInteropVersion): 'Upload-Complete' | 'Upload-Incomplete' {
  return version === '3' ? 'Upload-Incomplete' : 'Upload-Complete';
}

/** The completeness header field for an answer: its name and structured-field Boolean. */
export function completenessField(version: DraftInteropVersion, complete: boolean): [string, string] {
  const name = completenessHeader(version);
  return [name, (name === 'Upload-Complete') === complete ? '?1' : '?0'];
}

const SF_BOOLEAN = /^\?[01]$/;
const SF_NON_NEGATIVE_INTEGER = /^(0|[1-9][0-9]{0,14})$/;

const refusal = (status: number, body: string, headers: Record<string, string> = {}): TusRefusal => ({ status, headers, body });

/** The header's value when it is one string (a repeated header is not). */
const single = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value.join(', ') : value);

function integerOrRefusal(name: string, value: string | undefined): number | undefined | TusRefusal {
  if (value === undefined) return undefined;
  if (!SF_NON_NEGATIVE_INTEGER.test(value))
    return refusal(400, `${name} must be a non-negative integer of at most 15 digits (bytes), got ${JSON.stringify(value)}`);
  return Number(value);
}

/**
 * Reads a draft request: undefined when the request is not one (no `Upload-Draft-Interop-Version`,
 * OPTIONS, or an unknown version beside `Tus-Resumable`), a refusal when it breaks the draft, else
 * what it says.
 * @param maxUploadBytes the largest upload the tenant (or upload token) may create
 */
export function readDraftRequest(
  method: string,
  headers: IncomingHttpHeaders,
  maxUploadBytes: number,
): DraftRequest | TusRefusal | undefined {
  const version = single(headers['upload-draft-interop-version']);
  if (version === undefined || method === 'OPTIONS') return undefined;
  if (!(DRAFT_INTEROP_VERSIONS as readonly string[]).includes(version)) {
    if (headers['tus-resumable'] !== undefined) return undefined;
    return refusal(
      412,
      `Upload-Draft-Interop-Version ${JSON.stringify(version)} is not served; this endpoint serves interop versions ${DRAFT_INTEROP_VERSIONS.join(', ')} ` +
        '(draft-ietf-httpbis-resumable-upload -01 to -05) and tus 1.0.0 (Tus-Resumable: 1.0.0)',
    );
  }
  const draftVersion = version as DraftInteropVersion;
  if (method !== 'POST' && method !== 'HEAD' && method !== 'PATCH' && method !== 'DELETE')
    return refusal(405, `${method} is no request of the resumable-upload draft; use POST, HEAD, PATCH or DELETE`, {
      Allow: 'POST, HEAD, PATCH, DELETE, OPTIONS',
    });

  const completeName = completenessHeader(draftVersion);
  const completeValue = single(headers[completeName.toLowerCase()]);
  if (completeValue !== undefined && !SF_BOOLEAN.test(completeValue))
    return refusal(
      400,
      `${completeName} must be a structured-field Boolean, ?1 or ?0 (${completeName === 'Upload-Complete' ? '?1: this request ends the upload' : '?0: this request ends the upload'}), got ${JSON.stringify(completeValue)}`,
    );
  const complete = completeValue === undefined ? false : (completeValue === '?1') === (completeName === 'Upload-Complete');

  const offsetValue = single(headers['upload-offset']);
  const lengthValue = single(headers['upload-length']);
  if (method === 'HEAD' || method === 'DELETE') {
    const forbidden = [
      ...(offsetValue !== undefined ? ['Upload-Offset'] : []),
      ...(completeValue !== undefined ? [completeName] : []),
      ...(method === 'HEAD' && lengthValue !== undefined ? ['Upload-Length'] : []),
    ];
    if (forbidden.length > 0)
      return refusal(
        400,
        `a ${method === 'HEAD' ? 'HEAD (offset retrieval)' : 'DELETE (cancellation)'} must not carry ${forbidden.join(' or ')}; send it without`,
      );
    return { version: draftVersion, method, complete: false };
  }

  const contentLength = integerOrRefusal('Content-Length', single(headers['content-length']));
  if (typeof contentLength === 'object') return contentLength;
  const length = integerOrRefusal('Upload-Length', lengthValue);
  if (typeof length === 'object') return length;
  const common = { version: draftVersion, method, complete, ...(contentLength !== undefined ? { contentLength } : {}) } as const;

  if (method === 'PATCH') {
    if (draftVersion === '6' && headers['content-type'] !== PARTIAL_UPLOAD_MEDIA_TYPE)
      return refusal(
        415,
        `an append (PATCH) of interop version 6 must have Content-Type: ${PARTIAL_UPLOAD_MEDIA_TYPE}, got ${JSON.stringify(headers['content-type'] ?? '(none)')}`,
      );
    if (offsetValue === undefined)
      return refusal(400, 'an append (PATCH) needs Upload-Offset: the offset its content starts at (HEAD tells the current one)');
    const offset = integerOrRefusal('Upload-Offset', offsetValue);
    if (typeof offset === 'object') return offset;
    return { ...common, offset: offset!, ...(length !== undefined ? { length } : {}) };
  }

  // POST: upload creation.
  if (completeValue === undefined)
    return refusal(
      400,
      `an upload creation (POST) needs ${completeName}: ${completeName === 'Upload-Complete' ? '?1' : '?0'} when its content is the whole upload, ${completeName === 'Upload-Complete' ? '?0' : '?1'} when more follows`,
    );
  if (offsetValue !== undefined) return refusal(400, 'an upload creation (POST) must not carry Upload-Offset; it starts at 0');
  if (complete && contentLength !== undefined && length !== undefined && contentLength !== length)
    return refusal(
      400,
      `Upload-Length ${length} and the Content-Length ${contentLength} of a creation that completes the upload must be equal (both are its final size)`,
    );
  const finalSize = length ?? (complete ? contentLength : undefined);
  // Of unknown length (deferred): at most the maximum, which the saga reserves until the size is known.
  const bound = finalSize ?? contentLength;
  if (bound !== undefined && bound > maxUploadBytes)
    return refusal(
      413,
      finalSize !== undefined
        ? `the upload's final size ${finalSize} exceeds the maximum upload size of ${maxUploadBytes} bytes (Upload-Limit max-size)`
        : `the creation's content (${bound} bytes) exceeds the maximum upload size of ${maxUploadBytes} bytes (Upload-Limit max-size)`,
    );
  if (finalSize === undefined) return common;
  if (contentLength !== undefined && contentLength > finalSize)
    return refusal(
      400,
      `the creation's content (${contentLength} bytes) is longer than the upload's final size (Upload-Length ${finalSize})`,
    );
  return { ...common, length: finalSize };
}
