/**
 * list-batch-page: the next page of a batch's source after a cursor (see batch-listing.ts). A
 * short local activity: its page is recorded in history once and is the input of one chunk.
 */
import type { BatchRequestWithDefaults } from '../../batch/batch-types';
import { listPage, type ListingPage } from './batch-listing';

export interface ListBatchPageInput {
  source: BatchRequestWithDefaults['source'];
  prefix: string;
  cursor?: string;
  maxFiles: number;
}

export function listBatchPageActivity() {
  return async function listBatchPage(input: ListBatchPageInput): Promise<ListingPage> {
    return listPage(input.source, input.prefix, input.cursor, input.maxFiles);
  };
}
