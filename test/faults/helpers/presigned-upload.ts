/**
 * One S3 presigned multipart upload through the gateway, the way @uppy/aws-s3 drives its
 * Companion routes (`/uppy/s3/multipart` with the bearer header): create with the declared length,
 * sign and PUT each part straight to S3, complete with the part list. Made for the fault suite:
 * no test framework, every answer checked by hand, and requests cut by a dying replica retried the
 * way a client behind a load balancer retries them.
 *
 * Retries: a request that got no answer (connection reset, refused) or a 429/5xx is sent again
 * after a delay, through the same address. A create without a usable answer may still have
 * started an upload nobody will finish (its expiry compensates it): `createsRetried` counts them.
 * A complete retried the same way may have been accepted; a 409 on the retry means exactly that,
 * and the workflow's own result tells the outcome. `onCreated` hears of the upload as soon as it
 * exists, so a caller tracks it even when a later request fails.
 */
import { setTimeout as sleep } from 'node:timers/promises';

const MiB = 1024 * 1024;
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000];

/** A request that failed and was sent again. */
export interface PresignedRetry {
  readonly at: number;
  readonly request: string;
  /** 0: no answer (the connection was cut or refused). */
  readonly status: number;
}

export interface PresignedUploadResult {
  readonly uploadId: string;
  readonly key: string;
  /** Creates sent again after no usable answer: each may have started an upload of its own. */
  readonly createsRetried: number;
  readonly retries: readonly PresignedRetry[];
  /** `completed`: 200 with the object; `pending`: 202, or a retried complete answered 409. */
  readonly completion: 'completed' | 'pending';
}

class PresignedUploadError extends Error {}

interface Answer {
  readonly status: number;
  readonly text: string;
  readonly etag: string;
  /** An earlier attempt got no usable answer (none, 429 or 5xx): what it asked may have been done. */
  readonly retried: boolean;
}

/** Uploads `data` as `filename` through the gateway at `endpoint` (e.g. `http://127.0.0.1:8080`). */
export async function presignedUpload(
  endpoint: string,
  token: string,
  filename: string,
  data: Buffer,
  hooks: { onRetry?: (retry: PresignedRetry) => void; onCreated?: (uploadId: string, key: string) => void } = {},
): Promise<PresignedUploadResult> {
  const retries: PresignedRetry[] = [];
  const headers = { Authorization: `Bearer ${token}` };
  let createsRetried = 0;

  /** Sends until an answer other than 429/5xx arrives; returns it and whether an earlier attempt went unanswered. */
  const send = async (name: string, url: string, init: RequestInit): Promise<Answer> => {
    let retried = false;
    for (let attempt = 0; ; attempt++) {
      let status = 0;
      let text = '';
      let etag = '';
      try {
        const response = await fetch(url, init);
        status = response.status;
        etag = response.headers.get('etag') ?? '';
        text = await response.text();
      } catch {
        status = 0;
      }
      if (status !== 0 && status !== 429 && status < 500) return { status, text, etag, retried };
      retried = true;
      if (attempt >= RETRY_DELAYS_MS.length)
        throw new PresignedUploadError(`${name}: no usable answer after ${attempt + 1} attempts (last ${status})`);
      const retry = { at: Date.now(), request: name, status };
      retries.push(retry);
      hooks.onRetry?.(retry);
      await sleep(RETRY_DELAYS_MS[attempt]!);
    }
  };
  const json = <T>(name: string, answer: Answer, expected: number[]): T => {
    if (!expected.includes(answer.status)) throw new PresignedUploadError(`${name}: ${answer.status} ${answer.text.slice(0, 300)}`);
    return (answer.text ? JSON.parse(answer.text) : undefined) as T;
  };

  const base = `${endpoint}/uppy/s3/multipart`;
  const created = await send('create', base, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({
      filename,
      type: 'application/octet-stream',
      metadata: { name: filename, 'upload-length': String(data.length) },
    }),
  });
  if (created.retried) createsRetried++;
  const { uploadId, key, partSize } = json<{ uploadId: string; key: string; partSize?: number }>('create', created, [200]);
  hooks.onCreated?.(uploadId, key);
  const size = partSize ?? Math.max(5 * MiB, Math.ceil(data.length / 10_000));
  const query = `key=${encodeURIComponent(key)}`;

  const parts: { PartNumber: number; ETag: string }[] = [];
  for (let offset = 0, n = 1; offset < data.length; offset += size, n++) {
    const signed = json<{ url: string; headers?: Record<string, string> }>(
      `sign part ${n}`,
      await send(`sign part ${n}`, `${base}/${encodeURIComponent(uploadId)}/${n}?${query}`, { headers }),
      [200],
    );
    const put = await send(`PUT part ${n}`, signed.url, {
      method: 'PUT',
      body: data.subarray(offset, offset + size),
      headers: signed.headers ?? {},
    });
    if (put.status !== 200) throw new PresignedUploadError(`PUT part ${n}: ${put.status} ${put.text.slice(0, 300)}`);
    parts.push({ PartNumber: n, ETag: put.etag.replace(/^"+|"+$/g, '') });
  }
  const completed = await send('complete', `${base}/${encodeURIComponent(uploadId)}/complete?${query}`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ parts }),
  });
  // 409 after a retry: an earlier complete was accepted and the saga is past receiving parts.
  json<unknown>('complete', completed, completed.retried ? [200, 202, 409] : [200, 202]);
  return { uploadId, key, createsRetried, retries, completion: completed.status === 200 ? 'completed' : 'pending' };
}
