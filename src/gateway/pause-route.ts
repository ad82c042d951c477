/**
 * `POST /uploads/:id/pause` and `POST /uploads/:id/resume`: an operator (or the tenant's own app)
 * pauses and resumes one of the tenant's gateway uploads. Authenticated like every gateway route
 * (the tenant comes from the bearer token; upload tokens are refused, they only upload), so another
 * tenant's upload is a 404 exactly like a missing one.
 *
 * Both answer with the upload's state after the Update took effect (see UploadsService.pause): the
 * pause, the offset HEAD would give, and the expiry (moved on at resume when the clock stopped).
 */
import type { FastifyInstance } from 'fastify';
import type { GatewayUploadState } from '../upload/gateway-upload';
import type { PauseExpiry } from '../upload/pause';
import { InvalidRequestError, UnauthorizedError } from './errors';
import type { UploadsService } from './uploads-service';

/** What both routes answer. */
function answerOf(state: GatewayUploadState) {
  return {
    uploadId: state.uploadId,
    phase: state.phase,
    outcome: state.outcome,
    offset: state.offset,
    ...(state.length !== undefined ? { length: state.length } : {}),
    expiresAt: new Date(state.expiresAt).toISOString(),
    paused: state.pause?.paused ?? false,
    ...(state.pause?.paused ? { pause: state.pause } : {}),
  };
}

/** Registers the two routes on the gateway's (authenticated) fastify scope. */
export function registerPauseRoutes(app: FastifyInstance, uploads: Pick<UploadsService, 'pause' | 'resume'>): void {
  app.post<{ Params: { id: string }; Body: unknown }>('/uploads/:id/pause', async (request) => {
    if (!request.tenant) throw new UnauthorizedError();
    const body = request.body ?? {};
    if (typeof body !== 'object' || Array.isArray(body))
      throw new InvalidRequestError('the body must be a JSON object: { "reason"?: string, "expiry"?: "runs" | "stops" }');
    const { reason, expiry, ...rest } = body as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length) throw new InvalidRequestError(`unknown field ${JSON.stringify(unknown[0])}: a pause takes "reason" and "expiry"`);
    // Their types and values are checked by the service (400 with what is allowed).
    const state = await uploads.pause(request.tenant, request.params.id, {
      ...(reason !== undefined ? { reason: reason as string } : {}),
      ...(expiry !== undefined ? { expiry: expiry as PauseExpiry } : {}),
    });
    return answerOf(state);
  });
  app.post<{ Params: { id: string } }>('/uploads/:id/resume', async (request) => {
    if (!request.tenant) throw new UnauthorizedError();
    return answerOf(await uploads.resume(request.tenant, request.params.id));
  });
}
