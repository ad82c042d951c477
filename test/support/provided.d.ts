/**
 * Types of the values `test/global-setup.ts` hands to every test file through `inject(...)`.
 *
 * Why a declaration file: vitest's `provide`/`inject` are typed by augmenting its
 * `ProvidedContext` interface, and keeping that augmentation in one place makes a missing or
 * misspelled key a type error both in the setup and in tests.
 */
import 'vitest';
import type { S3StoreKind } from '../../src/embedded/s3-store';

declare module 'vitest' {
  export interface ProvidedContext {
    /** gRPC `host:port` of the embedded Temporal server (the dev server, or the server on PostgreSQL). */
    temporalAddress: string;
    /** Temporal namespace the stack created (with the upload search attributes registered). */
    namespace: string;
    /** Base URL of the Temporal Web UI; empty when the server has none (UPLOAD_SAGA_TEST_TEMPORAL=postgres). */
    temporalUiUrl: string;
    /** Which S3 store the stack runs (UPLOAD_SAGA_TEST_STORE): `minio` or `versitygw`. */
    s3Store: S3StoreKind;
    /** S3 endpoint URL of the embedded store (use `forcePathStyle: true`). */
    s3Endpoint: string;
    /** Region to sign S3 requests for. */
    s3Region: string;
    /** S3 access key id. */
    s3AccessKeyId: string;
    /** S3 secret access key. */
    s3SecretAccessKey: string;
  }
}
