/**
 * The pure parts of the browser-facing gateway: the progress stream's rate and merging of
 * observations, and the checks of the Uppy S3 multipart endpoints.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config';
import { loadGatewayConfig } from '../../src/gateway/config';
import { observationOfState, ProgressView, ProgressRateMeter, type ProgressObservation } from '../../src/gateway/progress';
import { gatewayPartsOf, declaredLengthOf, objectLocation, parsePartNumber, userMetadataOf } from '../../src/gateway/s3-multipart';
import type { GatewayUploadState } from '../../src/upload/gateway-upload';

const MiB = 1024 * 1024;

describe('ProgressRateMeter', () => {
  it('measures bytes per second over the window', () => {
    const meter = new ProgressRateMeter(5_000);
    meter.add(0, 0);
    meter.add(1_000, 2 * MiB);
    meter.add(2_000, 4 * MiB);
    expect(meter.rate(2_000)).toBe(2 * MiB);
  });

  it('falls towards 0 when bytes stop, and is 0 once the window has passed', () => {
    const meter = new ProgressRateMeter(5_000);
    meter.add(0, 0);
    meter.add(1_000, 4 * MiB);
    expect(meter.rate(1_000)).toBe(4 * MiB);
    expect(meter.rate(4_000)).toBe(MiB);
    expect(meter.rate(20_000)).toBe(0);
  });

  it('is 0 with a single sample and ignores samples older than the last one', () => {
    const meter = new ProgressRateMeter();
    meter.add(1_000, MiB);
    expect(meter.rate(1_000)).toBe(0);
    meter.add(500, 10 * MiB);
    meter.add(2_000, 2 * MiB);
    expect(meter.rate(2_000)).toBe(MiB);
  });
});

const observation = (o: Partial<ProgressObservation>): ProgressObservation => ({ tenant: 't', uploadId: 'u', at: 0, ...o });

describe('ProgressView', () => {
  it('sends an event when bytes, phase or outcome change, and nothing when nothing changed', () => {
    const view = new ProgressView(
      'u',
      observation({ at: 1_000, phase: 'receive-parts', outcome: 'running', bytes: 0, totalBytes: 12 * MiB }),
    );
    expect(view.next(1_000)).toMatchObject({
      uploadId: 'u',
      phase: 'receive-parts',
      bytes: 0,
      totalBytes: 12 * MiB,
      outcome: 'running',
      rateBytesPerSecond: 0,
    });
    expect(view.next(1_000)).toBeUndefined();
    view.apply(observation({ at: 2_000, bytes: 5 * MiB, phase: 'receive-parts', outcome: 'running' }));
    expect(view.next(2_000)).toMatchObject({ bytes: 5 * MiB, rateBytesPerSecond: 5 * MiB });
    view.apply(observation({ at: 3_000, phase: 'verify', outcome: 'running', bytes: 5 * MiB }));
    expect(view.next(3_000)).toMatchObject({ phase: 'verify' });
  });

  it('never shows bytes going back, and ignores a phase older than the one shown', () => {
    const view = new ProgressView('u', observation({ at: 2_000, phase: 'verify', outcome: 'running', bytes: 10 * MiB }));
    view.apply(observation({ at: 1_000, phase: 'receive-parts', outcome: 'running', bytes: 5 * MiB }));
    expect(view.next(2_000)).toMatchObject({ phase: 'verify', bytes: 10 * MiB });
  });

  it('ends with the outcome, the object and no rate, and takes nothing after it', () => {
    const view = new ProgressView('u', observation({ at: 1_000, phase: 'receive-parts', outcome: 'running', bytes: 0 }));
    view.next(1_000);
    const object = { bucket: 'b', key: 't/u/f', etag: '"abc-2"', size: 12 * MiB };
    view.apply(observation({ at: 900, phase: 'done', outcome: 'completed', bytes: 12 * MiB, object }));
    expect(view.ended).toBe(true);
    expect(view.next(5_000)).toMatchObject({ phase: 'done', outcome: 'completed', bytes: 12 * MiB, rateBytesPerSecond: 0, object });
    view.apply(observation({ at: 6_000, phase: 'receive-parts', outcome: 'running', bytes: 1 }));
    expect(view.next(6_000)).toBeUndefined();
  });

  it('carries the cause of an upload that ended without an object', () => {
    const state = {
      tenant: 't',
      uploadId: 'u',
      mode: 'presigned',
      phase: 'done',
      outcome: 'expired',
      offset: 0,
      failure: { cause: { type: 'UploadExpired', message: 'the upload expired at …' } },
    } as unknown as GatewayUploadState;
    const view = new ProgressView('u', observationOfState(state, 1_000));
    expect(view.next(1_000)).toMatchObject({ outcome: 'expired', error: 'UploadExpired: the upload expired at …' });
  });
});

describe('the Uppy S3 multipart endpoints check what the client sends', () => {
  it('part numbers are whole numbers from 1 to 10,000', () => {
    expect(parsePartNumber('1')).toBe(1);
    expect(parsePartNumber('10000')).toBe(10_000);
    for (const bad of ['0', '10001', '-1', '1.5', 'abc', '', '1e3']) {
      expect(() => parsePartNumber(bad), bad).toThrow(/part number must be a whole number from 1 to 10000/);
    }
  });

  it('the completion list becomes { partNumber, etag } in part order', () => {
    expect(
      gatewayPartsOf({
        parts: [
          { PartNumber: 2, ETag: 'b' },
          { PartNumber: '1', ETag: 'a' },
        ],
      }),
    ).toEqual([
      { partNumber: 1, etag: 'a' },
      { partNumber: 2, etag: 'b' },
    ]);
    expect(() => gatewayPartsOf({ parts: [] })).toThrow(/at least one part/);
    expect(() => gatewayPartsOf({})).toThrow(/at least one part/);
    expect(() => gatewayPartsOf({ parts: [{ PartNumber: 0, ETag: 'a' }] })).toThrow(/parts\[0\]\.PartNumber/);
    expect(() => gatewayPartsOf({ parts: [{ PartNumber: 1 }] })).toThrow(/parts\[0\]\.ETag/);
  });

  it("Uppy's own meta fields are not stored as user metadata; numbers become text; objects are refused", () => {
    expect(
      userMetadataOf({ name: 'a.bin', type: 'x/y', relativePath: null, 'upload-length': '5', project: 'apollo', version: 3, draft: false }),
    ).toEqual({
      project: 'apollo',
      version: '3',
      draft: 'false',
    });
    expect(userMetadataOf(undefined)).toEqual({});
    expect(() => userMetadataOf({ nested: { a: 1 } })).toThrow(/metadata "nested" must be text, a number or a boolean/);
    expect(() => userMetadataOf('x')).toThrow(/metadata must be an object/);
  });

  it('a declared length is a whole number of bytes', () => {
    expect(declaredLengthOf({ 'upload-length': '12582912' })).toBe(12_582_912);
    expect(declaredLengthOf({ 'upload-length': 7 })).toBe(7);
    expect(declaredLengthOf({})).toBeUndefined();
    expect(declaredLengthOf(undefined)).toBeUndefined();
    expect(() => declaredLengthOf({ 'upload-length': '-1' })).toThrow(/"upload-length" must be the file's size as a whole number of bytes/);
    expect(() => declaredLengthOf({ 'upload-length': 1.5 })).toThrow(/whole number/);
  });

  it('UPLOAD_SAGA_GATEWAY_S3_PUBLIC_ENDPOINT must be an http(s) URL; unset, the S3 endpoint is used', () => {
    expect(loadGatewayConfig({ UPLOAD_SAGA_GATEWAY_S3_PUBLIC_ENDPOINT: 'https://s3.example.com/' }).s3PublicEndpoint).toBe(
      'https://s3.example.com',
    );
    expect(loadGatewayConfig({}).s3PublicEndpoint).toBeUndefined();
    for (const bad of ['s3.example.com', 'ftp://s3.example.com']) {
      expect(() => loadGatewayConfig({ UPLOAD_SAGA_GATEWAY_S3_PUBLIC_ENDPOINT: bad }), bad).toThrow(ConfigError);
      expect(() => loadGatewayConfig({ UPLOAD_SAGA_GATEWAY_S3_PUBLIC_ENDPOINT: bad }), bad).toThrow(
        /UPLOAD_SAGA_GATEWAY_S3_PUBLIC_ENDPOINT: must be an http:\/\/ or https:\/\/ URL/,
      );
    }
  });

  it('the location is a path-style URL on the public endpoint, key segments escaped', () => {
    expect(objectLocation('http://127.0.0.1:9000/', 'us-east-1', 'uploads', 'acme/id/a b.bin')).toBe(
      'http://127.0.0.1:9000/uploads/acme/id/a%20b.bin',
    );
    expect(objectLocation(undefined, 'eu-west-1', 'uploads', 'k')).toBe('https://uploads.s3.eu-west-1.amazonaws.com/k');
  });
});
