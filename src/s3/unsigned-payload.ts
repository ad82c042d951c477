/**
 * Sends one S3 command's body with `x-amz-content-sha256: UNSIGNED-PAYLOAD`, so that SigV4 signs
 * the request's headers but not its body.
 *
 * Why: over plain HTTP the SDK's signer hashes a Buffer body with SHA-256 for the signature, and
 * the store hashes it again to check it: a full pass over every byte on both sides, most of the
 * gateway's CPU per uploaded byte after the copies. Integrity does not rest on it for the commands
 * this is used with: each carries its own `x-amz-checksum-*` header, which is signed, and S3
 * refuses a body that does not match it (BadDigest). What is given up is the signature's cover
 * of the body against an attacker on a plain-HTTP link (CRC32C is no MAC): use HTTPS to a store
 * across an untrusted network, as for the credentials themselves.
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

/** Marks `command`'s body unsigned (see the module comment); returns the command. */
export function unsignedPayload<T extends CommandWithStack>(command: T): T {
  command.middlewareStack.add(
    (next: (args: { request: unknown }) => Promise<unknown>) => async (args: { request: unknown }) => {
      const headers = (args.request as { headers?: Record<string, string> } | undefined)?.headers;
      if (headers) headers[SHA256_HEADER] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: MIDDLEWARE_NAME },
  );
  return command;
}
