/**
 * A source whose every read takes `delayMs`: the real source underneath, slowed down so a test
 * can act (cancel, truncate, kill) while parts are in flight.
 */
import type { ByteSource, SourceResolver } from '../../src/activities/sources/byte-source';

export function slowSource(inner: SourceResolver, delayMs: number): SourceResolver {
  return {
    async open(source): Promise<ByteSource> {
      const opened = await inner.open(source);
      return {
        description: opened.description,
        stat: () => opened.stat(),
        close: () => opened.close(),
        async read(offset, length) {
          await new Promise((resolve) => setTimeout(resolve, delayMs));
          return opened.read(offset, length);
        },
      };
    },
  };
}
