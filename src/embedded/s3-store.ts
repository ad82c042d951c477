/**
 * The S3 store an embedded stack runs: MinIO (the default) or versitygw, behind one handle shape,
 * so the stack, the tests and the CLI need not know which implementation answers.
 */
import type { RunningServerProcess } from './managed-process';
import type { S3EndpointInfo } from './s3-buckets';

/** The S3 implementations the embedded stack can run. */
export const S3_STORE_KINDS = ['minio', 'versitygw'] as const;

/** One of {@link S3_STORE_KINDS}. */
export type S3StoreKind = (typeof S3_STORE_KINDS)[number];

/** A running embedded S3 store. */
export interface EmbeddedS3Store extends RunningServerProcess, S3EndpointInfo {
  /** Which implementation this is. */
  readonly kind: S3StoreKind;
  /** The store's web console, if it has one (MinIO does, versitygw does not). */
  readonly consoleUrl: string | undefined;
  /** Directory holding the store's objects and its log. */
  readonly dataDir: string;
  /** Sends a signal to the current process right away, synchronously. */
  kill(signal?: NodeJS.Signals): boolean;
  /** Stops the server (if running) and starts it again on the same port, data and credentials. */
  restart(): Promise<void>;
}

/**
 * The worker settings that describe each embedded store where stores differ (see
 * docs/reference/store-capabilities.md). Neither needs one today: versitygw accepts UploadPartCopy
 * into a checksummed upload, but reports a wrong checksum for a copied range of a source with a
 * checksum of the same algorithm, so `S3_CHECKSUMMED_PART_COPY` stays off there too.
 */
export const STORE_RULES_ENV: Readonly<Record<S3StoreKind, Readonly<Record<string, string>>>> = {
  minio: {},
  versitygw: {},
};
