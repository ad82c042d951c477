/**
 * Property-based tests (fast-check) of everything that takes input from outside: upload requests,
 * the worker's environment, byte sizes, and the outbound address policy.
 *
 * Each property states what must hold for *any* input — never throw anything but the typed error,
 * never report a problem in zod's default words, and never accept what S3 (or the MinIO built
 * here) would refuse — checked against oracles written here from S3's documented rules, not by
 * calling the validation code again. A failing property prints the smallest input that breaks it.
 */
import { isIPv4 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, ConfigError, loadConfig, parseByteSize } from '../../src/config';
import { OutboundPolicy, parseAllowedHosts } from '../../src/net/address-policy';
import { quotaLimitFor } from '../../src/quota/ledger';
import { InvalidUploadRequestError } from '../../src/upload/errors';
import { planParts } from '../../src/upload/part-plan';
import { findRequestProblems, normalizeUploadRequest, uploadWorkflowId, type UploadRequestWithDefaults } from '../../src/upload/request';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;
const RUNS = { numRuns: 2000 };

/** zod's own wording: a message like this means a field without a message of ours. */
const ZOD_DEFAULT = /^(Invalid|Too small|Too big|Expected|Required|Unrecognized)/i;

// ---- oracles, from https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html and object-keys.html

function s3AcceptsBucket(b: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(b) &&
    !b.includes('..') &&
    !/^\d{1,3}(\.\d{1,3}){3}$/.test(b) &&
    !['xn--', 'sthree-', 'amzn-s3-demo-'].some((p) => b.startsWith(p)) &&
    !['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'].some((s) => b.endsWith(s))
  );
}

/** S3's rules plus what the MinIO built here refuses (found by trying: `a//b`, `dir/`, segments over 255 bytes). */
function storeAcceptsKey(k: string): boolean {
  const utf8 = Buffer.from(k, 'utf8');
  return (
    k.length > 0 &&
    utf8.toString('utf8') === k && // well-formed Unicode: nothing lost on the way to UTF-8
    utf8.length <= 1024 &&
    !/[\u0000-\u001f\u007f\ufffe\uffff]/.test(k) &&
    !k.startsWith('/') &&
    !k.endsWith('/') &&
    k.split('/').every((s) => s.length > 0 && s !== '.' && s !== '..' && Buffer.byteLength(s) <= 255)
  );
}

/** A header value Node (and S3's signature) can carry as is. */
const isHeaderSafe = (v: string) => /^[\x20-\x7e]*$/.test(v);
const isHttpUrl = (u: string) => {
  try {
    const url = new URL(u);
    return (url.protocol === 'http:' || url.protocol === 'https:') && !url.username && !url.password && u.length <= 2048;
  } catch {
    return false;
  }
};

// ---- generators: mostly plausible values, with the awkward ones mixed in

const anyValue = fc.oneof(fc.anything(), fc.string({ unit: 'binary' }), fc.double(), fc.integer(), fc.constant(null), fc.boolean());
const idArb = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 140 }) },
  { weight: 1, arbitrary: fc.constantFrom('', 'a:b', 'x'.repeat(64), 'y'.repeat(129), '-lead', 'a b', 'ü') },
);
const bucketArb = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]$/) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'uploads',
      'xn--bucket',
      'sthree-b',
      'b-s3alias',
      'b--ol-s3',
      'b.mrap',
      'b--x-s3',
      'b--table-s3',
      '10.0.0.1',
      'a..b',
      'ab',
      'A-b',
      'a-',
      'a'.repeat(64),
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 70 }) },
);
const keyArb = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9/._ -]{0,40}$/) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 64 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 200, maxLength: 1100 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'a//b',
      'dir/',
      '/abs',
      '.upload-saga/x',
      'a/../b',
      './a',
      'x\ud800y',
      'x\uffffy',
      'é'.repeat(513),
      `${'s'.repeat(256)}/k`,
      'ok/key.bin',
    ),
  },
);
const sourceArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ type: fc.constant('file'), path: fc.stringMatching(/^\/[a-z0-9/._-]{1,30}$/) }) },
  fc.record({
    type: fc.constant('file'),
    path: fc.oneof(
      fc.stringMatching(/^\/[a-z0-9/._-]{1,30}$/),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.constantFrom('rel/x', '/a\u0000b', `/${'p'.repeat(4100)}`),
    ),
  }),
  fc.record({
    type: fc.constant('url'),
    url: fc.oneof(
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      fc.string({ maxLength: 40 }),
      fc.constantFrom('https://u:p@example.com/x', 'ftp://example.com/x', `https://example.com/${'x'.repeat(2100)}`),
    ),
  }),
  fc.record({ type: fc.constantFrom('ftp', 's3', 'file'), path: anyValue }, { requiredKeys: ['type'] }),
  anyValue,
);
const sizeArb = fc.oneof(
  fc.integer({ min: 0, max: 5 * TiB + 1 }),
  fc.constantFrom(0, 1, 5 * MiB, 5 * TiB, 5 * TiB + 1, -1, 1.5, Number.MAX_SAFE_INTEGER + 2),
  anyValue,
);
const partSizeArb = fc.oneof(
  fc.integer({ min: 5 * MiB - 1, max: 5 * GiB + 1 }),
  fc.constantFrom(5 * MiB, 5 * GiB, 8 * MiB + 0.5, 1024),
  anyValue,
);
const metadataArb = fc.oneof(
  fc.dictionary(fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/), fc.string({ unit: 'binary-ascii', maxLength: 40 }), { maxKeys: 6 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 600 }), { maxKeys: 5 }),
  fc.constantFrom({ A: '1', a: '2' }, { big: 'x'.repeat(2100) }, { k: 'ü' }),
  anyValue,
);

/** Mostly-valid values first: the property needs accepted requests as much as refused ones. */
const mostly = <T>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: other });

const requestArb = fc
  .record(
    {
      uploadId: mostly(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/), idArb),
      tenant: mostly(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,10}$/), idArb),
      source: sourceArb,
      destination: mostly(
        fc.record({
          bucket: mostly(fc.constantFrom('uploads', 'uploads-other', 'a.b-c', 'b0b'), bucketArb),
          key: mostly(fc.stringMatching(/^[a-z0-9]{1,10}(\/[a-z0-9._ -]{0,9}[a-z0-9]){0,3}$/), keyArb),
        }),
        fc.oneof(fc.record({ bucket: bucketArb, key: keyArb, extra: anyValue }), anyValue),
      ),
      declaredSize: mostly(fc.integer({ min: 0, max: 5 * TiB }), sizeArb),
      expectedChecksum: mostly(
        fc.record({ algorithm: fc.constant('SHA256'), value: fc.stringMatching(/^[0-9a-f]{64}$/) }),
        fc.oneof(fc.record({ algorithm: fc.constantFrom('SHA256', 'MD5', 'CRC32C'), value: fc.string() }), anyValue),
      ),
      partSize: mostly(fc.integer({ min: 5 * MiB, max: 5 * GiB }), partSizeArb),
      partConcurrency: mostly(fc.integer({ min: 1, max: 64 }), fc.oneof(fc.integer({ min: -1, max: 70 }), anyValue)),
      checksumAlgorithm: mostly(fc.constantFrom('CRC32', 'CRC32C', 'SHA1', 'SHA256'), fc.oneof(fc.constant('MD5'), anyValue)),
      contentType: mostly(
        fc.constantFrom('video/mp4', 'text/plain; charset=utf-8'),
        fc.oneof(fc.constantFrom('text/plain; x=ü', 'a/b;\n', 'pdf'), fc.string({ unit: 'binary', maxLength: 300 }), anyValue),
      ),
      metadata: mostly(
        fc.dictionary(fc.stringMatching(/^[a-z0-9-]{1,12}$/), fc.stringMatching(/^[\x20-\x7e]{0,40}$/), { maxKeys: 4 }),
        metadataArb,
      ),
      webhookUrl: mostly(
        fc.webUrl({ withQueryParameters: true }),
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 30 }),
          fc.constantFrom('https://u:p@h/x', `https://h/${'x'.repeat(2100)}`),
          anyValue,
        ),
      ),
      failIfExists: mostly(fc.boolean(), anyValue),
      partsPerActivity: mostly(fc.integer({ min: 1, max: 10_000 }), fc.oneof(fc.integer({ min: 0, max: 10_001 }), anyValue)),
      verify: mostly(fc.constantFrom('checksums', 'reread'), fc.oneof(fc.constant('never'), anyValue)),
    },
    { requiredKeys: ['uploadId', 'tenant', 'source', 'destination'] },
  )
  .chain((request) =>
    mostly(
      fc.constant(request),
      fc.record({ unknownField: anyValue }).map((extra) => ({ ...request, ...extra })),
    ),
  );

function satisfiesStoreRules(r: UploadRequestWithDefaults): void {
  expect(s3AcceptsBucket(r.destination.bucket), `bucket ${JSON.stringify(r.destination.bucket)}`).toBe(true);
  expect(storeAcceptsKey(r.destination.key), `key ${JSON.stringify(r.destination.key)}`).toBe(true);
  expect(Number.isSafeInteger(r.partSize) && r.partSize >= 5 * MiB && r.partSize <= 5 * GiB).toBe(true);
  expect(Number.isSafeInteger(r.partConcurrency) && r.partConcurrency >= 1 && r.partConcurrency <= 64).toBe(true);
  expect(Number.isSafeInteger(r.partsPerActivity) && r.partsPerActivity >= 1 && r.partsPerActivity <= 10_000).toBe(true);
  expect(isHeaderSafe(r.contentType) && r.contentType.length <= 255, `content type ${JSON.stringify(r.contentType)}`).toBe(true);
  const metadata = Object.entries(r.metadata);
  expect(metadata.reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0)).toBeLessThanOrEqual(2048);
  expect(metadata.every(([k, v]) => /^[A-Za-z0-9-]+$/.test(k) && isHeaderSafe(v))).toBe(true);
  expect(new Set(metadata.map(([k]) => k.toLowerCase())).size).toBe(metadata.length);
  if (r.webhookUrl !== undefined) expect(isHttpUrl(r.webhookUrl), `webhook ${r.webhookUrl}`).toBe(true);
  if (r.source.type === 'url') expect(isHttpUrl(r.source.url)).toBe(true);
  if (r.source.type === 'file')
    expect(
      r.source.path.startsWith('/') && !/[\u0000-\u001f]/.test(r.source.path) && Buffer.from(r.source.path).toString() === r.source.path,
    ).toBe(true);
  // the workflow id splits back into exactly tenant and upload id
  expect(uploadWorkflowId(r.tenant, r.uploadId).split(':')).toEqual(['upload', r.tenant, r.uploadId]);
  // it survives Temporal's JSON payload converter unchanged
  expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  if (r.declaredSize !== undefined) {
    const plan = planParts(r.declaredSize, r.partSize);
    expect(plan.partCount).toBeLessThanOrEqual(10_000);
    expect(plan.partSize).toBeGreaterThanOrEqual(5 * MiB);
    expect(plan.partSize).toBeLessThanOrEqual(5 * GiB);
    expect(plan.lastPartSize).toBeLessThanOrEqual(plan.partSize);
    expect((plan.partCount - 1) * plan.partSize + plan.lastPartSize).toBe(r.declaredSize);
  }
}

describe('upload requests, fuzzed', () => {
  it('findRequestProblems never throws, and names every problem in words of ours', () => {
    fc.assert(
      fc.property(fc.oneof(requestArb, anyValue), (input) => {
        const problems = findRequestProblems(input);
        for (const p of problems) {
          expect(typeof p.field).toBe('string');
          expect(p.message, `${p.field}: ${p.message}`).not.toMatch(ZOD_DEFAULT);
        }
      }),
      RUNS,
    );
  });

  it('normalizeUploadRequest throws only InvalidUploadRequestError, and what it accepts S3 accepts', () => {
    let accepted = 0;
    fc.assert(
      fc.property(requestArb, (input) => {
        let normalized: UploadRequestWithDefaults;
        try {
          normalized = normalizeUploadRequest(input);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidUploadRequestError);
          expect((err as InvalidUploadRequestError).problems.length).toBeGreaterThan(0);
          return;
        }
        accepted++;
        satisfiesStoreRules(normalized);
      }),
      RUNS,
    );
    // The generator must reach the accepting side often enough for the property to mean something.
    expect(accepted).toBeGreaterThan(RUNS.numRuns / 50);
  });

  it('accepts any size up to 5 TiB with any valid part size, in at most 10,000 parts S3 accepts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 * TiB }), fc.integer({ min: 5 * MiB, max: 5 * GiB }), (size, partSize) => {
        const plan = planParts(size, partSize);
        expect(plan.partCount).toBeLessThanOrEqual(10_000);
        expect(plan.partSize).toBeGreaterThanOrEqual(partSize);
        expect(plan.partSize).toBeLessThanOrEqual(5 * GiB);
        expect((plan.partCount - 1) * plan.partSize + plan.lastPartSize).toBe(size);
        if (plan.partCount > 1) expect(plan.lastPartSize).toBeGreaterThan(0);
      }),
      RUNS,
    );
  });
});

describe('worker configuration, fuzzed', () => {
  const names = CONFIG_VARIABLES.filter((v) => !v.secret).map((v) => v.name);
  const secretNames = CONFIG_VARIABLES.filter((v) => v.secret).map((v) => v.name);
  // Secret values carry a marker, so finding one in a message is a leak, not a coincidence with the message's own words.
  const secretArb = fc.oneof(fc.stringMatching(/^SeCrEt[A-Za-z0-9+/=_-]{2,40}$/), fc.constantFrom('SeCrEt', 'SeCrEt-too-short'));
  const valueArb = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constantFrom(
      'true',
      'no',
      'maybe',
      '10GiB',
      '1.5 TB',
      'lots',
      '127.0.0.1:7233',
      'http://127.0.0.1:9000',
      'acme=1GiB,constructor=2GiB',
      '10.0.0.0/8,files.internal:8443',
      '{tenant}/',
      '/data:/srv',
      '0',
      '99999999',
    ),
    fc.integer().map(String),
  );
  const envArb = fc
    .tuple(
      fc.dictionary(fc.constantFrom(...names, 'PATH', 'HOME'), valueArb, { maxKeys: 8 }),
      fc.dictionary(fc.constantFrom(...secretNames), secretArb, { maxKeys: 4 }),
    )
    .map(([plain, secrets]) => ({ ...plain, ...secrets }));

  it('loadConfig returns a configuration or throws ConfigError, whose problems are ours and never echo a secret', () => {
    fc.assert(
      fc.property(envArb, fc.stringMatching(/^[a-z][a-z0-9_-]{0,15}$/), (env, tenant) => {
        try {
          const config = loadConfig(env);
          // every tenant gets a number, whatever its name ("constructor", "__proto__", …)
          expect(typeof quotaLimitFor(config.quota, tenant)).toBe('number');
          expect(typeof quotaLimitFor(config.quota, 'constructor')).toBe('number');
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
          const problems = (err as ConfigError).problems;
          for (const p of problems) expect(p.replace(/^[A-Z0-9_]+: /, ''), p).not.toMatch(ZOD_DEFAULT);
          // A message may say what is wrong with a secret variable, but never repeats its value.
          expect((err as ConfigError).message).not.toContain('SeCrEt');
        }
      }),
      RUNS,
    );
  });

  it('parseByteSize never throws and returns undefined or a safe whole number of bytes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.stringMatching(/^\s*\d{1,20}(\.\d{1,5})?\s*[KMGT]?i?B?\s*$/)), (text) => {
        const bytes = parseByteSize(text);
        if (bytes !== undefined) expect(Number.isSafeInteger(bytes) && bytes >= 0).toBe(true);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4096 }),
        fc.constantFrom(['B', 1], ['KiB', 1024], ['MiB', MiB], ['GiB', GiB], ['TiB', TiB], ['KB', 1e3], ['GB', 1e9]),
        (n, [unit, factor]) => {
          expect(parseByteSize(`${n}${unit}`)).toBe(n * (factor as number));
          expect(parseByteSize(` ${n} ${(unit as string).toLowerCase()} `)).toBe(n * (factor as number));
        },
      ),
    );
  });
});

describe('outbound address policy, fuzzed', () => {
  const policy = new OutboundPolicy({ subject: 'URL sources', variable: 'UPLOAD_SAGA_URL_ALLOWED_HOSTS' });
  // RFC 1918, loopback, link-local, CGNAT, "this network", multicast, reserved: each [first octet, second-octet range].
  const nonPublicV4 = fc.oneof(
    fc.tuple(fc.constant(10), fc.nat(255)),
    fc.tuple(fc.constant(127), fc.nat(255)),
    fc.tuple(fc.constant(172), fc.integer({ min: 16, max: 31 })),
    fc.tuple(fc.constant(192), fc.constant(168)),
    fc.tuple(fc.constant(169), fc.constant(254)),
    fc.tuple(fc.constant(100), fc.integer({ min: 64, max: 127 })),
    fc.tuple(fc.constant(0), fc.nat(255)),
    fc.tuple(fc.integer({ min: 224, max: 255 }), fc.nat(255)),
  );

  it('refuses every private, loopback, link-local, CGNAT, multicast and reserved IPv4 address, also as IPv4-mapped IPv6', () => {
    fc.assert(
      fc.property(nonPublicV4, fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 65535 }), ([a, b], c, d, port) => {
        const address = `${a}.${b}.${c}.${d}`;
        expect(isIPv4(address)).toBe(true);
        expect(policy.check('h.example', port, address), address).toBeInstanceOf(Error);
        expect(policy.check('h.example', port, `::ffff:${address}`), `::ffff:${address}`).toBeInstanceOf(Error);
        expect(policy.check(address, port, address)?.message).toContain('UPLOAD_SAGA_URL_ALLOWED_HOSTS');
      }),
      RUNS,
    );
  });

  it('refuses loopback, unspecified, link-local, unique-local and multicast IPv6', () => {
    const hex = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));
    fc.assert(
      fc.property(fc.constantFrom('fe80', 'fe9f', 'febf', 'fc00', 'fd12', 'ff02', 'ff0e'), hex, hex, (first, x, y) => {
        const address = `${first}::${x}:${y}`;
        expect(policy.check('h.example', 443, address), address).toBeInstanceOf(Error);
      }),
      RUNS,
    );
    for (const address of ['::1', '::', '::ffff:169.254.169.254', '64:ff9b::a00:1'])
      expect(policy.check('h.example', 443, address), address).toBeInstanceOf(Error);
  });

  it('allows public addresses, and exactly the allow-listed private ones', () => {
    for (const address of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111'])
      expect(policy.check('h.example', 443, address)).toBeUndefined();
    const allowing = new OutboundPolicy({ allowedHosts: ['10.1.0.0/16', '127.0.0.1:8080', 'files.internal'], subject: 's', variable: 'V' });
    expect(allowing.check('h', 443, '10.1.2.3')).toBeUndefined();
    expect(allowing.check('h', 443, '10.2.0.1')).toBeInstanceOf(Error);
    expect(allowing.check('h', 8080, '127.0.0.1')).toBeUndefined();
    expect(allowing.check('h', 8081, '127.0.0.1')).toBeInstanceOf(Error);
    expect(allowing.check('files.internal', 443, '192.168.1.1')).toBeUndefined();
  });

  it('parseAllowedHosts never throws, and every entry it keeps is one the policy accepts', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          fc.array(fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain(), fc.string()), { maxLength: 5 }).map((a) => a.join(',')),
        ),
        (text) => {
          const { entries } = parseAllowedHosts(text);
          expect(() => new OutboundPolicy({ allowedHosts: entries.map((e) => e.text), subject: 's', variable: 'V' })).not.toThrow();
        },
      ),
      RUNS,
    );
  });
});
