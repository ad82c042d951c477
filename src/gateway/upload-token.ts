/**
 * Upload tokens: short-lived bearer tokens the application mints for one browser upload, so the
 * browser never holds the tenant's own credential.
 *
 * What one token allows, exactly (checked by the gateway on every request):
 * - the tenant it names (`sub`), and only the upload endpoints: tus (`/files`) and the S3
 *   presigned multipart routes (`/uppy/s3/multipart…`); every other route answers 403;
 * - ONE upload: the first creation request binds the token to the upload it creates (in Redis
 *   across replicas, else in memory); a second creation answers 403, and requests on any other
 *   upload id answer 403. Continuing (tus HEAD/PATCH, part URLs, list, complete) and cancelling
 *   (tus DELETE, abort) its own upload are allowed until the token expires. One file sent as tus
 *   parallel uploads (concatenation) is one upload: its partials and the final form a group the
 *   token covers (upload-token-bindings.ts), the partials together within `maxBytes`;
 * - at most `maxBytes` bytes (tus: the declared `Upload-Length` is refused with 413 above it; presigned:
 *   the declared size must be given and within it);
 * - optionally one object key (below the tenant's prefix): the upload is stored there whatever
 *   file name the browser sends;
 * - until `exp` (at most 24 hours after `iat`); the upload itself then continues to live by the
 *   gateway's expiry, but the token cannot reach it any more.
 *
 * Why it is built this way: a JWT signed with HMAC-SHA-256 (`jose`) under a secret only the
 * application and the gateway share (`UPLOAD_SAGA_GATEWAY_UPLOAD_TOKEN_SECRET`); its own `typ`,
 * issuer and audience keep it from being confused with an identity provider's JWT (which the
 * gateway only ever verifies with asymmetric keys) or with a JWT of another system under the same
 * secret. The token is a credential: it is never logged, recorded or put in a metric.
 */
import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from 'jose';
import { parseDuration, TENANT_PATTERN } from './config';
import { UnauthorizedError } from './errors';

/** The JOSE `typ` header of upload tokens. */
export const UPLOAD_TOKEN_TYPE = 'upload-saga-upload+jwt';
const ISSUER = 'upload-saga';
const AUDIENCE = 'upload-saga-gateway';
/** The longest lifetime of an upload token, in seconds. */
export const MAX_UPLOAD_TOKEN_LIFETIME_SECONDS = 24 * 3600;
const MIN_SECRET_LENGTH = 32;

/** Options of {@link mintUploadToken}. */
export interface MintUploadTokenOptions {
  /** The gateway's `UPLOAD_SAGA_GATEWAY_UPLOAD_TOKEN_SECRET` (at least 32 characters). */
  secret: string;
  /** The tenant the upload is for. */
  tenant: string;
  /** Largest upload the token may create, in bytes. @default the tenant's maximum upload size */
  maxBytes?: number;
  /** Object key below the tenant's prefix the upload is stored at. @default `<uploadId>/<file name>` */
  key?: string;
  /** Lifetime: seconds, or a duration such as "15m" (at most 24 h). @default '15m' */
  expiresIn?: number | string;
}

/** A minted token and what it allows. */
export interface MintedUploadToken {
  /** The bearer token to hand to the browser (`Authorization: Bearer <token>`). */
  token: string;
  /** Its id (`jti`): not secret; the gateway binds it to the one upload it creates. */
  tokenId: string;
  /** When the token expires (the upload itself lives on by the gateway's expiry). */
  expiresAt: Date;
}

/** What a verified upload token allows. */
export interface UploadTokenScope {
  /** The token's id (`jti`), which its one upload is bound to. */
  tokenId: string;
  /** The tenant the upload is for (`sub`). */
  tenant: string;
  /** Largest upload it may create, in bytes (`max_bytes`); none: the tenant's limit. */
  maxBytes?: number;
  /** Object key below the tenant's prefix the upload is stored at (`key`); none: the default key. */
  key?: string;
  /** When the token expires, epoch ms (`exp`). */
  expiresAt: number;
}

/**
 * Mints a token for one browser upload. Call it in the application's own authenticated route and
 * give the browser the token, never the tenant's credential.
 *
 * @example
 * ```ts
 * import { mintUploadToken } from 'upload-saga/gateway';
 *
 * app.post('/api/upload-token', async (request) => {
 *   const user = await requireUser(request); // the application's own authentication
 *   const { token, expiresAt } = await mintUploadToken({
 *     secret: process.env.UPLOAD_SAGA_GATEWAY_UPLOAD_TOKEN_SECRET!,
 *     tenant: user.tenant,
 *     maxBytes: 100 * 1024 * 1024,
 *     key: `avatars/${user.id}.png`,
 *     expiresIn: '10m',
 *   });
 *   return { token, expiresAt }; // the browser: new tus.Upload(file, { headers: { Authorization: `Bearer ${token}` }, … })
 * });
 * ```
 * @throws TypeError for a short secret, an invalid tenant, size, key or lifetime
 */
export async function mintUploadToken(options: MintUploadTokenOptions): Promise<MintedUploadToken> {
  if (typeof options.secret !== 'string' || options.secret.length < MIN_SECRET_LENGTH)
    throw new TypeError(`mintUploadToken: secret must be at least ${MIN_SECRET_LENGTH} characters`);
  if (!TENANT_PATTERN.test(options.tenant))
    throw new TypeError('mintUploadToken: tenant must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit');
  if (options.maxBytes !== undefined && (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 0))
    throw new TypeError('mintUploadToken: maxBytes must be a whole number of bytes ≥ 0');
  if (options.key !== undefined && (typeof options.key !== 'string' || !options.key || options.key.length > 900))
    throw new TypeError('mintUploadToken: key must be a non-empty object key of at most 900 characters');
  const lifetime =
    typeof options.expiresIn === 'number' ? options.expiresIn : (parseDuration(options.expiresIn ?? '15m') ?? Number.NaN) / 1000;
  if (!Number.isFinite(lifetime) || lifetime < 1 || lifetime > MAX_UPLOAD_TOKEN_LIFETIME_SECONDS)
    throw new TypeError('mintUploadToken: expiresIn must be 1 s to 24 h (seconds, or a duration such as "15m")');
  const now = Math.floor(Date.now() / 1000);
  const exp = now + Math.floor(lifetime);
  const tokenId = randomBytes(16).toString('hex');
  const token = await new SignJWT({
    ...(options.maxBytes !== undefined ? { max_bytes: options.maxBytes } : {}),
    ...(options.key !== undefined ? { key: options.key } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: UPLOAD_TOKEN_TYPE })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(options.tenant)
    .setJti(tokenId)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(secretKey(options.secret));
  return { token, tokenId, expiresAt: new Date(exp * 1000) };
}

const secretKey = (secret: string) => new TextEncoder().encode(secret);

/** Whether `token` claims to be an upload token (its header's `typ`); says nothing of its validity. */
export function isUploadToken(token: string): boolean {
  try {
    return decodeProtectedHeader(token).typ === UPLOAD_TOKEN_TYPE;
  } catch {
    return false;
  }
}

/**
 * What a valid upload token allows.
 * @throws UnauthorizedError (401) saying why the token is not valid
 */
export async function verifyUploadToken(token: string, secret: string): Promise<UploadTokenScope> {
  const refuse = (message: string) => new UnauthorizedError(message, true);
  try {
    const { payload } = await jwtVerify(token, secretKey(secret), {
      algorithms: ['HS256'],
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: UPLOAD_TOKEN_TYPE,
      maxTokenAge: MAX_UPLOAD_TOKEN_LIFETIME_SECONDS,
      requiredClaims: ['exp', 'iat', 'jti', 'sub'],
    });
    const { sub, jti, exp, max_bytes: maxBytes, key } = payload;
    if (!sub || !TENANT_PATTERN.test(sub)) throw refuse('the upload token names no valid tenant (sub)');
    if (typeof jti !== 'string' || !/^[0-9a-f]{32}$/.test(jti)) throw refuse('the upload token has no valid id (jti)');
    if (maxBytes !== undefined && (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 0))
      throw refuse('the upload token has an invalid max_bytes claim');
    if (key !== undefined && (typeof key !== 'string' || !key)) throw refuse('the upload token has an invalid key claim');
    return {
      tokenId: jti,
      tenant: sub,
      expiresAt: exp! * 1000,
      ...(maxBytes !== undefined ? { maxBytes } : {}),
      ...(key !== undefined ? { key } : {}),
    };
  } catch (err) {
    if (err instanceof UnauthorizedError) throw err;
    if (err instanceof errors.JWTExpired) throw refuse('the upload token has expired; mint a new one');
    if (err instanceof errors.JWTClaimValidationFailed)
      throw refuse(`the upload token's "${err.claim}" claim is invalid (${err.reason}); mint a new one`);
    if (err instanceof errors.JWSSignatureVerificationFailed)
      throw refuse("the upload token's signature does not verify (minted with another secret?)");
    throw refuse('the upload token is not a well-formed upload token');
  }
}
