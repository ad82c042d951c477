/**
 * Follows a running upload to its end: reports its progress to the bar while awaiting its result,
 * from the progress bus when one is given (`UPLOAD_SAGA_PROGRESS_REDIS_URL`), else by polling.
 *
 * The bus: workers publish each upload activity's phase and upload-parts' bytes with every
 * heartbeat (src/progress/activity-progress.ts). With it, the workflow is read once for the
 * totals, then every observation updates the bar as it arrives — no polling. If subscribing fails
 * (Redis away), the watch polls as without a bus. The result still comes from the workflow.
 *
 * Why polling without it: progress lives in the workflow (a query) plus the heartbeat of the batch in flight
 * (`UploadHandle.progress()` merges both), and neither pushes updates. Polling every ~500 ms is
 * cheap for the server and current enough for a person. A failed poll is not an error — the query
 * can fail while no worker is polling or the workflow is being replayed — the next poll retries;
 * only the result decides how the command ends.
 *
 * Why each call gets its own AbortSignal: when the caller stops watching (Ctrl-C) it closes the
 * connection next, and a call still in flight on a closed channel makes the Temporal client's
 * retry timer throw outside any promise. So every call runs under a signal the stop cancels. The
 * client never removes the listener it adds to a call's signal, hence one short-lived signal per
 * call instead of one long-lived signal collecting a listener every 500 ms.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LiveProgress, UploadHandle } from '../client';
import type { UploadResult } from '../upload/outcome';
import type { ProgressBus } from '../progress/bus';
import type { ProgressObservation } from '../progress/view';

/** What {@link watchUpload} reports progress to; an {@link UploadProgressBar} fits. */
export interface ProgressSink {
  update(progress: LiveProgress): void;
  finish(size: number): void;
  stop(): void;
}

/** Runs client calls under an abort signal: a Temporal `Client` or `Connection` fits. */
export interface AbortScope {
  withAbortSignal<R>(signal: AbortSignal, fn: () => Promise<R>): Promise<R>;
}

/** Options of {@link watchUpload}. */
export interface WatchUploadOptions {
  /** Receives each poll's progress. @default none (just await the result) */
  sink?: ProgressSink;
  /** Time between polls. @default 500 ms */
  intervalMs?: number;
  /** Stop watching: cancels the calls in flight and rejects with the signal's reason. @default never */
  stop?: AbortSignal;
  /** Makes `stop` cancel calls in flight (pass the Temporal client). @default calls are left to finish */
  scope?: AbortScope;
  /**
   * Follow progress on this bus instead of polling: the upload's observations (its tenant and
   * upload id). Not closed by the watch. @default undefined (polling every `intervalMs`)
   */
  bus?: { bus: ProgressBus; tenant: string; uploadId: string };
}

/** The progress after an observation from the bus: phase and bytes as observed, bytes never going back while running. */
export function applyObservation(progress: LiveProgress, observation: ProgressObservation): LiveProgress {
  const next = { ...progress };
  if (observation.phase) next.phase = observation.phase;
  if (observation.outcome) next.outcome = observation.outcome;
  if (observation.totalBytes !== undefined) next.totalBytes = observation.totalBytes;
  if (observation.bytes !== undefined && observation.bytes > next.bytesDone) next.bytesDone = observation.bytes;
  return next;
}

/** Runs `fn` under a fresh signal that aborts when `stop` does. */
async function cancellable<R>(scope: AbortScope | undefined, stop: AbortSignal | undefined, fn: () => Promise<R>): Promise<R> {
  if (!scope || !stop) return fn();
  const call = new AbortController();
  const onStop = () => call.abort(stop.reason);
  stop.addEventListener('abort', onStop, { once: true });
  try {
    return await scope.withAbortSignal(call.signal, fn);
  } finally {
    stop.removeEventListener('abort', onStop);
  }
}

/**
 * Awaits the upload's result, reporting progress meanwhile.
 * @throws whatever `handle.result()` throws (`UploadFailedError` with the saga's report), or
 *   `stop.reason` once `stop` is aborted
 */
export async function watchUpload(
  handle: Pick<UploadHandle, 'result' | 'progress'>,
  options: WatchUploadOptions = {},
): Promise<UploadResult> {
  const { sink, scope, stop } = options;
  const intervalMs = options.intervalMs ?? 500;
  stop?.throwIfAborted();
  const done = new AbortController();
  const onStop = () => done.abort();
  stop?.addEventListener('abort', onStop, { once: true });

  const follow = async (bus: NonNullable<WatchUploadOptions['bus']>): Promise<boolean> => {
    let current: LiveProgress | undefined;
    const early: ProgressObservation[] = [];
    const onObservation = (observation: ProgressObservation) => {
      if (done.signal.aborted) return;
      if (!current) return void early.push(observation);
      current = applyObservation(current, observation);
      sink?.update(current);
    };
    let unsubscribe: () => Promise<void>;
    try {
      unsubscribe = await bus.bus.subscribe(bus.tenant, bus.uploadId, onObservation);
    } catch {
      return false; // no bus: poll instead
    }
    done.signal.addEventListener('abort', () => void unsubscribe().catch(() => undefined), { once: true });
    // Subscribed first, read second: nothing between the read and the subscription is missed.
    let base: LiveProgress = {
      phase: 'inspect-source',
      outcome: 'running',
      partsUploaded: 0,
      bytesUploaded: 0,
      batchesDone: 0,
      bytesDone: 0,
      partsDone: 0,
    };
    try {
      base = await cancellable(scope, done.signal, () => handle.progress());
    } catch {
      // The bus alone, from its next observation.
    }
    if (done.signal.aborted) return true;
    current = early.splice(0).reduce(applyObservation, base);
    sink?.update(current);
    return true;
  };

  const poll = async () => {
    if (options.bus && (await follow(options.bus))) return;
    while (!done.signal.aborted) {
      try {
        const progress = await cancellable(scope, done.signal, () => handle.progress());
        if (!done.signal.aborted) sink?.update(progress);
      } catch {
        // No answer this time (no worker polling yet, replay in progress): try again next tick.
      }
      await sleep(intervalMs, undefined, { signal: done.signal }).catch(() => undefined);
    }
  };
  if (sink) void poll();

  const stopped = new Promise<never>((_, reject) => {
    if (stop) done.signal.addEventListener('abort', () => stop.aborted && reject(stop.reason), { once: true });
  });
  try {
    const result = await Promise.race([cancellable(scope, done.signal, () => handle.result()), stopped]);
    done.abort();
    sink?.finish(result.size);
    return result;
  } catch (error) {
    done.abort();
    sink?.stop();
    throw error;
  } finally {
    stop?.removeEventListener('abort', onStop);
  }
}
