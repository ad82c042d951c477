/**
 * @uppy/aws-s3's Companion client with one method changed: each part is signed with its size and
 * its SHA-256 (`GET …/s3/multipart/:uploadId/:partNumber?key=&size=&checksum=sha256 <base64>`), and
 * PUT with the headers the gateway says the signature binds (`x-amz-checksum-sha256`), so S3 itself
 * refuses a part whose bytes are not the ones the page hashed.
 *
 * Why it is built this way: @uppy/aws-s3 v6 offers no hook into its Companion client (it asks for a
 * part URL with the part number only and PUTs with no extra header), and a checksum hoisted into a
 * presigned URL's query is not enforced by S3. Rather than rewrite Uppy's uploader (part cutting,
 * pause, retry, resume from ListParts, the state golden-retriever restores), the page's bundle
 * substitutes this subclass for @uppy/aws-s3's `./s3-client/CompanionS3.js` (src/gateway/page.ts;
 * the build fails if that module moves). Everything else is Uppy's. A gateway that binds no
 * checksum answers no `headers`, and the part is sent as before.
 */
import CompanionS3 from 'upload-saga:uppy-companion-s3';

/** Base64 of the SHA-256 of a blob's bytes (WebCrypto), as S3's `x-amz-checksum-sha256` wants it. */
export async function sha256Base64(blob) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  return btoa(String.fromCharCode(...digest));
}

export default class ChecksummedCompanionS3 extends CompanionS3 {
  async uploadPart({ key, uploadId, data, partNumber, onProgress, signal }) {
    const query = new URLSearchParams({ key, size: String(data.size), checksum: `sha256 ${await sha256Base64(data)}` });
    const response = await this._fetch(`/multipart/${encodeURIComponent(uploadId)}/${encodeURIComponent(partNumber)}?${query}`, {
      method: 'GET',
      signal,
    });
    const { url, headers = {} } = await response.json();
    await this.waitForOnline(signal);
    const xhr = await this.xhr({ url, method: 'PUT', data, onProgress, signal, headers });
    const etag = xhr.getResponseHeader('etag')?.replace(/^"+|"+$/g, '');
    if (!etag) throw new Error('S3 answered the part without an ETag: its CORS rules must expose the ETag header');
    return { etag };
  }
}
