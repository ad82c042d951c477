/**
 * The gateway's failures, one class per HTTP answer. The uploads service throws them; each
 * protocol maps them to its wire format (tus: status + body; the presigned endpoints: JSON),
 * so a protocol handler never inspects Temporal errors itself.
 *
 * Messages are meant for the client: they say what was wrong and what is allowed, and never
 * reveal whether an upload of another tenant exists (that is always a plain 404).
 */

/** Base class: an HTTP status, a stable code, and a message for the client. */
export class GatewayError extends Error {
  override readonly name: string = 'GatewayError';
  constructor(
    /** HTTP status to answer with. */
    readonly status: number,
    /** Stable code, e.g. `UploadNotFound`. */
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** 400: the request is malformed (a field, a header); the message names it and what is allowed. */
export class InvalidRequestError extends GatewayError {
  override readonly name = 'InvalidRequestError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(400, 'InvalidRequest', message, options);
  }
}

/**
 * 401: no credentials, or credentials that do not authenticate (RFC 6750 `invalid_token`): unknown,
 * malformed, badly signed, expired, for another audience or issuer. The message says which, and
 * never repeats the token.
 */
export class UnauthorizedError extends GatewayError {
  override readonly name = 'UnauthorizedError';
  constructor(
    message = 'a valid bearer token is required (Authorization: Bearer <token>)',
    /** Whether a token was presented: RFC 6750 then names the error `invalid_token`, else no error code. */
    readonly tokenPresented = false,
  ) {
    super(401, 'Unauthorized', message);
  }
}

/**
 * 403: the credentials authenticate but do not allow this request (RFC 6750 `insufficient_scope`):
 * a tenant the gateway does not serve, an upload token used outside its one upload.
 */
export class ForbiddenError extends GatewayError {
  override readonly name = 'ForbiddenError';
  constructor(message: string) {
    super(403, 'Forbidden', message);
  }
}

/**
 * The `WWW-Authenticate` value of an answer (RFC 6750 §3): `Bearer` alone when no token was sent,
 * else the error code and the message as `error_description`, reduced to the characters the RFC
 * allows there (printable ASCII without `"` and `\`: a `"` becomes `'`, anything else a space).
 */
export function bearerChallenge(error: UnauthorizedError | ForbiddenError): string {
  if (error instanceof UnauthorizedError && !error.tokenPresented) return 'Bearer';
  const code = error instanceof ForbiddenError ? 'insufficient_scope' : 'invalid_token';
  const description = error.message.replace(/"/g, "'").replace(/[^\x20-\x21\x23-\x5B\x5D-\x7E]/g, ' ');
  return `Bearer error="${code}", error_description="${description}"`;
}

/** 503: the identity provider's key set could not be fetched; the request may be retried. */
export class IdentityProviderUnavailableError extends GatewayError {
  override readonly name = 'IdentityProviderUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(503, 'Unavailable', message, options);
  }
}

/** 404: no such upload for this tenant (also for another tenant's upload: existence is never revealed). */
export class UploadNotFoundError extends GatewayError {
  override readonly name = 'UploadNotFoundError';
  constructor(uploadId: string) {
    super(404, 'UploadNotFound', `no upload ${uploadId}`);
  }
}

/** 410: the upload existed but is gone: expired, cancelled or compensated, and cleaned up. */
export class UploadGoneError extends GatewayError {
  override readonly name = 'UploadGoneError';
  constructor(
    uploadId: string,
    /** How it ended: `expired`, `cancelled`, `compensated`, `failed`. */
    readonly outcome: string,
    detail?: string,
  ) {
    super(410, 'UploadGone', `upload ${uploadId} is gone (${outcome})${detail ? `: ${detail}` : ''}; nothing of it was kept`);
  }
}

/** 409: the chunk does not start at the upload's offset, or the upload no longer receives bytes. */
export class UploadConflictError extends GatewayError {
  override readonly name = 'UploadConflictError';
  constructor(
    message: string,
    /** The upload's offset as the workflow recorded it, when known. */
    readonly offset?: number,
  ) {
    super(409, 'UploadConflict', message);
  }
}

/**
 * 423: the upload is paused (an operator's `pause`): nothing new is accepted — no PATCH, no part
 * URL, no part report, no complete — until it is resumed; HEAD and ListParts still answer. 423
 * because tus-js-client and Uppy retry it a bounded number of times with their back-off
 * (`retryDelays`, by default 0, 1, 3 and 5 s) and then report the error, never in a tight loop;
 * a 4xx they do not retry would fail at once, a 5xx would read as a server fault. The message
 * says since when, who or why, and how the upload's expiry clock behaves meanwhile.
 */
export class UploadPausedError extends GatewayError {
  override readonly name = 'UploadPausedError';
  constructor(
    uploadId: string,
    /** The pause as the workflow reports it. */
    readonly pause: { since?: string; reason?: string; expiry?: string },
  ) {
    super(
      423,
      'UploadPaused',
      `upload ${uploadId} is paused${pause.since ? ` since ${pause.since}` : ''}${pause.reason ? ` (${pause.reason})` : ''}; nothing new is accepted until it is resumed` +
        `${pause.expiry === 'stops' ? ' (its expiry clock is stopped meanwhile)' : pause.expiry === 'runs' ? ' (its expiry clock runs on meanwhile)' : ''}; HEAD gives its offset`,
    );
  }
}

/** Throws {@link UploadPausedError} when the state says the upload is paused. */
export function assertNotPaused(state: {
  uploadId: string;
  pause?: { paused: boolean; since?: string; reason?: string; expiry?: string };
}): void {
  if (state.pause?.paused) throw new UploadPausedError(state.uploadId, state.pause);
}

/** 413: larger than the tenant may upload, or than its remaining quota. */
export class UploadTooLargeError extends GatewayError {
  override readonly name = 'UploadTooLargeError';
  constructor(message: string) {
    super(413, 'UploadTooLarge', message);
  }
}

/** 429: the tenant's request rate is exceeded. */
export class RateLimitedError extends GatewayError {
  override readonly name = 'RateLimitedError';
  constructor(
    readonly retryAfterSeconds: number,
    limit: number,
  ) {
    super(429, 'RateLimited', `more than ${limit} requests per second; retry after ${retryAfterSeconds} s`);
  }
}

/** 422: the upload ended without an object (verify found a mismatch, …); the report says why. */
export class UploadNotStoredError extends GatewayError {
  override readonly name = 'UploadNotStoredError';
  constructor(message: string) {
    super(422, 'UploadFailed', message);
  }
}

/**
 * 500: tus termination of a finished upload could not delete its object (the delete saga failed
 * for good, e.g. the object is outside the tenant's prefix); the object stays, the message says why.
 */
export class ObjectNotDeletedError extends GatewayError {
  override readonly name = 'ObjectNotDeletedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(500, 'DeleteFailed', message, options);
  }
}

/** 503: Temporal did not answer in time (no worker, server down); the client may retry. */
export class GatewayUnavailableError extends GatewayError {
  override readonly name = 'GatewayUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(503, 'Unavailable', message, options);
  }
}

/**
 * 503 with `Retry-After`: Redis (locks, rate limits, sessions) did not answer in time. Nothing was
 * changed; the same request may be sent again after `retryAfterSeconds`.
 */
export class RedisUnavailableError extends GatewayError {
  override readonly name = 'RedisUnavailableError';
  constructor(
    what: string,
    readonly retryAfterSeconds: number,
    options?: { cause?: unknown },
  ) {
    super(503, 'Unavailable', `${what}: Redis is unavailable; nothing was changed, retry after ${retryAfterSeconds} s`, options);
  }
}

/**
 * 429 (`tenant`: the tenant's cap) or 503 (`replica`: this replica's cap) with `Retry-After`: too
 * many request bodies are being received at once. Answered before the body is read; nothing was
 * recorded, and the same request may be sent again after `retryAfterSeconds`.
 */
export class BodyStreamsFullError extends GatewayError {
  override readonly name = 'BodyStreamsFullError';
  constructor(
    /** Whose cap is reached. */
    readonly scope: 'tenant' | 'replica',
    cap: number,
    readonly retryAfterSeconds: number,
  ) {
    super(
      scope === 'tenant' ? 429 : 503,
      scope === 'tenant' ? 'TooManyBodyStreams' : 'Unavailable',
      scope === 'tenant'
        ? `this tenant is already sending ${cap} request bodies at once (its cap); nothing was recorded, retry after ${retryAfterSeconds} s`
        : `this gateway replica is already receiving ${cap} request bodies at once (its cap); nothing was recorded, retry after ${retryAfterSeconds} s`,
    );
  }
}
