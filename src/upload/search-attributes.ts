/**
 * Custom search attributes the upload workflow sets, so that the Web UI and
 * `temporal workflow list --query` can find uploads by tenant, destination and outcome.
 *
 * The embedded dev server registers them at start; a self-hosted cluster registers them once with
 * `temporal operator search-attribute create --name <name> --type <type>` (see docs/how-to/temporal-cloud-and-aws-s3.md).
 */
import { defineSearchAttributeKey, type SearchAttributePair } from '@temporalio/common';

export const UploadTenant = defineSearchAttributeKey('UploadTenant', 'KEYWORD');
export const UploadBucket = defineSearchAttributeKey('UploadBucket', 'KEYWORD');
export const UploadKey = defineSearchAttributeKey('UploadKey', 'KEYWORD');
export const UploadSizeBytes = defineSearchAttributeKey('UploadSizeBytes', 'INT');
/** The saga step the upload is in now: inspect, reserve-space, upload-parts, verify, merge, notify, compensate, done; or paused, waiting-for-quota. */
export const UploadPhase = defineSearchAttributeKey('UploadPhase', 'KEYWORD');
/** running | completed | compensated | cancelled | failed */
export const UploadOutcome = defineSearchAttributeKey('UploadOutcome', 'KEYWORD');

/** Name → type as the Temporal CLI's `--search-attribute name=Type` flag spells them. */
export const UPLOAD_SEARCH_ATTRIBUTE_TYPES = {
  UploadTenant: 'Keyword',
  UploadBucket: 'Keyword',
  UploadKey: 'Keyword',
  UploadSizeBytes: 'Int',
  UploadPhase: 'Keyword',
  UploadOutcome: 'Keyword',
} as const;

/**
 * The attributes that find a workflow by tenant and object: `UploadTenant`, and `UploadBucket` and
 * `UploadKey` when `indexDestination` (search attributes are never encrypted: a client with a
 * payload codec leaves object names out of them).
 */
export function tenantAndObjectAttributes(tenant: string, bucket: string, key: string, indexDestination: boolean): SearchAttributePair[] {
  return [
    { key: UploadTenant, value: tenant },
    ...(indexDestination
      ? [
          { key: UploadBucket, value: bucket },
          { key: UploadKey, value: key },
        ]
      : []),
  ];
}
