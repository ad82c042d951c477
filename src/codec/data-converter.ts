/**
 * The data converter of an encrypting deployment, for workers and clients alike.
 *
 * Why it is built this way: worker, CLI, application client and the quota ledger's client must all
 * encrypt and decrypt with the same keys, or one of them writes plain text into history or cannot
 * read what another wrote; this one function gives each of them the same converter from the same
 * configuration. Without keys it returns `undefined` (Temporal's defaults, nothing encrypted).
 * The failure converter is given by path (see encrypted-failure-converter.js) because workflow
 * code, bundled into the sandbox, converts its own failures: a worker that bundles its workflows
 * from this converter encrypts those too. A pre-built bundle must be built with
 * `bundleUploadWorkflows({ encryptFailureMessages: true })` for the same effect.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DataConverter } from '@temporalio/common';
import { AesGcmPayloadCodec } from './aes-gcm-codec';
import type { EncryptionConfig } from './keys';

/** Path of the failure converter that moves messages and stack traces into encrypted payloads. */
export const ENCRYPTED_FAILURE_CONVERTER_PATH = path.join(__dirname, 'encrypted-failure-converter.js');

/** A worker is asked to encrypt, but its workflow bundle would write failure messages in plain text. */
export class EncryptionMisconfiguredError extends Error {
  override readonly name = 'EncryptionMisconfiguredError';
}

/**
 * Checks that a pre-built workflow bundle (its `code`, or the file at its `codePath`) contains the
 * encrypting failure converter (webpack names each module by its path in the bundle).
 * @throws EncryptionMisconfiguredError when it does not
 */
export function assertBundleEncryptsFailures(bundle: { code: string } | { codePath: string } | object): void {
  const code =
    'code' in bundle && typeof bundle.code === 'string'
      ? bundle.code
      : 'codePath' in bundle && typeof bundle.codePath === 'string'
        ? readFileSync(bundle.codePath, 'utf8')
        : undefined;
  if (code !== undefined && !code.includes(path.basename(ENCRYPTED_FAILURE_CONVERTER_PATH))) {
    throw new EncryptionMisconfiguredError(
      'payload encryption is configured, but the pre-built workflow bundle was built without the encrypting failure converter, so ' +
        'failures raised in workflow code would keep their messages in plain text; build it with bundleUploadWorkflows({ encryptFailureMessages: true })',
    );
  }
}

/**
 * The `dataConverter` for `Worker.create` and `new Client`: AES-256-GCM over every payload, failure
 * messages and stack traces encoded into payloads.
 * @returns undefined when `encryption` is undefined (encryption off)
 */
export function uploadDataConverter(encryption: EncryptionConfig | undefined): DataConverter | undefined {
  if (!encryption) return undefined;
  return { payloadCodecs: [new AesGcmPayloadCodec({ encryption })], failureConverterPath: ENCRYPTED_FAILURE_CONVERTER_PATH };
}
