/**
 * A tenant's body-stream leases in the machine's Redis, as two replicas share them: the cap holds
 * across replicas, a lease given back frees its slot, a replica that keeps renewing keeps its
 * leases, and the leases of a replica that stopped (died) stop counting after their TTL.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { RedisBodyStreamLeases } from '../../src/gateway/body-stream-leases';
import { uniqueId } from '../support/harness';
import { testRedis } from './gateway-harness';

const redis = testRedis();
const keyPrefix = `${uniqueId('test-body-streams')}:`;
const replicas: RedisBodyStreamLeases[] = [];
const replica = (ttlMs: number) => {
  const leases = new RedisBodyStreamLeases(redis, { ttlMs, renewEveryMs: Math.ceil(ttlMs / 4), keyPrefix });
  replicas.push(leases);
  return leases;
};

afterAll(async () => {
  for (const leases of replicas) leases.close();
  await redis.quit();
});

describe('body-stream leases in Redis', () => {
  it('holds a tenant to its cap across replicas, and a lease given back frees its slot', async () => {
    const [one, two] = [replica(30_000), replica(30_000)];
    const tenant = uniqueId('tenant');
    const first = await one.acquire(tenant, 2);
    const second = await two.acquire(tenant, 2);
    expect(first).toBeTypeOf('string');
    expect(second).toBeTypeOf('string');
    expect(await one.acquire(tenant, 2)).toBeUndefined();
    expect(await two.acquire(tenant, 2)).toBeUndefined();
    // Another tenant has its own count.
    expect(await two.acquire(uniqueId('other'), 2)).toBeTypeOf('string');
    await one.release(tenant, first!);
    expect(await two.acquire(tenant, 2)).toBeTypeOf('string');
  });

  it("keeps a renewing replica's leases past their TTL, and stops counting a stopped replica's after it", async () => {
    const ttlMs = 1_500;
    const [alive, dying, other] = [replica(ttlMs), replica(ttlMs), replica(ttlMs)];
    const tenant = uniqueId('tenant');
    expect(await alive.acquire(tenant, 2)).toBeTypeOf('string');
    expect(await dying.acquire(tenant, 2)).toBeTypeOf('string');
    dying.close(); // stops renewing, as a replica that died
    expect(await other.acquire(tenant, 2)).toBeUndefined();
    await new Promise((r) => setTimeout(r, ttlMs * 2.5));
    // The dead replica's lease expired; the renewed one still counts: one slot, not two.
    expect(await other.acquire(tenant, 2)).toBeTypeOf('string');
    expect(await other.acquire(tenant, 2)).toBeUndefined();
  });
});
