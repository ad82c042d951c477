/**
 * The gateway's authentication pieces without a server: the JWT and upload-token configuration
 * (every problem named at start), upload tokens minted and verified (scope claims, tampering,
 * expiry), and the RFC 6750 challenge. Over HTTP with a real JWKS: test/gateway/auth-tokens.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config';
import { loadGatewayConfig } from '../../src/gateway/config';
import { bearerChallenge, ForbiddenError, UnauthorizedError } from '../../src/gateway/errors';
import { mintUploadToken, UPLOAD_TOKEN_TYPE, verifyUploadToken } from '../../src/gateway/upload-token';
import { bindingCovers, groupBinding, groupMemberId, groupOf, MemoryUploadTokenBindings } from '../../src/gateway/upload-token-bindings';

const SECRET = randomBytes(32).toString('base64url');

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadGatewayConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('JWT and upload-token configuration', () => {
  it('a JWKS URL with issuer and audience gives the JWT settings, defaults filled in', () => {
    const config = loadGatewayConfig({
      UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL: 'https://idp.example.com/jwks',
      UPLOAD_SAGA_GATEWAY_JWT_ISSUER: 'https://idp.example.com/',
      UPLOAD_SAGA_GATEWAY_JWT_AUDIENCE: 'uploads, uploads-admin',
    });
    expect(config.jwt).toEqual({
      jwksUrl: 'https://idp.example.com/jwks',
      issuer: 'https://idp.example.com/',
      audience: ['uploads', 'uploads-admin'],
      tenantClaim: 'tenant',
      algorithms: ['RS256', 'ES256', 'EdDSA'],
      clockToleranceSeconds: 30,
    });
    expect(loadGatewayConfig({}).jwt).toBeUndefined();
    expect(loadGatewayConfig({}).uploadTokenSecret).toBeUndefined();
  });

  it('names every problem: no issuer or audience, an HMAC algorithm, a bad tenant, a short secret', () => {
    const problems = problemsOf({
      UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL: 'https://idp.example.com/jwks',
      UPLOAD_SAGA_GATEWAY_JWT_ALGORITHMS: 'RS256,HS256',
      UPLOAD_SAGA_GATEWAY_JWT_TENANTS: 'acme,not a tenant',
    });
    expect(problems).toEqual([
      'UPLOAD_SAGA_GATEWAY_JWT_ISSUER: must be set with UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL (the iss every token must carry)',
      'UPLOAD_SAGA_GATEWAY_JWT_AUDIENCE: must be set with UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL (the aud tokens for this gateway carry)',
      expect.stringMatching(/^UPLOAD_SAGA_GATEWAY_JWT_ALGORITHMS: "HS256" is not one of RS256, .* \(asymmetric algorithms only\)$/),
      expect.stringMatching(/^UPLOAD_SAGA_GATEWAY_JWT_TENANTS: "not a tenant" is not a tenant name/),
    ]);
    expect(problemsOf({ UPLOAD_SAGA_GATEWAY_JWT_ISSUER: 'x' })).toEqual([
      'UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL: must be set when UPLOAD_SAGA_GATEWAY_JWT_ISSUER or _AUDIENCE is (tokens are verified against it)',
    ]);
    const short = problemsOf({ UPLOAD_SAGA_GATEWAY_UPLOAD_TOKEN_SECRET: 'too-short-secret' });
    expect(short).toEqual(['UPLOAD_SAGA_GATEWAY_UPLOAD_TOKEN_SECRET: must be at least 32 characters (e.g. openssl rand -base64 32)']);
    expect(short.join()).not.toContain('too-short-secret');
  });
});

describe('upload tokens', () => {
  it('carry the tenant, size, key and expiry they were minted with, under their own typ', async () => {
    const minted = await mintUploadToken({ secret: SECRET, tenant: 'acme', maxBytes: 1000, key: 'a/b.bin', expiresIn: '10m' });
    expect(decodeProtectedHeader(minted.token)).toEqual({ alg: 'HS256', typ: UPLOAD_TOKEN_TYPE });
    const scope = await verifyUploadToken(minted.token, SECRET);
    expect(scope).toEqual({
      tokenId: minted.tokenId,
      tenant: 'acme',
      maxBytes: 1000,
      key: 'a/b.bin',
      expiresAt: minted.expiresAt.getTime(),
    });
    expect(minted.expiresAt.getTime() - Date.now()).toBeGreaterThan(9.9 * 60_000);
    expect(minted.expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(10 * 60_000);
  });

  it('a token with a changed claim, or minted with another secret, does not verify', async () => {
    const { token } = await mintUploadToken({ secret: SECRET, tenant: 'acme', maxBytes: 10 });
    const [header, , signature] = token.split('.');
    const widened = Buffer.from(JSON.stringify({ ...decodeJwt(token), max_bytes: 10 ** 12 })).toString('base64url');
    await expect(verifyUploadToken(`${header}.${widened}.${signature}`, SECRET)).rejects.toThrow(
      "the upload token's signature does not verify (minted with another secret?)",
    );
    await expect(verifyUploadToken(token, randomBytes(32).toString('base64url'))).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('one binding per token: the first upload wins, later ones learn which', async () => {
    const bindings = new MemoryUploadTokenBindings();
    const expiresAt = Date.now() + 60_000;
    expect(await bindings.bind('t1', 'u1', expiresAt)).toBe('u1');
    expect(await bindings.bind('t1', 'u2', expiresAt)).toBe('u1');
    await bindings.release('t1', 'u2'); // not its binding: kept
    expect(await bindings.boundUpload('t1')).toBe('u1');
    await bindings.release('t1', 'u1');
    expect(await bindings.bind('t1', 'u3', expiresAt)).toBe('u3');
  });

  it('a group binding (parallel uploads) covers its first upload and the ids inside the group, nothing else', () => {
    const bound = groupBinding('g1');
    expect(groupOf(bound)).toBe('g1');
    expect(groupOf('u1')).toBeUndefined();
    const member = groupMemberId('g1');
    expect(member).toMatch(/^g1\.[0-9a-f]{16}$/);
    for (const id of ['g1', member]) expect(bindingCovers(bound, id), id).toBe(true);
    for (const id of ['g2', 'g10', 'g1x', 'g1.', `${member}.x`, 'x.g1']) expect(bindingCovers(bound, id), id).toBe(false);
    expect(bindingCovers('u1', 'u1')).toBe(true);
    expect(bindingCovers('u1', 'u1.a')).toBe(false);
  });

  it("a group's partials count against the token's limit together; a failed creation gives its bytes back", async () => {
    const bindings = new MemoryUploadTokenBindings();
    const expiresAt = Date.now() + 60_000;
    expect(await bindings.addBytes('t1', 6, 10, expiresAt)).toBe(true);
    expect(await bindings.addBytes('t1', 5, 10, expiresAt)).toBe(false);
    expect(await bindings.addBytes('t1', 4, 10, expiresAt)).toBe(true);
    expect(await bindings.addBytes('t1', -4, 10, expiresAt)).toBe(true);
    expect(await bindings.addBytes('t1', 4, 10, expiresAt)).toBe(true);
    expect(await bindings.addBytes('t2', 10, 10, expiresAt)).toBe(true);
  });

  it("gives back a member partial's bytes once, and only a member's", async () => {
    const bindings = new MemoryUploadTokenBindings();
    const expiresAt = Date.now() + 60_000;
    expect(await bindings.addBytes('t1', 6, 10, expiresAt)).toBe(true);
    await bindings.addMember('t1', 'g1', 6, expiresAt);
    expect(await bindings.members('t1')).toEqual([{ uploadId: 'g1', bytes: 6 }]);
    expect(await bindings.addBytes('t1', 6, 10, expiresAt)).toBe(false);
    expect(await bindings.giveBack('t1', 'other')).toBe(false);
    expect(await bindings.giveBack('t1', 'g1')).toBe(true);
    expect(await bindings.giveBack('t1', 'g1')).toBe(false);
    expect(await bindings.members('t1')).toEqual([]);
    expect(await bindings.addBytes('t1', 10, 10, expiresAt)).toBe(true);
  });
});

describe('RFC 6750 challenges', () => {
  it('names invalid_token or insufficient_scope, with a description in the characters the RFC allows', () => {
    expect(bearerChallenge(new UnauthorizedError())).toBe('Bearer');
    expect(bearerChallenge(new UnauthorizedError('the token has no "org" claim naming the tenant', true))).toBe(
      `Bearer error="invalid_token", error_description="the token has no 'org' claim naming the tenant"`,
    );
    expect(bearerChallenge(new ForbiddenError('tenant "x" is not served – ok'))).toBe(
      `Bearer error="insufficient_scope", error_description="tenant 'x' is not served   ok"`,
    );
  });
});
