/**
 * The gateway upload runs under the wire names of src/upload/wire-names.ts: the worker registers
 * the workflow under the name it is exported with, and the activity under its key.
 */
import { describe, expect, it } from 'vitest';
import * as workflows from '../../src/workflows';
import { gatewayUploadWorkflow } from '../../src/workflows/gateway-upload-workflow';
import { gatewayUploadActivities } from '../../src/activities/gateway-upload';
import { multipartUploadIdOf, requireMultipartUploadId, WIRE_NAMES } from '../../src/upload/wire-names';
import type { UploadActivityDeps } from '../../src/activities';

describe('wire names', () => {
  it('registers the gateway-upload workflow under its recorded type', () => {
    expect((workflows as Record<string, unknown>)[WIRE_NAMES.gatewayUploadWorkflow]).toBe(gatewayUploadWorkflow);
    expect(Object.keys(workflows)).not.toContain('gatewayUploadWorkflow');
  });

  it('registers the verify activity under its recorded type, and openMultipartUpload as it was', () => {
    const activities = gatewayUploadActivities({} as UploadActivityDeps);
    expect(Object.keys(activities).sort()).toEqual(['openMultipartUpload', WIRE_NAMES.verifyGatewayUpload].sort());
  });

  it("reads S3's multipart upload id under its name and under its recorded name, the new one first", () => {
    expect(multipartUploadIdOf({ multipartUploadId: 'new' })).toBe('new');
    expect(multipartUploadIdOf({ uploadId: 'recorded' })).toBe('recorded');
    expect(multipartUploadIdOf({ multipartUploadId: 'new', uploadId: 'recorded' })).toBe('new');
    expect(multipartUploadIdOf(undefined)).toBeUndefined();
    expect(() => requireMultipartUploadId({}, 'a result')).toThrow(/a result carries no multipart upload id/);
  });
});
