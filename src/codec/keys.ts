/**
 * Encryption keys for the payload codec: parsing and validating what the environment gives.
 *
 * Why it is built this way: a key is 32 random bytes written in standard base64 (what
 * `openssl rand -base64 32` prints), and every encrypted payload names the key that sealed it by an
 * id stored in its metadata. One key encrypts; older keys stay listed, for decryption only, so keys
 * can be rotated without making the histories of running or finished uploads unreadable. A key
 * without an explicit id gets one derived from its SHA-256 fingerprint, so every process given the
 * same key agrees on its id without further configuration (the fingerprint reveals nothing usable
 * about a random 256-bit key). Parsing never echoes a key: messages describe what is wrong with it
 * (length, characters), never its value — they end up in logs.
 */
import { createHash } from 'node:crypto';

/** Bytes of an AES-256 key. */
export const ENCRYPTION_KEY_BYTES = 32;

/** One AES-256 key and the id stored with every payload it encrypts. */
export interface EncryptionKey {
  /** Stored in each payload's `encryption-key-id` metadata; `[A-Za-z0-9._-]`, 1–64 characters. */
  readonly id: string;
  /** The 32 key bytes. */
  readonly key: Buffer;
}

/** The keys a process holds: the first encrypts, all of them decrypt. */
export interface EncryptionConfig {
  /** Never empty; `keys[0]` encrypts new payloads. */
  readonly keys: readonly [EncryptionKey, ...EncryptionKey[]];
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** `key-` + the first 8 hex digits of the key's SHA-256: the id of a key given without one. */
export function fingerprintKeyId(key: Buffer): string {
  return `key-${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;
}

/**
 * Decodes a base64 key and checks it is 32 bytes.
 * @returns the key bytes, or a message saying what is wrong (never containing the key)
 */
export function parseKeyMaterial(text: string): Buffer | string {
  const trimmed = text.trim();
  if (!BASE64.test(trimmed)) {
    return `is not valid base64 (standard alphabet A–Z a–z 0–9 + /, padded with =); generate a key with \`openssl rand -base64 32\``;
  }
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== ENCRYPTION_KEY_BYTES) {
    return `must be ${ENCRYPTION_KEY_BYTES} bytes for AES-256 (44 base64 characters), but decodes to ${key.length} bytes; generate one with \`openssl rand -base64 32\``;
  }
  return key;
}

/**
 * @returns a message if `id` cannot be a key id, else undefined. The id is not repeated: an invalid
 * one may be a key pasted in the wrong place.
 */
export function keyIdProblem(id: string): string | undefined {
  return KEY_ID.test(id)
    ? undefined
    : `key id must be 1–64 characters of A–Z a–z 0–9 . _ - (got ${id.length} characters${/[+/=]/.test(id) ? ', some of them base64: is a key in the place of an id?' : ''})`;
}

/** What {@link parseEncryptionKeys} reads, by variable. */
export interface EncryptionKeyVariables {
  /** Base64 key that encrypts (`UPLOAD_SAGA_ENCRYPTION_KEY`). */
  key?: string;
  /** Its id (`UPLOAD_SAGA_ENCRYPTION_KEY_ID`). @default fingerprintKeyId(key) */
  keyId?: string;
  /** Decrypt-only keys, `id:base64,id:base64` (`UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS`). */
  previousKeys?: string;
}

/** Names of the variables, for messages. */
export const ENCRYPTION_KEY_VARIABLE = 'UPLOAD_SAGA_ENCRYPTION_KEY';
export const ENCRYPTION_KEY_ID_VARIABLE = 'UPLOAD_SAGA_ENCRYPTION_KEY_ID';
export const ENCRYPTION_PREVIOUS_KEYS_VARIABLE = 'UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS';

/**
 * Validates the encryption variables.
 * @returns the keys (undefined when encryption is off) and every problem found, each naming its variable
 */
export function parseEncryptionKeys(vars: EncryptionKeyVariables): { encryption?: EncryptionConfig; problems: string[] } {
  const problems: string[] = [];
  if (!vars.key) {
    if (vars.keyId)
      problems.push(
        `${ENCRYPTION_KEY_ID_VARIABLE}: is set, but ${ENCRYPTION_KEY_VARIABLE} is not; set both, or neither to turn encryption off`,
      );
    if (vars.previousKeys)
      problems.push(
        `${ENCRYPTION_PREVIOUS_KEYS_VARIABLE}: is set, but ${ENCRYPTION_KEY_VARIABLE} is not; previous keys only decrypt, one current key must encrypt`,
      );
    return { problems };
  }
  const current = parseKeyMaterial(vars.key);
  if (typeof current === 'string') problems.push(`${ENCRYPTION_KEY_VARIABLE}: ${current}`);
  const currentIdProblem = vars.keyId === undefined ? undefined : keyIdProblem(vars.keyId);
  if (currentIdProblem) problems.push(`${ENCRYPTION_KEY_ID_VARIABLE}: ${currentIdProblem}`);

  const previous: EncryptionKey[] = [];
  const entries = (vars.previousKeys ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  for (const [index, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const where = `${ENCRYPTION_PREVIOUS_KEYS_VARIABLE}: entry ${index + 1}`;
    const id = entry.slice(0, Math.max(colon, 0));
    const idProblem = colon <= 0 ? 'is not id:base64-key (e.g. key-2025:…=)' : keyIdProblem(id);
    const key = idProblem ? undefined : parseKeyMaterial(entry.slice(colon + 1));
    if (idProblem) problems.push(`${where}: ${idProblem}`);
    else if (typeof key === 'string') problems.push(`${where} (key "${id}") ${key}`);
    else if (key) previous.push({ id, key });
  }
  if (problems.length || typeof current === 'string') return { problems };

  const keys: [EncryptionKey, ...EncryptionKey[]] = [{ id: vars.keyId ?? fingerprintKeyId(current), key: current }, ...previous];
  const seen = new Set<string>();
  for (const { id } of keys) {
    if (seen.has(id))
      problems.push(
        `${ENCRYPTION_PREVIOUS_KEYS_VARIABLE}: key id "${id}" appears more than once (the current key included); every key needs its own id`,
      );
    seen.add(id);
  }
  return problems.length ? { problems } : { encryption: { keys }, problems };
}
