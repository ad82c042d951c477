/**
 * Upload activities that move no bytes: they answer as the real ones would for a file of `size`
 * bytes, so the real upload workflow can be driven at any scale (10,000 parts) in seconds. For
 * orchestration tests and the history benchmark only; everything about bytes runs against MinIO.
 */
import { WIRE_NAMES } from '../../src/upload/wire-names';
import type { UploadActivities } from '../../src/activities';
import { planParts } from '../../src/upload/part-plan';

export function standInUploadActivities(options: {
  size: number;
  onBatch?: (batch: { firstPart: number; lastPart: number }) => void;
}): UploadActivities {
  const usage = { tenant: 'stand-in', usedBytes: 0, reservedBytes: 0, reservations: 0 };
  return {
    inspectSource: async (request) => ({
      plan: planParts(options.size, request.partSize),
      sourceVersion: 'v1',
      sourceDescription: 'stand-in',
    }),
    // Batches and migrations are not driven by stand-ins: their activities refuse.
    ...(Object.fromEntries(
      (
        [
          'inspectBatch',
          'listBatchPage',
          'uploadBatchChunk',
          'undoBatch',
          'finishBatch',
          'inspectMigration',
          'listMigrationPage',
          'copyMigrationChunk',
        ] as const
      ).map((name) => [
        name,
        async () => {
          throw new Error(`stand-in upload activities do not run batches (${name})`);
        },
      ]),
    ) as unknown as Pick<
      UploadActivities,
      | 'inspectBatch'
      | 'listBatchPage'
      | 'uploadBatchChunk'
      | 'undoBatch'
      | 'finishBatch'
      | 'inspectMigration'
      | 'listMigrationPage'
      | 'copyMigrationChunk'
    >),
    reserveSpace: async () => usage,
    releaseReservation: async () => undefined,
    shrinkReservation: async () => undefined,
    commitReservation: async () => undefined,
    freeQuota: async () => undefined,
    inspectDeletion: async () => ({ found: false }),
    removeObject: async () => ({ status: 'removed' }),
    uploadParts: async (input) => {
      options.onBatch?.({ firstPart: input.firstPart, lastPart: input.lastPart });
      const parts = input.lastPart - input.firstPart + 1;
      const bytes = parts * input.plan.partSize;
      return {
        multipartUploadId: input.multipartUploadId ?? 'stand-in-upload',
        checksumFingerprint: 'stand-in',
        partsUploaded: parts,
        partsSkipped: 0,
        bytesSent: bytes,
        batchBytes: bytes,
      };
    },
    cleanupUpload: async () => ({ abortedMultipartUploadIds: [], stagedObjectsDeleted: 0 }),
    verifyUpload: async (input) => ({
      partCount: input.plan.partCount,
      size: input.plan.size,
      expectedETag: `"stand-in-${input.plan.partCount}"`,
      rereadSource: false,
    }),
    completeUpload: async (input) => ({ etag: input.expectedETag, alreadyCompleted: false }),
    putObject: async (input) => ({
      etag: '"stand-in"',
      checksum: { algorithm: input.checksumAlgorithm, value: 'stand-in', type: 'FULL_OBJECT' },
      alreadyStored: false,
    }),
    verifyObject: async (input) => ({ rereadSource: input.rereadSource }),
    deleteObject: async () => ({ deleted: false }),
    notify: async () => ({ status: 204 }),
    // The gateway-upload workflow's own activities (not driven by these stand-ins).
    openMultipartUpload: async () => ({ multipartUploadId: 'stand-in-upload' }),
    [WIRE_NAMES.verifyGatewayUpload]: async () => ({ size: options.size, partCount: 1, expectedETag: '"stand-in-1"' }),
    joinPartials: async () => ({ parts: [{ partNumber: 1, etag: '"stand-in-1"' }], copiedBytes: 0, assembledBytes: options.size }),
  };
}
