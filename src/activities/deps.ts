/**
 * What the upload activities depend on. Built once, in the worker (or a test), and injected:
 * activities never construct clients themselves, so tests run them against a real MinIO with any
 * configuration, and a deployment can swap the quota store or add a source kind.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { QuotaLedger } from '../quota/ledger';
import type { SourceResolver } from './sources/byte-source';

export interface WebhookOptions {
  /** HMAC-SHA256 key for the signature header. Worker configuration only, never in workflow data. */
  secret?: string;
  /** Per-request timeout. @default 10000 */
  timeoutMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

export interface UploadActivityDeps {
  s3: S3Client;
  sources: SourceResolver;
  quota: QuotaLedger;
  webhook?: WebhookOptions;
}
