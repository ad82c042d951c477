/**
 * The gateway upload runs under the wire names of src/upload/wire-names.ts: the worker registers
 * the workflow under the name it is exported with, and the activity under its key.
 */
import { describe, expect, it } from 'vitest';
import * as workflows from '../../src/workflows';
import { gatewayUploadWorkflow } from '../../src/workflows/gateway-upload-workflow';
import { gatewayUploadActivities } from '../../src/activities/gateway-upload';
import { WIRE_NAMES } from '../../src/upload/wire-names';
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
});
