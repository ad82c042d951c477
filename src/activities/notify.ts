/**
 * notify: POSTs the upload's outcome as JSON to the caller's webhook.
 *
 * The event body is built by the workflow, so every retry sends the same bytes; the receiver
 * de-duplicates by the `Idempotency-Key` header (one key per upload and event type). When the
 * worker has a webhook secret, `X-Upload-Saga-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>">` lets the receiver check the sender and reject replays. The secret lives only in
 * the worker's configuration.
 *
 * 2xx is delivered. 408, 429 and 5xx are retried (honouring `Retry-After`); any other status
 * means the receiver refuses the event, and retrying would not change its mind.
 *
 * The POST goes through the guarded client (src/net/guarded-fetch.ts) with the webhook policy:
 * public addresses only, unless `UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS` names the destination; a
 * refused address, or a URL that is not http(s), fails at once with `WebhookNotAllowed`. Redirects
 * are not followed (a 3xx is a refusal), so a receiver cannot bounce the signed event elsewhere.
 *
 * With tracing on, the POST carries the W3C `traceparent` of the upload's trace.
 * With `deps.breakers`, each delivery passes the circuit breaker of its host (`webhook:<host:port>`):
 * unreachable, timing out, 408, 429 and 5xx count as the receiver being down; once the breaker
 * is open, deliveries to that host fail at once with a retryable `WebhookUnavailable` whose retry
 * hint is the time left until the breaker's probe (see src/resilience/circuit-breakers.ts).
 */
import { createHmac } from 'node:crypto';
import { context, propagation } from '@opentelemetry/api';
import { AddressNotAllowedError, createGuardedFetch, OutboundPolicy, shownUrl } from '../net/guarded-fetch';
import { CircuitOpenError } from '../resilience/circuit-breakers';
import { permanentFailure, transientFailure, UploadFailureType } from '../upload/errors';
import type { UploadActivityDeps } from './deps';

/** Header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256>` when the worker has a webhook secret. */
export const SIGNATURE_HEADER = 'X-Upload-Saga-Signature';
/** Header carrying the event id: one per upload and event type, for de-duplication. */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
/** The variable that allows non-public webhook destinations (named in refusals). */
export const WEBHOOK_ALLOWED_HOSTS_VARIABLE = 'UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS';

/** The webhook address policy of `options` (public addresses, plus the allow-list). */
export function webhookPolicy(options: { allowedHosts?: readonly string[] } | undefined): OutboundPolicy {
  return new OutboundPolicy({ allowedHosts: options?.allowedHosts ?? [], subject: 'webhooks', variable: WEBHOOK_ALLOWED_HOSTS_VARIABLE });
}

export interface NotifyInput {
  url: string;
  idempotencyKey: string;
  /** The event, serialised by the receiver as-is. */
  event: Record<string, unknown>;
}

export interface NotifyResult {
  status: number;
}

/** The signature header value for `body` at `timestampSeconds`. */
export function signWebhookBody(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

/** The receiver answered with a status that says it is down or overwhelmed (retried; counted by the breaker). */
class ReceiverUnavailable extends Error {
  constructor(readonly response: Response) {
    super(`HTTP ${response.status}`);
  }
}

/** Unreachable, timed out, or answering 408/429/5xx: what the webhook host's breaker counts. */
function isReceiverDown(err: unknown): boolean {
  return (
    err instanceof ReceiverUnavailable || (err instanceof Error && !(err instanceof AddressNotAllowedError) && err.name !== 'AbortError')
  );
}

const isUnavailableStatus = (status: number) => status === 408 || status === 429 || status >= 500;

export function notifyActivity(deps: Pick<UploadActivityDeps, 'webhook' | 'breakers'>) {
  const send = createGuardedFetch({
    policy: webhookPolicy(deps.webhook),
    ...(deps.webhook?.resolve ? { resolve: deps.webhook.resolve } : {}),
    maxRedirects: 0,
  });
  const timeoutMs = deps.webhook?.timeoutMs ?? 10_000;
  return async function notify(input: NotifyInput): Promise<NotifyResult> {
    const body = JSON.stringify(input.event);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'User-Agent': 'upload-saga',
      [IDEMPOTENCY_HEADER]: input.idempotencyKey,
    };
    // `traceparent` of the notify activity's span, so the receiver can join the upload's trace (nothing while tracing is off).
    propagation.inject(context.active(), headers);
    if (deps.webhook?.secret) headers[SIGNATURE_HEADER] = signWebhookBody(deps.webhook.secret, Math.floor(Date.now() / 1000), body);
    let target: URL | undefined;
    try {
      target = new URL(input.url);
    } catch {
      // the request was never validated (it did not come through the client): refuse, do not retry
    }
    if (!target || (target.protocol !== 'http:' && target.protocol !== 'https:')) {
      throw permanentFailure(UploadFailureType.WebhookNotAllowed, 'webhook URL is not an absolute http:// or https:// URL');
    }
    const shown = shownUrl(target); // never echo query strings: they may hold tokens
    const deliver = async () => {
      const answer = await send(input.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
      await answer.body?.cancel().catch(() => undefined);
      if (isUnavailableStatus(answer.status)) throw new ReceiverUnavailable(answer);
      return answer;
    };
    let response: Response;
    try {
      response = deps.breakers ? await deps.breakers.run(`webhook:${target.host}`, isReceiverDown, deliver) : await deliver();
    } catch (err) {
      if (err instanceof ReceiverUnavailable) response = err.response;
      else if (err instanceof AddressNotAllowedError)
        throw permanentFailure(UploadFailureType.WebhookNotAllowed, `webhook ${shown}: ${err.message}`);
      else if (err instanceof CircuitOpenError)
        throw transientFailure(UploadFailureType.WebhookUnavailable, `webhook ${shown}: ${err.message}`, {
          retryAfterMs: err.retryAfterMs,
        });
      else throw transientFailure(UploadFailureType.WebhookUnavailable, `webhook ${shown} unreachable: ${(err as Error).message}`);
    }
    if (response.status >= 200 && response.status < 300) return { status: response.status };
    if (isUnavailableStatus(response.status)) {
      throw transientFailure(UploadFailureType.WebhookUnavailable, `webhook ${shown} answered HTTP ${response.status}`, {
        retryAfterMs: retryAfterMs(response.headers.get('retry-after')),
      });
    }
    throw permanentFailure(UploadFailureType.WebhookRejected, `webhook ${shown} refused the event with HTTP ${response.status}`);
  };
}
