/**
 * The contract between the gateway and the protocols and features mounted inside it: what a
 * {@link GatewayPlugin} receives, and what the gateway adds to fastify's request and route types.
 *
 * A module of its own, holding types only, so that the protocol plugins (tus, S3 multipart,
 * progress, page) and the gateway plugin that registers them never import each other in a cycle.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { UploadTokenRoute } from './auth';
import type { GatewayConfig } from './config';
import type { UploadTokenScope } from './upload-token';
import type { UploadTokenBindings } from './upload-token-bindings';
import type { UploadsService } from './uploads-service';

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant the gateway authenticated; '' outside the gateway's routes, on its public routes and on CORS preflights. */
    tenant: string;
    /** The scope of the upload token the request was authenticated with; null for other credentials. */
    uploadToken: UploadTokenScope | null;
  }
  interface FastifyContextConfig {
    /** A gateway route without authentication and rate limit (health checks, static pages). */
    public?: boolean;
    /** A route that accepts upload tokens, and where it names its upload (see auth.ts); others answer them 403. */
    uploadToken?: UploadTokenRoute;
    /** A route that streams request bodies: they count against the body-stream caps and idle timeout (see body-streams.ts). */
    bodyStream?: boolean;
  }
}

/** What every gateway plugin receives as its options. */
export interface GatewayPluginOptions {
  /** The protocol-neutral uploads API: the one way to reach an upload. */
  uploads: UploadsService;
  /** The gateway's configuration, defaults filled in. */
  config: GatewayConfig;
  /** The gateway's S3 client (not closed by plugins). */
  s3: S3Client;
  /** Present when the gateway runs with Redis (cross-replica fan-out, e.g. progress events). */
  redis?: Redis;
  /** The gateway's metrics: plugins record into it (e.g. open streams with `streamOpened`). */
  metrics?: GatewayMetrics;
  /** Which upload each upload token created: a creation route binds the token before it creates (see upload-token.ts). */
  uploadTokens?: UploadTokenBindings;
}

/** A protocol or feature added to the gateway, e.g. the S3 presigned multipart endpoints. */
export type GatewayPlugin = FastifyPluginAsync<GatewayPluginOptions>;
