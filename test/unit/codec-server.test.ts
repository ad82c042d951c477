/**
 * The codec server's protocol, in process (fastify's `inject`): what the Web UI and the `temporal`
 * CLI send, CORS, the bearer token, namespaces, malformed bodies. test/codec/encryption.test.ts
 * runs it over real HTTP against real histories.
 */
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { afterAll, describe, expect, it } from 'vitest';
import { AesGcmPayloadCodec, CodecServerExposedError, createCodecServer, startCodecServer } from '../../src/codec';

const UI = 'http://127.0.0.1:8233';
const TOKEN = 'codec-token-0123456789abcdef';
const codec = new AesGcmPayloadCodec({ encryption: { keys: [{ id: 'k1', key: randomBytes(32) }] } });
const server = createCodecServer({ codec, token: TOKEN, allowedOrigins: [UI], namespaces: ['default'] });
afterAll(() => server.app.close());

const b64 = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('base64');
const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
  data: b64(p.data),
});
const fromJson = (p: { metadata: Record<string, string>; data: string }): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data, 'base64'),
});
const uiHeaders = { 'content-type': 'application/json', 'x-namespace': 'default', origin: UI, authorization: `Bearer ${TOKEN}` };

describe('codec server protocol', () => {
  it('decodes what the codec encoded, one payload out per payload in, with CORS headers for the UI', async () => {
    const encrypted = await codec.encode([
      defaultPayloadConverter.toPayload({ key: 'plans/q3.pdf' }),
      defaultPayloadConverter.toPayload(42),
    ]);
    const response = await server.app.inject({
      method: 'POST',
      url: '/decode',
      headers: uiHeaders,
      payload: { payloads: encrypted.map(toJson) },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBe(UI);
    expect(response.headers['access-control-allow-credentials']).toBe('true');
    const body = response.json<{ payloads: { metadata: Record<string, string>; data: string }[] }>();
    expect(body.payloads.map((p) => defaultPayloadConverter.fromPayload(fromJson(p)))).toEqual([{ key: 'plans/q3.pdf' }, 42]);
  });

  it('encodes, so that the codec decodes the result', async () => {
    const response = await server.app.inject({
      method: 'POST',
      url: '/encode',
      headers: uiHeaders,
      payload: { payloads: [toJson(defaultPayloadConverter.toPayload('hello'))] },
    });
    expect(response.statusCode).toBe(200);
    const [encoded] = response.json<{ payloads: { metadata: Record<string, string>; data: string }[] }>().payloads;
    expect(Buffer.from(encoded!.metadata.encoding!, 'base64').toString()).toBe('binary/encrypted');
    expect(defaultPayloadConverter.fromPayload((await codec.decode([fromJson(encoded!)]))[0]!)).toBe('hello');
  });

  it('answers the Web UI’s CORS preflight without a token, allowing the headers the UI sends', async () => {
    const response = await server.app.inject({
      method: 'OPTIONS',
      url: '/decode',
      headers: {
        origin: UI,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-namespace,authorization',
      },
    });
    expect(response.statusCode).toBe(204);
    expect(response.headers['access-control-allow-origin']).toBe(UI);
    expect(response.headers['access-control-allow-methods']).toContain('POST');
    expect(String(response.headers['access-control-allow-headers']).toLowerCase().split(', ')).toEqual(
      expect.arrayContaining(['content-type', 'x-namespace', 'authorization']),
    );
  });

  it('refuses other origins, even on a preflight', async () => {
    for (const method of ['OPTIONS', 'POST'] as const) {
      const response = await server.app.inject({
        method,
        url: '/decode',
        headers: { ...uiHeaders, origin: 'https://evil.example' },
        payload: method === 'POST' ? { payloads: [] } : undefined,
      });
      expect(response.statusCode).toBe(403);
      expect(response.headers['access-control-allow-origin']).toBeUndefined();
      expect(response.json<{ error: string }>().error).toBe(
        'origin https://evil.example is not allowed to use this codec server (allowed: http://127.0.0.1:8233)',
      );
    }
  });

  it('refuses a missing or wrong token with 401 and says which', async () => {
    const { authorization: _, ...noToken } = uiHeaders;
    const missing = await server.app.inject({ method: 'POST', url: '/decode', headers: noToken, payload: { payloads: [] } });
    expect(missing.statusCode).toBe(401);
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(missing.json<{ error: string }>().error).toBe('authentication required: send Authorization: Bearer <token>');
    const wrong = await server.app.inject({
      method: 'POST',
      url: '/decode',
      headers: { ...uiHeaders, authorization: 'Bearer nope' },
      payload: { payloads: [] },
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json<{ error: string }>().error).toBe('the bearer token is not valid');
  });

  it('serves only the configured namespaces', async () => {
    const other = await server.app.inject({
      method: 'POST',
      url: '/decode',
      headers: { ...uiHeaders, 'x-namespace': 'payments' },
      payload: { payloads: [] },
    });
    expect(other.statusCode).toBe(403);
    expect(other.json<{ error: string }>().error).toBe('namespace payments is not served here (served: default)');
    const { 'x-namespace': _, ...noNamespace } = uiHeaders;
    const missing = await server.app.inject({ method: 'POST', url: '/decode', headers: noNamespace, payload: { payloads: [] } });
    expect(missing.statusCode).toBe(403);
    expect(missing.json<{ error: string }>().error).toContain('X-Namespace');
  });

  it('answers a malformed body or an undecryptable payload with 400 and the reason', async () => {
    const notArray = await server.app.inject({ method: 'POST', url: '/decode', headers: uiHeaders, payload: { payloads: 'x' } });
    expect(notArray.statusCode).toBe(400);
    expect(notArray.json<{ error: string }>().error).toContain('payloads must be array');
    const [sealed] = await codec.encode([defaultPayloadConverter.toPayload('x')]);
    const foreign = { ...toJson(sealed!), metadata: { ...toJson(sealed!).metadata, 'encryption-key-id': b64(Buffer.from('k9')) } };
    const unknownKey = await server.app.inject({ method: 'POST', url: '/decode', headers: uiHeaders, payload: { payloads: [foreign] } });
    expect(unknownKey.statusCode).toBe(400);
    expect(unknownKey.json<{ error: string }>().error).toBe(
      'decode failed: payload was encrypted with key "k9", which this process does not hold (it holds "k1"); add that key to UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS as id:base64-key',
    );
  });

  it('refuses to listen beyond loopback without a token', async () => {
    await expect(startCodecServer({ codec, host: '0.0.0.0' })).rejects.toBeInstanceOf(CodecServerExposedError);
  });
});
