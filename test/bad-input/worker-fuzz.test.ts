/**
 * Invalid requests that bypass the client — started directly as workflows, as another SDK, the
 * Web UI's "start workflow" or a hand-written script would — against the real worker: every one
 * must end the workflow with `InvalidUploadRequest` from the first step (not crash the workflow
 * task, not hang in retries), and nothing may reach S3: no multipart upload, no object, no staged
 * part under the file's unique prefix.
 *
 * The requests come from fast-check with a fixed seed (printed on failure, to reproduce): a valid
 * request whose source is a real file, with one to three fields replaced by an invalid value, or
 * not an object at all. They run concurrently, a few dozen at once.
 */
import { randomUUID } from 'node:crypto';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SagaFailureReport } from '../../src/saga/workflow';
import { findRequestProblems } from '../../src/upload/request';
import { stagingPrefixOf } from '../../src/upload/staging';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { connectTestStack, startUploadWorker, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { multipartKeysUnder } from '../support/s3-inspect';

const TENANT = uniqueId('fuzz');
const BUCKET = 'uploads';
const PREFIX = `${uniqueId('fuzz')}/`;
const SEED = 20261123;
const COUNT = 40;

let stack: TestStack;
let worker: RunningWorker;
let tmp: { dir: string; remove(): Promise<void> };
let sourcePath: string;

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  tmp = await makeTempDir();
  sourcePath = (await makeRandomFile(tmp.dir, 'source.bin', 6 * MiB)).path;
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
  await tmp?.remove();
});

/** Invalid values per field; keys stay under PREFIX, so anything written would be found. */
function invalidValues(): Record<string, fc.Arbitrary<unknown>> {
  const garbage = fc.oneof(fc.anything(), fc.constant(null), fc.string({ unit: 'binary', maxLength: 20 }), fc.double());
  return {
    uploadId: fc.oneof(fc.constantFrom('', 'a:b', 'x'.repeat(129), '-x', 'a b'), garbage),
    tenant: fc.oneof(fc.constantFrom('', 't:1', 'x'.repeat(64), 'ü'), garbage),
    source: fc.oneof(
      fc.constantFrom(
        { type: 'file', path: 'relative.bin' },
        { type: 'file', path: '/a\u0000b' },
        { type: 'url', url: 'file:///etc/passwd' },
        { type: 'url', url: 'http://u:p@127.0.0.1/x' },
        { type: 'ftp', path: '/x' },
      ),
      garbage,
    ),
    destination: fc.oneof(
      fc
        .constantFrom('a//b', 'dir/', 'x\u0000y', '../up', 'é'.repeat(600), `${'s'.repeat(256)}/k`, 'x\ud800')
        .map((k) => ({ bucket: BUCKET, key: `${PREFIX}${k}` })),
      fc.constantFrom('Uploads', 'ab', '10.0.0.1', 'xn--uploads').map((bucket) => ({ bucket, key: `${PREFIX}k` })),
      fc.constant({ bucket: BUCKET, key: '.upload-saga/staging/x' }),
      garbage,
    ),
    declaredSize: fc.oneof(
      fc.constantFrom(-1, 1.5, 5 * 1024 ** 4 + 1),
      garbage.filter((v) => typeof v !== 'number'),
    ),
    partSize: fc.oneof(fc.constantFrom(1024, 6 * 1024 ** 3, 5 * MiB + 0.5), garbage),
    partConcurrency: fc.oneof(fc.constantFrom(0, 65, 2.5), garbage),
    checksumAlgorithm: fc.oneof(fc.constantFrom('MD5', 'crc32c'), garbage),
    contentType: fc.oneof(
      fc.constantFrom('pdf', 'text/plain; x=ü', 'a/b;\u0000'),
      garbage.filter((v) => typeof v !== 'string'),
    ),
    metadata: fc.oneof(fc.constantFrom({ big: 'x'.repeat(2100) }, { k: 'ü' }, { 'a b': 'v' }, { A: '1', a: '2' }), fc.constant([1, 2])),
    webhookUrl: fc.oneof(fc.constantFrom('not a url', 'ftp://example.com/x', 'https://u:p@example.com/x'), fc.integer(), fc.constant({})),
    expectedChecksum: fc.oneof(
      fc.constantFrom({ algorithm: 'SHA256', value: 'abc' }, { algorithm: 'MD5', value: 'x' }),
      fc.constant('deadbeef'),
    ),
    partsPerActivity: fc.oneof(fc.constantFrom(0, 10_001, 1.5), garbage),
    verify: fc.oneof(fc.constant('never'), garbage),
    failIfExists: fc.oneof(fc.constant('yes'), fc.integer()),
    unknownField: garbage,
  };
}

function invalidRequests(): unknown[] {
  const values = invalidValues();
  const fields = Object.keys(values);
  const valid = (i: number) => ({
    uploadId: `fuzz-${i}`,
    tenant: TENANT,
    source: { type: 'file', path: sourcePath },
    destination: { bucket: BUCKET, key: `${PREFIX}object-${i}.bin` },
    partSize: 5 * MiB,
  });
  const mutated = fc
    .tuple(fc.nat(), fc.uniqueArray(fc.constantFrom(...fields), { minLength: 1, maxLength: 3 }))
    .chain(([i, chosen]) =>
      fc.tuple(...chosen.map((f) => values[f]!)).map((bad) => ({ ...valid(i), ...Object.fromEntries(chosen.map((f, n) => [f, bad[n]])) })),
    );
  const notAnObject = fc.constantFrom(null, 42, 'upload', [], {}, { tenant: TENANT });
  return fc
    .sample(fc.oneof({ weight: 9, arbitrary: mutated }, { weight: 1, arbitrary: notAnObject }), { seed: SEED, numRuns: COUNT * 3 })
    .map((r) => JSON.parse(JSON.stringify(r ?? null)) as unknown) // what Temporal's JSON converter will deliver
    .filter((r) => findRequestProblems(r).length > 0)
    .slice(0, COUNT);
}

describe('invalid requests started around the client', () => {
  it(`each of ${COUNT} generated requests fails in inspect-source with InvalidUploadRequest, and nothing reaches S3`, async () => {
    const requests = invalidRequests();
    expect(requests).toHaveLength(COUNT);
    const outcomes = await Promise.all(
      requests.map(async (request, n) => {
        const handle = await stack.client.workflow.start('uploadWorkflow', {
          workflowId: `fuzz-${n}-${randomUUID()}`,
          taskQueue: stack.config.temporal.taskQueue,
          args: [request],
        });
        const error = await stack.client
          .withAbortSignal(AbortSignal.timeout(90_000), () => handle.result())
          .then(
            () => new Error('completed'),
            (e: unknown) => e,
          );
        const history = await handle.fetchHistory();
        const scheduled = (history.events ?? []).flatMap((e) =>
          e.activityTaskScheduledEventAttributes?.activityType?.name ? [e.activityTaskScheduledEventAttributes.activityType.name] : [],
        );
        return { request, error, scheduled };
      }),
    );
    for (const { request, error, scheduled } of outcomes) {
      const label = `seed ${SEED}, request ${JSON.stringify(request).slice(0, 300)}`;
      expect(error, label).toBeInstanceOf(WorkflowFailedError);
      const failure = (error as WorkflowFailedError).cause;
      expect(failure, label).toBeInstanceOf(ApplicationFailure);
      const report = (failure as ApplicationFailure).details?.[0] as SagaFailureReport;
      expect(report, label).toMatchObject({ failedStep: 'inspect-source', cause: { type: 'InvalidUploadRequest' }, compensations: [] });
      expect(report.cause.message, label).toMatch(/^invalid upload request: /);
      // no step after inspect-source ran (notify of upload.failed may, for a request with a webhook URL)
      expect(
        scheduled.filter((a) => a !== 'notify' && a !== 'inspectSource'),
        label,
      ).toEqual([]);
    }
    expect(await multipartKeysUnder(stack.s3, BUCKET, PREFIX)).toEqual([]);
    const objects = await stack.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: PREFIX }));
    expect(objects.Contents ?? []).toEqual([]);
    const staged = await stack.s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: stagingPrefixOf(TENANT, '').replace(/\/$/, '') }),
    );
    expect(staged.Contents ?? []).toEqual([]);
  });
});
