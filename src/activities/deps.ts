/**
 * What the upload activities depend on. Built once, in the worker (or a test), and injected:
 * activities never construct clients themselves, so tests run them against a real MinIO with any
 * configuration, and a deployment can swap the quota store or add a source kind.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { QuotaLedger } from '../quota/ledger';
import type { CircuitBreakers } from '../resilience/circuit-breakers';
import type { ResolveHost } from '../net/guarded-fetch';
import type { SourceResolver } from './sources/byte-source';
import type { PartMetrics } from '../metrics/worker-metrics';
import type { ProgressPublisher } from '../progress/publisher';
import type { Client } from '@temporalio/client';
import { pauseStateQuery } from '../upload/pause';
import type { S3StoreRules } from '../s3/store-rules';

/** Where and how the `notify` activity delivers webhook events. */
export interface WebhookOptions {
  /** HMAC-SHA256 key for the signature header. Worker configuration only, never in workflow data. */
  secret?: string;
  /** Per-request timeout. @default 10000 */
  timeoutMs?: number;
  /**
   * Non-public destinations webhooks may reach anyway: IPs, CIDR ranges or host names, each
   * optionally with `:port` (see src/net/address-policy.ts). @default [] (public addresses only)
   */
  allowedHosts?: readonly string[];
  /** How host names are resolved (tests inject one). @default the system resolver */
  resolve?: ResolveHost;
}

/** What the upload activities are built from: clients, sources, quota ledger, webhook settings. */
export interface UploadActivityDeps {
  s3: S3Client;
  sources: SourceResolver;
  quota: QuotaLedger;
  webhook?: WebhookOptions;
  /**
   * When set, every destination key must start with this prefix, `{tenant}` replaced by the
   * upload's tenant (e.g. `tenants/{tenant}/`); inspect-source refuses other keys with
   * `DestinationNotAllowed`. @default undefined (any key)
   */
  tenantKeyPrefix?: string;
  /**
   * Directories a batch may list (a directory source, a manifest file): the file resolver's allowed
   * roots. Each listed file is still opened through `sources`, which checks it again.
   * @default [] (batches of directories and manifests are refused)
   */
  allowedRoots?: readonly string[];
  /**
   * The other S3 stores, by source profile name (`UPLOAD_SAGA_S3_SOURCE_PROFILES`): where a migration
   * from another store lists and reads its source. @default {} (migrations from the worker's own store only)
   */
  sourceStores?: Readonly<Record<string, S3Client>>;
  /** Where the destination store differs from others (from S3_MAX_PARTS, S3_ADDITIONAL_CHECKSUMS, …). @default DEFAULT_S3_STORE_RULES */
  storeRules?: S3StoreRules;
  /** Where upload-parts records bytes and part durations (see src/metrics/worker-metrics.ts). @default undefined: not recorded */
  metrics?: PartMetrics;
  /**
   * The process's circuit breakers: webhook deliveries pass the breaker of their host. (S3 calls
   * pass theirs through the S3 client's middleware, see src/s3/circuit-breaker.ts.)
   * @default undefined (no breaker on webhooks)
   */
  breakers?: CircuitBreakers;
  /**
   * Where upload-parts publishes its bytes with every heartbeat, for live progress over the bus
   * (never waits, never throws). @default undefined (progress only in heartbeats and queries)
   */
  progress?: ProgressPublisher;
  /**
   * How upload-parts learns that its upload was paused (see src/upload/pause.ts): asked at the
   * start of a batch and every `pollMs`. @default undefined: a batch is never stopped midway; a
   * paused upload still holds before its next batch
   */
  pauses?: PauseProbe;
}

/** Asks a workflow whether it is paused (the worker's is {@link workflowPauseProbe}). */
export interface PauseProbe {
  /** Whether the workflow is paused now; rejects when it cannot tell (the batch then goes on). */
  isPaused(workflowId: string): Promise<boolean>;
  /** @default 5000 */
  pollMs?: number;
}

/** The probe over a Temporal client: the workflow's `pauseState` query. */
export function workflowPauseProbe(client: Client, pollMs?: number): PauseProbe {
  return {
    async isPaused(workflowId) {
      return (await client.workflow.getHandle(workflowId).query(pauseStateQuery)).paused;
    },
    ...(pollMs !== undefined ? { pollMs } : {}),
  };
}
