/** The failure types a batch may end with; per-file failures use the upload's types (src/upload/errors.ts). */
export const BatchFailureType = {
  InvalidBatchRequest: 'InvalidBatchRequest',
  /** The source lists no file (an empty directory, a filter that matches nothing, an empty manifest). */
  BatchEmpty: 'BatchEmpty',
  /** A manifest line is not a JSON object with a string `path` (and an optional string `key`). */
  BatchManifestInvalid: 'BatchManifestInvalid',
  /** Two sources map to one destination key. */
  BatchDuplicateKey: 'BatchDuplicateKey',
  /** An atomic batch holds a file larger than its `partSize` (see docs/not-done.md). */
  BatchFileTooLarge: 'BatchFileTooLarge',
} as const;
export type BatchFailureType = (typeof BatchFailureType)[keyof typeof BatchFailureType];
