/**
 * `UPLOAD_SAGA_S3_SOURCE_PROFILES`: the other S3 stores (endpoints, credentials) that S3-object
 * sources may come from, by name. A request says `{ type: 's3', bucket, key, profile: 'archive' }`;
 * the endpoint and keys stay in the worker's environment, never in the request or workflow history.
 *
 * Why JSON: a profile has up to five fields (two of them secret) and names are free-form, so a
 * `name=…;…` mini-language would need its own escaping rules. Why its own module: the value holds
 * secrets, so its parse errors must never echo it — `JSON.parse`'s own message quotes the input,
 * and is replaced here by the position only.
 */
import { z } from 'zod';
import { PROFILE_PATTERN } from './upload/request';

/** One source store. Same meaning as the worker's own `S3_*` variables. */
export interface S3SourceProfile {
  /** S3-compatible endpoint URL. @default AWS S3 */
  endpoint?: string;
  /** @default 'us-east-1' */
  region: string;
  /** Both or neither; neither: the AWS default credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** @default true when `endpoint` is set */
  forcePathStyle: boolean;
}

const profileSchema = z
  .object({
    endpoint: z.url({ error: 'must be a URL such as https://s3.example.com' }).optional(),
    region: z.string({ error: 'must be a string' }).min(1, 'must not be empty').optional(),
    accessKeyId: z.string({ error: 'must be a string' }).min(1, 'must not be empty').optional(),
    secretAccessKey: z.string({ error: 'must be a string' }).min(1, 'must not be empty').optional(),
    forcePathStyle: z.boolean({ error: 'must be true or false' }).optional(),
  })
  .strict()
  .refine(
    (p) => Boolean(p.accessKeyId) === Boolean(p.secretAccessKey),
    'accessKeyId and secretAccessKey must be set together (or both left out for the AWS default chain)',
  );

const EXAMPLE = '{"archive":{"endpoint":"https://s3.example.com","region":"us-east-1","accessKeyId":"…","secretAccessKey":"…"}}';

/**
 * Parses the variable's value. Problems name the profile and field, never a value.
 * @returns the profiles by name (empty when `text` is unset), and every problem found
 */
export function parseS3SourceProfiles(
  text: string | undefined,
  variable = 'UPLOAD_SAGA_S3_SOURCE_PROFILES',
): { profiles: Record<string, S3SourceProfile>; problems: string[] } {
  // No prototype: a profile named "constructor" must not find Object's members.
  const profiles = Object.create(null) as Record<string, S3SourceProfile>;
  if (text === undefined || text.trim() === '') return { profiles, problems: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    const position = /position (\d+)/.exec((err as Error).message)?.[1];
    return {
      profiles,
      problems: [`${variable}: is not valid JSON${position ? ` (at character ${position})` : ''}; expected e.g. ${EXAMPLE}`],
    };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { profiles, problems: [`${variable}: must be a JSON object of profiles by name, e.g. ${EXAMPLE}`] };
  }
  const problems: string[] = [];
  for (const [name, value] of Object.entries(raw)) {
    if (!PROFILE_PATTERN.test(name)) {
      problems.push(
        `${variable}: profile name "${name.slice(0, 64)}" may contain only letters, digits, "_" and "-" (1–63, starting with a letter or digit)`,
      );
      continue;
    }
    const parsed = profileSchema.safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const field = issue.path.length ? `.${issue.path.join('.')}` : '';
        problems.push(
          `${variable}: profile "${name}"${field}: ${issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message}`,
        );
      }
      continue;
    }
    const p = parsed.data;
    profiles[name] = {
      ...(p.endpoint ? { endpoint: p.endpoint } : {}),
      region: p.region ?? 'us-east-1',
      ...(p.accessKeyId && p.secretAccessKey ? { credentials: { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey } } : {}),
      forcePathStyle: p.forcePathStyle ?? Boolean(p.endpoint),
    };
  }
  return { profiles, problems };
}
