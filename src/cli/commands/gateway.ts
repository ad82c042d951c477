/**
 * `upload-saga gateway [--host IP] [--port N]`: the HTTP gateway (tus at /files, plus the
 * registered plugins) until Ctrl-C, configured from the environment like the worker.
 *
 * Why so small: `startGatewayFromEnv` (src/gateway/run.ts) is the one place a gateway is wired,
 * for this command and the demo alike; configuration is validated before anything connects (a
 * ConfigError reaches main.ts, which lists every problem). The gateway needs upload workers on
 * the same task queue (`upload-saga worker`); it keeps no state, so run as many as you like behind
 * a load balancer, with UPLOAD_SAGA_GATEWAY_REDIS_URL set so that they share locks and limits.
 */
import { bodyStreamMemoryBound, GC_ALLOWANCE_BYTES } from '../../gateway/body-streams';
import type { GatewayConfig } from '../../gateway/config';
import { applyGatewayHeapSettings } from '../../gateway/heap-settings';
import { startGatewayFromEnv } from '../../gateway/run';
import { note, out, type CliIo } from '../io';
import { waitForShutdownSignal } from '../signals';
import { labelled } from '../upload-report';

/** Options of the `gateway` command; they override UPLOAD_SAGA_GATEWAY_HOST / _PORT. */
export interface GatewayCommandOptions {
  host?: string;
  port?: number;
}

const MiB = 1024 * 1024;

/** The caps on request bodies, the idle timeout and the memory bound they give. */
function bodyStreamsLine(config: GatewayConfig): string {
  const { perStreamBytes, totalBytes } = bodyStreamMemoryBound({
    bodyStreams: config.maxBodyStreams,
    partSize: config.partSize,
    partsInFlight: config.tusPartsInFlight,
    equalParts: config.tusEqualParts,
  });
  return (
    `at most ${config.maxBodyStreams} at once (${config.defaults.maxBodyStreams} per tenant), ended after ${config.bodyIdleTimeoutMs / 1000} s idle; ` +
    `memory ≤ idle + ${config.maxBodyStreams} × ${(perStreamBytes / MiB).toFixed(0)} MiB + ${GC_ALLOWANCE_BYTES / MiB} MiB (GC) = idle + ${(totalBytes / MiB).toFixed(0)} MiB`
  );
}

/** Runs the gateway until SIGINT/SIGTERM. */
export async function runGatewayCommand(options: GatewayCommandOptions, io: CliIo): Promise<void> {
  const env: NodeJS.ProcessEnv = {
    ...io.env,
    ...(options.host ? { UPLOAD_SAGA_GATEWAY_HOST: options.host } : {}),
    ...(options.port !== undefined ? { UPLOAD_SAGA_GATEWAY_PORT: String(options.port) } : {}),
  };
  applyGatewayHeapSettings();
  const gateway = await startGatewayFromEnv(env);
  const shutdown = waitForShutdownSignal();
  try {
    const tenants = new Set(gateway.config.tokenHashes.values());
    out(
      io,
      'upload-saga gateway listening',
      ...labelled([
        ['url', gateway.url],
        ['tus', `${gateway.url}/files`],
        ['page', `${gateway.url}/ (open as /#token=<token>; S3 multipart for Uppy under /uppy, progress at /uploads/<id>/events)`],
        [
          'tenants',
          tenants.size
            ? [...tenants].sort().join(', ')
            : gateway.config.jwt || gateway.config.uploadTokenSecret
              ? 'none by static token (UPLOAD_SAGA_GATEWAY_TOKENS)'
              : 'none: set UPLOAD_SAGA_GATEWAY_TOKENS (tenant=<sha256 of the token>), every request gets 401',
        ],
        ...(gateway.config.jwt
          ? [
              [
                'JWTs',
                `from ${gateway.config.jwt.issuer} (keys ${gateway.config.jwt.jwksUrl}), tenant from "${gateway.config.jwt.tenantClaim}"`,
              ] as [string, string],
            ]
          : []),
        ...(gateway.config.uploadTokenSecret ? [['upload tokens', 'accepted (mintUploadToken)'] as [string, string]] : []),
        [
          'replicas',
          gateway.config.redisUrl
            ? 'any number (locks and rate limits in Redis)'
            : 'one (no UPLOAD_SAGA_GATEWAY_REDIS_URL: locks and limits in this process)',
        ],
        ['body streams', bodyStreamsLine(gateway.config)],
        ['task queue', env.TEMPORAL_TASK_QUEUE ?? 'upload-saga'],
      ]),
      'press Ctrl-C to stop',
    );
    const signal = await shutdown.received;
    note(io, `\n${signal}: stopping the gateway (requests in flight finish first)…`);
  } finally {
    await gateway.close();
    shutdown.dispose();
  }
  note(io, 'gateway stopped');
}
