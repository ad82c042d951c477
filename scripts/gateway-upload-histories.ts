/**
 * The gateway-upload scenarios `npm run histories:record` records (see record-histories.ts): real
 * runs of `clientUploadWorkflow` driven through an in-process HTTP gateway with raw tus requests
 * and the presigned routes (parts bound and reported, an empty file),
 * against the recorder's stack and worker, so test/replay.test.ts replays what the gateway really
 * makes the workflow do — chunk updates, folded parts, the expiry timer, continue-as-new.
 *
 * Why a module of its own: these runs are not `UploadClient` uploads (no UploadHandle), and the
 * gateway they need is started and closed here; record-histories.ts only lists and writes them.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { hashToken, loadGatewayConfig, type GatewayConfig } from '../src/gateway/config';
import { s3MultipartPlugin } from '../src/gateway/s3-multipart';
import { createGateway, type GatewayOptions } from '../src/gateway/server';
import type { UploadOutcomeKind } from '../src/upload/outcome';
import { uploadWorkflowId } from '../src/upload/request';

const MiB = 1024 * 1024;

export interface GatewayUploadRecording {
  client: Client;
  s3: S3Client;
  taskQueue: string;
  /** Receives the tenant's upload events. */
  webhookUrl: string;
}

export interface GatewayUploadScenario {
  name: string;
  outcome: Exclude<UploadOutcomeKind, 'running'>;
  /** Runs the upload to its end; returns its workflow id. */
  run(r: GatewayUploadRecording): Promise<string>;
}

/** The tenant of every gateway-upload history (its ledger lives on the recorder's main queue). */
const TENANT = 'gateway';

/** A JSON (or form) request to the gateway with the tenant's bearer token. */
type GatewayRequest = (method: string, path: string, body?: unknown) => Promise<Response>;

async function withGateway<T>(
  r: GatewayUploadRecording,
  overrides: Partial<GatewayConfig>,
  options: Partial<Pick<GatewayOptions, 'service' | 'plugins'>>,
  use: (
    tus: (method: string, path: string, headers?: Record<string, string>, body?: Buffer) => Promise<Response>,
    gateway: Awaited<ReturnType<typeof createGateway>>,
    request: GatewayRequest,
  ) => Promise<T>,
): Promise<T> {
  const token = randomBytes(18).toString('base64url');
  const config = { ...loadGatewayConfig({ UPLOAD_SAGA_GATEWAY_TOKENS: `${TENANT}=${hashToken(token)}` }), ...overrides };
  const app = await createGateway({
    config,
    client: r.client,
    taskQueue: r.taskQueue,
    s3: r.s3,
    plugins: options.plugins ?? [],
    ...(options.service ? { service: options.service } : {}),
  });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const request: GatewayRequest = (method, path, body) =>
    fetch(new URL(path, base), {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body !== undefined && !(body instanceof FormData) ? { 'Content-Type': 'application/json' } : {}),
      },
      ...(body instanceof FormData ? { body } : body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  try {
    return await use(
      (method, path, headers = {}, body) =>
        fetch(`${base}${path}`, {
          method,
          headers: {
            'Tus-Resumable': '1.0.0',
            Authorization: `Bearer ${token}`,
            ...(body ? { 'Content-Type': 'application/offset+octet-stream' } : {}),
            ...headers,
          },
          ...(body ? { body } : {}),
        }),
      app,
      request,
    );
  } finally {
    await app.close();
  }
}

/** POSTs an upload of `length` bytes and PATCHes `send` bytes of it in 1 MiB chunks; returns its id. */
async function tusUpload(
  tus: (method: string, path: string, headers?: Record<string, string>, body?: Buffer) => Promise<Response>,
  length: number,
  send: number,
  name: string,
): Promise<string> {
  const created = await tus('POST', '/files', {
    'Upload-Length': String(length),
    'Upload-Metadata': `filename ${Buffer.from(name).toString('base64')}`,
  });
  if (created.status !== 201) throw new Error(`POST answered ${created.status}: ${await created.text()}`);
  const path = created.headers.get('location')!;
  const data = randomBytes(send);
  for (let offset = 0; offset < send; offset += MiB) {
    const response = await tus('PATCH', path, { 'Upload-Offset': String(offset) }, data.subarray(offset, offset + MiB));
    if (response.status !== 204) throw new Error(`PATCH at ${offset} answered ${response.status}: ${await response.text()}`);
  }
  return path.split('/').pop()!;
}

/**
 * tus concatenation: two partials (6 MiB, copied server-side; 1 MiB, read through the worker)
 * sent and joined by a final; returns the ids of the partials and the final once the partials
 * committed and deleted what they stored.
 */
async function concatenatedUpload(
  tus: (method: string, path: string, headers?: Record<string, string>, body?: Buffer) => Promise<Response>,
  app: Awaited<ReturnType<typeof createGateway>>,
): Promise<{ partials: string[]; final: string }> {
  const paths: string[] = [];
  for (const size of [6 * MiB, MiB]) {
    const created = await tus('POST', '/files', { 'Upload-Length': String(size), 'Upload-Concat': 'partial' });
    if (created.status !== 201) throw new Error(`partial POST answered ${created.status}: ${await created.text()}`);
    const path = created.headers.get('location')!;
    const response = await tus('PATCH', path, { 'Upload-Offset': '0' }, randomBytes(size));
    if (response.status !== 204) throw new Error(`partial PATCH answered ${response.status}: ${await response.text()}`);
    paths.push(path);
  }
  const final = await tus('POST', '/files', {
    'Upload-Concat': `final;${paths.join(' ')}`,
    'Upload-Metadata': `filename ${Buffer.from('client-upload-tus-concat.bin').toString('base64')}`,
  });
  if (final.status !== 201) throw new Error(`final POST answered ${final.status}: ${await final.text()}`);
  const partials = paths.map((p) => p.split('/').pop()!);
  for (const id of partials) await app.uploads.waitForEnd(TENANT, id, 60_000);
  return { partials, final: final.headers.get('location')!.split('/').pop()! };
}

/** JSON of a gateway answer, or an error naming what it answered. */
async function expectJson<T>(response: Response, status: number, what: string): Promise<T> {
  if (response.status !== status) throw new Error(`${what} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/**
 * A presigned upload of `length` bytes as a client that binds checksums and reports its parts does
 * it: create, then for each part sign (with its SHA-256), PUT, report; then complete.
 */
async function presignedUpload(request: GatewayRequest, length: number, name: string): Promise<string> {
  const { uploadId, key, partSize } = await expectJson<{ uploadId: string; key: string; partSize: number }>(
    await request('POST', '/uppy/s3/multipart', { filename: name, metadata: { 'upload-length': String(length) } }),
    200,
    'create',
  );
  const data = randomBytes(length);
  const parts: { PartNumber: number; ETag: string }[] = [];
  for (let n = 1, offset = 0; offset < length; n++, offset += partSize) {
    const bytes = data.subarray(offset, offset + partSize);
    const query = new URLSearchParams({ key, checksum: `sha256 ${createHash('sha256').update(bytes).digest('base64')}` });
    const { url, headers } = await expectJson<{ url: string; headers: Record<string, string> }>(
      await request('GET', `/uppy/s3/multipart/${uploadId}/${n}?${query}`),
      200,
      `sign part ${n}`,
    );
    const put = await fetch(url, { method: 'PUT', body: bytes, headers });
    if (!put.ok) throw new Error(`PUT of part ${n} answered ${put.status}: ${await put.text()}`);
    const etag = put.headers.get('etag')!;
    await expectJson(
      await request('POST', `/uppy/s3/multipart/${uploadId}/${n}/done?${new URLSearchParams({ key })}`, { ETag: etag, size: bytes.length }),
      200,
      `report part ${n}`,
    );
    parts.push({ PartNumber: n, ETag: etag });
  }
  await expectJson(
    await request('POST', `/uppy/s3/multipart/${uploadId}/complete?${new URLSearchParams({ key })}`, { parts }),
    200,
    'complete',
  );
  return uploadId;
}

/** An empty file as @uppy/aws-s3 v6 sends it: GET /s3/params, then the POST-policy form to the URL it answered. */
async function emptyFileUpload(request: GatewayRequest, name: string): Promise<string> {
  const query = new URLSearchParams({ filename: name, type: 'text/plain', 'metadata[upload-length]': '0' });
  const { url, fields, uploadId } = await expectJson<{ url: string; fields: Record<string, string>; uploadId: string }>(
    await request('GET', `/uppy/s3/params?${query}`),
    200,
    'params',
  );
  const form = new FormData();
  for (const [field, value] of Object.entries(fields)) form.set(field, value);
  form.set('file', new Blob([]), name);
  await expectJson(await request('POST', url, form), 201, 'the empty-file form');
  return uploadId;
}

export const GATEWAY_UPLOAD_SCENARIOS: GatewayUploadScenario[] = [
  {
    name: 'client-upload-tus',
    outcome: 'completed',
    // 7 MiB in 1 MiB PATCHes: staged segments folded into part 1, then the last part; webhook sent.
    run: (r) =>
      withGateway(r, { tenants: { [TENANT]: { webhookUrl: r.webhookUrl } } }, {}, async (tus) =>
        uploadWorkflowId(TENANT, await tusUpload(tus, 7 * MiB, 7 * MiB, 'client-upload-tus.bin')),
      ),
  },
  {
    name: 'client-upload-tus-local-verify-merge',
    outcome: 'completed',
    // Under the patch gateway-local-verify-merge: 7 MiB in 1 MiB PATCHes; the last PATCH's record,
    // verify and merge (local) in one workflow task, then delete-staged (regular), commit-quota, notify.
    run: (r) =>
      withGateway(r, { tenants: { [TENANT]: { webhookUrl: r.webhookUrl } } }, {}, async (tus) =>
        uploadWorkflowId(TENANT, await tusUpload(tus, 7 * MiB, 7 * MiB, 'client-upload-tus-local-verify-merge.bin')),
      ),
  },
  {
    name: 'client-upload-tus-deferred',
    outcome: 'completed',
    // creation-defer-length: the maximum reserved, 2 MiB staged, the length (7 MiB) declared by the next PATCH
    // (reservation shrunk), the rest sent; shrunk again to the verified size before the commit.
    run: (r) =>
      withGateway(r, { defaults: { maxUploadBytes: 64 * MiB, requestsPerSecond: 50, maxBodyStreams: 8 } }, {}, async (tus) => {
        const data = randomBytes(7 * MiB);
        const created = await tus('POST', '/files', {
          'Upload-Defer-Length': '1',
          'Upload-Metadata': `filename ${Buffer.from('client-upload-tus-deferred.bin').toString('base64')}`,
        });
        if (created.status !== 201) throw new Error(`POST answered ${created.status}: ${await created.text()}`);
        const path = created.headers.get('location')!;
        const patches: [number, number, Record<string, string>][] = [
          [0, 2 * MiB, {}],
          [2 * MiB, 6 * MiB, { 'Upload-Length': String(data.length) }],
          [6 * MiB, 7 * MiB, {}],
        ];
        for (const [from, to, headers] of patches) {
          const response = await tus('PATCH', path, { 'Upload-Offset': String(from), ...headers }, data.subarray(from, to));
          if (response.status !== 204) throw new Error(`PATCH at ${from} answered ${response.status}: ${await response.text()}`);
        }
        return uploadWorkflowId(TENANT, path.split('/').pop()!);
      }),
  },
  {
    name: 'client-upload-expired',
    outcome: 'expired',
    // 1 MiB of 8 staged, then the 3-second expiry fires: abort, delete staged, release.
    run: (r) =>
      withGateway(r, { uploadExpiryMs: 3000 }, {}, async (tus, app) => {
        const uploadId = await tusUpload(tus, 8 * MiB, MiB, 'client-upload-expired.bin');
        await app.uploads.waitForEnd(TENANT, uploadId, 60_000);
        return uploadWorkflowId(TENANT, uploadId);
      }),
  },
  {
    name: 'client-upload-continued',
    outcome: 'completed',
    // Three updates per run: the recorded history is the last run, started with the carried state.
    run: (r) =>
      withGateway(r, {}, { service: { updatesPerRun: 3 } }, async (tus) =>
        uploadWorkflowId(TENANT, await tusUpload(tus, 7 * MiB, 7 * MiB, 'client-upload-continued.bin')),
      ),
  },
  {
    name: 'client-upload-presigned-reported',
    outcome: 'completed',
    // 6 MiB in two checksum-bound presigned parts, each reported (recordPart), then completed.
    run: (r) =>
      withGateway(r, {}, { plugins: [s3MultipartPlugin()] }, async (_tus, _app, request) =>
        uploadWorkflowId(TENANT, await presignedUpload(request, 6 * MiB, 'client-upload-presigned-reported.bin')),
      ),
  },
  {
    name: 'client-upload-empty',
    outcome: 'completed',
    // An empty file through Uppy's POST-policy path: one empty part, verify, merge, commit.
    run: (r) =>
      withGateway(r, {}, { plugins: [s3MultipartPlugin()] }, async (_tus, _app, request) =>
        uploadWorkflowId(TENANT, await emptyFileUpload(request, 'client-upload-empty.txt')),
      ),
  },
  {
    name: 'client-upload-tus-paused',
    outcome: 'completed',
    // 7 MiB: 3 MiB sent, paused through the gateway's route (expiry clock stopped, at most the
    // default maximum pause: gateway-pause-bound), a PATCH refused with 423, resumed a second later
    // (the expiry moved on), the rest sent. client-upload-tus-paused-before-pause-bound.json is the
    // same run from before the maximum pause (its input has no maxPauseMs).
    run: (r) =>
      withGateway(r, {}, {}, async (tus, _app, request) => {
        const uploadId = await tusUpload(tus, 7 * MiB, 3 * MiB, 'client-upload-tus-paused.bin');
        const path = `/files/${uploadId}`;
        await expectJson(
          await request('POST', `/uploads/${uploadId}/pause`, { reason: 'history recorder', expiry: 'stops' }),
          200,
          'pause',
        );
        const refused = await tus('PATCH', path, { 'Upload-Offset': String(3 * MiB) }, randomBytes(MiB));
        if (refused.status !== 423) throw new Error(`a PATCH of the paused upload answered ${refused.status}: ${await refused.text()}`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        await expectJson(await request('POST', `/uploads/${uploadId}/resume`), 200, 'resume');
        const rest = randomBytes(4 * MiB);
        for (let offset = 0; offset < rest.length; offset += MiB) {
          const response = await tus('PATCH', path, { 'Upload-Offset': String(3 * MiB + offset) }, rest.subarray(offset, offset + MiB));
          if (response.status !== 204)
            throw new Error(`PATCH at ${3 * MiB + offset} answered ${response.status}: ${await response.text()}`);
        }
        return uploadWorkflowId(TENANT, uploadId);
      }),
  },
  {
    name: 'client-upload-tus-pause-outlasted',
    outcome: 'expired',
    // Under the patch gateway-pause-bound: 6 MiB of 8 sent (a part, 1 MiB staged), paused through the
    // gateway's route with the expiry clock stopped, never resumed: after the 2-second maximum pause it
    // expires (abort, delete staged, release).
    run: (r) =>
      withGateway(r, { maxPauseMs: 2000 }, {}, async (tus, app, request) => {
        const uploadId = await tusUpload(tus, 8 * MiB, 6 * MiB, 'client-upload-tus-pause-outlasted.bin');
        await expectJson(
          await request('POST', `/uploads/${uploadId}/pause`, { reason: 'history recorder', expiry: 'stops' }),
          200,
          'pause',
        );
        await app.uploads.waitForEnd(TENANT, uploadId, 60_000);
        return uploadWorkflowId(TENANT, uploadId);
      }),
  },
  {
    name: 'client-upload-tus-pauses-outlasted',
    outcome: 'expired',
    // Under the patch gateway-pause-bound-total: 4 MiB of 8 sent, paused with the expiry clock
    // stopped for 2 s of a 3-second maximum, resumed, paused again: the second hold's timer is the
    // second left, and the upload expires (abort, delete staged, release).
    run: (r) =>
      withGateway(r, { maxPauseMs: 3000 }, {}, async (tus, app, request) => {
        const uploadId = await tusUpload(tus, 8 * MiB, 4 * MiB, 'client-upload-tus-pauses-outlasted.bin');
        const pause = { reason: 'history recorder', expiry: 'stops' };
        await expectJson(await request('POST', `/uploads/${uploadId}/pause`, pause), 200, 'pause');
        await new Promise((resolve) => setTimeout(resolve, 2000));
        await expectJson(await request('POST', `/uploads/${uploadId}/resume`), 200, 'resume');
        await expectJson(await request('POST', `/uploads/${uploadId}/pause`, pause), 200, 'pause again');
        await app.uploads.waitForEnd(TENANT, uploadId, 60_000);
        return uploadWorkflowId(TENANT, uploadId);
      }),
  },
  {
    name: 'client-upload-tus-tail-parts',
    outcome: 'completed',
    // Under the patch gateway-tail-parts: 21 MiB in PATCHes of 8 MiB (one 8 MiB part, the 3 MiB
    // remainder folded in), 2 MiB (staged) and 11 MiB (the staged 2 MiB read back into a 5 MiB part,
    // then the last part of 8 MiB): parts of 8, 5 and 8 MiB, verified by their sum.
    run: (r) =>
      withGateway(r, {}, {}, async (tus) => {
        const data = randomBytes(21 * MiB);
        const created = await tus('POST', '/files', {
          'Upload-Length': String(data.length),
          'Upload-Metadata': `filename ${Buffer.from('client-upload-tus-tail-parts.bin').toString('base64')}`,
        });
        if (created.status !== 201) throw new Error(`POST answered ${created.status}: ${await created.text()}`);
        const path = created.headers.get('location')!;
        for (const [from, to] of [
          [0, 8 * MiB],
          [8 * MiB, 10 * MiB],
          [10 * MiB, 21 * MiB],
        ] as const) {
          const response = await tus('PATCH', path, { 'Upload-Offset': String(from) }, data.subarray(from, to));
          if (response.status !== 204) throw new Error(`PATCH at ${from} answered ${response.status}: ${await response.text()}`);
        }
        return uploadWorkflowId(TENANT, path.split('/').pop()!);
      }),
  },
  {
    name: 'client-upload-tus-concat-final',
    outcome: 'completed',
    // tus concatenation, the final: open, join (one UploadPartCopy, one part read through the worker), verify, merge, settle the partials.
    run: (r) => withGateway(r, {}, {}, async (tus, app) => uploadWorkflowId(TENANT, (await concatenatedUpload(tus, app)).final)),
  },
  {
    name: 'client-upload-tus-concat-final-signals-at-once',
    outcome: 'completed',
    // The same final under the patch tus-concat-signals-at-once: its partials signalled in one workflow task.
    run: (r) => withGateway(r, {}, {}, async (tus, app) => uploadWorkflowId(TENANT, (await concatenatedUpload(tus, app)).final)),
  },
  {
    name: 'client-upload-tus-concat-final-join-verifies',
    outcome: 'completed',
    // The same final under the patch tus-concat-join-verifies: join-partials verifies what it wrote, no verify step before the merge.
    run: (r) => withGateway(r, {}, {}, async (tus, app) => uploadWorkflowId(TENANT, (await concatenatedUpload(tus, app)).final)),
  },
  {
    name: 'client-upload-tus-concat-partial',
    outcome: 'completed',
    // tus concatenation, a partial: reserve, receive, verify, store, claimed (Update), joined (signal), commit, delete what it stored.
    run: (r) => withGateway(r, {}, {}, async (tus, app) => uploadWorkflowId(TENANT, (await concatenatedUpload(tus, app)).partials[0]!)),
  },
  {
    name: 'client-upload-tus-concat-partial-local-verify-store',
    outcome: 'completed',
    // The same partial under the patch gateway-local-verify-merge: verify and store-partial local, in the task of its last record.
    run: (r) => withGateway(r, {}, {}, async (tus, app) => uploadWorkflowId(TENANT, (await concatenatedUpload(tus, app)).partials[0]!)),
  },
  {
    name: 'client-upload-tus-concat-partial-terminated',
    outcome: 'cancelled',
    // tus concatenation, a partial terminated (DELETE) while it waits unclaimed: withdrawn (Update), then cancelled and compensated.
    run: (r) =>
      withGateway(r, {}, {}, async (tus) => {
        const created = await tus('POST', '/files', { 'Upload-Length': String(MiB), 'Upload-Concat': 'partial' });
        if (created.status !== 201) throw new Error(`partial POST answered ${created.status}: ${await created.text()}`);
        const path = created.headers.get('location')!;
        const stored = await tus('PATCH', path, { 'Upload-Offset': '0' }, randomBytes(MiB));
        if (stored.status !== 204) throw new Error(`partial PATCH answered ${stored.status}: ${await stored.text()}`);
        const deleted = await tus('DELETE', path);
        if (deleted.status !== 204) throw new Error(`partial DELETE answered ${deleted.status}: ${await deleted.text()}`);
        return uploadWorkflowId(TENANT, path.split('/').pop()!);
      }),
  },
];
