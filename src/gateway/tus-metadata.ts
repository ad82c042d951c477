/**
 * What a tus creation's `Upload-Metadata` names for the object: the file name and type
 * (tus-js-client and Uppy send `filename`/`name` and `filetype`/`type`), and the other pairs as S3
 * user metadata where S3 allows them (the rest is not kept).
 */
import { metadataProblem } from './uploads-service';

/** The tus metadata keys that name the file and its type. */
const NAME_KEYS = ['filename', 'name'];
const TYPE_KEYS = ['filetype', 'type'];

/** The object's file name, content type and user metadata from parsed tus metadata. */
export function objectMetadataOf(tusMetadata: Record<string, string | null | undefined>): {
  filename?: string;
  contentType?: string;
  metadata: Record<string, string>;
} {
  const pick = (keys: string[]) => keys.map((k) => tusMetadata[k]).find((v): v is string => typeof v === 'string' && v.length > 0);
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(tusMetadata)) {
    if (NAME_KEYS.includes(key) || TYPE_KEYS.includes(key) || typeof value !== 'string') continue;
    if (!metadataProblem({ ...metadata, [key]: value })) metadata[key] = value;
  }
  const filename = pick(NAME_KEYS);
  const contentType = pick(TYPE_KEYS);
  return { ...(filename ? { filename } : {}), ...(contentType ? { contentType } : {}), metadata };
}
