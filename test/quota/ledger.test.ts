/**
 * The embedded quota ledger on the real dev server: exact under concurrency, idempotent per upload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { connectTestStack, uniqueId, type RunningWorker, type TestStack, startUploadWorker } from '../support/harness';

const MiB = 1024 * 1024;
let stack: TestStack;
let worker: RunningWorker;
let ledger: TemporalQuotaLedger;

beforeAll(async () => {
  stack = await connectTestStack({ env: { UPLOAD_SAGA_QUOTA_DEFAULT: '5MiB' } });
  worker = await startUploadWorker(stack);
  ledger = new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota });
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
});

describe('quota ledger', () => {
  it('never over-commits: of 20 concurrent 1 MiB reservations against 5 MiB, exactly 5 succeed', async () => {
    const tenant = uniqueId('race');
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => ledger.reserve({ tenant, uploadId: `u${i}`, bytes: MiB })));
    const granted = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(granted).toHaveLength(5);
    for (const r of refused) {
      expect(r.reason).toBeInstanceOf(ApplicationFailure);
      expect(r.reason).toMatchObject({ type: 'QuotaExceeded', nonRetryable: true });
    }
    expect(await ledger.usage(tenant)).toMatchObject({ usedBytes: 0, reservedBytes: 5 * MiB, reservations: 5 });
  });

  it('is idempotent per upload: a retried reserve holds once, release and commit are no-ops when repeated', async () => {
    const tenant = uniqueId('idem');
    await ledger.reserve({ tenant, uploadId: 'a', bytes: 2 * MiB });
    await ledger.reserve({ tenant, uploadId: 'a', bytes: 2 * MiB });
    expect(await ledger.usage(tenant)).toMatchObject({ reservedBytes: 2 * MiB, reservations: 1 });

    await ledger.commit({ tenant, uploadId: 'a' });
    await ledger.commit({ tenant, uploadId: 'a' });
    expect(await ledger.usage(tenant)).toMatchObject({ usedBytes: 2 * MiB, reservedBytes: 0 });

    await ledger.reserve({ tenant, uploadId: 'b', bytes: 3 * MiB });
    await ledger.release({ tenant, uploadId: 'b' });
    await ledger.release({ tenant, uploadId: 'b' });
    expect(await ledger.usage(tenant)).toMatchObject({ usedBytes: 2 * MiB, reservedBytes: 0, reservations: 0 });
    await expect(ledger.reserve({ tenant, uploadId: 'a', bytes: 1 })).rejects.toMatchObject({ type: 'ReservationSettled' });
  });

  it('explains a refusal with what is left, used and reserved', async () => {
    const tenant = uniqueId('explain');
    await ledger.reserve({ tenant, uploadId: 'a', bytes: 4 * MiB });
    await expect(ledger.reserve({ tenant, uploadId: 'b', bytes: 2 * MiB })).rejects.toThrow(
      `tenant "${tenant}" has ${MiB} of ${5 * MiB} bytes left (0 used, ${4 * MiB} reserved); the upload needs ${2 * MiB}`,
    );
  });

  it('reports zero usage for a tenant it has never seen', async () => {
    expect(await ledger.usage(uniqueId('never'))).toMatchObject({ usedBytes: 0, reservedBytes: 0, reservations: 0 });
  });
});
