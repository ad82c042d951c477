/**
 * `itStoreIndependent`: a test whose subject does not depend on the S3 store (Temporal's replay,
 * the tus protocol's answers, a source's own checks), so the `versitygw` project, which runs the
 * S3-facing files a second time, skips it: it runs once, against MinIO.
 */
import { inject, it } from 'vitest';

export const itStoreIndependent = it.skipIf(inject('s3Store') !== 'minio');
