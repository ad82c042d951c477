/**
 * The gateway's bearer authentication beyond static tokens, over HTTP against a real gateway, the
 * real worker, Temporal and MinIO: JWTs of an identity provider whose JWKS this test serves itself
 * (keys generated here with jose), key rotation without a restart, and upload tokens minted with
 * `mintUploadToken` for one browser upload, over tus (tus-js-client and raw requests) and the S3
 * presigned multipart routes.
 *
 * The refusals are the "Gateway authentication" table of docs/reference/bad-input.md: this test
 * reads it and produces every row (a row without a case, or a case without a row, fails), checks
 * the status, the body's message against the row's code spans, the RFC 6750 challenge, that the
 * token is not repeated, and at the end that nothing was created for the tenants the refused
 * tokens named (no workflow, nothing in S3).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../../src/gateway/config';
import { createLogger } from '../../src/logging';
import { progressPlugin } from '../../src/gateway/progress';
import { s3MultipartPlugin } from '../../src/gateway/s3-multipart';
import { mintUploadToken, UPLOAD_TOKEN_TYPE } from '../../src/gateway/upload-token';
import { RedisUploadTokenBindings } from '../../src/gateway/upload-token-bindings';
import { MiB } from '../support/files';
import { connectTestStack, startUploadWorker, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { codeSpans, fragmentPattern, readRepoFile, tables } from '../support/markdown';
import { keysUnder, objectSha256 } from '../support/s3-inspect';
import {
  collectingLogger,
  createTusUpload,
  idOf,
  quotaLedgerOf,
  startTestGateway,
  startTus,
  testRedis,
  testTenant,
  tusRequest,
  type TestGateway,
} from './gateway-harness';

const BUCKET = 'uploads';
const ISSUER = 'https://idp.test/';
const AUDIENCE = 'upload-saga';
const TENANT_CLAIM = 'org';
const SECRET = randomBytes(32).toString('base64url');

/** Tenants: JWT uploads, upload-token uploads, the tenant every refused token names, one the gateway does not serve. */
const jwtTenant = uniqueId('jwt');
const tokenTenant = uniqueId('uptok');
const refusedTenant = uniqueId('refused');
const scopedTenant = uniqueId('scoped');
const intruder = uniqueId('intruder');
/** A static-token tenant, to create uploads an upload token must not reach. */
const other = testTenant('authother');

let stack: TestStack;
let worker: RunningWorker;
let gateway: TestGateway;
/** The gateway's log lines (JSON, debug level). */
const gatewayLines: string[] = [];
/** Every bearer token this file sent: none may appear in the log or the metrics. */
const tokensSent = new Set<string>();

// ---- the identity provider: keys generated here, a JWKS served here, rotated by the test

interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signingKey(kid: string, alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

let first: SigningKey;
let rotated: SigningKey;
/** A key of the same kid as `first` that the JWKS never holds: its signatures do not verify. */
let impostor: SigningKey;
let served: SigningKey[] = [];
let jwksFetches = 0;
let jwksServer: Server;

/** A JWT as the identity provider would issue it, with `overrides` (undefined removes a claim). */
async function idpToken(
  key: SigningKey,
  claims: JWTPayload = {},
  options: { expiresIn?: string | number | null; issuer?: string; audience?: string } = {},
): Promise<string> {
  let jwt = new SignJWT({ [TENANT_CLAIM]: jwtTenant, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setSubject('user-1')
    .setIssuedAt();
  if (options.expiresIn !== null) jwt = jwt.setExpirationTime(options.expiresIn ?? '5m');
  return jwt.sign(key.privateKey);
}

beforeAll(async () => {
  [first, rotated, impostor] = await Promise.all([signingKey('k1', 'RS256'), signingKey('k2', 'ES256'), signingKey('k1', 'RS256')]);
  served = [first];
  jwksServer = createServer((request, response) => {
    jwksFetches++;
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ keys: served.map((k) => k.jwk) }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;

  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  const env = {
    UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL: jwksUrl,
    UPLOAD_SAGA_GATEWAY_JWT_ISSUER: ISSUER,
    UPLOAD_SAGA_GATEWAY_JWT_AUDIENCE: `${AUDIENCE},another-audience`,
    UPLOAD_SAGA_GATEWAY_JWT_TENANT_CLAIM: TENANT_CLAIM,
    UPLOAD_SAGA_GATEWAY_JWT_TENANTS: [jwtTenant, refusedTenant].join(','),
    UPLOAD_SAGA_GATEWAY_UPLOAD_TOKEN_SECRET: SECRET,
  };
  const jwt = loadGatewayConfig(env).jwt!;
  gateway = await startTestGateway(stack, [other], {
    env,
    // A short cooldown between JWKS fetches, so that the rotation test need not wait the default 30 s.
    overrides: { jwt: { ...jwt, jwksCooldownMs: 200 } },
    plugins: [s3MultipartPlugin(), progressPlugin()],
    loggerInstance: collectingLogger('debug', gatewayLines),
  });
});

afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
  await stack?.close();
  await new Promise((resolve) => jwksServer?.close(resolve));
});

const bearer = (token: string) => {
  tokensSent.add(token);
  return { Authorization: `Bearer ${token}` };
};
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** POST /uppy/s3/multipart as @uppy/aws-s3 sends it (with the bearer header). */
async function presignedCreate(headers: Record<string, string>, metadata: Record<string, string> = { 'upload-length': '1' }) {
  return fetch(`${gateway.url}/uppy/s3/multipart`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ filename: 'file.bin', type: 'application/octet-stream', metadata }),
  });
}

/** One part PUT straight to S3, then complete: the presigned path end to end. */
async function presignedUpload(headers: Record<string, string>, data: Buffer, uploadId: string, key: string) {
  const query = new URLSearchParams({ key });
  const signed = await fetch(`${gateway.url}/uppy/s3/multipart/${uploadId}/1?${query}`, { headers });
  expect(signed.status, await signed.clone().text()).toBe(200);
  const put = await fetch(((await signed.json()) as { url: string }).url, { method: 'PUT', body: data });
  expect(put.status).toBe(200);
  const etag = put.headers.get('etag')!.replace(/^"+|"+$/g, '');
  return fetch(`${gateway.url}/uppy/s3/multipart/${uploadId}/complete?${query}`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ parts: [{ PartNumber: 1, ETag: etag }] }),
  });
}

/** Workflows of `tenant` as visibility lists them. */
const workflowsOf = async (tenant: string) => (await stack.client.workflow.count(`UploadTenant = '${tenant}'`)).count;

describe('JWT bearer tokens verified against the identity provider’s JWKS', () => {
  it('a JWT creates tus and presigned uploads for the tenant its claim names', async () => {
    const token = await idpToken(first);
    const data = randomBytes(MiB + 17);
    const run = startTus(data, { endpoint: `${gateway.url}/files`, headers: bearer(token), metadata: { filename: 'by-jwt.bin' } });
    await run.done;
    const key = `${jwtTenant}/${idOf(run.upload.url)}/by-jwt.bin`;
    expect(await objectSha256(stack.s3, BUCKET, key)).toBe(sha256(data));

    const created = await presignedCreate(bearer(token));
    expect(created.status, await created.clone().text()).toBe(200);
    const { uploadId, key: presignedKey } = (await created.json()) as { uploadId: string; key: string };
    expect(presignedKey).toBe(`${jwtTenant}/${uploadId}/file.bin`);
    const aborted = await fetch(`${gateway.url}/uppy/s3/multipart/${uploadId}?${new URLSearchParams({ key: presignedKey })}`, {
      method: 'DELETE',
      headers: bearer(token),
    });
    expect(aborted.status).toBe(200);
  });

  it('the provider rotates its keys: a token of the new key is accepted without restarting the gateway, the old key’s refused', async () => {
    // The gateway holds the first key set already (fetched by the previous test or now).
    expect((await tusRequest(`${gateway.url}/files`, 'POST', { ...bearer(await idpToken(first)), 'Upload-Length': '0' })).status).toBe(201);
    const fetchesBefore = jwksFetches;
    served = [rotated];
    await sleep(250); // the cooldown between two fetches of the set

    const created = await tusRequest(`${gateway.url}/files`, 'POST', { ...bearer(await idpToken(rotated)), 'Upload-Length': '0' });
    expect(created.status, await created.clone().text()).toBe(201);
    expect(jwksFetches).toBeGreaterThan(fetchesBefore);

    await sleep(250);
    const old = await tusRequest(`${gateway.url}/files`, 'POST', { ...bearer(await idpToken(first)), 'Upload-Length': '0' });
    expect(old.status).toBe(401);
    expect(((await old.json()) as { message: string }).message).toBe("no key of the identity provider's key set matches the token (kid)");
    served = [first, rotated];
    await sleep(250);
  });
});

describe('an identity provider that does not answer', () => {
  it('answers 503 (the client may retry), not 401, and the operator finds the cause in the log', async () => {
    // A port nothing listens on any more.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const lines: string[] = [];
    const down = await startTestGateway(stack, [], {
      env: {
        UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks`,
        UPLOAD_SAGA_GATEWAY_JWT_ISSUER: ISSUER,
        UPLOAD_SAGA_GATEWAY_JWT_AUDIENCE: AUDIENCE,
        UPLOAD_SAGA_GATEWAY_JWT_TENANT_CLAIM: TENANT_CLAIM,
      },
      loggerInstance: createLogger(
        { level: 'warn', format: 'json' },
        {
          destination: new Writable({
            write(chunk: Buffer, _encoding, done) {
              lines.push(chunk.toString());
              done();
            },
          }),
        },
      ),
    });
    try {
      const answer = await tusRequest(`${down.url}/files`, 'POST', { ...bearer(await idpToken(first)), 'Upload-Length': '1' });
      expect(answer.status).toBe(503);
      expect(((await answer.json()) as { message: string }).message).toBe(
        "the identity provider's key set (JWKS) could not be fetched; retry later",
      );
      expect(lines.join('')).toContain('identity provider key set unavailable');
    } finally {
      await down.close();
    }
  });
});

describe('upload tokens minted for one browser upload', () => {
  it('tus-js-client uploads with an upload token: its one upload, at the key it names; then the token creates nothing more', async () => {
    const { token } = await mintUploadToken({
      secret: SECRET,
      tenant: tokenTenant,
      maxBytes: 4 * MiB,
      key: 'avatars/u1.bin',
      expiresIn: '5m',
    });
    const data = randomBytes(2 * MiB + 5);
    const run = startTus(data, { endpoint: `${gateway.url}/files`, headers: bearer(token), metadata: { filename: 'ignored.bin' } });
    await run.done;
    expect(await objectSha256(stack.s3, BUCKET, `${tokenTenant}/avatars/u1.bin`)).toBe(sha256(data));
    // Its own upload stays reachable (HEAD); a second creation does not.
    const head = await tusRequest(run.upload.url!, 'HEAD', bearer(token));
    expect(head.status).toBe(200);
    expect(head.headers.get('upload-offset')).toBe(String(data.length));
    const again = await tusRequest(`${gateway.url}/files`, 'POST', { ...bearer(token), 'Upload-Length': '1' });
    expect(again.status).toBe(403);
  });

  it('tus-js-client parallelUploads with an upload token: its partials and final are one upload, at the key it names, within its limit', async () => {
    const { token } = await mintUploadToken({
      secret: SECRET,
      tenant: tokenTenant,
      maxBytes: 8 * MiB,
      key: 'parallel/u1.bin',
      expiresIn: '5m',
    });
    const data = randomBytes(6 * MiB + 3);
    const created: string[] = [];
    const run = startTus(data, {
      endpoint: `${gateway.url}/files`,
      headers: bearer(token),
      parallelUploads: 3,
      metadata: { filename: 'ignored.bin' },
      onAfterResponse: (request, response) => {
        if (request.getMethod() === 'POST') created.push(`${response.getStatus()} ${response.getHeader('Location')}`);
      },
    });
    await run.done;
    expect(await objectSha256(stack.s3, BUCKET, `${tokenTenant}/parallel/u1.bin`)).toBe(sha256(data));
    // Three partials and the final, all inside the group of the first partial's id.
    const ids = created.map((line) => idOf(line.split(' ')[1]!));
    expect(created.map((line) => line.split(' ')[0])).toEqual(['201', '201', '201', '201']);
    const group = ids.find((id) => !id.includes('.'))!;
    expect(ids.filter((id) => id.startsWith(`${group}.`))).toHaveLength(3);
    const final = await gateway.app.uploads.waitForEnd(tokenTenant, idOf(run.upload.url), 30_000);
    expect(final).toMatchObject({ outcome: 'completed', length: data.length, concat: { kind: 'final' } });
    expect((await tusRequest(run.upload.url!, 'HEAD', bearer(token))).status).toBe(200);
    // An upload that is not a partial, and partials beyond its limit, it does not create.
    expect((await tusRequest(`${gateway.url}/files`, 'POST', { ...bearer(token), 'Upload-Length': '1' })).status).toBe(403);
    const over = await tusRequest(`${gateway.url}/files`, 'POST', {
      ...bearer(token),
      'Upload-Concat': 'partial',
      'Upload-Length': String(2 * MiB),
    });
    expect(over.status).toBe(413);
  });

  it('gives an upload token back the bytes of its partials that ended unjoined: a new partial fits again', async () => {
    const { token } = await mintUploadToken({ secret: SECRET, tenant: tokenTenant, maxBytes: 2 * MiB, expiresIn: '5m' });
    const partial = (length: number) =>
      tusRequest(`${gateway.url}/files`, 'POST', { ...bearer(token), 'Upload-Concat': 'partial', 'Upload-Length': String(length) });
    const first = await partial(2 * MiB);
    expect(first.status, await first.clone().text()).toBe(201);
    const firstUrl = new URL(first.headers.get('location')!, gateway.url).toString();
    // While the first runs, it holds the token's whole limit.
    expect((await partial(MiB)).status).toBe(413);
    expect((await tusRequest(firstUrl, 'DELETE', bearer(token))).status).toBe(204);
    expect((await gateway.app.uploads.state(tokenTenant, idOf(firstUrl))).outcome).toBe('cancelled');
    // Ended without being joined: its bytes are the token's again, once.
    const second = await partial(2 * MiB);
    expect(second.status, await second.clone().text()).toBe(201);
    expect((await partial(MiB)).status).toBe(413);
    await tusRequest(new URL(second.headers.get('location')!, gateway.url).toString(), 'DELETE', bearer(token));
  });

  it("a deferred-length upload with an upload token reserves the token's limit, not the tenant's, and may not declare more", async () => {
    const { token } = await mintUploadToken({ secret: SECRET, tenant: tokenTenant, maxBytes: 3 * MiB, expiresIn: '5m' });
    const created = await tusRequest(`${gateway.url}/files`, 'POST', { ...bearer(token), 'Upload-Defer-Length': '1' });
    expect(created.status, await created.text()).toBe(201);
    const url = new URL(created.headers.get('location')!, gateway.url).toString();
    // The creation answers once the saga started; HEAD answers once it reserved and opened.
    expect((await tusRequest(url, 'HEAD', bearer(token))).status).toBe(200);
    expect(await quotaLedgerOf(stack).reservation(tokenTenant, idOf(url))).toEqual({ status: 'reserved', bytes: 3 * MiB });
    const over = await tusRequest(url, 'PATCH', {
      ...bearer(token),
      'Upload-Offset': '0',
      'Upload-Length': String(3 * MiB + 1),
      'Content-Type': 'application/offset+octet-stream',
    });
    expect([over.status, await over.text()]).toEqual([413, expect.stringContaining(`maximum upload size of ${3 * MiB} bytes`)]);
    expect((await tusRequest(url, 'DELETE', bearer(token))).status).toBe(204);
  });

  it('the presigned path with an upload token: create, sign, complete its one upload', async () => {
    const { token } = await mintUploadToken({ secret: SECRET, tenant: tokenTenant, maxBytes: MiB, expiresIn: 300 });
    const data = randomBytes(MiB);
    const created = await presignedCreate(bearer(token), { 'upload-length': String(data.length) });
    expect(created.status, await created.clone().text()).toBe(200);
    const { uploadId, key } = (await created.json()) as { uploadId: string; key: string };
    const completed = await presignedUpload(bearer(token), data, uploadId, key);
    expect(completed.status, await completed.clone().text()).toBe(200);
    expect(await objectSha256(stack.s3, BUCKET, key)).toBe(sha256(data));
    expect((await presignedCreate(bearer(token), { 'upload-length': '1' })).status).toBe(403);
  });

  it('across replicas (Redis), of concurrent creations with one token exactly one binds it, a group holds at most its limit; both expire with the token', async () => {
    const redis = testRedis();
    const secondConnection = redis.duplicate();
    const prefix = `${uniqueId('auth-test')}:`;
    try {
      const replicas = [new RedisUploadTokenBindings(redis, prefix), new RedisUploadTokenBindings(secondConnection, prefix)];
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => replicas[i % 2]!.bind('t1', `upload-${i}`, Date.now() + 1_000)),
      );
      expect(new Set(results).size).toBe(1);
      expect(await replicas[1]!.boundUpload('t1')).toBe(results[0]);
      const ttl = await redis.pttl(`${prefix}upload-token:t1`);
      expect(ttl).toBeGreaterThan(1_000);
      expect(ttl).toBeLessThanOrEqual(61_000);
      // A group's partials: of concurrent additions across replicas, only as many as fit the limit count.
      const added = await Promise.all(Array.from({ length: 8 }, (_, i) => replicas[i % 2]!.addBytes('t2', 3, 10, Date.now() + 1_000)));
      expect(added.filter(Boolean)).toHaveLength(3);
      expect(await redis.get(`${prefix}upload-token:t2:bytes`)).toBe('9');
      expect(await replicas[0]!.addBytes('t2', -3, 10, Date.now() + 1_000)).toBe(true);
      expect(await replicas[1]!.addBytes('t2', 1, 10, Date.now() + 1_000)).toBe(true);
      expect(await redis.get(`${prefix}upload-token:t2:bytes`)).toBe('7');
      // A member's bytes are given back once, whichever replica asks first.
      await replicas[0]!.addMember('t2', 'g2.a', 3, Date.now() + 1_000);
      expect(await replicas[1]!.members('t2')).toEqual([{ uploadId: 'g2.a', bytes: 3 }]);
      const given = await Promise.all(Array.from({ length: 4 }, (_, i) => replicas[i % 2]!.giveBack('t2', 'g2.a')));
      expect(given.filter(Boolean)).toHaveLength(1);
      expect(await redis.get(`${prefix}upload-token:t2:bytes`)).toBe('4');
      expect(await replicas[0]!.members('t2')).toEqual([]);
    } finally {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
      secondConnection.disconnect();
    }
  });

  it('mintUploadToken refuses what it cannot sign safely', async () => {
    await expect(mintUploadToken({ secret: 'short', tenant: tokenTenant })).rejects.toThrow(/secret must be at least 32 characters/);
    await expect(mintUploadToken({ secret: SECRET, tenant: 'no spaces' })).rejects.toThrow(/tenant must be/);
    await expect(mintUploadToken({ secret: SECRET, tenant: tokenTenant, expiresIn: '2d' })).rejects.toThrow(/at most|1 s to 24 h/);
  });
});

// ---- the catalogue's rows

const CATALOGUE = 'docs/reference/bad-input.md';
const TABLE = 'Gateway authentication';

/** Uploads the scope rows created on purpose (each case adds its own), the only ones `scopedTenant` may have. */
const scopedUploads = new Set<string>();

/** An answer: status, the message (JSON `message`, else the text), the challenge, the raw text. */
interface Answer {
  status: number;
  message: string;
  challenge: string | null;
  text: string;
}

async function answerOf(response: Response): Promise<Answer> {
  const text = await response.text();
  let message = text.trim();
  try {
    message = (JSON.parse(text) as { message: string }).message;
  } catch {
    // a tus answer: plain text
  }
  const challenge = response.headers.get('www-authenticate');
  // A HEAD answer has no body: its reason is the challenge's error_description.
  if (!text) message = /error_description="([^"]*)"/.exec(challenge ?? '')?.[1] ?? '';
  return { status: response.status, message, challenge, text };
}

/** The tus creation and the presigned creation with `headers`. */
async function bothCreations(headers: Record<string, string>): Promise<Answer[]> {
  return [
    await answerOf(await tusRequest(`${gateway.url}/files`, 'POST', { ...headers, 'Upload-Length': '1' })),
    await answerOf(await presignedCreate(headers)),
  ];
}

/** An HS256 JWT of the right issuer and audience, signed with some secret: never an identity provider's. */
async function hmacJwt(): Promise<string> {
  return new SignJWT({ [TENANT_CLAIM]: refusedTenant })
    .setProtectedHeader({ alg: 'HS256', kid: 'k1', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));
}

/** An upload token signed with `secret`, expiring at `exp` (seconds). */
async function handMadeUploadToken(secret: string, exp: number): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: UPLOAD_TOKEN_TYPE })
    .setIssuer('upload-saga')
    .setAudience('upload-saga-gateway')
    .setSubject(refusedTenant)
    .setJti(randomBytes(16).toString('hex'))
    .setIssuedAt(exp - 600)
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
}

/** Mints a token for `scopedTenant` and creates its one tus upload (recorded as created on purpose). */
async function scopedTokenWithUpload(): Promise<{ token: string; uploadUrl: string }> {
  const { token } = await mintUploadToken({ secret: SECRET, tenant: scopedTenant, maxBytes: MiB });
  const created = await tusRequest(`${gateway.url}/files`, 'POST', { ...bearer(token), 'Upload-Length': '10' });
  expect(created.status, await created.clone().text()).toBe(201);
  const uploadUrl = new URL(created.headers.get('location')!, gateway.url).toString();
  scopedUploads.add(idOf(uploadUrl));
  return { token, uploadUrl };
}

/** A partial upload (`Upload-Concat: partial`) of `length` bytes created with `token` (its scoped uploads are counted); its URL. */
async function scopedPartial(token: string, length: number): Promise<string> {
  const created = await tusRequest(`${gateway.url}/files`, 'POST', {
    ...bearer(token),
    'Upload-Concat': 'partial',
    'Upload-Length': String(length),
  });
  expect(created.status, await created.clone().text()).toBe(201);
  const uploadUrl = new URL(created.headers.get('location')!, gateway.url).toString();
  scopedUploads.add(idOf(uploadUrl));
  return uploadUrl;
}

/** Each row's case: the answers it produced (each must match the row), and the token it sent, if any. */
const CASES: Record<string, () => Promise<{ answers: Answer[]; token?: string }>> = {
  none: async () => ({ answers: await bothCreations({}) }),
  'an unknown opaque token': async () => {
    const token = randomBytes(24).toString('base64url');
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'a JWT whose signature does not verify': async () => {
    const token = await idpToken(impostor, { [TENANT_CLAIM]: refusedTenant });
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'a JWT signed by a key the JWKS does not hold': async () => {
    const token = await idpToken({ ...impostor, kid: 'never-published' }, { [TENANT_CLAIM]: refusedTenant });
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'an expired JWT': async () => {
    // Beyond the 30 s clock tolerance.
    const token = await idpToken(first, { [TENANT_CLAIM]: refusedTenant }, { expiresIn: Math.floor(Date.now() / 1000) - 120 });
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'a JWT for another audience': async () => {
    const token = await idpToken(first, { [TENANT_CLAIM]: refusedTenant }, { audience: 'some-other-api' });
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'a JWT of another issuer': async () => {
    const token = await idpToken(first, { [TENANT_CLAIM]: refusedTenant }, { issuer: 'https://elsewhere.test/' });
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'a JWT without an expiry': async () => {
    const token = await idpToken(first, { [TENANT_CLAIM]: refusedTenant }, { expiresIn: null });
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'a JWT signed with an algorithm not allowed (HS256)': async () => {
    const token = await hmacJwt();
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'a JWT without the tenant claim': async () => {
    const token = await idpToken(first, { [TENANT_CLAIM]: undefined });
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'a JWT for a tenant the gateway does not serve': async () => {
    const token = await idpToken(first, { [TENANT_CLAIM]: intruder });
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'an upload token signed with another secret': async () => {
    const token = await handMadeUploadToken(randomBytes(32).toString('base64url'), Math.floor(Date.now() / 1000) + 300);
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'an expired upload token': async () => {
    const token = await handMadeUploadToken(SECRET, Math.floor(Date.now() / 1000) - 5);
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'an upload token on another upload (of its tenant or another)': async () => {
    const { token } = await scopedTokenWithUpload();
    // Another upload of its tenant: created by a second token; and another tenant's.
    const { uploadUrl: sibling } = await scopedTokenWithUpload();
    const foreign = await createTusUpload(gateway, other, 10);
    const presigned = await presignedCreate(other.auth);
    const { uploadId, key } = (await presigned.json()) as { uploadId: string; key: string };
    return {
      token,
      answers: [
        await answerOf(await tusRequest(sibling, 'HEAD', bearer(token))),
        await answerOf(await tusRequest(foreign, 'PATCH', { ...bearer(token), 'Upload-Offset': '0' }, Buffer.alloc(10))),
        await answerOf(await tusRequest(foreign, 'DELETE', bearer(token))),
        await answerOf(
          await fetch(`${gateway.url}/uppy/s3/multipart/${uploadId}/1?${new URLSearchParams({ key })}`, { headers: bearer(token) }),
        ),
      ],
    };
  },
  'an upload token creating a second upload': async () => {
    const { token } = await scopedTokenWithUpload();
    return { token, answers: await bothCreations(bearer(token)) };
  },
  'an upload token on a route other than tus and presigned multipart': async () => {
    const { token, uploadUrl } = await scopedTokenWithUpload();
    return {
      token,
      answers: [
        await answerOf(await fetch(`${gateway.url}/uppy/sessions`, { method: 'POST', headers: bearer(token) })),
        await answerOf(await fetch(`${gateway.url}/uploads/${idOf(uploadUrl)}/events`, { headers: bearer(token) })),
        await answerOf(await fetch(`${gateway.url}/uppy/s3/params?filename=a.bin`, { headers: bearer(token) })),
        // EventSource's way: the token as a query parameter (redacted in the log).
        await answerOf(await fetch(`${gateway.url}/uploads/${idOf(uploadUrl)}/events?access_token=${token}`)),
      ],
    };
  },
  'an upload token and a larger `Upload-Length` (tus)': async () => {
    const { token } = await mintUploadToken({ secret: SECRET, tenant: refusedTenant, maxBytes: MiB });
    const answer = await answerOf(await tusRequest(`${gateway.url}/files`, 'POST', { ...bearer(token), 'Upload-Length': String(MiB + 1) }));
    return { token, answers: [answer] };
  },
  'an upload token joining partial uploads it did not create (tus)': async () => {
    const { token } = await mintUploadToken({ secret: SECRET, tenant: scopedTenant, maxBytes: MiB });
    const { token: another } = await mintUploadToken({ secret: SECRET, tenant: scopedTenant, maxBytes: MiB });
    const { token: fresh } = await mintUploadToken({ secret: SECRET, tenant: scopedTenant, maxBytes: MiB });
    await scopedPartial(token, 10);
    const foreign = await scopedPartial(another, 10);
    const final = (withToken: string) =>
      tusRequest(`${gateway.url}/files`, 'POST', { ...bearer(withToken), 'Upload-Concat': `final;${new URL(foreign).pathname}` });
    // A token that created partials of its own, and one that created nothing yet.
    return { token, answers: [await answerOf(await final(token)), await answerOf(await final(fresh))] };
  },
  "an upload token's partial uploads over its size limit (tus)": async () => {
    const { token } = await mintUploadToken({ secret: SECRET, tenant: scopedTenant, maxBytes: MiB });
    await scopedPartial(token, MiB / 2 + 1);
    const answer = await tusRequest(`${gateway.url}/files`, 'POST', {
      ...bearer(token),
      'Upload-Concat': 'partial',
      'Upload-Length': String(MiB / 2),
    });
    return { token, answers: [await answerOf(answer)] };
  },
  'an upload token and a larger declared size (presigned)': async () => {
    const { token } = await mintUploadToken({ secret: SECRET, tenant: refusedTenant, maxBytes: MiB });
    return { token, answers: [await answerOf(await presignedCreate(bearer(token), { 'upload-length': String(MiB + 1) }))] };
  },
  'an upload token with a size limit and no declared size (presigned)': async () => {
    const { token } = await mintUploadToken({ secret: SECRET, tenant: refusedTenant, maxBytes: MiB });
    return { token, answers: [await answerOf(await presignedCreate(bearer(token), {}))] };
  },
};

function catalogueRows(): { token: string; status: number; error: string }[] {
  const found = tables(readRepoFile(CATALOGUE)).filter((t) => t.heading === TABLE);
  expect(found, `${CATALOGUE} has one table under "${TABLE}"`).toHaveLength(1);
  expect(found[0]!.header).toEqual(['token', 'status', 'error']);
  return found[0]!.rows.map(([token, status, error]) => ({ token: token!, status: Number(status), error: error! }));
}

describe(`the refusals of ${CATALOGUE}, "${TABLE}"`, () => {
  const rows = catalogueRows();

  it('has a case for every row and a row for every case', () => {
    expect(rows.map((r) => r.token).sort()).toEqual(Object.keys(CASES).sort());
  });

  for (const row of rows) {
    it(`${row.token}: ${row.status}, ${codeSpans(row.error).join(' ')}`, async () => {
      const { answers, token } = await CASES[row.token]!();
      expect(answers.length).toBeGreaterThan(0);
      for (const answer of answers) {
        expect(answer.status, answer.text).toBe(row.status);
        for (const fragment of codeSpans(row.error)) expect(answer.message).toMatch(fragmentPattern(fragment));
        if (token) expect(answer.text).not.toContain(token);
        if (row.status === 401) {
          expect(answer.challenge).toBe(
            token
              ? `Bearer error="invalid_token", error_description="${answer.message.replace(/"/g, "'").replace(/[^\x20-\x21\x23-\x5B\x5D-\x7E]/g, ' ')}"`
              : 'Bearer',
          );
        }
        if (row.status === 403) expect(answer.challenge).toMatch(/^Bearer error="insufficient_scope", error_description="/);
      }
    });
  }

  it('created nothing for the tenants the refused tokens named: no workflow, nothing in S3', async () => {
    // A visibility barrier: one upload created now for the refused tenant must be listed before the count is read.
    const refusedBearer = bearer(await idpToken(first, { [TENANT_CLAIM]: refusedTenant }));
    const barrier = await createTusUploadWith(refusedBearer);
    // Answered once its saga opened it: the saga's first task (the tenant's first reservation, which
    // starts its ledger) is not left running when the worker stops after this file.
    expect((await tusRequest(`${gateway.url}/files/${barrier}`, 'HEAD', refusedBearer)).status).toBe(200);
    await expect.poll(() => workflowsOf(refusedTenant), { timeout: 10_000, interval: 200 }).toBeGreaterThanOrEqual(1);
    expect(await workflowsOf(refusedTenant)).toBe(1);
    expect((await keysUnder(stack.s3, BUCKET, `${refusedTenant}/`)).filter((k) => !k.includes(barrier))).toEqual([]);
    expect(await workflowsOf(intruder)).toBe(0);
    expect(await keysUnder(stack.s3, BUCKET, `${intruder}/`)).toEqual([]);
    // The scope rows' tenant: exactly the uploads its tokens were allowed to create.
    await expect.poll(() => workflowsOf(scopedTenant), { timeout: 10_000, interval: 200 }).toBeGreaterThanOrEqual(scopedUploads.size);
    expect(await workflowsOf(scopedTenant)).toBe(scopedUploads.size);
  });
});

/** A tus creation with `headers`; returns the new upload's id. */
async function createTusUploadWith(headers: Record<string, string>): Promise<string> {
  const created = await tusRequest(`${gateway.url}/files`, 'POST', { ...headers, 'Upload-Length': '10' });
  expect(created.status, await created.clone().text()).toBe(201);
  return idOf(created.headers.get('location'));
}

describe('tokens stay secret', () => {
  it('no token sent in this file, nor the upload-token secret, appears in the gateway log or its metrics', async () => {
    expect(tokensSent.size).toBeGreaterThan(20);
    // The log did record the requests, the query-parameter token redacted.
    expect(gatewayLines.some((line) => line.includes('access_token=[REDACTED]'))).toBe(true);
    const log = gatewayLines.join('\n');
    const metrics = await gateway.app.metrics.registry.metrics();
    for (const token of tokensSent) {
      expect(log.includes(token), 'a token in the gateway log').toBe(false);
      expect(metrics.includes(token), 'a token in the metrics').toBe(false);
    }
    expect(log.includes(SECRET)).toBe(false);
  });
});
