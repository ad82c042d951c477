import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseByteSize } from '../../src/config';
import { quotaLimitFor } from '../../src/quota/ledger';

describe('configuration from the environment', () => {
  it('has working defaults for a local stack', () => {
    const config = loadConfig({});
    expect(config.temporal).toMatchObject({ address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'upload-saga', tls: false });
    expect(config.s3).toEqual({
      region: 'us-east-1',
      forcePathStyle: false,
      idleTimeoutMs: 60_000,
      rules: { maxParts: 10_000, equalParts: false, additionalChecksums: true, checksummedPartCopy: false },
    });
    expect(config.quota.defaultBytes).toBe(1024 ** 4);
  });

  it('reads S3, quotas and Temporal Cloud settings', () => {
    const config = loadConfig({
      TEMPORAL_ADDRESS: 'acme.a1b2c.tmprl.cloud:7233',
      TEMPORAL_API_KEY: 'key',
      S3_ENDPOINT: 'http://127.0.0.1:9000',
      S3_ACCESS_KEY_ID: 'id',
      S3_SECRET_ACCESS_KEY: 'secret',
      UPLOAD_SAGA_QUOTAS: 'acme=10GiB, beta=1TB',
      UPLOAD_SAGA_ALLOWED_ROOTS: '/data:/srv/in',
    });
    expect(config.temporal.tls).toEqual({});
    expect(config.temporal.apiKey).toBe('key');
    expect(config.s3).toMatchObject({
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      credentials: { accessKeyId: 'id', secretAccessKey: 'secret' },
    });
    expect(config.quota.perTenant).toEqual({ acme: 10 * 1024 ** 3, beta: 1e12 });
    expect(config.allowedRoots).toEqual(['/data', '/srv/in']);
  });

  it('lists every problem, naming the variable and what is allowed', () => {
    let error: unknown;
    try {
      loadConfig({
        TEMPORAL_ADDRESS: 'nonsense',
        S3_ENDPOINT: 'not a url',
        S3_FORCE_PATH_STYLE: 'maybe',
        UPLOAD_SAGA_QUOTA_DEFAULT: 'lots',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = (error as ConfigError).problems.join('\n');
    expect(text).toContain('TEMPORAL_ADDRESS: must be host:port');
    expect(text).toContain('S3_ENDPOINT: must be a URL such as http://127.0.0.1:9000');
    expect(text).toContain('S3_FORCE_PATH_STYLE: must be true or false');
    expect(text).toContain('UPLOAD_SAGA_QUOTA_DEFAULT: "lots" is not a size');
  });

  it('refuses half-set credential pairs and malformed quotas', () => {
    expect(() => loadConfig({ S3_ACCESS_KEY_ID: 'id' })).toThrow('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together');
    expect(() => loadConfig({ UPLOAD_SAGA_QUOTAS: 'acme' })).toThrow('UPLOAD_SAGA_QUOTAS: "acme" is not tenant=size');
    expect(() => loadConfig({ UPLOAD_SAGA_WEBHOOK_SECRET: 'short' })).toThrow('UPLOAD_SAGA_WEBHOOK_SECRET: must be at least 16 characters');
  });

  it('reads the S3 idle timeout and refuses unusable ones', () => {
    expect(loadConfig({ S3_IDLE_TIMEOUT_MS: '5000' }).s3.idleTimeoutMs).toBe(5_000);
    expect(() => loadConfig({ S3_IDLE_TIMEOUT_MS: '10' })).toThrow(
      'S3_IDLE_TIMEOUT_MS: must be a whole number from 1000 to 3600000 (milliseconds)',
    );
    expect(() => loadConfig({ S3_IDLE_TIMEOUT_MS: 'soon' })).toThrow(
      'S3_IDLE_TIMEOUT_MS: must be a whole number from 1000 to 3600000 (milliseconds)',
    );
  });

  it("reads the store's rules (part limit, equal parts, checksums) and refuses impossible ones", () => {
    expect(
      loadConfig({ S3_MAX_PARTS: '1000', S3_EQUAL_PARTS: 'true', S3_ADDITIONAL_CHECKSUMS: 'false', S3_CHECKSUMMED_PART_COPY: 'false' }).s3
        .rules,
    ).toEqual({ maxParts: 1000, equalParts: true, additionalChecksums: false, checksummedPartCopy: false });
    expect(loadConfig({ S3_CHECKSUMMED_PART_COPY: 'true' }).s3.rules?.checksummedPartCopy).toBe(true);
    expect(() => loadConfig({ S3_MAX_PARTS: '10001' })).toThrow('S3_MAX_PARTS: must be a whole number from 1 to 10000');
    expect(() => loadConfig({ S3_MAX_PARTS: '0' })).toThrow('S3_MAX_PARTS: must be a whole number from 1 to 10000');
    expect(() => loadConfig({ S3_EQUAL_PARTS: 'sometimes' })).toThrow('S3_EQUAL_PARTS: must be true or false');
    expect(() => loadConfig({ S3_ADDITIONAL_CHECKSUMS: 'false', S3_CHECKSUMMED_PART_COPY: 'true' })).toThrow(
      'S3_CHECKSUMMED_PART_COPY=true needs additional checksums',
    );
  });

  it('reads the outbound allow-lists and the tenant key prefix, and defaults to public addresses and any key', () => {
    const config = loadConfig({
      UPLOAD_SAGA_URL_ALLOWED_HOSTS: '10.0.0.0/8, files.internal:8443,[::1]:9000',
      UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      UPLOAD_SAGA_TENANT_KEY_PREFIX: 'tenants/{tenant}/',
    });
    expect(config.urlSources.allowedHosts).toEqual(['10.0.0.0/8', 'files.internal:8443', '[::1]:9000']);
    expect(config.webhook.allowedHosts).toEqual(['127.0.0.1']);
    expect(config.tenantKeyPrefix).toBe('tenants/{tenant}/');
    const defaults = loadConfig({});
    expect(defaults.urlSources.allowedHosts).toEqual([]);
    expect(defaults.webhook.allowedHosts).toEqual([]);
    expect(defaults.tenantKeyPrefix).toBeUndefined();
  });

  it('gives a tenant named like an Object member the default quota, not the member', () => {
    const config = loadConfig({ UPLOAD_SAGA_QUOTAS: 'acme=1GiB', UPLOAD_SAGA_QUOTA_DEFAULT: '2GiB' });
    expect(quotaLimitFor(config.quota, 'constructor')).toBe(2 * 1024 ** 3);
    expect(quotaLimitFor({ defaultBytes: 5, perTenant: { acme: 1 } }, 'toString')).toBe(5);
    expect(quotaLimitFor(config.quota, 'acme')).toBe(1024 ** 3);
  });

  it('parses binary and decimal sizes', () => {
    expect(parseByteSize('8MiB')).toBe(8 * 1024 * 1024);
    expect(parseByteSize('1.5 GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseByteSize('10GB')).toBe(1e10);
    expect(parseByteSize('123')).toBe(123);
    expect(parseByteSize('ten')).toBeUndefined();
    expect(parseByteSize('5 parsecs')).toBeUndefined();
  });
});
