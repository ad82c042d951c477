/**
 * End-to-end payload encryption: an AES-256-GCM {@link PayloadCodec}.
 *
 * Why it is built this way:
 * - A codec runs in the worker and the client, outside the workflow sandbox, on every payload that
 *   goes to the server (inputs, results, activity arguments, heartbeats, memos, queries, failure
 *   details, user metadata) — so the server and anyone reading history see ciphertext. Search
 *   attributes are never passed through codecs: the server must index them.
 * - The format is the one Temporal's encryption samples use in every language (TypeScript, Go,
 *   Python, .NET): the whole original payload (metadata and data) serialized as a
 *   `temporal.api.common.v1.Payload` protobuf, sealed with AES-256-GCM under a fresh random 12-byte
 *   IV, stored as `IV ‖ ciphertext ‖ 16-byte tag`, with metadata `encoding: binary/encrypted` and
 *   `encryption-key-id: <id>`. A codec server written from those samples can read it.
 * - Node's `crypto` does the cipher (AES-GCM with hardware AES); GCM's tag makes any change to the
 *   ciphertext, IV or tag fail decryption instead of yielding altered plaintext.
 * - Decoding leaves payloads that are not `binary/encrypted` as they are, so histories written
 *   before encryption was turned on stay readable; an encrypted payload whose key this process
 *   does not hold fails with {@link UnknownEncryptionKeyError} naming the id, never silently.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { EncryptionConfig, EncryptionKey } from './keys';

/** `encoding` metadata of an encrypted payload. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata key naming the key that sealed a payload. */
export const METADATA_ENCRYPTION_KEY_ID = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const CIPHER = 'aes-256-gcm';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** An encrypted payload names a key this process does not hold. */
export class UnknownEncryptionKeyError extends Error {
  override readonly name = 'UnknownEncryptionKeyError';
  constructor(
    readonly keyId: string,
    readonly knownKeyIds: readonly string[],
  ) {
    super(
      `payload was encrypted with key "${keyId}", which this process does not hold (it holds ${knownKeyIds.map((id) => `"${id}"`).join(', ')}); ` +
        'add that key to UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS as id:base64-key',
    );
  }
}

/** An encrypted payload could not be decrypted: altered ciphertext, IV or tag, a truncated payload, or a key that is not the one its id names. */
export class PayloadDecryptionError extends Error {
  override readonly name = 'PayloadDecryptionError';
  constructor(
    readonly keyId: string,
    reason: string,
  ) {
    super(`payload encrypted with key "${keyId}" cannot be decrypted: ${reason}`);
  }
}

/** Options of {@link AesGcmPayloadCodec}. */
export interface AesGcmPayloadCodecOptions {
  /** The keys: the first encrypts, every one decrypts (see keys.ts). */
  encryption: EncryptionConfig;
  /**
   * Source of IVs (for tests only).
   * @default crypto.randomBytes
   */
  randomIv?: (bytes: number) => Buffer;
}

/** Encrypts every payload with AES-256-GCM under the current key; decrypts with whichever key a payload names. */
export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly current: EncryptionKey;
  private readonly byId: ReadonlyMap<string, Buffer>;
  private readonly randomIv: (bytes: number) => Buffer;

  constructor(options: AesGcmPayloadCodecOptions) {
    const [current] = options.encryption.keys;
    this.current = current;
    this.byId = new Map(options.encryption.keys.map((k) => [k.id, k.key]));
    this.randomIv = options.randomIv ?? randomBytes;
  }

  /** Id of the key new payloads are encrypted with. */
  get currentKeyId(): string {
    return this.current.id;
  }

  /** Ids of every key this codec can decrypt with. */
  get keyIds(): string[] {
    return [...this.byId.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.encrypt(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.decrypt(payload));
  }

  private encrypt(payload: Payload): Payload {
    const plaintext = temporal.api.common.v1.Payload.encode(payload).finish();
    const iv = this.randomIv(IV_BYTES);
    const cipher = createCipheriv(CIPHER, this.current.key, iv);
    const sealed = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: { [METADATA_ENCODING_KEY]: utf8.encode(ENCRYPTED_ENCODING), [METADATA_ENCRYPTION_KEY_ID]: utf8.encode(this.current.id) },
      data: sealed,
    };
  }

  private decrypt(payload: Payload): Payload {
    const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
    if (!encoding || fromUtf8.decode(encoding) !== ENCRYPTED_ENCODING) return payload;
    const idBytes = payload.metadata?.[METADATA_ENCRYPTION_KEY_ID];
    if (!idBytes) throw new PayloadDecryptionError('(none)', `its metadata has no ${METADATA_ENCRYPTION_KEY_ID}`);
    const keyId = fromUtf8.decode(idBytes);
    const key = this.byId.get(keyId);
    if (!key) throw new UnknownEncryptionKeyError(keyId, this.keyIds);
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES)
      throw new PayloadDecryptionError(keyId, `it has ${data.length} bytes, fewer than IV and tag (${IV_BYTES + TAG_BYTES})`);
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const decipher = createDecipheriv(CIPHER, key, bytes.subarray(0, IV_BYTES));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PayloadDecryptionError(
        keyId,
        'authentication failed (the ciphertext, IV or tag was altered, or the key stored under this id is not the one that encrypted it)',
      );
    }
    return temporal.api.common.v1.Payload.decode(plaintext);
  }
}
