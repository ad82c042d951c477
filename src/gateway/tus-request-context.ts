/**
 * What one tus request carries to the store besides the upload id: @tus/server's DataStore methods
 * receive only the id, so the route (tus.ts) runs each request inside an AsyncLocalStorage holding
 * the authenticated tenant, its limits and the parsed per-request headers.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyBaseLogger } from 'fastify';
import type { GatewayUploadState } from '../upload/gateway-upload';
import type { UploadChecksum } from './tus-checksum';
import type { UploadTokenScope } from './upload-token';
import type { UploadTokenBindings } from './upload-token-bindings';

/** What one tus request carries besides the upload id. */
export interface TusRequestContext {
  /** The authenticated tenant. */
  tenant: string;
  /** The tenant's maximum upload size. */
  maxUploadBytes: number;
  /** The request's Upload-Metadata header, verbatim, when present (POST). */
  uploadMetadata?: string;
  /** The request's Upload-Checksum, parsed, when present. */
  uploadChecksum?: UploadChecksum;
  /** Sets a response header (Upload-Expires). */
  setHeader(name: string, value: string): void;
  /** The request's id and logger (fastify's), for failures tus would answer 500 without a trace. */
  requestId?: string;
  log?: FastifyBaseLogger;
  /** The state `getUpload` read in this request (under its lock), reused by `write`. */
  state?: GatewayUploadState;
  /**
   * When `state` is this replica's last sight of the upload rather than the workflow's answer: settles
   * once the workflow confirmed it, rejects (409) when the upload stands elsewhere. Nothing is
   * written to S3 before it settled. For an upload created here that still opens, `state` is the
   * state expected once open, and this settles with the workflow's (multipart upload id and all),
   * or rejects with the creation's refusal (413 for quota).
   */
  stateConfirmed?: Promise<GatewayUploadState | void>;
  /** Called once the store created the upload, before the creation's content is read (the resumable-upload draft's 104). */
  onUploadCreated?: (location: string) => void;
  /** PATCH: the request's Upload-Offset. */
  uploadOffset?: number;
  /** PATCH: the body's length (Content-Length), when the client sent it. */
  bodyLength?: number;
  /** The request's effective method (after X-HTTP-Method-Override). */
  method?: string;
  /** The endpoint's full path (`/files`), for the URLs HEAD names in `Upload-Concat`. */
  uploadsPath?: string;
  /** A creation with `Upload-Concat: partial` (the header itself is not shown to @tus/server, which does not implement concatenation). */
  concat?: 'partial';
  /** When the request came with an upload token: its scope, and where its one upload is bound. */
  uploadToken?: { scope: UploadTokenScope; bindings: UploadTokenBindings };
  /** A partial created with an upload token: the bytes it counts against the token's limit (given back if its creation fails). */
  heldPartialBytes?: number;
}

/** Per-request context for the store; the tus route runs each request inside `run`. */
export const tusRequestContext = new AsyncLocalStorage<TusRequestContext>();

/** The context of the request being served. @throws Error outside a tus request */
export function currentContext(): TusRequestContext {
  const context = tusRequestContext.getStore();
  if (!context) throw new Error('the tus store was called outside a gateway request');
  return context;
}
