/**
 * A Temporal codec server: decodes (and encodes) payloads over HTTP for the Web UI and the
 * `temporal` CLI, so people holding the key can read encrypted histories.
 *
 * Why it is built this way:
 * - The protocol is Temporal's remote codec: `POST /decode` and `POST /encode` with a JSON body
 *   `{ "payloads": [{ "metadata": { name: base64 }, "data": base64 }] }`, answered in the same
 *   shape, one payload out per payload in. The Web UI sends `Content-Type` and `X-Namespace` (and,
 *   when told to pass its access token, `Authorization` and `Authorization-Extras`); the `temporal`
 *   CLI (`--codec-endpoint`, `--codec-auth`) sends `Authorization` as given.
 * - fastify rather than `node:http`: a JSON body parser with a size limit, request validation from
 *   a schema (a malformed body gets a 400 naming the field), hooks for CORS, authentication and a
 *   per-request log line, and `inject()` for tests — all things that would otherwise be hand-written
 *   around a raw server. CORS is a few headers, set here by hand (no CORS plugin is installed).
 * - The browser calls the codec server from the Web UI's page, so CORS allows exactly the listed
 *   origins, with credentials; a request from any other origin is refused outright (403), so a web
 *   page in a key holder's browser cannot use a codec server on their machine to decrypt.
 * - An optional bearer token guards `/encode` and `/decode` (compared in constant time). Preflights
 *   carry no credentials and are answered without it. Listening on a non-loopback address without
 *   a token is refused unless explicitly allowed: anyone who reaches it could decrypt everything.
 * - Nothing about a payload's content is logged; the log line has method, path, namespace, count,
 *   status and duration.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Payload, PayloadCodec } from '@temporalio/common';

/** Headers the Web UI and the `temporal` CLI send, allowed in CORS preflights. */
export const CODEC_REQUEST_HEADERS = ['Content-Type', 'X-Namespace', 'Authorization', 'Authorization-Extras'] as const;

/** Options of {@link createCodecServer}. */
export interface CodecServerOptions {
  /** The codec that encodes and decodes (e.g. an {@link AesGcmPayloadCodec}). */
  codec: PayloadCodec;
  /**
   * Bearer token required on `/encode` and `/decode` (`Authorization: Bearer <token>`).
   * @default none: no authentication
   */
  token?: string;
  /**
   * Browser origins allowed to call (the Web UI's, e.g. `http://localhost:8233`); more can be added
   * with `allowOrigin` once known.
   * @default [] (requests with an `Origin` header are refused; the CLI sends none)
   */
  allowedOrigins?: readonly string[];
  /**
   * Namespaces served (by the `X-Namespace` header); requests for others are refused.
   * @default every namespace, with or without the header
   */
  namespaces?: readonly string[];
  /**
   * Largest request body accepted.
   * @default 16 MiB
   */
  bodyLimitBytes?: number;
  /**
   * Receives one line per request (method, path, namespace, payload count, status, duration).
   * @default no log
   */
  log?: (line: string) => void;
}

/** A codec server whose browser origins can still be extended. */
export interface CodecServer {
  readonly app: FastifyInstance;
  /** Allows one more browser origin (e.g. the Web UI's, once its port is known). */
  allowOrigin(origin: string): void;
}

/** Wire form of a payload: metadata values and data in base64. */
interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const BASE64 = '^[A-Za-z0-9+/_-]*={0,2}$';
const bodySchema = {
  type: 'object',
  required: ['payloads'],
  properties: {
    payloads: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          metadata: { type: 'object', additionalProperties: { type: 'string', pattern: BASE64 } },
          data: { type: 'string', pattern: BASE64 },
        },
      },
    },
  },
} as const;

function fromJson(payload: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: Buffer.from(payload.data ?? '', 'base64'),
  };
}

function toJson(payload: Payload): JsonPayload {
  const b64 = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? new Uint8Array()).toString('base64');
  return { metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, b64(v)])), data: b64(payload.data) };
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** Builds the server (not listening); see {@link startCodecServer} to listen. */
export function createCodecServer(options: CodecServerOptions): CodecServer {
  const origins = new Set(options.allowedOrigins ?? []);
  const namespaces = options.namespaces ? new Set(options.namespaces) : undefined;
  const expected = options.token === undefined ? undefined : digest(`Bearer ${options.token}`);
  // No type coercion: a malformed body is refused with the field named, never reinterpreted.
  const app = Fastify({
    bodyLimit: options.bodyLimitBytes ?? 16 * 1024 * 1024,
    logger: false,
    ajv: { customOptions: { coerceTypes: false } },
  });

  const refuse = (reply: FastifyReply, status: number, error: string) => reply.code(status).send({ error });

  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    if (origin !== undefined) {
      if (!origins.has(origin))
        return refuse(
          reply,
          403,
          `origin ${origin} is not allowed to use this codec server (allowed: ${[...origins].join(', ') || 'none'})`,
        );
      reply.header('Access-Control-Allow-Origin', origin).header('Access-Control-Allow-Credentials', 'true').header('Vary', 'Origin');
    }
    if (request.method === 'OPTIONS') return;
    if (expected) {
      const given = request.headers.authorization;
      if (given === undefined || !timingSafeEqual(digest(given), expected)) {
        reply.header('WWW-Authenticate', 'Bearer realm="upload-saga codec server"');
        return refuse(
          reply,
          401,
          given === undefined ? 'authentication required: send Authorization: Bearer <token>' : 'the bearer token is not valid',
        );
      }
    }
    const namespace = request.headers['x-namespace'];
    if (namespaces && (typeof namespace !== 'string' || !namespaces.has(namespace))) {
      return refuse(
        reply,
        403,
        typeof namespace === 'string'
          ? `namespace ${namespace} is not served here (served: ${[...namespaces].join(', ')})`
          : 'send the namespace in an X-Namespace header (temporal CLI: --codec-header X-Namespace=<namespace>)',
      );
    }
  });

  if (options.log) {
    const log = options.log;
    app.addHook('onResponse', async (request, reply) => {
      const body = request.body as { payloads?: unknown[] } | undefined;
      const count = Array.isArray(body?.payloads) ? `${body.payloads.length} payloads, ` : '';
      const namespace = request.headers['x-namespace'];
      log(
        `${request.method} ${request.url}${typeof namespace === 'string' ? ` (namespace ${namespace})` : ''} → ${reply.statusCode} (${count}${reply.elapsedTime.toFixed(0)} ms)`,
      );
    });
  }

  const preflight = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply
      .code(204)
      .header('Access-Control-Allow-Methods', 'POST, OPTIONS')
      .header('Access-Control-Allow-Headers', CODEC_REQUEST_HEADERS.join(', '))
      .header('Access-Control-Max-Age', '600')
      .send();

  for (const operation of ['encode', 'decode'] as const) {
    app.options(`/${operation}`, preflight);
    app.post<{ Body: { payloads: JsonPayload[] } }>(`/${operation}`, { schema: { body: bodySchema } }, async (request, reply) => {
      const payloads = request.body.payloads.map(fromJson);
      let result: Payload[];
      try {
        result = await options.codec[operation](payloads);
      } catch (error) {
        return refuse(reply, 400, `${operation} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      return { payloads: result.map(toJson) };
    });
  }
  app.setErrorHandler((error: { statusCode?: number; message: string }, _request, reply) =>
    refuse(reply, error.statusCode && error.statusCode < 500 ? error.statusCode : 500, error.message),
  );

  return { app, allowOrigin: (origin) => void origins.add(origin) };
}

/** Options of {@link startCodecServer}. */
export interface StartCodecServerOptions extends CodecServerOptions {
  /**
   * Interface to listen on.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * Port to listen on; 0 picks a free one.
   * @default 0
   */
  port?: number;
  /**
   * Listen on a non-loopback interface without a token. Anyone who reaches the port can then decrypt.
   * @default false (refused)
   */
  allowUnauthenticatedRemote?: boolean;
}

/** A listening codec server. */
export interface RunningCodecServer {
  /** Base URL, e.g. `http://127.0.0.1:8888`: the endpoint for `--ui-codec-endpoint` and `--codec-endpoint`. */
  readonly url: string;
  /** Allows one more browser origin. */
  allowOrigin(origin: string): void;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** The codec server was asked to listen in a way that would expose decryption. */
export class CodecServerExposedError extends Error {
  override readonly name = 'CodecServerExposedError';
}

/** Whether `host` only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Starts a codec server.
 * @throws CodecServerExposedError for a non-loopback host without a token (unless allowed)
 */
export async function startCodecServer(options: StartCodecServerOptions): Promise<RunningCodecServer> {
  const host = options.host ?? '127.0.0.1';
  if (!options.token && !isLoopbackHost(host) && !options.allowUnauthenticatedRemote) {
    throw new CodecServerExposedError(
      `refusing to serve decryption on ${host} without a token: anyone who reaches it could decrypt every payload; ` +
        'set UPLOAD_SAGA_CODEC_SERVER_TOKEN, or listen on 127.0.0.1',
    );
  }
  const server = createCodecServer(options);
  await server.app.listen({ host, port: options.port ?? 0 });
  const address = server.app.server.address() as AddressInfo;
  const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { url: `http://${hostInUrl}:${address.port}`, allowOrigin: server.allowOrigin, close: () => server.app.close() };
}
