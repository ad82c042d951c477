/**
 * JWT bearer tokens of an identity provider, verified against the keys it publishes (its JWKS),
 * with `jose`: the tenant is read from a configured claim.
 *
 * Why it is built this way:
 * - The gateway holds no secret of the provider: it fetches the public keys from the JWKS URL
 *   (`createRemoteJWKSet`), keeps them, and fetches the set again when a token names a `kid` it
 *   does not know (at most once per `jwksCooldownMs`), so the provider rotates keys without the
 *   gateway restarting.
 * - Only asymmetric algorithms are accepted (the configured list): an HMAC key in a public JWKS
 *   would let anyone sign, and `alg: none` is never accepted by `jwtVerify`.
 * - `iss`, `aud` and `exp` are required and checked (with a small clock tolerance); a token without
 *   `exp` is refused, so a leaked token is not valid for ever.
 * - Every refusal is an {@link UnauthorizedError} (401) whose message says what was wrong (expired,
 *   wrong audience, …) and never repeats the token; a tenant outside the configured list is a
 *   {@link ForbiddenError} (403). A JWKS that cannot be fetched is a 503 the client may retry.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { TENANT_PATTERN, type JwtAuthSettings } from './config';
import { ForbiddenError, IdentityProviderUnavailableError, UnauthorizedError } from './errors';

/** Verifies one token and names its tenant. */
export interface JwtVerifier {
  /**
   * The tenant of a valid token.
   * @throws UnauthorizedError (401) for a token that does not authenticate, ForbiddenError (403) for a tenant not served,
   *   IdentityProviderUnavailableError (503) when the JWKS cannot be fetched
   */
  verify(token: string): Promise<string>;
}

/** A verifier for `settings`; the JWKS is fetched on the first token, not at start. */
export function createJwtVerifier(settings: JwtAuthSettings): JwtVerifier {
  const keys = createRemoteJWKSet(new URL(settings.jwksUrl), {
    cooldownDuration: settings.jwksCooldownMs ?? 30_000,
    timeoutDuration: 5_000,
  });
  const allowed = settings.tenants ? new Set(settings.tenants) : undefined;
  return {
    async verify(token) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          issuer: settings.issuer,
          audience: settings.audience,
          algorithms: settings.algorithms,
          clockTolerance: settings.clockToleranceSeconds,
          requiredClaims: ['exp'],
        }));
      } catch (err) {
        throw jwtRefusal(err, settings);
      }
      const tenant = payload[settings.tenantClaim];
      if (typeof tenant !== 'string' || !tenant)
        throw new UnauthorizedError(`the token has no "${settings.tenantClaim}" claim naming the tenant`, true);
      if (!TENANT_PATTERN.test(tenant))
        throw new UnauthorizedError(
          `the token's "${settings.tenantClaim}" claim is not a tenant name (letters, digits, ".", "_", "-", 1-63 characters)`,
          true,
        );
      if (allowed && !allowed.has(tenant)) throw new ForbiddenError(`tenant "${tenant}" is not served by this gateway`);
      return tenant;
    },
  };
}

/** The gateway's answer to a failure of `jwtVerify`: what was wrong, in words, never the token. */
function jwtRefusal(err: unknown, settings: JwtAuthSettings): Error {
  const refuse = (message: string) => new UnauthorizedError(message, true);
  if (err instanceof errors.JWTExpired) return refuse('the token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'aud':
        return refuse(`the token's audience (aud) is not ${settings.audience.join(' or ')}`);
      case 'iss':
        return refuse(`the token's issuer (iss) is not ${settings.issuer}`);
      case 'nbf':
        return refuse('the token is not valid yet (nbf)');
      case 'exp':
        return refuse('the token has no expiry (exp); tokens without one are refused');
      default:
        return refuse(`the token's "${err.claim}" claim is invalid (${err.reason})`);
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return refuse(`the token's algorithm is not allowed; allowed: ${settings.algorithms.join(', ')}`);
  if (err instanceof errors.JWSSignatureVerificationFailed) return refuse('the token signature does not verify');
  if (err instanceof errors.JWKSNoMatchingKey) return refuse("no key of the identity provider's key set matches the token (kid)");
  if (err instanceof errors.JWKSMultipleMatchingKeys)
    return refuse("several keys of the identity provider's key set match the token; it must name its key (kid)");
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return refuse('the token is not a well-formed signed JWT');
  if (err instanceof errors.JOSENotSupported) return refuse("the token's algorithm or key type is not supported");
  // Anything else is the key set itself: unreachable, slow, or not a JWKS.
  return new IdentityProviderUnavailableError("the identity provider's key set (JWKS) could not be fetched; retry later", {
    cause: err,
  });
}
