/**
 * The progress stream as a gateway plugin: `GET /uploads/:id/events`, a Server-Sent Events stream
 * of `{ phase, bytes, totalBytes, rateBytesPerSecond, outcome }` that ends with one final event
 * once the outcome is known (with the object on success, the cause otherwise), the same events
 * over a WebSocket at `GET /uploads/:id/socket` (which also takes a cancel), and publishing of
 * every state change the uploads service makes on this replica.
 *
 * One job per file: src/progress/view.ts (events, observations, rate; pure), src/progress/bus.ts
 * (fan-out between replicas and from workers, Redis or in memory), progress-poll.ts (reading the
 * workflow), progress-feed.ts (one stream's subscription, poll and view), progress-route.ts (the
 * SSE route), progress-socket.ts (the WebSocket route); this module wires them into a plugin.
 */
import { createProgressBus, type ProgressBus } from '../progress/bus';
import { registerProgressRoute, type ProgressStreamOptions } from './progress-route';
import { registerProgressSocket } from './progress-socket';
import { observationOfState } from '../progress/view';
import type { GatewayPlugin } from './plugin-types';

export { createProgressBus, LocalProgressBus, RedisProgressBus, type ProgressBus, type ProgressBusOptions } from '../progress/bus';
export { registerProgressRoute, type ProgressRouteOptions, type ProgressStreamOptions } from './progress-route';
export { pollObservation, type ProgressSource } from './progress-poll';
export {
  registerProgressSocket,
  parseClientMessage,
  SocketCloseCode,
  MAX_CLIENT_FRAME_BYTES,
  type ProgressSocketOptions,
} from './progress-socket';
export { observationOfState, ProgressRateMeter, ProgressView, type ProgressEvent, type ProgressObservation } from '../progress/view';

/** Options of {@link progressPlugin}; every field has a default. */
export interface ProgressPluginOptions extends ProgressStreamOptions {
  /**
   * Carries observations between replicas.
   * @default a RedisProgressBus on the gateway's Redis, else a LocalProgressBus
   */
  bus?: ProgressBus;
  /** Channel prefix of the default bus. @default 'upload-saga:' */
  channelPrefix?: string;
}

/**
 * The progress stream as a gateway plugin: `GET /uploads/:id/events` (authenticated by the
 * gateway's bearer hook, tenant-scoped), and publishing of every state change the uploads service
 * makes on this replica (create, tus chunk, complete, cancel).
 */
export function progressPlugin(pluginOptions: ProgressPluginOptions = {}): GatewayPlugin {
  return async (app, { uploads, s3, redis, metrics }) => {
    const bus =
      pluginOptions.bus ??
      createProgressBus({
        ...(redis ? { redis } : {}),
        ...(pluginOptions.channelPrefix ? { channelPrefix: pluginOptions.channelPrefix } : {}),
        onError: (err) => {
          metrics?.redisError();
          app.log.warn({ err }, 'progress bus');
        },
      });
    const stopObserving = uploads.observe((state) => void bus.publish(observationOfState(state)));
    app.addHook('onClose', async () => {
      stopObserving();
      if (!pluginOptions.bus) await bus.close();
    });
    registerProgressRoute(app, { ...pluginOptions, bus, uploads, s3, ...(metrics ? { metrics } : {}) });
    await registerProgressSocket(app, { ...pluginOptions, bus, uploads, s3, ...(metrics ? { metrics } : {}) });
  };
}
