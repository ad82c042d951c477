/**
 * A MinIO user whose write permission a test can take away in the middle of an upload: the
 * "S3 answers AccessDenied" fault, produced by MinIO's real authorization, not by a mock.
 *
 * Why it is built this way:
 * - MinIO evaluates bucket policies for anonymous requests only, and its root user bypasses
 *   every policy (cmd/auth-handler.go `authorizeRequest`, cmd/iam.go `IsAllowed`), so "a bucket
 *   policy denying writes" cannot touch a worker that signs its requests. The worker therefore
 *   runs as a regular MinIO user whose canned policy allows `s3:*`; denying writes rewrites that
 *   policy with an explicit `Deny s3:PutObject` for a key prefix (UploadPart and
 *   CompleteMultipartUpload are `s3:PutObject` in MinIO) — effective for the user's next request.
 *   Aborting and listing multipart uploads stay allowed, so the saga's compensation can clean up.
 * - There is no `mc` on the machine: the helper speaks MinIO's admin REST API (`/minio/admin/v3`)
 *   itself, signed with SigV4 (service `s3`) by the AWS SDK's signer. Only `add-user` needs more:
 *   madmin encrypts its body with the caller's secret key; MinIO accepts the PBKDF2 + AES-256-GCM
 *   variant of that format (madmin-go `EncryptData` in FIPS mode), which node:crypto provides.
 */
import { createCipheriv, createHash, createHmac, pbkdf2Sync, randomBytes, type BinaryLike } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

/** Root credentials and address of a MinIO server. */
export interface MinioAdminTarget {
  /** S3 endpoint, e.g. `http://127.0.0.1:9000`. */
  endpoint: string;
  region: string;
  /** The ROOT user's access key (admin calls need it). */
  accessKeyId: string;
  secretAccessKey: string;
}

/** An IAM-style policy document. */
export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: { Effect: 'Allow' | 'Deny'; Action: string[]; Resource: string[] }[];
}

/** An admin API call MinIO answered with an error. */
export class MinioAdminError extends Error {
  override readonly name = 'MinioAdminError';
  constructor(
    readonly call: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`MinIO admin ${call} answered HTTP ${status}: ${body.slice(0, 500)}`);
  }
}

/** node:crypto behind the hash interface the SDK signer expects (plain SHA-256, or HMAC with a key). */
type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (data: SourceData): BinaryLike =>
  typeof data === 'string'
    ? data
    : ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data);

class NodeSha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

/**
 * madmin's encrypted body: salt(32) | 0x02 (PBKDF2-SHA256 + AES-256-GCM) | nonce(8) | one final
 * sio-go fragment. sio-go authenticates each fragment with associated data
 * `flag || GCM tag of the empty message under nonce‖seq 0`, flag 0x80 on the final fragment, and
 * numbers fragments from 1 (little-endian) in the last 4 bytes of the 12-byte GCM nonce.
 */
export function encryptAdminBody(password: string, plaintext: Buffer): Buffer {
  if (plaintext.length > 16 * 1024) throw new RangeError('encryptAdminBody writes a single fragment: at most 16 KiB');
  const salt = randomBytes(32);
  const key = pbkdf2Sync(password, salt, 8192, 32, 'sha256');
  const nonce = randomBytes(8);
  const gcmNonce = (seq: number) => {
    const n = Buffer.alloc(12);
    nonce.copy(n, 0);
    n.writeUInt32LE(seq, 8);
    return n;
  };
  const seal = (seq: number, data: Buffer, aad: Buffer) => {
    const cipher = createCipheriv('aes-256-gcm', key, gcmNonce(seq));
    cipher.setAAD(aad);
    const body = Buffer.concat([cipher.update(data), cipher.final()]);
    return Buffer.concat([body, cipher.getAuthTag()]);
  };
  const headerTag = seal(0, Buffer.alloc(0), Buffer.alloc(0)); // the tag only: empty message
  const finalAad = Buffer.concat([Buffer.from([0x80]), headerTag]);
  return Buffer.concat([salt, Buffer.from([0x02]), nonce, seal(1, plaintext, finalAad)]);
}

/** The few MinIO admin calls the fault scenarios need. */
export class MinioAdmin {
  private readonly signer: SignatureV4;
  private readonly url: URL;

  constructor(private readonly target: MinioAdminTarget) {
    this.url = new URL(target.endpoint);
    this.signer = new SignatureV4({
      credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
      region: target.region,
      service: 's3',
      sha256: NodeSha256,
    });
  }

  /** Creates or replaces a canned policy. */
  async putPolicy(name: string, policy: PolicyDocument): Promise<void> {
    await this.call('add-canned-policy', { name }, Buffer.from(JSON.stringify(policy)));
  }

  /** Creates (or updates) an enabled user. */
  async addUser(accessKey: string, secretKey: string): Promise<void> {
    const body = encryptAdminBody(this.target.secretAccessKey, Buffer.from(JSON.stringify({ secretKey, status: 'enabled' })));
    await this.call('add-user', { accessKey }, body);
  }

  /** Maps exactly these canned policies to the user. */
  async setUserPolicies(accessKey: string, policies: string[]): Promise<void> {
    await this.call('set-user-or-group-policy', { policyName: policies.join(','), userOrGroup: accessKey, isGroup: 'false' });
  }

  private async call(operation: string, query: Record<string, string>, body: Buffer = Buffer.alloc(0)): Promise<void> {
    const path = `/minio/admin/v3/${operation}`;
    const signed = await this.signer.sign({
      method: 'PUT',
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      port: Number(this.url.port) || undefined,
      path,
      query,
      headers: { host: this.url.host, 'content-length': String(body.length) },
      body,
    });
    const response = await fetch(`${this.url.origin}${path}?${new URLSearchParams(query).toString()}`, {
      method: 'PUT',
      headers: Object.fromEntries(Object.entries(signed.headers).filter(([name]) => name !== 'host' && name !== 'content-length')),
      body,
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    if (!response.ok) throw new MinioAdminError(operation, response.status, text);
  }
}

/** A regular MinIO user for a worker, whose writes under one key prefix can be denied and allowed again. */
export interface RestrictableS3User {
  accessKeyId: string;
  secretAccessKey: string;
  /** From now on, `s3:PutObject` (PutObject, UploadPart, CompleteMultipartUpload) under the prefix is denied. */
  denyWrites(): Promise<void>;
  /** Writes are allowed again. */
  allowWrites(): Promise<void>;
}

/**
 * Creates a MinIO user (unique name) allowed `s3:*` everywhere, whose writes to
 * `<bucket>/<keyPrefix>*` the returned handle can deny in the middle of an upload.
 */
export async function createRestrictableS3User(
  target: MinioAdminTarget,
  deny: { bucket: string; keyPrefix: string },
): Promise<RestrictableS3User> {
  const admin = new MinioAdmin(target);
  const suffix = randomBytes(4).toString('hex');
  const accessKeyId = `fault-user-${suffix}`;
  const secretAccessKey = randomBytes(18).toString('base64url');
  const policyName = `fault-policy-${suffix}`;
  const allowAll: PolicyDocument['Statement'][number] = { Effect: 'Allow', Action: ['s3:*'], Resource: ['arn:aws:s3:::*'] };
  const denyPut: PolicyDocument['Statement'][number] = {
    Effect: 'Deny',
    Action: ['s3:PutObject'],
    Resource: [`arn:aws:s3:::${deny.bucket}/${deny.keyPrefix}*`],
  };

  await admin.putPolicy(policyName, { Version: '2012-10-17', Statement: [allowAll] });
  await admin.addUser(accessKeyId, secretAccessKey);
  await admin.setUserPolicies(accessKeyId, [policyName]);
  return {
    accessKeyId,
    secretAccessKey,
    denyWrites: () => admin.putPolicy(policyName, { Version: '2012-10-17', Statement: [allowAll, denyPut] }),
    allowWrites: () => admin.putPolicy(policyName, { Version: '2012-10-17', Statement: [allowAll] }),
  };
}
