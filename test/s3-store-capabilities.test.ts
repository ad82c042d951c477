/**
 * docs/reference/store-capabilities.md, row by row, against the run's S3 store: each row's probe
 * (test/support/store-probes.ts) must answer what the table says for this store. The `minio`
 * vitest project checks the MinIO column, the `versitygw` project the versitygw column.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectTestStack, uniqueId, type TestStack } from './support/harness';
import { documentedCapabilities, probeStore, STORE_CAPABILITIES } from './support/store-probes';

const store = inject('s3Store');
const documented = documentedCapabilities(store);
const prefix = `${uniqueId('capabilities')}/`;
let stack: TestStack;

beforeAll(async () => {
  stack = await connectTestStack();
});
afterAll(async () => {
  await stack?.close();
});

describe(`store capabilities of ${store}`, () => {
  it('the table has one row per probe, each with a yes or no for both stores', () => {
    expect(Object.keys(documented).sort()).toEqual([...STORE_CAPABILITIES].sort());
  });

  it.each(STORE_CAPABILITIES)('%s: the probe answers what the table says', async (capability) => {
    expect(await probeStore(capability, stack.s3, 'uploads', prefix)).toBe(documented[capability]);
  });
});
