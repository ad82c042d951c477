/**
 * Pushed progress on the presigned path: after each part S3 accepted, the page tells the gateway
 * (`POST {endpoint}/s3/multipart/:uploadId/:partNumber/done?key=` with `{ ETag, size }`), which
 * checks the claim against ListParts and shows it to every watcher at once, instead of finding it
 * by polling S3.
 *
 * Why it is built this way: @uppy/aws-s3 emits `s3-multipart:part-uploaded` with the part's number
 * and ETag after each PUT; listening to it is all the page needs, and Uppy's own uploader (pause,
 * retry, resume from ListParts after a reload) stays untouched. The part's size follows the rule
 * @uppy/aws-s3 cuts files by when no `getChunkSize` is given — the same rule the gateway derives
 * part sizes from. The last part is not reported: Uppy completes the upload right after it, and the
 * complete request carries it (a report racing it would find the upload no longer receiving parts).
 * A report is advisory: one that fails is dropped (the gateway still learns the part at complete,
 * and its progress stream falls back to polling), and a gateway without the route (404) is not
 * asked again.
 */

const MiB = 1024 * 1024;

/** The size of every part but the last: @uppy/aws-s3's rule without `getChunkSize` (and S3's limits). */
export function partSizeOf(fileSize) {
  return Math.max(5 * MiB, Math.ceil(fileSize / 10_000));
}

/** How many parts a file of `fileSize` bytes is cut into (at least one). */
export function partCountOf(fileSize) {
  return Math.max(1, Math.ceil(fileSize / partSizeOf(fileSize)));
}

/** The byte count of part `partNumber` (1-based) of a file of `fileSize` bytes. */
export function partBytesOf(fileSize, partNumber) {
  const partSize = partSizeOf(fileSize);
  return Math.max(0, Math.min(partSize, fileSize - (partNumber - 1) * partSize));
}

/**
 * Reports each part @uppy/aws-s3 finished to the gateway.
 * @param uppy the Uppy instance
 * @param endpoint () => the Companion endpoint the AwsS3 plugin was given, or undefined
 * @returns a function that stops reporting
 */
export function reportFinishedParts(uppy, endpoint) {
  let supported = true;
  const onPart = (file, part) => {
    const base = endpoint();
    const state = uppy.getFile(file.id)?.s3Multipart;
    if (!supported || !base || !state || part.PartNumber >= partCountOf(file.size)) return;
    const url = `${base}/s3/multipart/${encodeURIComponent(state.uploadId)}/${part.PartNumber}/done?${new URLSearchParams({ key: state.key })}`;
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ETag: part.ETag, size: partBytesOf(file.size, part.PartNumber) }),
    })
      .then((response) => {
        if (response.status === 404) supported = false;
        else if (!response.ok) uppy.log(`[page] part ${part.PartNumber} report refused: HTTP ${response.status}`, 'warning');
      })
      .catch((err) => uppy.log(`[page] part ${part.PartNumber} report failed: ${err}`, 'warning'));
  };
  uppy.on('s3-multipart:part-uploaded', onPart);
  return () => uppy.off('s3-multipart:part-uploaded', onPart);
}
