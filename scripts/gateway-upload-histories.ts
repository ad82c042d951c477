/**
 * The gateway-upload scenarios `npm run histories:record` records (see record-histories.ts): real
 * runs of `clientUploadWorkflow` driven through an in-process HTTP gateway with raw tus requests,
 * against the recorder's stack and worker, so test/replay.test.ts replays what the gateway really
 * makes the workflow do — chunk updates, folded parts, the expiry timer, continue-as-new.
 *
 * Why a module of its own: these runs are not `UploadClient` uploads (no UploadHandle), and the
 * gateway they need is started and closed here; record-histories.ts only lists and writes them.
 */
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { hashToken, loadGatewayConfig, type GatewayConfig } from '../src/gateway/config';
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

async function withGateway<T>(
  r: GatewayUploadRecording,
  overrides: Partial<GatewayConfig>,
  service: GatewayOptions['service'],
  use: (
    tus: (method: string, path: string, headers?: Record<string, string>, body?: Buffer) => Promise<Response>,
    gateway: Awaited<ReturnType<typeof createGateway>>,
  ) => Promise<T>,
): Promise<T> {
  const token = randomBytes(18).toString('base64url');
  const config = { ...loadGatewayConfig({ UPLOAD_SAGA_GATEWAY_TOKENS: `${TENANT}=${hashToken(token)}` }), ...overrides };
  const app = await createGateway({
    config,
    client: r.client,
    taskQueue: r.taskQueue,
    s3: r.s3,
    plugins: [],
    ...(service ? { service } : {}),
  });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
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

export const GATEWAY_UPLOAD_SCENARIOS: GatewayUploadScenario[] = [
  {
    name: 'client-upload-tus',
    outcome: 'completed',
    // 7 MiB in 1 MiB PATCHes: staged segments folded into part 1, then the last part; webhook sent.
    run: (r) =>
      withGateway(r, { tenants: { [TENANT]: { webhookUrl: r.webhookUrl } } }, undefined, async (tus) =>
        uploadWorkflowId(TENANT, await tusUpload(tus, 7 * MiB, 7 * MiB, 'client-upload-tus.bin')),
      ),
  },
  {
    name: 'client-upload-tus-deferred',
    outcome: 'completed',
    // creation-defer-length: the maximum reserved, 2 MiB staged, the length (7 MiB) declared by the next PATCH
    // (reservation shrunk), the rest sent; shrunk again to the verified size before the commit.
    run: (r) =>
      withGateway(r, { defaults: { maxUploadBytes: 64 * MiB, requestsPerSecond: 50 } }, undefined, async (tus) => {
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
      withGateway(r, { uploadExpiryMs: 3000 }, undefined, async (tus, app) => {
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
      withGateway(r, {}, { updatesPerRun: 3 }, async (tus) =>
        uploadWorkflowId(TENANT, await tusUpload(tus, 7 * MiB, 7 * MiB, 'client-upload-continued.bin')),
      ),
  },
];
