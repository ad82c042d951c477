/**
 * The tus 1.0.0 endpoint (`/files`): @tus/server speaks the protocol — core, creation,
 * creation-with-upload, creation-defer-length, termination, expiration — and {@link GatewayUploadStore} drives the saga.
 * Concatenation, which @tus/server does not implement either, is added here and in
 * tus-concatenation.ts: a partial's creation reaches @tus/server without its `Upload-Concat`
 * header (the store makes it a partial), a final's creation is answered by tus-concatenation.ts.
 * The checksum extension, which @tus/server does not implement, is added around it: the route
 * parses `Upload-Checksum` (400 for a malformed header or an algorithm not offered), the store
 * verifies the body and answers 460 on a mismatch without recording anything. Before @tus/server
 * sees a request, tus-request-checks.ts applies `X-HTTP-Method-Override` and refuses what the
 * spec refuses (version, content type, malformed headers) with the spec's status and a clear body.
 * A request with `Upload-Draft-Interop-Version` speaks the IETF resumable-upload draft instead and
 * is served by resumable-upload.ts, through the same @tus/server, store and hooks.
 *
 * Why it is built this way: a well-kept protocol implementation instead of hand-parsing, mounted
 * in fastify with the body left unread (an encapsulated catch-all content-type parser that does
 * nothing), so @tus/server streams it. The authenticated tenant reaches the store through an
 * AsyncLocalStorage; upload locks are keyed by tenant and id (a Redis locker across replicas).
 * Gateway errors become tus answers in `onResponseError`. A finishing PATCH (or the draft's, or a
 * creation-with-upload that carries every byte) waits (up to `finishWaitMs`) until the saga merged
 * the object — its pivot — so a client told "done" finds it in S3; it does not wait for the steps
 * after the merge (delete-staged, commit-quota, notify), which only go forward and are retried.
 * Invariant: a 204 after that wait means the object is in S3 (state `merged`, or `completed`) —
 * unless the wait ran out, when it answers with the saga still running (the merge goes on, as
 * before) — and whatever is read afterwards (HEAD: the final offset, no failure) is as far along.
 */
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { Server, type Locker, type Upload } from '@tus/server';
import { ERRORS, EVENTS, Metadata } from '@tus/utils';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { tenantSettings, type GatewayConfig } from './config';
import {
  bearerChallenge,
  ForbiddenError,
  GatewayError,
  InvalidRequestError,
  RedisUnavailableError,
  UploadNotStoredError,
  UploadTooLargeError,
} from './errors';
import { GatewayUploadStore, parseUploadChecksum, TUS_CHECKSUM_ALGORITHMS, tusRequestContext, type UploadChecksum } from './tus-store';
import { checkTusRequest, effectiveMethod, TUS_VERSION, type TusRefusal } from './tus-request-checks';
import { DRAFT_REQUEST_HEADERS, refuseDraftRequest, serveDraftRequest } from './resumable-upload';
import { readDraftRequest } from './resumable-upload-checks';
import { parseUploadConcat, partialIdsOf, serveFinalCreation } from './tus-concatenation';
import { objectMetadataOf } from './tus-metadata';
import type { TusRequestContext } from './tus-request-context';
import { sendWebResponse, webRequestOf } from './tus-web-request';
import {
  bindingCovers,
  groupBinding,
  groupMemberId,
  groupOf,
  MemoryUploadTokenBindings,
  type UploadTokenBindings,
} from './upload-token-bindings';
import type { UploadsService } from './uploads-service';

/** @see tusPlugin */
export interface TusPluginOptions {
  /** The uploads API the store drives. */
  uploads: UploadsService;
  /** S3 client parts and staged segments are written with. */
  s3: S3Client;
  /** Tenant limits (maximum upload size); parts one PATCH sends at once. */
  config: Pick<GatewayConfig, 'defaults' | 'tenants' | 'tusPartsInFlight'> &
    Partial<Pick<GatewayConfig, 'tusEqualParts' | 'tusCreateWhenOpen'>>;
  /** Serialises requests on one upload (a RedisLocker across replicas). */
  locker: Locker;
  /** Where an upload token's one upload is bound at creation. @default in memory */
  uploadTokens?: UploadTokenBindings;
  /** @default '/files' */
  path?: string;
  /**
   * How long the PATCH that sends the last byte (and a concatenation final's creation) waits for
   * the saga to verify and merge before it answers (it answers anyway afterwards; the merge goes
   * on). It answers as soon as the merge completed, not when the saga ended.
   * @default 60000
   */
  finishWaitMs?: number;
  /** How often, at most, one PATCH records the parts S3 has (always at its end); see tus-store.ts. @default 1000 */
  recordIntervalMs?: number;
  /**
   * Whether this gateway is the only replica serving its uploads (its `locker` is in-process): a
   * PATCH then writes from the state this replica last saw without asking the workflow first.
   * @default false (the state is confirmed with a query while the body is received)
   */
  onlyReplica?: boolean;
  /**
   * Called with an upload's outcome once its last byte arrived, or a final's creation was answered:
   * completed once merged, running when the merge outlasts the wait, or how it failed.
   */
  onUploadEnded?: (tenant: string, outcome: string) => void;
}

/** Request headers the tus endpoint accepts beyond @tus/server's own (CORS). */
const EXTRA_ALLOWED_HEADERS = ['Upload-Checksum', ...DRAFT_REQUEST_HEADERS];
/** Response headers a browser may read beyond @tus/server's own (CORS). */
const EXTRA_EXPOSED_HEADERS = ['Upload-Expires', 'Tus-Checksum-Algorithm', 'Upload-Concat'];

/** The tus endpoint as a fastify plugin (registered by the gateway at `path`). */
export const tusPlugin: FastifyPluginAsync<TusPluginOptions> = async (app, options) => {
  const path = options.path ?? '/files';
  const finishWaitMs = options.finishWaitMs ?? 60_000;
  const uploadTokens = options.uploadTokens ?? new MemoryUploadTokenBindings();
  const context = () => {
    const current = tusRequestContext.getStore();
    if (!current) throw new Error('tus request outside the gateway route');
    return current;
  };
  // Parallel uploads with an upload token (upload-token-bindings.ts): the first partial makes the token's group, later ones join it.
  const nameUpload = async (current: TusRequestContext): Promise<string> => {
    const id = randomBytes(16).toString('hex');
    const token = current.uploadToken;
    if (!token || current.concat !== 'partial') return id;
    const bound = await token.bindings.bind(token.scope.tokenId, groupBinding(id), token.scope.expiresAt);
    const group = groupOf(bound);
    return bound === groupBinding(id) || group === undefined ? id : groupMemberId(group);
  };
  const holdPartial = async (current: TusRequestContext, token: NonNullable<TusRequestContext['uploadToken']>, upload: Upload) => {
    const bound = await token.bindings.boundUpload(token.scope.tokenId);
    if (bound === undefined || !bindingCovers(bound, upload.id))
      throw new ForbiddenError(
        `this upload token already created upload ${bound === undefined ? '' : (groupOf(bound) ?? bound)}; mint one token per upload`,
      );
    // The partials of one token together stay within its limit (a deferred length counts as the limit).
    const bytes = upload.size ?? current.maxUploadBytes;
    const add = () => token.bindings.addBytes(token.scope.tokenId, bytes, current.maxUploadBytes, token.scope.expiresAt);
    // Over the limit: the bytes of partials that ended without being joined are given back first.
    if (!(await add()) && !((await giveBackEnded(current.tenant, token)) && (await add())))
      throw new UploadTooLargeError(
        `the partial uploads of this upload token would hold more than its limit of ${current.maxUploadBytes} bytes`,
      );
    current.heldPartialBytes = bytes;
  };
  /**
   * Gives back to an upload token's count the bytes of its partials that ended without an object
   * (expired, cancelled, failed): a client may create new partials in their place. Joined partials
   * and running ones keep theirs. Each member's state is one query; only asked when a partial would
   * not fit. Returns whether any bytes were given back.
   */
  const giveBackEnded = async (tenant: string, token: NonNullable<TusRequestContext['uploadToken']>): Promise<boolean> => {
    const members = await token.bindings.members(token.scope.tokenId);
    const states = await Promise.allSettled(members.map((member) => options.uploads.state(tenant, member.uploadId)));
    const ended = members.filter((_, i) => {
      const read = states[i]!;
      return read.status === 'fulfilled' && read.value.outcome !== 'running' && read.value.outcome !== 'completed';
    });
    const given = await Promise.all(ended.map((member) => token.bindings.giveBack(token.scope.tokenId, member.uploadId)));
    return given.some(Boolean);
  };
  const tokenGroup = async (tokenId: string, urls: string[], uploadsPath: string): Promise<string | { problem: string } | undefined> => {
    const bound = await uploadTokens.boundUpload(tokenId);
    const group = bound === undefined ? undefined : groupOf(bound);
    if (bound === undefined || group === undefined)
      return { problem: 'an upload token joins only partial uploads it created itself (Upload-Concat: partial first)' };
    const ids = partialIdsOf(urls, uploadsPath);
    if (!('problem' in ids) && ids.some((id) => !bindingCovers(bound, id)))
      return { problem: 'an upload token joins only partial uploads it created itself; this final names another upload' };
    return group;
  };
  const server = new Server({
    // @tus/server builds upload URLs from the full path, prefix included; fastify's routes below add the prefix themselves.
    path: `${app.prefix}${path}`,
    datastore: new GatewayUploadStore({
      uploads: options.uploads,
      s3: options.s3,
      partsInFlight: options.config.tusPartsInFlight,
      ...(options.config.tusEqualParts ? { equalParts: true } : {}),
      ...(options.config.tusCreateWhenOpen ? { createWhenOpen: true } : {}),
      ...(options.onlyReplica ? { onlyReplica: true } : {}),
      ...(options.recordIntervalMs !== undefined ? { recordIntervalMs: options.recordIntervalMs } : {}),
    }),
    relativeLocation: true,
    namingFunction: () => nameUpload(context()),
    maxSize: () => context().maxUploadBytes,
    // Lock keys carry the tenant: one tenant's requests can never ask another's to release.
    locker: () => ({ newLock: (id: string) => options.locker.newLock(`${context().tenant}/${id}`) }),
    // An upload token creates one upload: it is bound to this id before anything is created (403 if it created one already).
    onUploadCreate: async (_req, upload) => {
      const current = context();
      const token = current.uploadToken;
      if (token && current.concat === 'partial') await holdPartial(current, token, upload);
      else if (token) {
        const bound = await token.bindings.bind(token.scope.tokenId, upload.id, token.scope.expiresAt);
        if (bound !== upload.id)
          throw new ForbiddenError(`this upload token already created upload ${groupOf(bound) ?? bound}; mint one token per upload`);
      }
      return {};
    },
    allowedHeaders: EXTRA_ALLOWED_HEADERS,
    exposedHeaders: EXTRA_EXPOSED_HEADERS,
    onUploadFinish: async (_req, upload) => {
      // A partial (concatenation) does not end with its last byte: it is done once stored, waiting for a final.
      const partial = context().concat === 'partial' || context().state?.concat?.kind === 'partial';
      const state = partial
        ? await options.uploads.waitUntilStored(context().tenant, upload.id, finishWaitMs, context().state)
        : await options.uploads.waitUntilMerged(context().tenant, upload.id, finishWaitMs, context().state);
      // A partial is not an upload of the tenant's: its final is counted once it ends. A merged
      // upload counts as completed: past its pivot it completes forward.
      if (!partial) options.onUploadEnded?.(context().tenant, state.merged ? 'completed' : state.outcome);
      if (state.outcome === 'completed' || state.outcome === 'running') return {};
      throw new UploadNotStoredError(
        `the upload was received but not stored (${state.outcome})${state.failure ? `: ${state.failure.cause.type}: ${state.failure.cause.message}` : ''}`,
      );
    },
    onResponseError: (req, err) => {
      if (err instanceof GatewayError) {
        if (err instanceof RedisUnavailableError) tusRequestContext.getStore()?.setHeader('Retry-After', String(err.retryAfterSeconds));
        if (err instanceof ForbiddenError) tusRequestContext.getStore()?.setHeader('WWW-Authenticate', bearerChallenge(err));
        return { status_code: err.status, body: `${err.message}\n` };
      }
      // @tus/server's own refusals, with bodies that say what was wrong.
      if (err === ERRORS.INVALID_OFFSET) {
        const current = tusRequestContext.getStore()?.state?.offset;
        return {
          status_code: 409,
          body: `Upload-Offset ${req.headers.get('upload-offset') ?? '(none)'} does not match the upload's offset${current === undefined ? '' : ` ${current}`}; HEAD tells the current offset\n`,
        };
      }
      if (err === ERRORS.INVALID_LENGTH) {
        // PATCH with Upload-Length (creation-defer-length): the length is known already, or below the offset.
        const current = tusRequestContext.getStore()?.state;
        const declared = req.headers.get('upload-length');
        return {
          status_code: 400,
          body:
            current?.length !== undefined
              ? `the upload's length is already ${current.length} bytes; Upload-Length may only be sent while the length is deferred (Upload-Defer-Length: 1)\n`
              : `Upload-Length ${declared ?? '(none)'} is below the upload's offset${current ? ` ${current.offset}` : ''}\n`,
        };
      }
      if (err === ERRORS.ERR_SIZE_EXCEEDED)
        return {
          status_code: 413,
          body: 'the PATCH body would end past Upload-Length; send at most Upload-Length − Upload-Offset bytes\n',
        };
      if (!(err instanceof Error) || 'status_code' in err) return undefined; // tus's own answers (404, 409…)
      // An unexpected failure: logged with the request id the answer names.
      const current = tusRequestContext.getStore();
      current?.log?.error({ err }, 'request failed');
      return { status_code: 500, body: `the gateway failed; see its log (request id ${current?.requestId ?? 'unknown'})\n` };
    },
  });

  // The resumable-upload draft's 104 (resumable-upload.ts): the upload exists, its content is not read yet.
  server.on(EVENTS.POST_CREATE, (_req: unknown, _upload: unknown, location: string) =>
    tusRequestContext.getStore()?.onUploadCreated?.(location),
  );

  // Leave the body unread: @tus/server streams it from the raw request.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  // CORS as on @tus/server's own answers (any origin), so a browser client can read the refusal.
  const refuse = (reply: FastifyReply, refusal: TusRefusal) =>
    reply
      .code(refusal.status)
      .headers({
        'Tus-Resumable': TUS_VERSION,
        'Access-Control-Allow-Origin': '*',
        'Access-Control-Expose-Headers': ['Tus-Resumable', ...Object.keys(refusal.headers)].join(', '),
        ...refusal.headers,
      })
      .type('text/plain')
      .send(`${refusal.body}\n`);

  const contextFor = (request: FastifyRequest, reply: FastifyReply, maxUploadBytes: number): TusRequestContext => ({
    tenant: request.tenant,
    requestId: request.id,
    log: request.log,
    maxUploadBytes,
    ...(request.uploadToken ? { uploadToken: { scope: request.uploadToken, bindings: uploadTokens } } : {}),
    setHeader: (name, value) => {
      if (!reply.raw.headersSent) reply.raw.setHeader(name, value);
    },
  });

  const handle = async (request: FastifyRequest, reply: FastifyReply) => {
    // An upload token may allow less than the tenant's maximum.
    const limits = tenantSettings(options.config, request.tenant);
    const scope = request.uploadToken;
    const maxUploadBytes = scope?.maxBytes !== undefined ? Math.min(scope.maxBytes, limits.maxUploadBytes) : limits.maxUploadBytes;
    // The resumable-upload draft (Upload-Draft-Interop-Version), on the same store and hooks.
    const draft = readDraftRequest(request.method, request.headers, maxUploadBytes);
    if (draft && 'status' in draft) return refuseDraftRequest(request, reply, draft);
    if (draft)
      return serveDraftRequest({ server, uploads: options.uploads }, request, reply, draft, {
        ...contextFor(request, reply, maxUploadBytes),
        method: draft.method,
      });
    // X-HTTP-Method-Override (tus-js-client's overridePatchMethod sends it on a POST): from here on, the request is the named one.
    const method = effectiveMethod(request.method, request.headers);
    if (typeof method !== 'string') return refuse(reply, method);
    request.raw.method = method;
    // Version, content type, offsets, lengths, metadata: the spec's statuses and a body that says what is wrong.
    const refusal = checkTusRequest(method, request.headers, maxUploadBytes);
    if (refusal) return refuse(reply, refusal);
    let uploadChecksum: UploadChecksum | undefined;
    const header = request.headers['upload-checksum'];
    if (typeof header === 'string' && (method === 'PATCH' || method === 'POST')) {
      try {
        uploadChecksum = parseUploadChecksum(header);
      } catch (err) {
        if (!(err instanceof InvalidRequestError)) throw err;
        return refuse(reply, { status: 400, headers: {}, body: err.message });
      }
    }
    // Concatenation (tus-concatenation.ts): a final's creation is answered there; a partial's goes on without the header.
    const concatHeader = request.headers['upload-concat'];
    const parsedConcat = method === 'POST' && typeof concatHeader === 'string' ? parseUploadConcat(concatHeader) : undefined;
    const concat = parsedConcat && !('problem' in parsedConcat) ? parsedConcat : undefined; // a malformed one was refused above
    if (concat?.kind === 'final') {
      // An upload token joins only the partials it created, into an upload of the same group.
      const group = scope ? await tokenGroup(scope.tokenId, concat.urls, `${app.prefix}${path}`) : undefined;
      if (group !== undefined && typeof group !== 'string') {
        const refused = new ForbiddenError(group.problem);
        return refuse(reply, { status: 403, headers: { 'WWW-Authenticate': bearerChallenge(refused) }, body: refused.message });
      }
      const metadataHeader = request.headers['upload-metadata'];
      return serveFinalCreation(reply, {
        uploads: options.uploads,
        tenant: request.tenant,
        path: `${app.prefix}${path}`,
        urls: concat.urls,
        uploadId: group !== undefined ? groupMemberId(group) : randomBytes(16).toString('hex'),
        ...(scope?.key !== undefined ? { key: scope.key } : {}),
        ...objectMetadataOf(typeof metadataHeader === 'string' ? Metadata.parse(metadataHeader) : {}),
        ...(typeof metadataHeader === 'string' ? { tusMetadata: metadataHeader } : {}),
        maxUploadBytes,
        finishWaitMs,
        ...(options.onUploadEnded ? { onEnded: options.onUploadEnded } : {}),
      });
    }
    if (concat?.kind === 'partial') {
      delete request.raw.headers['upload-concat'];
      request.raw.rawHeaders = request.raw.rawHeaders.filter((_, i, all) => all[i - (i % 2)]!.toLowerCase() !== 'upload-concat');
    }
    reply.hijack();
    reply.raw.setHeader('Tus-Checksum-Algorithm', TUS_CHECKSUM_ALGORITHMS.join(','));
    await tusRequestContext.run(
      {
        ...contextFor(request, reply, maxUploadBytes),
        method,
        uploadsPath: `${app.prefix}${path}`,
        ...(concat?.kind === 'partial' ? { concat: 'partial' as const } : {}),
        ...(uploadChecksum ? { uploadChecksum } : {}),
        // checkTusRequest refused a malformed one.
        ...(method === 'PATCH' ? { uploadOffset: Number(request.headers['upload-offset']) } : {}),
        ...(method === 'PATCH' && /^\d+$/.test(request.headers['content-length'] ?? '')
          ? { bodyLength: Number(request.headers['content-length']) }
          : {}),
        ...(method === 'POST' && typeof request.headers['upload-metadata'] === 'string'
          ? { uploadMetadata: request.headers['upload-metadata'] }
          : {}),
      },
      async () => {
        // The path names the upload; a query (`access_token`) was for authentication, which is done.
        const url = new URL(request.raw.url ?? '/', 'http://gateway');
        url.search = '';
        await sendWebResponse(reply.raw, await server.handleWeb(webRequestOf(request.raw, url, method)));
      },
    );
  };
  const methods = ['POST', 'HEAD', 'PATCH', 'OPTIONS', 'DELETE'] as const;
  app.route({ method: [...methods], url: path, handler: handle, config: { uploadToken: { uploadIdParam: null }, bodyStream: true } });
  app.route({ method: [...methods], url: `${path}/*`, handler: handle, config: { uploadToken: { uploadIdParam: '*' }, bodyStream: true } });
};
