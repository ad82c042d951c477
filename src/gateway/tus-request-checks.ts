/**
 * What the tus route checks before @tus/server sees a request: the method override, version
 * negotiation, and the request headers the tus 1.0.0 spec constrains — each refused with the
 * status the spec (or tusd, the reference server, where the spec names none) gives, and a body
 * that says what was wrong and what is allowed.
 *
 * Why here and not in @tus/server: it answers some of these with statuses the spec does not name
 * (403 for a PATCH without `Upload-Offset`, 400 instead of 412 for an unsupported version, no
 * `Tus-Version` on a 412) and terse bodies ("Invalid upload-offset"); it no longer honours
 * `X-HTTP-Method-Override`. test/gateway/tus-conformance.test.ts compares every answer here with
 * tusd's. Pure functions of the method and the headers: nothing is recorded before they pass.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Metadata } from '@tus/utils';

/** The one protocol version the gateway speaks. */
export const TUS_VERSION = '1.0.0';

/** Methods `X-HTTP-Method-Override` may name (the ones tusd routes; tus-js-client's `overridePatchMethod` sends PATCH on a POST). */
export const TUS_OVERRIDABLE_METHODS = ['PATCH', 'HEAD', 'DELETE', 'OPTIONS'] as const;

/** A refusal: status, extra headers, and the body. */
export interface TusRefusal {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The method a request stands for: with `X-HTTP-Method-Override`, the named one, whatever the
 * request's own method (the spec: it "MUST be interpreted as the request's method by the Server
 * [...] The actual method of the request MUST be ignored"; tusd honours it on POST only). HTTP
 * method names are case-sensitive, as in tusd: `patch` is no method.
 * @returns the method, or a 405 refusal for a name that is not one of {@link TUS_OVERRIDABLE_METHODS}
 */
export function effectiveMethod(method: string, headers: IncomingHttpHeaders): string | TusRefusal {
  const override = headers['x-http-method-override'];
  if (typeof override !== 'string' || override === '') return method;
  if ((TUS_OVERRIDABLE_METHODS as readonly string[]).includes(override)) return override;
  return {
    status: 405,
    headers: { Allow: ['POST', ...TUS_OVERRIDABLE_METHODS].join(', ') },
    body: `X-HTTP-Method-Override: ${JSON.stringify(override)} names no method of the tus endpoint; use one of ${TUS_OVERRIDABLE_METHODS.join(', ')}`,
  };
}

/** An `Upload-Concat` header, parsed: a partial, or the URLs of a final's partials. */
export type UploadConcat = { kind: 'partial' } | { kind: 'final'; urls: string[] };

/** The header parsed, or why it is malformed. */
export function parseUploadConcat(value: string): UploadConcat | { problem: string } {
  if (value === 'partial') return { kind: 'partial' };
  if (value.startsWith('final;')) {
    const urls = value.slice('final;'.length).trim().split(/ +/).filter(Boolean);
    if (urls.length > 0) return { kind: 'final', urls };
  }
  return {
    problem: `Upload-Concat must be "partial" or "final;" followed by the space-separated URLs of the partial uploads, got ${JSON.stringify(value)}`,
  };
}

const NON_NEGATIVE_INTEGER = /^(0|[1-9][0-9]*)$/;

/** Why a header that must be a non-negative integer is not one, or undefined. */
function integerProblem(name: string, value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !NON_NEGATIVE_INTEGER.test(value) || !Number.isSafeInteger(Number(value)))
    return `${name} must be a non-negative integer (bytes, no sign, no leading zeros), got ${JSON.stringify(String(value))}`;
  return undefined;
}

/** The 413 for an Upload-Length over the maximum upload size, or undefined. */
function lengthOverMaximum(value: string | string[] | undefined, maxUploadBytes: number): TusRefusal | undefined {
  if (value === undefined || Number(value) <= maxUploadBytes) return undefined;
  return {
    status: 413,
    headers: {},
    body: `Upload-Length ${String(value)} exceeds the maximum upload size of ${maxUploadBytes} bytes (Tus-Max-Size)`,
  };
}

/**
 * Checks one tus request (with its effective method) against what the spec requires of its
 * headers, in the order tusd checks: version (412), content type (415), offsets, lengths,
 * concatenation and metadata (400), size (413).
 * @returns the refusal, or undefined when the request may go on
 */
export function checkTusRequest(method: string, headers: IncomingHttpHeaders, maxUploadBytes: number): TusRefusal | undefined {
  if (method === 'OPTIONS') return undefined;
  const version = headers['tus-resumable'];
  if (version !== TUS_VERSION) {
    return {
      status: 412,
      headers: { 'Tus-Version': TUS_VERSION },
      body:
        version === undefined
          ? `Tus-Resumable is required on every tus request but OPTIONS; this server speaks ${TUS_VERSION}`
          : `Tus-Resumable ${JSON.stringify(String(version))} is not supported; this server speaks ${TUS_VERSION}`,
    };
  }
  if (method === 'PATCH' && headers['content-type'] !== 'application/offset+octet-stream') {
    return { status: 415, headers: {}, body: 'a PATCH must have Content-Type: application/offset+octet-stream' };
  }
  if (method === 'PATCH') {
    if (headers['upload-offset'] === undefined)
      return {
        status: 400,
        headers: {},
        body: 'a PATCH needs Upload-Offset: the byte offset its body starts at (HEAD tells the current one)',
      };
    const offset = integerProblem('Upload-Offset', headers['upload-offset']);
    if (offset) return { status: 400, headers: {}, body: offset };
    // creation-defer-length: a PATCH may declare the length (the store checks it against the upload).
    const length = integerProblem('Upload-Length', headers['upload-length']);
    if (length) return { status: 400, headers: {}, body: length };
    const tooLarge = lengthOverMaximum(headers['upload-length'], maxUploadBytes);
    if (tooLarge) return tooLarge;
  }
  if (method === 'POST') {
    const concat = typeof headers['upload-concat'] === 'string' ? parseUploadConcat(headers['upload-concat']) : undefined;
    if (concat && 'problem' in concat) return { status: 400, headers: {}, body: concat.problem };
    if (concat?.kind === 'final') {
      if (headers['upload-length'] !== undefined || headers['upload-defer-length'] !== undefined)
        return {
          status: 400,
          headers: {},
          body: 'a final upload (Upload-Concat: final) takes no Upload-Length or Upload-Defer-Length: its length is the sum of its partial uploads',
        };
      return metadataRefusal(headers['upload-metadata']);
    }
    const length = integerProblem('Upload-Length', headers['upload-length']);
    if (length) return { status: 400, headers: {}, body: length };
    const defer = headers['upload-defer-length'];
    if (defer !== undefined && defer !== '1')
      return {
        status: 400,
        headers: {},
        body: `Upload-Defer-Length must be 1 (the length is declared by a later PATCH's Upload-Length), got ${JSON.stringify(String(defer))}`,
      };
    if (headers['upload-length'] === undefined && defer === undefined)
      return {
        status: 400,
        headers: {},
        body: "a POST needs Upload-Length: the upload's size in bytes (or Upload-Defer-Length: 1 when it is not known yet)",
      };
    if (headers['upload-length'] !== undefined && defer !== undefined)
      return {
        status: 400,
        headers: {},
        body: 'a POST has either Upload-Length or Upload-Defer-Length: 1, not both',
      };
    const tooLarge = lengthOverMaximum(headers['upload-length'], maxUploadBytes);
    if (tooLarge) return tooLarge;
    return metadataRefusal(headers['upload-metadata']);
  }
  return undefined;
}

/** The 400 for a malformed Upload-Metadata, or undefined. */
function metadataRefusal(metadata: string | string[] | undefined): TusRefusal | undefined {
  if (typeof metadata !== 'string') return undefined;
  try {
    Metadata.parse(metadata);
    return undefined;
  } catch {
    return {
      status: 400,
      headers: {},
      body:
        'Upload-Metadata must be comma-separated "key base64value" pairs (or a key alone): keys non-empty ASCII without spaces or commas, ' +
        'each key once, values standard Base64, e.g. "filename d29ybGQuanBn,is_confidential"',
    };
  }
}
