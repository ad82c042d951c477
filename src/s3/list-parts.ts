/**
 * ListParts, all pages. S3 itself is the source of truth for which parts exist — so no part
 * manifest is kept in workflow history, and a retried activity resumes from what S3 already holds.
 */
import { ListPartsCommand, type Part, type S3Client } from '@aws-sdk/client-s3';

export async function listAllParts(
  s3: S3Client,
  target: { bucket: string; key: string; multipartUploadId: string },
  abortSignal?: AbortSignal,
): Promise<Part[]> {
  const parts: Part[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListPartsCommand({
        Bucket: target.bucket,
        Key: target.key,
        UploadId: target.multipartUploadId,
        PartNumberMarker: marker,
        MaxParts: 1000,
      }),
      { abortSignal },
    );
    parts.push(...(page.Parts ?? []));
    if (!page.IsTruncated || !page.NextPartNumberMarker) return parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    marker = page.NextPartNumberMarker;
  }
}

/** Part `partNumber` as ListParts shows it, or undefined when S3 has no such part. */
export async function listedPart(
  s3: S3Client,
  target: { bucket: string; key: string; multipartUploadId: string },
  partNumber: number,
  abortSignal?: AbortSignal,
): Promise<Part | undefined> {
  const page = await s3.send(
    new ListPartsCommand({
      Bucket: target.bucket,
      Key: target.key,
      UploadId: target.multipartUploadId,
      PartNumberMarker: String(partNumber - 1),
      MaxParts: 1,
    }),
    { abortSignal },
  );
  return page.Parts?.find((part) => part.PartNumber === partNumber);
}
