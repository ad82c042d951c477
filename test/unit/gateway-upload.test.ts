/**
 * The gateway-upload rules as pure functions: what the workflow's Update validators accept, the
 * parts fingerprint, the gateway's configuration and its Upload-Checksum parsing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { partsFingerprint, extendPartsFingerprint } from '../../src/s3/parts-fingerprint';
import { ConfigError } from '../../src/config';
import { hashToken, loadGatewayConfig, parseDuration, tenantSettings } from '../../src/gateway/config';
import { bodyStreamMemoryBound } from '../../src/gateway/body-streams';
import { parseUploadChecksum } from '../../src/gateway/tus-store';
import { formatPauseDuration } from '../../src/upload/pause';
import { metadataProblem, safeFileName } from '../../src/gateway/uploads-service';
import {
  chunkRecordProblem,
  gatewayPartsProblem,
  lengthDeclarationProblem,
  MAX_STAGED_SEGMENTS,
  stagedSegmentKey,
  type ChunkRecord,
  type GatewayUploadState,
} from '../../src/upload/gateway-upload';

const MiB = 1024 * 1024;
const receiving = (over: Partial<GatewayUploadState> = {}) =>
  ({
    mode: 'tus',
    phase: 'receive-parts',
    outcome: 'running',
    offset: 0,
    partsCompleted: 0,
    fingerprint: '',
    length: 12 * MiB,
    partSize: 5 * MiB,
    expiresAt: 10_000,
    ...over,
  }) as const;
const record = (over: Partial<ChunkRecord>): ChunkRecord => ({
  from: { offset: 0, partsCompleted: 0 },
  offset: 0,
  partsCompleted: 0,
  fingerprint: '',
  staged: [],
  ...over,
});

describe('chunkRecordProblem (the recordChunk validator)', () => {
  it('accepts a staged chunk, a completed part, and the final part', () => {
    expect(chunkRecordProblem(receiving(), record({ offset: MiB, staged: [{ start: 0, end: MiB }] }), 0)).toBeUndefined();
    expect(chunkRecordProblem(receiving(), record({ offset: 5 * MiB, partsCompleted: 1, fingerprint: 'f1' }), 0)).toBeUndefined();
    const atTwoParts = receiving({ offset: 11 * MiB, partsCompleted: 2, fingerprint: 'f2' });
    expect(
      chunkRecordProblem(
        atTwoParts,
        record({ from: { offset: 11 * MiB, partsCompleted: 2 }, offset: 12 * MiB, partsCompleted: 3, fingerprint: 'f3' }),
        0,
      ),
    ).toBeUndefined();
  });

  it('rejects a chunk that does not start where the upload stands with OffsetConflict', () => {
    fc.assert(
      fc.property(fc.nat(12 * MiB), fc.nat(2), (offset, parts) => {
        fc.pre(offset !== MiB || parts !== 0);
        const problem = chunkRecordProblem(
          receiving({ offset: MiB, staged: [{ start: 0, end: MiB }] } as never),
          record({ from: { offset, partsCompleted: parts }, offset: offset + 1 }),
          0,
        );
        expect(problem?.type).toBe('OffsetConflict');
      }),
    );
  });

  it('rejects what would break the part arithmetic, saying why', () => {
    const cases: [Partial<ChunkRecord>, RegExp][] = [
      [{ offset: 13 * MiB }, /beyond the upload's length/],
      [{ offset: 6 * MiB, staged: [{ start: 0, end: 6 * MiB }] }, /fewer than one part/],
      [{ offset: 2 * MiB, staged: [{ start: MiB, end: 2 * MiB }] }, /contiguous from byte 0/],
      [{ offset: 5 * MiB, partsCompleted: 1 }, /fingerprint must change/],
      [{ offset: 12 * MiB, partsCompleted: 2, fingerprint: 'x', staged: [{ start: 10 * MiB, end: 12 * MiB }] }, /all 3 parts/],
      [
        { offset: MiB, staged: Array.from({ length: MAX_STAGED_SEGMENTS + 1 }, (_, i) => ({ start: i, end: i + 1 })) },
        /at most 16 staged segments/,
      ],
    ];
    for (const [over, message] of cases) {
      const problem = chunkRecordProblem(receiving(), record(over), 0);
      expect(problem?.type, JSON.stringify(over)).toBe('InvalidChunk');
      expect(problem?.message).toMatch(message);
    }
  });

  it('rejects chunks after expiry (410) and when the upload no longer receives (409)', () => {
    expect(chunkRecordProblem(receiving(), record({ offset: 1, staged: [{ start: 0, end: 1 }] }), 10_000)?.type).toBe('UploadExpired');
    expect(chunkRecordProblem(receiving({ phase: 'verify' }), record({}), 0)?.type).toBe('NotReceiving');
    expect(chunkRecordProblem(receiving({ mode: 'presigned' }), record({}), 0)?.type).toBe('NotReceiving');
  });
});

describe('chunkRecordProblem in a run that takes parts of varying size (patch gateway-tail-parts)', () => {
  // 19 MiB in parts of at least 5 MiB; the state says the bytes its parts cover.
  const varying = (over: Partial<GatewayUploadState> = {}) => receiving({ length: 19 * MiB, partsBytes: 0, ...over });
  const atPartOne = varying({ offset: 8 * MiB, partsCompleted: 1, partsBytes: 8 * MiB, fingerprint: 'f1' });
  const fromPartOne = { from: { offset: 8 * MiB, partsCompleted: 1 } };

  it('accepts a part with a folded remainder, staging after it, and a small last part', () => {
    expect(
      chunkRecordProblem(varying(), record({ offset: 8 * MiB, partsCompleted: 1, partsBytes: 8 * MiB, fingerprint: 'f1' }), 0),
    ).toBeUndefined();
    expect(
      chunkRecordProblem(
        atPartOne,
        record({
          ...fromPartOne,
          offset: 10 * MiB,
          partsCompleted: 1,
          partsBytes: 8 * MiB,
          fingerprint: 'f1',
          staged: [{ start: 8 * MiB, end: 10 * MiB }],
        }),
        0,
      ),
    ).toBeUndefined();
    expect(
      chunkRecordProblem(
        atPartOne,
        record({ ...fromPartOne, offset: 19 * MiB, partsCompleted: 3, partsBytes: 19 * MiB, fingerprint: 'f3' }),
        0,
      ),
    ).toBeUndefined();
    // A record without partsBytes (an older gateway) is read as equal parts while they are.
    expect(chunkRecordProblem(varying(), record({ offset: 5 * MiB, partsCompleted: 1, fingerprint: 'f1' }), 0)).toBeUndefined();
  });

  it('refuses parts that break the rules, saying why', () => {
    const cases: [ReturnType<typeof varying>, Partial<ChunkRecord>, RegExp][] = [
      // A part but the last below the part size.
      [varying(), { offset: 4 * MiB, partsCompleted: 1, partsBytes: 4 * MiB, fingerprint: 'f1' }, /at least 5242880/],
      // Parts beyond the offset, or bytes in parts without a new part.
      [varying(), { offset: 5 * MiB, partsCompleted: 1, partsBytes: 6 * MiB, fingerprint: 'f1' }, /beyond the offset/],
      [
        atPartOne,
        { ...fromPartOne, offset: 9 * MiB, partsCompleted: 1, partsBytes: 9 * MiB, fingerprint: 'f1' },
        /only when parts were completed/,
      ],
      // Staged bytes that do not start where the parts end.
      [
        atPartOne,
        {
          ...fromPartOne,
          offset: 10 * MiB,
          partsCompleted: 1,
          partsBytes: 8 * MiB,
          fingerprint: 'f1',
          staged: [{ start: 5 * MiB, end: 10 * MiB }],
        },
        /contiguous from byte 8388608/,
      ],
      // The end with bytes outside parts.
      [
        atPartOne,
        {
          ...fromPartOne,
          offset: 19 * MiB,
          partsCompleted: 2,
          partsBytes: 16 * MiB,
          fingerprint: 'f2',
          staged: [{ start: 16 * MiB, end: 19 * MiB }],
        },
        /every byte must be in a part/,
      ],
      // More parts than the length allows at the part size.
      [
        atPartOne,
        { ...fromPartOne, offset: 19 * MiB, partsCompleted: 5, partsBytes: 19 * MiB, fingerprint: 'f5' },
        /at least 5242880|at most 4 parts/,
      ],
      // An older gateway's record once the parts differ.
      [atPartOne, { ...fromPartOne, offset: 13 * MiB, partsCompleted: 2, fingerprint: 'f2' }, /must say partsBytes/],
    ];
    for (const [state, over, message] of cases) {
      const problem = chunkRecordProblem(state, record(over), 0);
      expect(problem?.type, JSON.stringify(over)).toBe('InvalidChunk');
      expect(problem?.message, JSON.stringify(over)).toMatch(message);
    }
  });
});

describe('lengthDeclarationProblem (the declareLength validator)', () => {
  const deferred = (over: Partial<GatewayUploadState> = {}) => ({ ...receiving({ offset: 3 * MiB }), length: undefined, ...over });
  const MAX = 64 * MiB;
  it('accepts a length from the offset up to the maximum, while the length is unknown', () => {
    expect(lengthDeclarationProblem(deferred(), 3 * MiB, MAX, 0)).toBeUndefined();
    expect(lengthDeclarationProblem(deferred(), MAX, MAX, 0)).toBeUndefined();
    expect(lengthDeclarationProblem(deferred({ offset: 0 }), 0, MAX, 0)).toBeUndefined();
  });

  it('refuses a length below the offset, over the maximum, declared again, malformed, or beyond 10,000 parts, saying why', () => {
    expect(lengthDeclarationProblem(deferred(), 3 * MiB - 1, MAX, 0)).toMatchObject({
      type: 'InvalidChunk',
      message: expect.stringContaining("below the upload's offset"),
    });
    expect(lengthDeclarationProblem(deferred(), MAX + 1, MAX, 0)?.message).toContain('exceeds the maximum upload size');
    expect(lengthDeclarationProblem(deferred({ length: 5 * MiB }), 5 * MiB, MAX, 0)?.message).toContain('already 5242880 bytes');
    for (const bad of [-1, 1.5, '5', undefined, Number.MAX_SAFE_INTEGER + 1]) {
      expect(lengthDeclarationProblem(deferred(), bad, Number.MAX_SAFE_INTEGER, 0), String(bad)).toMatchObject({ type: 'InvalidChunk' });
    }
    expect(lengthDeclarationProblem(deferred({ partSize: 1, offset: 0 }), 10_001, MAX, 0)?.message).toContain('more than 10000 parts');
  });

  it('refuses after expiry (410) and when the upload no longer receives (409)', () => {
    expect(lengthDeclarationProblem(deferred(), 4 * MiB, MAX, 10_000)?.type).toBe('UploadExpired');
    expect(lengthDeclarationProblem(deferred({ phase: 'verify' }), 4 * MiB, MAX, 0)?.type).toBe('NotReceiving');
    expect(lengthDeclarationProblem(deferred({ mode: 'presigned' }), 4 * MiB, MAX, 0)?.type).toBe('NotReceiving');
  });
});

describe('clientPartsProblem (the complete validator)', () => {
  it('accepts ascending part numbers with ETags and names what is wrong otherwise', () => {
    expect(
      gatewayPartsProblem([
        { partNumber: 1, etag: '"a"' },
        { partNumber: 3, etag: '"b"' },
      ]),
    ).toBeUndefined();
    expect(gatewayPartsProblem([])).toMatch(/non-empty/);
    expect(
      gatewayPartsProblem([
        { partNumber: 2, etag: 'a' },
        { partNumber: 2, etag: 'b' },
      ]),
    ).toMatch(/ascending/);
    expect(gatewayPartsProblem([{ partNumber: 10_001, etag: 'a' }])).toMatch(/1–10000/);
    expect(gatewayPartsProblem([{ partNumber: 1, etag: '' }])).toMatch(/etag/);
  });
});

describe('parts fingerprint', () => {
  it('changes with any part replaced or reordered, and extends one part at a time', () => {
    const base = partsFingerprint(['AAAAAA==', 'BBBBBB==', 'CCCCCC==']);
    expect(partsFingerprint(['AAAAAA==', 'BBBBBB==', 'DDDDDD=='])).not.toBe(base);
    expect(partsFingerprint(['BBBBBB==', 'AAAAAA==', 'CCCCCC=='])).not.toBe(base);
    expect(extendPartsFingerprint(partsFingerprint(['AAAAAA==', 'BBBBBB==']), 3, 'CCCCCC==')).toBe(base);
    expect(stagedSegmentKey('p/', { start: 5, end: 10 })).toBe('p/segment-0000000000000005-0000000000000010');
  });
});

describe('gateway configuration', () => {
  it('reads tokens as SHA-256 hashes, per-tenant limits and durations', () => {
    const config = loadGatewayConfig({
      UPLOAD_SAGA_GATEWAY_TOKENS: `acme=${hashToken('secret-a')},beta=${hashToken('secret-b')}`,
      UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZES: 'acme=1GiB',
      UPLOAD_SAGA_GATEWAY_RATE_LIMITS: 'beta=7',
      UPLOAD_SAGA_GATEWAY_UPLOAD_EXPIRY: '30m',
      UPLOAD_SAGA_GATEWAY_WEBHOOKS: 'acme=https://example.com/hook?x=1',
    });
    expect(config.tokenHashes.get(hashToken('secret-a'))).toBe('acme');
    expect(tenantSettings(config, 'acme')).toMatchObject({
      maxUploadBytes: 1024 ** 3,
      requestsPerSecond: 50,
      webhookUrl: 'https://example.com/hook?x=1',
    });
    expect(tenantSettings(config, 'beta')).toMatchObject({ maxUploadBytes: 5 * 1024 ** 3, requestsPerSecond: 7 });
    expect(config.uploadExpiryMs).toBe(30 * 60_000);
    expect(config.partSize).toBe(5 * MiB);
    expect(config.tusPartsInFlight).toBe(4);
    expect(loadGatewayConfig({ UPLOAD_SAGA_GATEWAY_TUS_PARTS_IN_FLIGHT: '8' }).tusPartsInFlight).toBe(8);
    for (const bad of ['0', '17', '2.5', 'many'])
      expect(() => loadGatewayConfig({ UPLOAD_SAGA_GATEWAY_TUS_PARTS_IN_FLIGHT: bad })).toThrow(
        /UPLOAD_SAGA_GATEWAY_TUS_PARTS_IN_FLIGHT: must be a whole number of parts from 1 to 16/,
      );
    expect(config.maxPauseMs).toBe(7 * 86_400_000);
    expect(loadGatewayConfig({ UPLOAD_SAGA_GATEWAY_MAX_PAUSE: '12h' }).maxPauseMs).toBe(12 * 3_600_000);
    for (const bad of ['500ms', '366d', 'forever'])
      expect(() => loadGatewayConfig({ UPLOAD_SAGA_GATEWAY_MAX_PAUSE: bad })).toThrow(
        new RegExp(`UPLOAD_SAGA_GATEWAY_MAX_PAUSE: "${bad}" is not a duration from 1s to 365d`),
      );
    expect(formatPauseDuration(7 * 86_400_000)).toBe('7d');
    expect(formatPauseDuration(90 * 60_000)).toBe('90m');
    expect(formatPauseDuration(1500)).toBe('1500ms');
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('soon')).toBeUndefined();
  });

  it('lists every bad variable at once, and refuses tokens in clear', () => {
    const err = (() => {
      try {
        loadGatewayConfig({
          UPLOAD_SAGA_GATEWAY_TOKENS: 'acme=my-plain-token',
          UPLOAD_SAGA_GATEWAY_PART_SIZE: '1MiB',
          UPLOAD_SAGA_GATEWAY_UPLOAD_EXPIRY: 'later',
          UPLOAD_SAGA_GATEWAY_BUCKET: 'Bad_Bucket',
        });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    expect(problems).toMatch(/UPLOAD_SAGA_GATEWAY_TOKENS: .*not a SHA-256 in hex/);
    expect(problems).toMatch(/UPLOAD_SAGA_GATEWAY_PART_SIZE: must be 5 MiB–64 MiB/);
    expect(problems).toMatch(/UPLOAD_SAGA_GATEWAY_UPLOAD_EXPIRY: "later" is not a duration/);
    expect(problems).toMatch(/UPLOAD_SAGA_GATEWAY_BUCKET: /);
  });

  it('reads the caps on bodies received at once and the idle timeout, and states the memory bound they give', () => {
    const defaults = loadGatewayConfig({});
    expect(defaults).toMatchObject({ maxBodyStreams: 16, bodyIdleTimeoutMs: 30_000, defaults: { maxBodyStreams: 8 } });
    // 16 × (4 parts in flight + the part received) × (5 MiB + 5 MiB for a folded remainder) + 128 MiB for buffers not yet collected.
    expect(
      bodyStreamMemoryBound({
        bodyStreams: defaults.maxBodyStreams,
        partSize: defaults.partSize,
        partsInFlight: defaults.tusPartsInFlight,
      }),
    ).toEqual({
      perStreamBytes: 50 * MiB,
      totalBytes: 16 * 50 * MiB + 128 * MiB,
    });
    expect(bodyStreamMemoryBound({ bodyStreams: 10, partSize: 8 * MiB, partsInFlight: 1 }).perStreamBytes).toBe(26 * MiB);
    const config = loadGatewayConfig({
      UPLOAD_SAGA_GATEWAY_BODY_STREAMS: '100',
      UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS: '4',
      UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS_OVERRIDES: 'acme=40',
      UPLOAD_SAGA_GATEWAY_BODY_IDLE_TIMEOUT: '2m',
    });
    expect(config).toMatchObject({ maxBodyStreams: 100, bodyIdleTimeoutMs: 120_000 });
    expect(tenantSettings(config, 'acme').maxBodyStreams).toBe(40);
    expect(tenantSettings(config, 'beta').maxBodyStreams).toBe(4);
    const problems = (() => {
      try {
        loadGatewayConfig({ UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS_OVERRIDES: 'acme=0', UPLOAD_SAGA_GATEWAY_BODY_IDLE_TIMEOUT: '100ms' });
      } catch (e) {
        return (e as ConfigError).problems.join('\n');
      }
    })();
    expect(problems).toMatch(
      /UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS_OVERRIDES: "acme=0" must be a whole number of request bodies from 1 to 100000/,
    );
    expect(problems).toMatch(/UPLOAD_SAGA_GATEWAY_BODY_IDLE_TIMEOUT: "100ms" is not a duration from 1s to 1h/);
    expect(() => loadGatewayConfig({ UPLOAD_SAGA_GATEWAY_BODY_STREAMS: '0' })).toThrow(
      /UPLOAD_SAGA_GATEWAY_BODY_STREAMS: must be a whole number/,
    );
  });
});

describe('request details', () => {
  it('parses Upload-Checksum and refuses malformed headers and algorithms not offered', () => {
    expect(parseUploadChecksum('sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=')).toEqual({ algorithm: 'sha1', digest: 'Kq5sNclPz7QV2+lfQIuc6R7oRu0=' });
    expect(() => parseUploadChecksum('sha1')).toThrow(/"<algorithm> <base64 digest>"/);
    expect(() => parseUploadChecksum('blake3 AAAA')).toThrow(/not supported; use one of sha1, md5, crc32, sha256/);
  });

  it('makes file names safe as a key segment, and checks metadata against S3’s rules', () => {
    expect(safeFileName('../../etc/passwd')).toBe('passwd');
    expect(safeFileName('C:\\Users\\me\\report.pdf')).toBe('report.pdf');
    expect(safeFileName('..')).toBe('file');
    expect(safeFileName(undefined)).toBe('file');
    expect(metadataProblem({ 'x-ok': 'fine' })).toBeUndefined();
    expect(metadataProblem({ 'bad key': 'v' })).toMatch(/letters, digits and "-"/);
    expect(metadataProblem({ k: 'ünïcode' })).toMatch(/printable ASCII/);
  });
});
