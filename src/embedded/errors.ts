/**
 * Error base class for everything under `src/embedded`.
 *
 * Why a shared base: callers (the CLI `stack` command, the vitest global setup, CI scripts) want
 * to tell "the local servers could not be provided" apart from failures of the code under test
 * with one `instanceof` check, while each concrete failure still gets its own class and fields.
 */

/** Base class of every error thrown by the embedded stack (binaries, servers, stack wiring). */
export class EmbeddedStackError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
