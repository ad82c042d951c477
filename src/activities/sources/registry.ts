/**
 * Dispatches each source descriptor to the resolver of its kind. Adding a kind of source is one
 * resolver and one entry here; the activities only ever see {@link SourceResolver}.
 */
import { permanentFailure, UploadFailureType } from '../../upload/errors';
import type { SourceDescriptor } from '../../upload/request';
import type { ByteSource, SourceResolver } from './byte-source';

/** A resolver per source type (`file`, `url`, `s3`). */
export type SourceResolvers = { [K in SourceDescriptor['type']]?: SourceResolver };

/** Opens each source with the resolver registered for its type. */
export class SourceRegistry implements SourceResolver {
  constructor(private readonly resolvers: SourceResolvers) {}

  /** Opens `source` with the resolver of its type. */
  open(source: SourceDescriptor): Promise<ByteSource> {
    const resolver = this.resolvers[source.type];
    if (!resolver) {
      const known = Object.keys(this.resolvers).join(', ') || 'none';
      return Promise.reject(
        permanentFailure(UploadFailureType.SourceNotAllowed, `this worker does not read "${source.type}" sources (it reads: ${known})`),
      );
    }
    return resolver.open(source);
  }
}
