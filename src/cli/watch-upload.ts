/**
 * Follows a running upload to its end: polls its progress for the bar while awaiting its result.
 *
 * Why polling: progress lives in the workflow (a query) plus the heartbeat of the batch in flight
 * (`UploadHandle.progress()` merges both), and neither pushes updates. Polling every ~500 ms is
 * cheap for the server and current enough for a person. A failed poll is not an error — the query
 * can fail while no worker is polling or the workflow is being replayed — the next poll retries;
 * only the result decides how the command ends.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LiveProgress, UploadHandle } from '../client';
import type { UploadResult } from '../upload/outcome';

/** What {@link watchUpload} reports progress to; an {@link UploadProgressBar} fits. */
export interface ProgressSink {
  update(progress: LiveProgress): void;
  finish(size: number): void;
  stop(): void;
}

/** Options of {@link watchUpload}. */
export interface WatchUploadOptions {
  /** Receives each poll's progress. @default none (just await the result) */
  sink?: ProgressSink;
  /** Time between polls. @default 500 ms */
  intervalMs?: number;
}

/**
 * Awaits the upload's result, reporting progress meanwhile.
 * @throws whatever `handle.result()` throws (`UploadFailedError` with the saga's report)
 */
export async function watchUpload(handle: Pick<UploadHandle, 'result' | 'progress'>, options: WatchUploadOptions = {}): Promise<UploadResult> {
  const { sink } = options;
  const intervalMs = options.intervalMs ?? 500;
  const stopPolling = new AbortController();

  const poll = async () => {
    while (!stopPolling.signal.aborted) {
      try {
        const progress = await handle.progress();
        if (!stopPolling.signal.aborted) sink?.update(progress);
      } catch {
        // No answer this time (no worker polling yet, replay in progress): try again next tick.
      }
      await sleep(intervalMs, undefined, { signal: stopPolling.signal }).catch(() => undefined);
    }
  };
  if (sink) void poll();

  try {
    const result = await handle.result();
    stopPolling.abort();
    sink?.finish(result.size);
    return result;
  } catch (error) {
    stopPolling.abort();
    sink?.stop();
    throw error;
  }
}
