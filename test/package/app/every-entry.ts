// Copied into the consumer app of consumer.test.ts: every entry point from a CommonJS module
// (compiled with module node16 to .js), a type and a value of each, printed as JSON.
import { UploadClient, InvalidUploadRequestError, type UploadRequest, type UploadResult } from 'upload-saga';
import { createUploadWorker, SHIPPED_WORKFLOW_BUNDLES, type UploadWorkerOptions } from 'upload-saga/worker';
import { uploadWorkflow } from 'upload-saga/workflows';
import { defineSaga, type SagaState } from 'upload-saga/saga';
import { uploadGateway, createGateway, type UploadGatewayOptions } from 'upload-saga/gateway';
import { AesGcmPayloadCodec, type EncryptionConfig } from 'upload-saga/codec';

const request: Partial<UploadRequest> = { tenant: 'acme' };
const result: Partial<UploadResult> = { size: 1 };
const options: Partial<UploadWorkerOptions> = {};
const state: Partial<SagaState> = {};
const gateway: Partial<UploadGatewayOptions> = {};
const encryption: Partial<EncryptionConfig> = {};
void [request, result, options, state, gateway, encryption];

console.log(
  JSON.stringify({
    module: 'cjs',
    values: [
      UploadClient,
      InvalidUploadRequestError,
      createUploadWorker,
      uploadWorkflow,
      defineSaga,
      uploadGateway,
      createGateway,
      AesGcmPayloadCodec,
    ].map((value) => typeof value),
    bundle: SHIPPED_WORKFLOW_BUNDLES.plain,
  }),
);
