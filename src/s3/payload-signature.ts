/**
 * How the body of an S3 command that carries its own checksum header is covered by SigV4, chosen so
 * that the gateway's event loop does not hash every byte it forwards:
 *
 * - Over HTTPS: `x-amz-content-sha256: UNSIGNED-PAYLOAD`, so SigV4 signs the request's headers but
 *   not its body. TLS protects the body on the wire, as the AWS SDKs assume when they skip payload
 *   signing; integrity rests on the command's own `x-amz-checksum-*` header, which is signed, and
 *   S3 refuses a body that does not match it (BadDigest).
 * - Over plain HTTP the signature is the only cover of the body against an attacker on the link
 *   (CRC32C is no MAC: a body with the same CRC is easy to forge), so the body stays signed. Its
 *   SHA-256 is computed off the event loop and handed to the signer in the header (the signer
 *   takes a hash it finds there instead of computing one): a body in shared memory (the gateway's
 *   part buffers) is hashed in place on a worker thread (hash-threads.ts), any other with
 *   WebCrypto on libuv's thread pool, which copies the body on the event loop first. The SDK's own
 *   signer hashes on the event loop: in a profile of the gateway receiving one 128 MiB PATCH that
 *   hash was a fifth of the busy time of its only JavaScript thread, the gateway's bottleneck.
 *
 * Invariant: only commands with a checksum header of their own, and a body already in memory
 * (Buffer / Uint8Array) that does not change until S3 answered, go through here.
 */
import { webcrypto } from 'node:crypto';
import { hashThreads } from './hash-threads';

const SHA256_HEADER = 'x-amz-content-sha256';
const MIDDLEWARE_NAME = 'uploadSagaPayloadSignature';

/** A command whose middleware stack can take one more step (every S3 command). */
interface CommandWithStack {
  input: object;
  middlewareStack: {
    add(middleware: unknown, options: { step: 'build'; name: string }): void;
  };
}

/** The body's SHA-256 as the hex SigV4 puts in `x-amz-content-sha256`, computed off the event loop. */
async function sha256Hex(body: Uint8Array): Promise<string> {
  if (body.buffer instanceof SharedArrayBuffer) return hashThreads().sha256Hex(body);
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', body)).toString('hex');
}

/**
 * Marks `command`'s body unsigned over HTTPS, or hands the signer its SHA-256 computed on the
 * thread pool over HTTP (see the module comment); returns the command. `evenOverHttp` (tests
 * against a local store) leaves the body unsigned over HTTP too.
 */
export function payloadSignature<T extends CommandWithStack>(command: T, options: { evenOverHttp?: boolean } = {}): T {
  command.middlewareStack.add(
    (next: (args: { request: unknown }) => Promise<unknown>) => async (args: { request: unknown }) => {
      const request = args.request as { headers?: Record<string, string>; protocol?: string; body?: unknown } | undefined;
      if (request?.headers) {
        const overTls = request.protocol === 'https:';
        if (overTls || options.evenOverHttp === true) request.headers[SHA256_HEADER] = 'UNSIGNED-PAYLOAD';
        else if (request.body instanceof Uint8Array) request.headers[SHA256_HEADER] = await sha256Hex(request.body);
      }
      return next(args);
    },
    { step: 'build', name: MIDDLEWARE_NAME },
  );
  return command;
}
