/**
 * Where the sagas keep staged objects of an upload (e.g. tus segments shorter than a part): one
 * prefix per tenant and upload, deleted by the compensation. Shared by the workflows and the
 * gateway, which must agree on it.
 */

/** Where the saga keeps staged part objects of one upload (deleted by the compensation). */
export function stagingPrefixOf(tenant: string, uploadId: string): string {
  return `.upload-saga/staging/${tenant}/${uploadId}/`;
}

/** tus concatenation: where a partial upload's bytes are stored until a final joins them (inside its staging prefix). */
export function partialObjectKeyOf(tenant: string, uploadId: string): string {
  return `${stagingPrefixOf(tenant, uploadId)}partial`;
}
