/**
 * The plugins every gateway started from the environment (the `gateway` command, the demo) runs
 * besides the tus endpoint: the place to register a protocol or feature (the S3 presigned
 * multipart endpoints, the progress stream, the demo page) once for all of them. Each receives
 * {@link GatewayPluginOptions}; a host app or test passes its own list to `uploadGateway` or `createGateway`.
 */
import { pagePlugin } from './page';
import { progressPlugin } from './progress';
import { s3MultipartPlugin } from './s3-multipart';
import type { GatewayPlugin } from './plugin-types';

/** Registered in this order after the core routes. */
export const DEFAULT_GATEWAY_PLUGINS: GatewayPlugin[] = [s3MultipartPlugin(), progressPlugin(), pagePlugin()];
