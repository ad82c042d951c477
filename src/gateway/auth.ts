/**
 * Who a gateway request acts for: the bearer token (the `Authorization` header, or the
 * `access_token` query parameter for EventSource and WebSocket clients) is one of three kinds,
 * tried in this order:
 * 1. a static tenant token, its SHA-256 in `UPLOAD_SAGA_GATEWAY_TOKENS`;
 * 2. an upload token minted by the application (upload-token.ts), recognised by its JOSE `typ`;
 * 3. a JWT of the identity provider, verified against its JWKS (jwt-auth.ts).
 *
 * A token that is none of these is a 401 saying so. An upload token is then held to its scope by
 * {@link checkUploadTokenScope}: the routes that accept one say so in their route config
 * (`uploadToken`), and name the upload they act on.
 */
import type { FastifyRequest } from 'fastify';
import { hashToken, type GatewayConfig } from './config';
import { ForbiddenError, UnauthorizedError } from './errors';
import { createJwtVerifier } from './jwt-auth';
import { bindingCovers, groupOf, type UploadTokenBindings } from './upload-token-bindings';
import { isUploadToken, verifyUploadToken, type UploadTokenScope } from './upload-token';

/** What authenticated a request. */
export type GatewayCredential =
  { kind: 'static'; tenant: string } | { kind: 'jwt'; tenant: string } | { kind: 'upload-token'; tenant: string; scope: UploadTokenScope };

/** The bearer token of a request: the Authorization header's, else the `access_token` query parameter. */
export function bearerToken(request: Pick<FastifyRequest, 'headers' | 'query'>): string | undefined {
  const header = request.headers.authorization;
  const bearer = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
  const query = (request.query as Record<string, unknown> | undefined)?.access_token;
  return bearer ?? (typeof query === 'string' && query ? query : undefined);
}

/** Three dot-separated base64url segments: the compact form of a JWS. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * The gateway's authenticator over `config`: resolves a request's credential.
 * @throws UnauthorizedError (401) or ForbiddenError (403) with the reason; IdentityProviderUnavailableError (503)
 */
export function createAuthenticator(
  config: Pick<GatewayConfig, 'tokenHashes' | 'jwt' | 'uploadTokenSecret'>,
): (request: Pick<FastifyRequest, 'headers' | 'query'>) => Promise<GatewayCredential> {
  const jwt = config.jwt ? createJwtVerifier(config.jwt) : undefined;
  return async (request) => {
    const token = bearerToken(request);
    if (!token) throw new UnauthorizedError();
    const tenant = config.tokenHashes.get(hashToken(token));
    if (tenant) return { kind: 'static', tenant };
    if (COMPACT_JWS.test(token)) {
      if (isUploadToken(token)) {
        if (!config.uploadTokenSecret)
          throw new UnauthorizedError('this gateway accepts no upload tokens (UPLOAD_SAGA_GATEWAY_UPLOAD_TOKEN_SECRET is not set)', true);
        const scope = await verifyUploadToken(token, config.uploadTokenSecret);
        return { kind: 'upload-token', tenant: scope.tenant, scope };
      }
      if (jwt) return { kind: 'jwt', tenant: await jwt.verify(token) };
      throw new UnauthorizedError('the bearer token is unknown; this gateway accepts no JWTs (no JWKS configured)', true);
    }
    throw new UnauthorizedError('the bearer token is unknown to this gateway', true);
  };
}

/**
 * Where a route that accepts upload tokens finds the upload it acts on: the name of its route
 * parameter holding the upload id, or `null` for a creation route (no id yet).
 */
export type UploadTokenRoute = { uploadIdParam: string | null };

/**
 * Holds an upload token to its scope (see upload-token.ts): a route that accepts upload tokens,
 * and the one upload the token created, or a creation while it has created none.
 * @throws ForbiddenError (403) naming what the token does not allow
 */
export async function checkUploadTokenScope(
  request: Pick<FastifyRequest, 'params' | 'method' | 'headers'>,
  route: UploadTokenRoute | undefined,
  scope: UploadTokenScope,
  bindings: UploadTokenBindings,
): Promise<void> {
  if (!route)
    throw new ForbiddenError('an upload token is accepted only by the upload endpoints (tus and /uppy/s3/multipart), for its one upload');
  const bound = await bindings.boundUpload(scope.tokenId);
  const uploadId = route.uploadIdParam === null ? undefined : (request.params as Record<string, string | undefined>)[route.uploadIdParam];
  if (uploadId === undefined || uploadId === '') {
    // Creation (CORS preflights never reach here). A token sending its upload in parallel creates its partials and the final (tus.ts checks which).
    const concat = request.headers['upload-concat'];
    if (bound !== undefined && !(groupOf(bound) !== undefined && typeof concat === 'string' && /^(partial|final;)/.test(concat)))
      throw new ForbiddenError(`this upload token already created upload ${groupOf(bound) ?? bound}; mint one token per upload`);
    return;
  }
  if (bound === undefined || !bindingCovers(bound, uploadId)) throw new ForbiddenError('this upload token is for another upload');
}
