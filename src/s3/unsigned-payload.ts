/**
 * Sends one S3 command's body with `x-amz-content-sha256: UNSIGNED-PAYLOAD`, so that SigV4 signs
 * the request's headers but not its body.
 *
 * Why: over plain HTTP the SDK's signer hashes a Buffer body with SHA-256 for the signature, and
 * the store hashes it again to check it: a full pass over every byte on both sides, most of the
 * gateway's CPU per uploaded byte after the copies. Integrity does not rest on it for the commands
 * this is used with: each carries its own `x-amz-checksum-*` header, which is signed, and S3
 * refuses a body that does not match it (BadDigest).
 *
 * Only over HTTPS: there TLS protects the body on the wire, as the AWS SDKs assume when they skip
 * payload signing. Over plain HTTP the signature is the only cover of the body against an attacker
 * on the link (CRC32C is no MAC: a body with the same CRC is easy to forge), so the body stays
 * signed there, whatever it costs; `evenOverHttp` exists for tests against a local store.
 *
 * Invariant: only commands with a checksum header of their own go through here.
 */
const SHA256_HEADER = 'x-amz-content-sha256';
const MIDDLEWARE_NAME = 'uploadSagaUnsignedPayload';

/** A command whose middleware stack can take one more step (every S3 command). */
interface CommandWithStack {
  middlewareStack: {
    add(middleware: unknown, options: { step: 'build'; name: string }): void;
  };
}

/** Marks `command`'s body unsigned when it goes over HTTPS (see the module comment); returns the command. */
export function unsignedPayload<T extends CommandWithStack>(command: T, options: { evenOverHttp?: boolean } = {}): T {
  command.middlewareStack.add(
    (next: (args: { request: unknown }) => Promise<unknown>) => async (args: { request: unknown }) => {
      const request = args.request as { headers?: Record<string, string>; protocol?: string } | undefined;
      const overTls = request?.protocol === 'https:';
      if (request?.headers && (overTls || options.evenOverHttp === true)) request.headers[SHA256_HEADER] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: MIDDLEWARE_NAME },
  );
  return command;
}
