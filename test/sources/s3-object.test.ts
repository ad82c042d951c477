/**
 * S3-object sources through the real upload saga, against the run's real store (MinIO or versitygw).
 *
 * The worker's own S3 traffic goes through a counting TCP relay, so "no byte passes through the
 * worker" is measured on the wire, not assumed. The profile source points at the same MinIO
 * through a second relay with its own address: to the worker it is another endpoint, reached with
 * credentials from UPLOAD_SAGA_S3_SOURCE_PROFILES — never from the request.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createActivities, S3ObjectResolver, SourceRegistry, type ByteSource, type SourceResolver } from '../../src/activities';
import { UploadClient, UploadFailedError } from '../../src/client';
import { createS3Client } from '../../src/connections';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { bundleUploadWorkflows, createUploadWorker } from '../../src/worker';
import { stagingPrefixOf } from '../../src/upload/staging';
import { DEFAULT_S3_STORE_RULES, type S3StoreRules } from '../../src/s3/store-rules';
import { partChecksum } from '../../src/s3/checksums';
import { documentedCapabilities } from '../support/store-probes';
import { MiB } from '../support/files';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { incompleteUploads, keysUnder, objectExists, objectSha256 } from '../support/s3-inspect';
import { startTcpCounter, type TcpCounter } from '../support/tcp-counter';

const SOURCE_BUCKET = 'uploads-other';
const DEST_BUCKET = 'uploads';
/** Per-file tenant: a tenant's quota ledger runs on the task queue of the worker that first served it. */
const TENANT = uniqueId('acme');

let stack: TestStack;
/** In front of MinIO for the worker's own S3 client: everything the worker sends to its store. */
let storeRelay: TcpCounter;
/** In front of the same MinIO, as the endpoint of the source profile "elsewhere". */
let profileRelay: TcpCounter;
let worker: RunningWorker;
let uploads: UploadClient;
const closers: (() => Promise<unknown>)[] = [];
/** Bundled once for the extra workers (bundling takes seconds on a small machine). */
let bundle: ReturnType<typeof bundleUploadWorkflows> | undefined;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The workflow's history as text, payloads decoded (proto JSON renders their bytes as base64). */
async function historyText(workflowId: string): Promise<string> {
  const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
  return JSON.stringify(history, (k, v: unknown) =>
    k === 'data' && typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : v,
  );
}

async function putSource(size: number): Promise<{ key: string; content: Buffer }> {
  const content = randomBytes(size);
  const key = `sources/${uniqueId('object')}.bin`;
  await stack.s3.send(new PutObjectCommand({ Bucket: SOURCE_BUCKET, Key: key, Body: content }));
  return { key, content };
}

/** The real resolver, with `onCall` run before each read or server-side copy (to change the source at a chosen moment). */
function hooked(inner: SourceResolver, onCall: (kind: 'read' | 'copy', partOrOffset: number) => Promise<void>): SourceResolver {
  return {
    async open(source): Promise<ByteSource> {
      const opened = await inner.open(source);
      const copy = opened.serverSideCopy;
      return {
        description: opened.description,
        stat: () => opened.stat(),
        close: () => opened.close(),
        read: async (offset, length) => {
          await onCall('read', offset);
          return opened.read(offset, length);
        },
        ...(copy
          ? {
              serverSideCopy: {
                copyPart: async (target, range, signal) => {
                  await onCall('copy', target.partNumber);
                  return copy.copyPart(target, range, signal);
                },
              },
            }
          : {}),
      };
    },
  };
}

/** A second worker, on its own task queue, whose S3-object sources pass through `hook`, with the store's `rules` changed. */
async function startHookedWorker(
  hook: (kind: 'read' | 'copy', partOrOffset: number) => Promise<void>,
  rules: Partial<S3StoreRules> = {},
): Promise<UploadClient> {
  const taskQueue = `${stack.config.temporal.taskQueue}-hooked-${uniqueId('q')}`;
  const storeRules = { ...DEFAULT_S3_STORE_RULES, ...stack.config.s3.rules, ...rules };
  const config = { ...stack.config, temporal: { ...stack.config.temporal, taskQueue }, s3: { ...stack.config.s3, rules: storeRules } };
  const profiles = Object.fromEntries(Object.entries(stack.config.s3SourceProfiles).map(([name, p]) => [name, createS3Client(p)]));
  const activities = createActivities({
    s3: stack.s3,
    sources: new SourceRegistry({ s3: hooked(new S3ObjectResolver({ store: stack.s3, profiles }), hook) }),
    quota: new TemporalQuotaLedger({ client: stack.client, taskQueue, limits: config.quota }),
    storeRules,
  });
  bundle ??= bundleUploadWorkflows();
  const running = runInBackground(
    await createUploadWorker({
      config,
      connection: stack.workerConnection,
      client: stack.client,
      s3: stack.s3,
      activities,
      workflowBundle: await bundle,
    }),
  );
  closers.push(() => running.stop());
  return new UploadClient({ client: stack.client, taskQueue });
}

beforeAll(async () => {
  const minio = new URL(inject('s3Endpoint'));
  const target = { host: minio.hostname, port: Number(minio.port) };
  storeRelay = await startTcpCounter(target);
  profileRelay = await startTcpCounter(target);
  stack = await connectTestStack({
    env: {
      UPLOAD_SAGA_S3_SOURCE_PROFILES: JSON.stringify({
        elsewhere: {
          endpoint: profileRelay.url,
          region: inject('s3Region'),
          accessKeyId: inject('s3AccessKeyId'),
          secretAccessKey: inject('s3SecretAccessKey'),
        },
      }),
    },
  });
  // The worker's own store, reached through the counting relay.
  const countedS3 = createS3Client({ ...stack.config.s3, endpoint: storeRelay.url });
  closers.push(async () => countedS3.destroy());
  worker = runInBackground(
    await createUploadWorker({ config: stack.config, connection: stack.workerConnection, client: stack.client, s3: countedS3 }),
  );
  uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
});

afterAll(async () => {
  await worker?.stop();
  for (const close of closers.reverse()) await close();
  await stack?.close();
  await storeRelay?.close();
  await profileRelay?.close();
});

describe('S3-object sources', () => {
  it("copies an object in the worker's own store server-side: byte-identical, no source byte through the worker", async () => {
    const { key: sourceKey, content } = await putSource(4 * 5 * MiB + 12345); // 5 parts
    const key = `s3-source/${uniqueId('copied')}.bin`;
    const [upBefore, downBefore] = [storeRelay.bytesUp(), storeRelay.bytesDown()];

    const handle = await uploads.start({
      uploadId: uniqueId('copy'),
      tenant: TENANT,
      source: { type: 's3', bucket: SOURCE_BUCKET, key: sourceKey },
      destination: { bucket: DEST_BUCKET, key },
      partSize: 5 * MiB,
      partsPerActivity: 2,
    });
    const result = await handle.result();

    const sent = storeRelay.bytesUp() - upBefore;
    const received = storeRelay.bytesDown() - downBefore;
    expect(result).toMatchObject({ size: content.length, partCount: 5 });
    expect(result.checksum).toBeUndefined(); // server-side copies carry no additional checksum (S3_CHECKSUMMED_PART_COPY unset)
    expect(await objectSha256(stack.s3, DEST_BUCKET, key)).toBe(sha256(content));
    // Requests only: a few KiB per part, far below the 20 MiB object, both ways.
    expect(sent).toBeLessThan(256 * 1024);
    expect(received).toBeLessThan(256 * 1024);
    console.log(
      `[s3-object] server-side copy of ${(content.length / MiB).toFixed(2)} MiB: worker sent ${(sent / 1024).toFixed(1)} KiB, received ${(received / 1024).toFixed(1)} KiB`,
    );

    // The request names bucket and key; the history holds no credentials.
    const history = await historyText(handle.workflowId);
    expect(history).toContain(sourceKey); // decoding works: payloads are readable here
    expect(history).not.toContain(inject('s3SecretAccessKey'));
  });

  it('reads an object behind a source profile with ranged GETs and uploads it as usual: byte-identical', async () => {
    const { key: sourceKey, content } = await putSource(3 * 5 * MiB + 777); // 4 parts
    const key = `s3-source/${uniqueId('profile')}.bin`;
    const profileDown = profileRelay.bytesDown();
    const storeUp = storeRelay.bytesUp();

    const handle = await uploads.start({
      uploadId: uniqueId('profile'),
      tenant: TENANT,
      source: { type: 's3', bucket: SOURCE_BUCKET, key: sourceKey, profile: 'elsewhere' },
      destination: { bucket: DEST_BUCKET, key },
      partSize: 5 * MiB,
    });
    const result = await handle.result();

    expect(result).toMatchObject({ size: content.length, partCount: 4, checksum: { algorithm: 'CRC32C', type: 'COMPOSITE' } });
    expect(await objectSha256(stack.s3, DEST_BUCKET, key)).toBe(sha256(content));
    // Downloaded once through the profile's endpoint, sent once to the worker's store.
    const downloaded = profileRelay.bytesDown() - profileDown;
    const uploaded = storeRelay.bytesUp() - storeUp;
    expect(downloaded).toBeGreaterThanOrEqual(content.length);
    expect(downloaded).toBeLessThan(content.length * 1.1);
    expect(uploaded).toBeGreaterThanOrEqual(content.length);
    const history = await historyText(handle.workflowId);
    expect(history).toContain('\\"profile\\":\\"elsewhere\\"'); // the request names the profile…
    expect(history).not.toContain(inject('s3SecretAccessKey'));
    expect(history).not.toContain(profileRelay.url); // …never its endpoint or keys
  });

  it('checks a CRC given in advance for a server-side copy by re-reading the source (the copy itself carries none)', async () => {
    const { key: sourceKey, content } = await putSource(2 * 5 * MiB + 5);
    const crc = await partChecksum('CRC64NVME', content);
    const downBefore = storeRelay.bytesDown();
    const key = `s3-source/${uniqueId('copy-crc')}.bin`;
    const request = {
      tenant: TENANT,
      source: { type: 's3' as const, bucket: SOURCE_BUCKET, key: sourceKey },
      destination: { bucket: DEST_BUCKET, key },
      partSize: 5 * MiB,
    };

    const result = await (
      await uploads.start({ ...request, uploadId: uniqueId('copy-crc'), expectedChecksum: { algorithm: 'CRC64NVME', value: crc } })
    ).result();
    expect(result.size).toBe(content.length);
    expect(storeRelay.bytesDown() - downBefore).toBeGreaterThanOrEqual(content.length); // verify read it once
    expect(await objectSha256(stack.s3, DEST_BUCKET, key)).toBe(sha256(content));

    const wrong = await partChecksum('CRC64NVME', Buffer.from('not the content'));
    const err = (await (
      await uploads.start({
        ...request,
        uploadId: uniqueId('copy-crc-wrong'),
        destination: { bucket: DEST_BUCKET, key: `${key}.wrong` },
        expectedChecksum: { algorithm: 'CRC64NVME', value: wrong },
      })
    )
      .result()
      .catch((e: unknown) => e)) as UploadFailedError;
    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.report).toMatchObject({ failedStep: 'verify', cause: { type: 'ChecksumMismatch' } });
    expect(err.report?.cause.message).toContain(`but the request expected ${wrong}`);
    expect(err.outcome).toBe('compensated');
    expect(await objectExists(stack.s3, DEST_BUCKET, `${key}.wrong`)).toBe(false);
  });

  // S3_CHECKSUMMED_PART_COPY on a store that accepts UploadPartCopy into a checksummed upload
  // (versitygw): right for a source without a CRC64NVME of its own, and refused safely for one with
  // (the store then reports the source's whole-object CRC for each copied range; see
  // docs/reference/store-capabilities.md, `checksummed-part-copy-of-checksummed-source`).
  it.runIf(documentedCapabilities(inject('s3Store'))['checksummed-part-copy'])(
    'with S3_CHECKSUMMED_PART_COPY, a copy keeps its checksum and an expected CRC is checked without re-reading; a source with a CRC of that algorithm is refused at verify',
    async () => {
      const client = await startHookedWorker(() => Promise.resolve(), { checksummedPartCopy: true });
      const start = async (checksum: 'SHA1' | 'CRC64NVME') => {
        const content = randomBytes(2 * 5 * MiB + 5);
        const sourceKey = `sources/${uniqueId('object')}.bin`;
        await stack.s3.send(new PutObjectCommand({ Bucket: SOURCE_BUCKET, Key: sourceKey, Body: content, ChecksumAlgorithm: checksum }));
        const key = `s3-source/${uniqueId('copy-keeps')}.bin`;
        const crc = await partChecksum('CRC64NVME', content);
        const handle = await client.start({
          uploadId: uniqueId('copy-keeps'),
          tenant: uniqueId('copy-keeps'),
          source: { type: 's3', bucket: SOURCE_BUCKET, key: sourceKey },
          destination: { bucket: DEST_BUCKET, key },
          partSize: 5 * MiB,
          expectedChecksum: { algorithm: 'CRC64NVME', value: crc },
        });
        return { handle, key, content, crc };
      };

      const kept = await start('SHA1');
      const result = await kept.handle.result();
      expect(result.checksum).toEqual({ algorithm: 'CRC64NVME', value: kept.crc, type: 'FULL_OBJECT' });
      expect(await objectSha256(stack.s3, DEST_BUCKET, kept.key)).toBe(sha256(kept.content));

      const wrong = await start('CRC64NVME');
      const err = (await wrong.handle.result().catch((e: unknown) => e)) as UploadFailedError;
      expect(err).toBeInstanceOf(UploadFailedError);
      expect(err.report).toMatchObject({ failedStep: 'verify', cause: { type: 'ChecksumMismatch' } });
      expect(err.outcome).toBe('compensated');
      expect(await objectExists(stack.s3, DEST_BUCKET, wrong.key)).toBe(false);
    },
  );

  it.each([
    ['copied server-side', 'copy', undefined],
    ['read through a profile', 'read', 'elsewhere'],
  ] as const)(
    'fails with SourceChanged and leaves nothing when the object is overwritten during the upload (%s)',
    async (_name, kind, profile) => {
      const { key: sourceKey } = await putSource(3 * 5 * MiB); // 3 parts, one per batch
      let calls = 0;
      // Part 2 of 3: after batch 1 finished and batch 2 checked the source's ETag, another writer replaces the object.
      const client = await startHookedWorker(async (called) => {
        if (called !== kind) return;
        calls++;
        if (calls === 2)
          await stack.s3.send(new PutObjectCommand({ Bucket: SOURCE_BUCKET, Key: sourceKey, Body: randomBytes(3 * 5 * MiB) }));
      });
      const tenant = uniqueId('changed');
      const uploadId = uniqueId('changed');
      const key = `s3-source/${uniqueId('changed')}.bin`;
      const handle = await client.start({
        uploadId,
        tenant,
        source: { type: 's3', bucket: SOURCE_BUCKET, key: sourceKey, ...(profile ? { profile } : {}) },
        destination: { bucket: DEST_BUCKET, key },
        partSize: 5 * MiB,
        partsPerActivity: 1,
        partConcurrency: 1,
      });
      const err = (await handle.result().catch((e: unknown) => e)) as UploadFailedError;
      expect(err).toBeInstanceOf(UploadFailedError);
      expect(err.report).toMatchObject({ failedStep: 'upload-parts', cause: { type: 'SourceChanged' } });
      expect(err.report?.cause.message).toContain(`S3 object s3://${SOURCE_BUCKET}/${sourceKey}`);
      expect(err.report?.cause.message).toContain('its ETag is no longer');
      expect(err.outcome).toBe('compensated');
      expect(err.report?.compensations.map((c) => [c.activity, c.status])).toEqual([
        ['cleanupUpload', 'compensated'],
        ['releaseReservation', 'compensated'],
      ]);
      expect(await incompleteUploads(stack.s3, DEST_BUCKET, key)).toEqual([]);
      expect(await objectExists(stack.s3, DEST_BUCKET, key)).toBe(false);
      expect(await keysUnder(stack.s3, DEST_BUCKET, stagingPrefixOf(tenant, uploadId))).toEqual([]);
    },
  );

  it.each([
    [
      'a missing object',
      { key: 'sources/no-such-object.bin' },
      'SourceNotFound',
      `S3 object s3://${SOURCE_BUCKET}/sources/no-such-object.bin does not exist`,
    ],
    [
      'a missing object behind a profile',
      { key: 'sources/no-such-object.bin', profile: 'elsewhere' },
      'SourceNotFound',
      'via profile "elsewhere" does not exist',
    ],
    [
      'a profile the worker does not have',
      { key: 'sources/any.bin', profile: 'nowhere' },
      'SourceNotAllowed',
      'S3 source profile "nowhere" is not configured on this worker (configured: elsewhere); set UPLOAD_SAGA_S3_SOURCE_PROFILES',
    ],
  ])('refuses %s at inspect-source, before any byte is written', async (_name, source, type, message) => {
    const key = `s3-source/${uniqueId('refused')}.bin`;
    const handle = await uploads.start({
      uploadId: uniqueId('refused'),
      tenant: TENANT,
      source: { type: 's3', bucket: SOURCE_BUCKET, ...source },
      destination: { bucket: DEST_BUCKET, key },
    });
    const err = (await handle.result().catch((e: unknown) => e)) as UploadFailedError;
    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.report).toMatchObject({ failedStep: 'inspect-source', cause: { type } });
    expect(err.report?.cause.message).toContain(message);
    expect(err.report?.compensations).toEqual([]);
    expect(await incompleteUploads(stack.s3, DEST_BUCKET, key)).toEqual([]);
    expect(await objectExists(stack.s3, DEST_BUCKET, key)).toBe(false);
  });
});
