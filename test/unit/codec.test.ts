/**
 * The AES-256-GCM payload codec and its key configuration, without a server: round trips, the
 * stored format, tampering, key rotation, and the configuration errors a person would make.
 */
import { createDecipheriv, randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import {
  AesGcmPayloadCodec,
  ENCRYPTED_ENCODING,
  PayloadDecryptionError,
  UnknownEncryptionKeyError,
  fingerprintKeyId,
  type EncryptionConfig,
} from '../../src/codec';
import { ConfigError, loadConfig } from '../../src/config';

const keyA = randomBytes(32);
const keyB = randomBytes(32);
const only = (id: string, key: Buffer): EncryptionConfig => ({ keys: [{ id, key }] });
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');
const request = {
  tenant: 'acme',
  source: { type: 'file', path: '/data/secret-plans.pdf' },
  destination: { bucket: 'uploads', key: 'plans/q3.pdf' },
};

async function encodeOne(codec: AesGcmPayloadCodec, value: unknown): Promise<Payload> {
  const [encoded] = await codec.encode([defaultPayloadConverter.toPayload(value)]);
  return encoded!;
}

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('loadConfig accepted the environment');
}

describe('AesGcmPayloadCodec', () => {
  it('round-trips payloads, leaving nothing of the plaintext in the stored form', async () => {
    const codec = new AesGcmPayloadCodec({ encryption: only('k1', keyA) });
    const original = [
      defaultPayloadConverter.toPayload(request),
      defaultPayloadConverter.toPayload(undefined),
      defaultPayloadConverter.toPayload(''),
    ];
    const encoded = await codec.encode(original);
    expect(encoded).toHaveLength(3);
    for (const payload of encoded) {
      expect(text(payload.metadata?.encoding)).toBe(ENCRYPTED_ENCODING);
      expect(text(payload.metadata?.['encryption-key-id'])).toBe('k1');
      expect(Object.keys(payload.metadata ?? {}).sort()).toEqual(['encoding', 'encryption-key-id']); // the original encoding is inside
    }
    const stored = Buffer.from(encoded[0]!.data!).toString('latin1');
    for (const plain of ['secret-plans', 'plans/q3.pdf', 'acme', 'json/plain']) expect(stored).not.toContain(plain);

    const decoded = await codec.decode(encoded);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([request, undefined, '']);
    expect(text(decoded[0]!.metadata?.encoding)).toBe('json/plain');
  });

  it('uses a fresh IV for every payload: the same value never encrypts the same way twice', async () => {
    const codec = new AesGcmPayloadCodec({ encryption: only('k1', keyA) });
    const [a, b] = await codec.encode([defaultPayloadConverter.toPayload(request), defaultPayloadConverter.toPayload(request)]);
    expect(Buffer.from(a!.data!).subarray(0, 12).equals(Buffer.from(b!.data!).subarray(0, 12))).toBe(false);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
  });

  it('stores IV ‖ ciphertext ‖ tag over a protobuf Payload, as Temporal’s encryption samples do', async () => {
    const codec = new AesGcmPayloadCodec({ encryption: only('k1', keyA) });
    const data = Buffer.from((await encodeOne(codec, request)).data!);
    // Decrypt by hand, as a codec written from the samples (Go, Python, .NET) would.
    const decipher = createDecipheriv('aes-256-gcm', keyA, data.subarray(0, 12));
    decipher.setAuthTag(data.subarray(data.length - 16));
    const inner = temporal.api.common.v1.Payload.decode(
      Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]),
    );
    expect(defaultPayloadConverter.fromPayload(inner)).toEqual(request);
  });

  it('rejects altered ciphertext, IV or tag, and a truncated payload', async () => {
    const codec = new AesGcmPayloadCodec({ encryption: only('k1', keyA) });
    const encoded = await encodeOne(codec, request);
    const data = Buffer.from(encoded.data!);
    const flip = (index: number): Payload => {
      const copy = Buffer.from(data);
      copy[index] = copy[index]! ^ 0x01;
      return { ...encoded, data: copy };
    };
    for (const tampered of [flip(20), flip(0), flip(data.length - 1)]) {
      const error = await codec.decode([tampered]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PayloadDecryptionError);
      expect((error as Error).message).toBe(
        'payload encrypted with key "k1" cannot be decrypted: authentication failed (the ciphertext, IV or tag was altered, or the key stored under this id is not the one that encrypted it)',
      );
    }
    await expect(codec.decode([{ ...encoded, data: data.subarray(0, 20) }])).rejects.toThrow(
      'payload encrypted with key "k1" cannot be decrypted: it has 20 bytes, fewer than IV and tag (28)',
    );
  });

  it('rejects a payload whose id names a different key than the one that sealed it', async () => {
    const sealed = await encodeOne(new AesGcmPayloadCodec({ encryption: only('k1', keyA) }), request);
    await expect(new AesGcmPayloadCodec({ encryption: only('k1', keyB) }).decode([sealed])).rejects.toBeInstanceOf(PayloadDecryptionError);
  });

  it('names the key id it does not hold, and how to add it', async () => {
    const sealed = await encodeOne(new AesGcmPayloadCodec({ encryption: only('key-2024', keyA) }), request);
    const error = await new AesGcmPayloadCodec({ encryption: only('key-2025', keyB) }).decode([sealed]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownEncryptionKeyError);
    expect((error as UnknownEncryptionKeyError).keyId).toBe('key-2024');
    expect((error as Error).message).toBe(
      'payload was encrypted with key "key-2024", which this process does not hold (it holds "key-2025"); add that key to UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS as id:base64-key',
    );
  });

  it('after a rotation, encrypts with the new key and still decrypts what the old one sealed', async () => {
    const before = new AesGcmPayloadCodec({ encryption: only('old', keyA) });
    const after = new AesGcmPayloadCodec({
      encryption: {
        keys: [
          { id: 'new', key: keyB },
          { id: 'old', key: keyA },
        ],
      },
    });
    const oldPayload = await encodeOne(before, 'written before the rotation');
    const newPayload = await encodeOne(after, 'written after');
    expect(text(newPayload.metadata?.['encryption-key-id'])).toBe('new');
    expect((await after.decode([oldPayload, newPayload])).map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
      'written before the rotation',
      'written after',
    ]);
    await expect(before.decode([newPayload])).rejects.toBeInstanceOf(UnknownEncryptionKeyError);
  });

  it('passes payloads that were never encrypted through decode unchanged (histories from before encryption)', async () => {
    const codec = new AesGcmPayloadCodec({ encryption: only('k1', keyA) });
    const plain = defaultPayloadConverter.toPayload(request);
    expect(await codec.decode([plain])).toEqual([plain]);
  });
});

describe('encryption configuration', () => {
  const key = keyA.toString('base64');

  it('is off without a key, and on with one; the key id defaults to the key’s fingerprint', () => {
    expect(loadConfig({}).encryption).toBeUndefined();
    const config = loadConfig({ UPLOAD_SAGA_ENCRYPTION_KEY: key });
    expect(config.encryption?.keys).toEqual([{ id: fingerprintKeyId(keyA), key: keyA }]);
    expect(fingerprintKeyId(keyA)).toMatch(/^key-[0-9a-f]{8}$/);
  });

  it('reads the current key id and the previous keys, current first', () => {
    const config = loadConfig({
      UPLOAD_SAGA_ENCRYPTION_KEY: key,
      UPLOAD_SAGA_ENCRYPTION_KEY_ID: 'key-2025',
      UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS: `key-2024:${keyB.toString('base64')}`,
    });
    expect(config.encryption?.keys.map((k) => k.id)).toEqual(['key-2025', 'key-2024']);
    expect(config.encryption?.keys[1]?.key.equals(keyB)).toBe(true);
  });

  it('refuses a key of the wrong length, saying how long it must be and how to make one', () => {
    const error = configError({ UPLOAD_SAGA_ENCRYPTION_KEY: randomBytes(16).toString('base64') });
    expect(error.problems).toEqual([
      'UPLOAD_SAGA_ENCRYPTION_KEY: must be 32 bytes for AES-256 (44 base64 characters), but decodes to 16 bytes; generate one with `openssl rand -base64 32`',
    ]);
  });

  it('refuses text that is not base64, without echoing it', () => {
    const secretLooking = 'this is my passphrase, not a key!!!!!!!!!!';
    const error = configError({ UPLOAD_SAGA_ENCRYPTION_KEY: secretLooking });
    expect(error.problems[0]).toMatch(/^UPLOAD_SAGA_ENCRYPTION_KEY: is not valid base64/);
    expect(error.message).not.toContain('passphrase');
  });

  it('lists every problem with previous keys and ids, never a key', () => {
    const short = randomBytes(31).toString('base64');
    const error = configError({
      UPLOAD_SAGA_ENCRYPTION_KEY: key,
      UPLOAD_SAGA_ENCRYPTION_KEY_ID: 'has space',
      UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS: `nocolon, old:${short}`,
      TEMPORAL_ADDRESS: 'nonsense',
    });
    expect(error.problems).toEqual([
      'TEMPORAL_ADDRESS: must be host:port',
      'UPLOAD_SAGA_ENCRYPTION_KEY_ID: key id must be 1–64 characters of A–Z a–z 0–9 . _ - (got 9 characters)',
      'UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS: entry 1: is not id:base64-key (e.g. key-2025:…=)',
      'UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS: entry 2 (key "old") must be 32 bytes for AES-256 (44 base64 characters), but decodes to 31 bytes; generate one with `openssl rand -base64 32`',
    ]);
    expect(error.message).not.toContain(short);
    expect(error.message).not.toContain(key);
  });

  it('does not repeat a key written where an id belongs (id and key swapped)', () => {
    const swapped = `${keyB.toString('base64')}:old`;
    const error = configError({ UPLOAD_SAGA_ENCRYPTION_KEY: key, UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS: swapped });
    expect(error.problems).toEqual([
      'UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS: entry 1: key id must be 1–64 characters of A–Z a–z 0–9 . _ - (got 44 characters, some of them base64: is a key in the place of an id?)',
    ]);
    expect(error.message).not.toContain(keyB.toString('base64'));
  });

  it('refuses two keys under one id, and an id or previous keys without a current key', () => {
    expect(
      configError({
        UPLOAD_SAGA_ENCRYPTION_KEY: key,
        UPLOAD_SAGA_ENCRYPTION_KEY_ID: 'k',
        UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS: `k:${keyB.toString('base64')}`,
      }).problems,
    ).toEqual([
      'UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS: key id "k" appears more than once (the current key included); every key needs its own id',
    ]);
    expect(configError({ UPLOAD_SAGA_ENCRYPTION_KEY_ID: 'k', UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS: `old:${key}` }).problems).toEqual([
      'UPLOAD_SAGA_ENCRYPTION_KEY_ID: is set, but UPLOAD_SAGA_ENCRYPTION_KEY is not; set both, or neither to turn encryption off',
      'UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS: is set, but UPLOAD_SAGA_ENCRYPTION_KEY is not; previous keys only decrypt, one current key must encrypt',
    ]);
  });

  it('refuses a short codec server token', () => {
    expect(configError({ UPLOAD_SAGA_CODEC_SERVER_TOKEN: 'short' }).problems).toEqual([
      'UPLOAD_SAGA_CODEC_SERVER_TOKEN: must be at least 16 characters (e.g. `openssl rand -hex 24`)',
    ]);
  });
});
