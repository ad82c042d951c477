/**
 * Marks of merged uploads (src/gateway/merged-marks.ts), in the machine's Redis and in memory: only
 * a merged, running state is marked; a withdrawal (a deletion) wins over any mark set after it; a
 * mark lapses; Redis marks are seen by every connection (replica); none in Redis for a gateway
 * whose payloads are encoded.
 */
import { randomBytes } from 'node:crypto';
import { Client } from '@temporalio/client';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryMergedMarks, RedisMergedMarks, type MergedMarks } from '../../src/gateway/merged-marks';
import { mergedMarksFor } from '../../src/gateway/plugin';
import type { GatewayUploadState } from '../../src/upload/gateway-upload';
import { testRedis } from './gateway-harness';

let redis: Redis;
let otherReplica: Redis;
const prefix = `upload-saga-test:merged:${randomBytes(4).toString('hex')}:`;

beforeAll(() => {
  redis = testRedis();
  otherReplica = testRedis();
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await otherReplica?.quit();
  await redis?.quit();
});

function stateOf(uploadId: string, change: Partial<GatewayUploadState> = {}): GatewayUploadState {
  return {
    tenant: 'acme',
    uploadId,
    workflowId: `upload:acme:${uploadId}`,
    mode: 'tus',
    bucket: 'uploads',
    key: `acme/${uploadId}/file.bin`,
    contentType: 'application/octet-stream',
    metadata: {},
    tusMetadata: 'filename ZmlsZS5iaW4=',
    length: 1234,
    offset: 1234,
    partSize: 5 * 1024 * 1024,
    partsCompleted: 1,
    fingerprint: 'f',
    staged: [],
    phase: 'delete-staged',
    outcome: 'running',
    createdAt: 1,
    expiresAt: 2,
    runs: 1,
    merged: true,
    ...change,
  };
}

const id = () => randomBytes(8).toString('hex');

const kinds: [string, () => { writer: MergedMarks; reader: MergedMarks; lapsing: MergedMarks }][] = [
  [
    'Redis (two replicas)',
    () => ({
      writer: new RedisMergedMarks(redis, { keyPrefix: prefix }),
      reader: new RedisMergedMarks(otherReplica, { keyPrefix: prefix }),
      lapsing: new RedisMergedMarks(redis, { keyPrefix: prefix, ttlMs: 50 }),
    }),
  ],
  [
    'memory (one replica)',
    () => {
      const marks = new MemoryMergedMarks();
      return { writer: marks, reader: marks, lapsing: new MemoryMergedMarks(50) };
    },
  ],
];

describe.each(kinds)('merged marks in %s', (_kind, make) => {
  it('marks a merged, running state, which a read (on another replica) answers with', async () => {
    const { writer, reader } = make();
    const uploadId = id();
    expect(await reader.read('acme', uploadId)).toBeUndefined();
    await writer.mark(stateOf(uploadId));
    expect(await reader.read('acme', uploadId)).toMatchObject({ uploadId, offset: 1234, length: 1234, merged: true, outcome: 'running' });
    // Tenant-scoped: another tenant reads nothing under the same id.
    expect(await reader.read('beta', uploadId)).toBeUndefined();
  });

  it('marks nothing before the merge or after the end', async () => {
    const { writer, reader } = make();
    const before = id();
    const { merged: _merged, ...unmerged } = stateOf(before, { phase: 'verify' });
    await writer.mark(unmerged);
    const ended = id();
    await writer.mark(stateOf(ended, { outcome: 'completed', phase: 'done' }));
    expect(await reader.read('acme', before)).toBeUndefined();
    expect(await reader.read('acme', ended)).toBeUndefined();
  });

  it('keeps the first mark and no result or failure in it', async () => {
    const { writer, reader } = make();
    const uploadId = id();
    await writer.mark(stateOf(uploadId, { phase: 'delete-staged' }));
    await writer.mark(stateOf(uploadId, { phase: 'notify' }));
    const read = await reader.read('acme', uploadId);
    expect(read?.phase).toBe('delete-staged');
    expect(read).not.toHaveProperty('result');
  });

  it('withdraws a mark for good: a mark set after the withdrawal (a read that raced the deletion) is refused', async () => {
    const { writer, reader } = make();
    const uploadId = id();
    await writer.mark(stateOf(uploadId));
    await reader.withdraw('acme', uploadId);
    expect(await writer.read('acme', uploadId)).toBeUndefined();
    await writer.mark(stateOf(uploadId));
    expect(await reader.read('acme', uploadId)).toBeUndefined();
    // Withdrawn before it was ever marked: the same.
    const never = id();
    await writer.withdraw('acme', never);
    await writer.mark(stateOf(never));
    expect(await reader.read('acme', never)).toBeUndefined();
  });

  it('settles a mark with the completed state, never a withdrawn one, and marks nothing by settling', async () => {
    const { writer, reader } = make();
    const completed = (uploadId: string) =>
      stateOf(uploadId, {
        phase: 'done',
        outcome: 'completed',
        result: {
          uploadId,
          tenant: 'acme',
          workflowId: `upload:acme:${uploadId}`,
          bucket: 'uploads',
          key: `acme/${uploadId}/file.bin`,
          size: 1234,
          etag: '"e"',
          partCount: 1,
          partSize: 5 * 1024 * 1024,
          timings: {},
          notification: { status: 'delivered' },
        },
      });
    const uploadId = id();
    await writer.mark(stateOf(uploadId));
    await reader.settle(completed(uploadId));
    expect(await writer.read('acme', uploadId)).toMatchObject({ outcome: 'completed', offset: 1234, result: { etag: '"e"' } });
    // Settling is not marking: an upload without a mark gets none, a withdrawn one stays withdrawn.
    const unmarked = id();
    await writer.settle(completed(unmarked));
    expect(await reader.read('acme', unmarked)).toBeUndefined();
    const withdrawn = id();
    await writer.mark(stateOf(withdrawn));
    await writer.withdraw('acme', withdrawn);
    await reader.settle(completed(withdrawn));
    expect(await reader.read('acme', withdrawn)).toBeUndefined();
  });

  it('lets a mark lapse after its time to live', async () => {
    const { lapsing } = make();
    const uploadId = id();
    await lapsing.mark(stateOf(uploadId));
    expect(await lapsing.read('acme', uploadId)).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await lapsing.read('acme', uploadId)).toBeUndefined();
  });
});

describe('merged marks in Redis', () => {
  it('ignores a value that is not a mark of the upload it is read for', async () => {
    const marks = new RedisMergedMarks(redis, { keyPrefix: prefix });
    const uploadId = id();
    await redis.set(`${prefix}acme:${uploadId}`, JSON.stringify(stateOf('another')));
    expect(await marks.read('acme', uploadId)).toBeUndefined();
    await redis.set(`${prefix}acme:${uploadId}`, 'not json');
    const errors: unknown[] = [];
    expect(
      await new RedisMergedMarks(redis, { keyPrefix: prefix, onError: (err) => errors.push(err) }).read('acme', uploadId),
    ).toBeUndefined();
    expect(errors).toHaveLength(1);
  });

  it('reads nothing and marks nothing when Redis is away (the reads ask the workflow), and refuses to withdraw (503)', async () => {
    const away = testRedis();
    await away.quit();
    const errors: unknown[] = [];
    const marks = new RedisMergedMarks(away, { keyPrefix: prefix, onError: (err) => errors.push(err) });
    const uploadId = id();
    await marks.mark(stateOf(uploadId));
    await marks.settle(stateOf(uploadId, { outcome: 'completed', phase: 'done', result: {} as GatewayUploadState['result'] }));
    expect(await marks.read('acme', uploadId)).toBeUndefined();
    await expect(marks.withdraw('acme', uploadId)).rejects.toMatchObject({ status: 503 });
    expect(errors.length).toBe(3);
  });
});

describe('where the gateway keeps marks (mergedMarksFor)', () => {
  it('in Redis when it has Redis, in memory without, and nowhere in Redis when payloads are encoded (a mark is plain text)', () => {
    const plain = new Client();
    const encoding = new Client({ dataConverter: { payloadCodecs: [{ encode: async (p) => p, decode: async (p) => p }] } });
    expect(mergedMarksFor(redis, plain)).toBeInstanceOf(RedisMergedMarks);
    expect(mergedMarksFor(undefined, plain)).toBeInstanceOf(MemoryMergedMarks);
    expect(mergedMarksFor(redis, encoding)).toBeUndefined();
    expect(mergedMarksFor(undefined, encoding)).toBeInstanceOf(MemoryMergedMarks);
  });
});
