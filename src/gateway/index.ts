/**
 * The HTTP gateway (`upload-saga/gateway`): tus and S3 presigned multipart uploads from browsers
 * and other clients, each upload a saga workflow, as a standalone server or inside your own.
 *
 * PLACEHOLDER on branch `pkg`: re-exports what exists today; the gateway refactor (branch `gw`)
 * replaces this file with the fastify plugin `uploadGateway` and the standalone server.
 *
 * @packageDocumentation
 */
export { createGateway, authenticate, type GatewayOptions, type GatewayPlugin, type GatewayPluginOptions } from './server';
export { startGatewayFromEnv, type RunningGateway, type StartGatewayOptions } from './run';
export { loadGatewayConfig, hashToken, type GatewayConfig, type TenantSettings } from './config';
export { DEFAULT_GATEWAY_PLUGINS } from './plugins';
export { pagePlugin, type PagePluginOptions } from './page';
export {
  GatewayError,
  GatewayUnavailableError,
  InvalidRequestError,
  RateLimitedError,
  UnauthorizedError,
  UploadConflictError,
  UploadFailedError,
  UploadGoneError,
  UploadNotFoundError,
  UploadTooLargeError,
} from './errors';
