/**
 * `upload-saga/gateway`: the HTTP gateway where every browser or tus upload is a saga workflow.
 *
 * Mount {@link uploadGateway} in your own fastify app, or run the standalone server
 * ({@link createGateway} with injected clients, {@link startGatewayFromEnv} from the environment).
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { uploadGateway, hashToken } from 'upload-saga/gateway';
 *
 * const app = Fastify();
 * await app.register(uploadGateway, {
 *   prefix: '/uploads',
 *   client, // a Temporal Client
 *   s3, // an S3Client
 *   config: { tokenHashes: new Map([[hashToken(process.env.ACME_TOKEN!), 'acme']]) },
 * });
 * // tus at /uploads/files, Uppy's S3 multipart at /uploads/uppy, progress at /uploads/uploads/:id/events
 * ```
 * @packageDocumentation
 */

/** The gateway as a fastify plugin, its options and helpers. */
export { uploadGateway, authenticate, resolveGatewayConfig, mergedMarksFor, DEFAULT_TASK_QUEUE, type UploadGatewayOptions } from './plugin';
export { MemoryMergedMarks, RedisMergedMarks, MERGED_MARK_TTL_MS, type MergedMarks } from './merged-marks';
/** The standalone gateway server built on {@link uploadGateway}. */
export { createGateway, type GatewayOptions, type GatewayServer } from './server';
/** A standalone gateway configured from the environment, its clients constructed and owned. */
export { startGatewayFromEnv, type RunningGateway, type StartGatewayOptions } from './run';
/** Configuration: environment loading, tenant settings, token hashing. */
export {
  loadGatewayConfig,
  tenantSettings,
  hashToken,
  parseDuration,
  MAX_GATEWAY_PART_SIZE,
  DEFAULT_TUS_PARTS_IN_FLIGHT,
  MAX_TUS_PARTS_IN_FLIGHT,
  GATEWAY_CONFIG_VARIABLES,
  JWT_ALGORITHMS,
  type JwtAlgorithm,
  type JwtAuthSettings,
  type GatewayConfig,
  type TenantSettings,
} from './config';
/** Upload tokens: short-lived, for one browser upload, minted by the application. */
export {
  mintUploadToken,
  verifyUploadToken,
  MAX_UPLOAD_TOKEN_LIFETIME_SECONDS,
  type MintUploadTokenOptions,
  type MintedUploadToken,
  type UploadTokenScope,
} from './upload-token';
export { MemoryUploadTokenBindings, RedisUploadTokenBindings, type UploadTokenBindings } from './upload-token-bindings';
/** Bearer authentication: static tokens, identity-provider JWTs (JWKS), upload tokens. */
export { createAuthenticator, bearerToken, type GatewayCredential, type UploadTokenRoute } from './auth';
export { createJwtVerifier, type JwtVerifier } from './jwt-auth';
/** The contract of plugins mounted inside the gateway. */
export type { GatewayPlugin, GatewayPluginOptions } from './plugin-types';
/** The plugins the gateway registers by default, each usable on its own list. */
export { DEFAULT_GATEWAY_PLUGINS } from './plugins';
export { GatewayMetrics, type GatewayMetricsOptions, type GatewayUploadProtocol, type StreamProtocol } from '../metrics/gateway-metrics';
export { startMetricsServer, type MetricsServer, type MetricsServerOptions, type MetricsSource } from '../metrics/metrics-server';
export { s3MultipartPlugin, type S3MultipartPluginOptions } from './s3-multipart';
export { progressPlugin, type ProgressPluginOptions } from './progress';
export { pagePlugin, type PagePluginOptions } from './page';
export type { TusPluginOptions } from './tus';
/** The protocol-neutral uploads API the routes use. */
export { UploadsService, type StartedUpload, type UploadsServiceOptions } from './uploads-service';
/** Errors the gateway answers with, each with its HTTP status. */
export * from './errors';
