/**
 * Public surface of payload encryption: the AES-256-GCM codec, its keys, the data converter that
 * workers and clients share, and the codec server for the Web UI and the `temporal` CLI.
 *
 * Why a barrel: callers import from `src/codec`; the modules behind it each do one job.
 */
export {
  AesGcmPayloadCodec,
  ENCRYPTED_ENCODING,
  METADATA_ENCRYPTION_KEY_ID,
  PayloadDecryptionError,
  UnknownEncryptionKeyError,
  type AesGcmPayloadCodecOptions,
} from './aes-gcm-codec';
export {
  CODEC_REQUEST_HEADERS,
  CodecServerExposedError,
  createCodecServer,
  isLoopbackHost,
  startCodecServer,
  type CodecServer,
  type CodecServerOptions,
  type RunningCodecServer,
  type StartCodecServerOptions,
} from './codec-server';
export {
  assertBundleEncryptsFailures,
  ENCRYPTED_FAILURE_CONVERTER_PATH,
  EncryptionMisconfiguredError,
  uploadDataConverter,
} from './data-converter';
export {
  ENCRYPTION_KEY_BYTES,
  fingerprintKeyId,
  parseEncryptionKeys,
  parseKeyMaterial,
  type EncryptionConfig,
  type EncryptionKey,
  type EncryptionKeyVariables,
} from './keys';
