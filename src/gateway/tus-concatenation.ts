/**
 * The tus concatenation extension on `/files` (tus 1.0.0): `Upload-Concat: partial` on a creation
 * makes a partial upload, `Upload-Concat: final;<url> <url>…` joins finished partials into one
 * upload. @tus/server does not implement it: a partial's creation goes through @tus/server like
 * any other (the store makes it a partial saga), a final's creation is answered here, and HEAD and
 * PATCH learn what an upload is from its state (tus-store.ts).
 *
 * The spec's rules, and where they are kept: a final's creation carries no `Upload-Length` (400,
 * tus-request-checks.ts); its partials must exist for the tenant (404), be partials, finished and
 * named once (400), not be joined by another final at the same time (409) and add up to at most
 * the maximum upload size (413) — checked by the uploads service before anything is recorded; a
 * PATCH to a final is 403. How partials are stored and joined: src/upload/concatenation.ts.
 */
import type { FastifyReply } from 'fastify';
import { GatewayError } from './errors';
import type { GatewayUploadState } from '../upload/gateway-upload';
import type { UploadsService } from './uploads-service';
import { TUS_VERSION } from './tus-request-checks';

export { parseUploadConcat, type UploadConcat } from './tus-request-checks';

/** The upload ids a final's URLs name, or why one names no upload of this endpoint. `path` is the endpoint's full path (`/files`). */
export function partialIdsOf(urls: string[], path: string): string[] | { problem: string } {
  const ids: string[] = [];
  for (const url of urls) {
    let pathname: string;
    try {
      pathname = new URL(url, 'http://gateway.invalid').pathname;
    } catch {
      return { problem: `Upload-Concat names ${JSON.stringify(url)}, which is not a URL` };
    }
    const id = pathname.startsWith(`${path}/`) ? pathname.slice(path.length + 1) : '';
    if (!id || id.includes('/')) return { problem: `Upload-Concat names ${JSON.stringify(url)}, which is not an upload URL of ${path}` };
    ids.push(decodeURIComponent(id));
  }
  return ids;
}

/** The `Upload-Concat` answer header of an upload (HEAD), or undefined for an ordinary one. */
export function uploadConcatHeader(state: Pick<GatewayUploadState, 'concat'>, path: string): string | undefined {
  if (state.concat?.kind === 'partial') return 'partial';
  if (state.concat?.kind === 'final') return `final;${state.concat.partials.map((id) => `${path}/${id}`).join(' ')}`;
  return undefined;
}

/** 403 (the spec's): a final upload takes no PATCH; its bytes are its partials'. */
export class FinalUploadNotWritableError extends GatewayError {
  override readonly name = 'FinalUploadNotWritableError';
  constructor(uploadId: string) {
    super(
      403,
      'FinalUploadNotWritable',
      `upload ${uploadId} is a final upload (Upload-Concat: final): it takes no PATCH; send bytes to partial uploads`,
    );
  }
}

/** What {@link serveFinalCreation} needs. */
export interface FinalCreation {
  uploads: UploadsService;
  tenant: string;
  /** The endpoint's full path (`/files`), for Location and for reading the partials' URLs. */
  path: string;
  urls: string[];
  /** The final's own id (as @tus/server's naming function makes them). */
  uploadId: string;
  /** What the creation's Upload-Metadata names: the object's file name and type, user metadata, and the header verbatim. */
  filename?: string;
  contentType?: string;
  metadata: Record<string, string>;
  tusMetadata?: string;
  /** Object key below the tenant's prefix (an upload token's). @default `<uploadId>/<file name>` */
  key?: string;
  maxUploadBytes: number;
  /** How long the creation waits for the join and merge before it answers anyway. */
  finishWaitMs: number;
  /**
   * Called with the final's outcome once its saga was started: completed once merged (past its
   * pivot it completes forward), running when the merge outlasts the wait, or how it failed.
   */
  onEnded?: (tenant: string, outcome: string) => void;
}

/**
 * Answers a final's creation: the partials are claimed and the final's saga started, and — as a
 * finishing PATCH does — the answer waits (up to `finishWaitMs`) until the saga merged the
 * object, so a client told "created" finds it in S3; settle-partials and notify, which only go
 * forward, run on after the answer. 201 with `Location`; a final that ended without an object
 * (the join failed) is 422; a refusal is the gateway error's status with a body that says what
 * was wrong.
 */
export async function serveFinalCreation(reply: FastifyReply, creation: FinalCreation): Promise<void> {
  const headers = {
    'Tus-Resumable': TUS_VERSION,
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Expose-Headers': 'Tus-Resumable, Location, Upload-Concat',
  };
  const ids = partialIdsOf(creation.urls, creation.path);
  if ('problem' in ids) return void reply.code(400).headers(headers).type('text/plain').send(`${ids.problem}\n`);
  try {
    const opened = await creation.uploads.createFinal({
      tenant: creation.tenant,
      uploadId: creation.uploadId,
      partials: ids,
      ...(creation.filename ? { filename: creation.filename } : {}),
      ...(creation.contentType ? { contentType: creation.contentType } : {}),
      metadata: creation.metadata,
      ...(creation.tusMetadata !== undefined ? { tusMetadata: creation.tusMetadata } : {}),
      ...(creation.key !== undefined ? { key: creation.key } : {}),
      maxLength: creation.maxUploadBytes,
    });
    // With the state it opened with: a final that already completed (or one whose worker does not know the
    // update, answered at its end) is answered from its result, without a query that replays its closed history.
    const merged = await creation.uploads.waitUntilMerged(creation.tenant, creation.uploadId, creation.finishWaitMs, opened);
    creation.onEnded?.(creation.tenant, merged.merged ? 'completed' : merged.outcome);
    if (merged.outcome !== 'completed' && merged.outcome !== 'running') {
      const cause = merged.failure?.cause;
      return void reply
        .code(422)
        .headers(headers)
        .type('text/plain')
        .send(`the partial uploads could not be joined (${merged.outcome})${cause ? `: ${cause.type}: ${cause.message}` : ''}\n`);
    }
    reply
      .code(201)
      .headers({
        ...headers,
        Location: `${creation.path}/${creation.uploadId}`,
        'Upload-Concat': uploadConcatHeader(merged, creation.path)!,
      })
      .send();
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    reply.code(err.status).headers(headers).type('text/plain').send(`${err.message}\n`);
  }
}
