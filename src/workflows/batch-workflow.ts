/**
 * The batch workflow: many files under one destination prefix, ONE durable orchestration with a
 * bounded history at any size (design: docs/explanation/batches.md).
 *
 * It walks the source page by page (a local activity lists the next page after a cursor), stores
 * each page's small files with one chunk activity (reserve, PutObjects with checksums, commit),
 * and starts a child upload workflow for each large file (multipart, resumable part by part). At
 * most `chunkConcurrency` chunks run at once. Every `chunksPerRun` chunks (or when the
 * server suggests it) it continues as new, carrying a small state: the cursor, counts, a bounded
 * failure list. The keys it wrote are not carried: each chunk's manifest in the bucket names them.
 *
 * Failure and cancellation: `independent` undoes the chunks that did not finish (their files are
 * listed as failed) and stops; `atomic` undoes every chunk of every run, so no object of the batch
 * and no reservation remains. Undo runs in a non-cancellable scope.
 *
 * Pause and resume (the `pause`/`resume` Updates of src/upload/pause.ts, through the gate of
 * pause-gate.ts): before it lists another page, and before it continues as new, a paused batch lets
 * its chunks in flight finish, signals its running child uploads to pause (`setPaused`), and holds
 * until resumed; then it signals them to resume. The pause is in history: it survives worker
 * restarts. Once every file is stored (nothing in flight, the listing done) a pause is refused.
 */
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  defineQuery,
  executeChild,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { UploadBatchChunkResult } from '../activities';
import {
  childUploadId,
  MAX_LISTED_FAILURES,
  type BatchCounts,
  type BatchFile,
  type BatchFileFailure,
  type BatchOutcomeKind,
  type BatchProgress,
  type BatchRequestWithDefaults,
  type BatchResult,
} from '../batch/batch-types';
import {
  BATCH_FINISH_NOT_CANCELLABLE_PATCH,
  BATCH_LISTS_FAILED_CHUNK_FILES_PATCH,
  BATCH_PAUSE_PATCH,
  BATCH_STOPPED_DELETES_MANIFESTS_PATCH,
} from '../patches';
import { setPausedSignal } from '../upload/pause';
import { UploadBucket, UploadKey, UploadOutcome, UploadPhase, UploadSizeBytes, UploadTenant } from '../upload/search-attributes';
import type { UploadRequestWithDefaults } from '../upload/request';
import { finishBatch, inspectBatch, listBatchPage, undoBatch, uploadBatchChunk } from './batch-steps';
import { createPauseGate } from './pause-gate';
import { uploadWorkflow } from './upload-workflow';

/** Files and bytes done of the totals, failures so far, phase and outcome of a batch. */
export const batchProgressQuery = defineQuery<BatchProgress>('batchProgress');

/** What a run hands the next one (continue-as-new). Bounded whatever the batch's size. */
export interface BatchCarriedState extends BatchCounts {
  run: number;
  filesTotal: number;
  bytesTotal: number;
  /** Listing cursor after the last page started; undefined at the start. */
  cursor?: string;
  /** Chunks started so far (numbered 0 … chunks − 1): names reservations and manifests. */
  chunks: number;
  /** Large files started as child uploads so far. */
  largeFiles: number;
  failures: BatchFileFailure[];
}

const formatMiB = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

/** The outcome of one unit of work in flight: a chunk or a child upload. */
type Settled =
  | { kind: 'chunk'; chunk: number; files: BatchFile[]; ok: true; result: UploadBatchChunkResult }
  | { kind: 'chunk'; chunk: number; files: BatchFile[]; ok: false; error: unknown }
  | { kind: 'child'; file: BatchFile; ok: true }
  | { kind: 'child'; file: BatchFile; ok: false; error: unknown };

/** The ApplicationFailure that says why (an activity's or child's failure wraps it). */
function applicationFailureIn(error: unknown): ApplicationFailure | undefined {
  for (let e = error; e instanceof Error; e = e.cause) if (e instanceof ApplicationFailure) return e;
  return undefined;
}

/** A file of a chunk that failed for good (and was undone), listed with the chunk's cause. */
function chunkFailureOf(file: BatchFile, error: unknown): BatchFileFailure {
  const cause = applicationFailureIn(error);
  return { path: file.path, key: file.key, type: cause?.type ?? 'Failed', message: cause?.message ?? String(error) };
}

function failureOf(file: BatchFile, error: unknown): BatchFileFailure {
  const cause = error instanceof ChildWorkflowFailure ? error.cause : error;
  const type = cause instanceof ApplicationFailure ? (cause.type ?? 'Failed') : isCancellation(cause) ? 'Cancelled' : 'Failed';
  return { path: file.path, key: file.key, type, message: cause instanceof Error ? cause.message : String(cause) };
}

/** Uploads a batch of files under one prefix (see the module comment); `carried` is the state a previous run handed on. */
export async function batchWorkflow(request: BatchRequestWithDefaults, carried?: BatchCarriedState): Promise<BatchResult> {
  const { workflowId } = workflowInfo();
  const { bucket, prefix } = request.destination;
  const progress: BatchProgress = {
    phase: carried ? 'upload' : 'inspect',
    outcome: 'running',
    filesDone: carried?.filesDone ?? 0,
    bytesDone: carried?.bytesDone ?? 0,
    filesFailed: carried?.filesFailed ?? 0,
    run: (carried?.run ?? 0) + 1,
    ...(carried ? { filesTotal: carried.filesTotal, bytesTotal: carried.bytesTotal } : {}),
  };
  const failures = [...(carried?.failures ?? [])];
  const fail = (failure: BatchFileFailure) => {
    progress.filesFailed++;
    if (failures.length < MAX_LISTED_FAILURES) failures.push(failure);
  };
  const showDetails = () =>
    setCurrentDetails(
      `${progress.pause?.paused ? `**paused**${progress.pause.held ? '' : ' (chunks in flight finishing)'}${progress.pause.reason ? ` (${progress.pause.reason})` : ''} at ${progress.phase}` : `**${progress.phase}**`} — ${progress.filesDone} of ${progress.filesTotal ?? '?'} files, ${formatMiB(progress.bytesDone)} of ${formatMiB(progress.bytesTotal ?? 0)}` +
        `${progress.filesFailed ? `, **${progress.filesFailed} failed**` : ''} → s3://${bucket}/${prefix} (${request.mode}, run ${progress.run})`,
    );
  const setPhase = (phase: BatchProgress['phase']) => {
    progress.phase = phase;
    upsertSearchAttributes([{ key: UploadPhase, value: phase }]);
    showDetails();
  };
  const setOutcome = (outcome: BatchOutcomeKind) => {
    progress.outcome = outcome;
    upsertSearchAttributes([{ key: UploadOutcome, value: outcome }]);
  };
  let listingDone = false;
  let stopped: unknown;
  const inFlight = new Map<string, Promise<Settled>>();

  // Handlers and the query issue no command; a run that is never paused replays unchanged.
  const gate = createPauseGate({
    refusal: () =>
      progress.outcome !== 'running' || progress.phase === 'compensating' || progress.phase === 'done'
        ? `the batch has ended or is being undone (${progress.outcome === 'running' ? progress.phase : progress.outcome})`
        : stopped !== undefined
          ? 'the batch is stopping'
          : listingDone && inFlight.size === 0
            ? 'the batch has stored every file and is finishing'
            : undefined,
    onChange: (state) => {
      // The search attribute changes with `paused` only; `held` shows in the details and the query.
      if (progress.pause?.paused !== state.paused)
        upsertSearchAttributes([{ key: UploadPhase, value: state.paused ? 'paused' : progress.phase }]);
      progress.pause = state;
      showDetails();
    },
  });
  setHandler(batchProgressQuery, () => {
    // A pause shows at once, before the batch holds: the gate's state, not the last one shown.
    const pause = gate.state();
    return { ...progress, ...(pause.paused || progress.pause ? { pause } : {}) };
  });

  if (!carried) {
    setPhase('inspect');
    const inspection = await inspectBatch(request).catch((err: unknown) => {
      // Nothing was written yet: nothing to undo.
      setPhase('done');
      setOutcome(isCancellation(err) ? 'cancelled' : 'failed');
      throw err;
    });
    progress.filesTotal = inspection.filesTotal;
    progress.bytesTotal = inspection.bytesTotal;
    upsertSearchAttributes([{ key: UploadSizeBytes, value: inspection.bytesTotal }]);
    setPhase('upload');
  }
  let cursor = carried?.cursor;
  let chunks = carried?.chunks ?? 0;
  let largeFiles = carried?.largeFiles ?? 0;
  /** Chunks started and not finished: what an independent batch undoes when it stops. */
  const unfinishedChunks = new Set<number>();
  /** Chunks that failed for good, with their files: an independent batch lists those files. */
  const failedChunks = new Map<number, { files: BatchFile[]; error: unknown }>();
  /** Workflow ids of the child uploads running now: told to pause and resume with the batch. */
  const runningChildren = new Set<string>();

  const settle = (outcome: Settled) => {
    if (outcome.kind === 'chunk') {
      if (outcome.ok) {
        unfinishedChunks.delete(outcome.chunk);
        progress.filesDone += outcome.result.filesStored;
        progress.bytesDone += outcome.result.bytesStored;
        outcome.result.failures.forEach(fail);
      } else {
        stopped ??= outcome.error;
        failedChunks.set(outcome.chunk, { files: outcome.files, error: outcome.error });
      }
    } else if (outcome.ok) {
      progress.filesDone++;
      progress.bytesDone += outcome.file.size;
    } else if (isCancellation(outcome.error)) stopped ??= outcome.error;
    else fail(failureOf(outcome.file, outcome.error));
    showDetails();
  };
  let waiting: Promise<void> | undefined;
  /** Settles the next unit of work that ends. Callers waiting at once share one wait, so a unit is settled once. */
  const waitForOne = () =>
    (waiting ??= (async () => {
      const [id, outcome] = await Promise.race([...inFlight].map(([id, p]) => p.then((o) => [id, o] as const)));
      inFlight.delete(id);
      settle(outcome);
    })().finally(() => {
      waiting = undefined;
    }));
  const drain = async () => {
    while (inFlight.size > 0) await waitForOne();
  };

  const startChunk = (files: BatchFile[]) => {
    const chunk = chunks++;
    unfinishedChunks.add(chunk);
    const running = uploadBatchChunk({
      tenant: request.tenant,
      batchId: request.batchId,
      mode: request.mode,
      bucket,
      chunk,
      files,
      checksumAlgorithm: request.checksumAlgorithm,
      contentType: request.contentType,
      fileConcurrency: request.fileConcurrency,
    }).then(
      (result): Settled => ({ kind: 'chunk', chunk, files, ok: true, result }),
      (error: unknown): Settled => ({ kind: 'chunk', chunk, files, ok: false, error }),
    );
    inFlight.set(`chunk-${chunk}`, running);
  };
  const startChild = (file: BatchFile) => {
    const uploadId = childUploadId(request.batchId, largeFiles++);
    const child: UploadRequestWithDefaults = {
      uploadId,
      tenant: request.tenant,
      source: { type: 'file', path: file.path },
      destination: { bucket, key: file.key },
      declaredSize: file.size,
      partSize: request.partSize,
      partConcurrency: 4,
      checksumAlgorithm: request.checksumAlgorithm,
      contentType: request.contentType,
      failIfExists: false,
      partsPerActivity: 512,
      // No batch mark: request metadata may not use the saga's `upload-saga-` keys. The child's object
      // carries the saga's stamp of its own upload (its delete gives its quota back), and no batch undo
      // looks for it (an atomic batch has no children).
      metadata: {},
      verify: 'checksums',
    };
    const childWorkflowId = `upload:${request.tenant}:${uploadId}`;
    runningChildren.add(childWorkflowId);
    const running = executeChild(uploadWorkflow, {
      workflowId: childWorkflowId,
      args: [child],
      staticSummary: `${file.path} → s3://${bucket}/${file.key} (batch ${request.batchId})`,
      typedSearchAttributes: [
        { key: UploadTenant, value: request.tenant },
        { key: UploadBucket, value: bucket },
        { key: UploadKey, value: file.key },
        { key: UploadPhase, value: 'inspect-source' },
        { key: UploadOutcome, value: 'running' },
      ],
    }).then(
      (): Settled => (runningChildren.delete(childWorkflowId), { kind: 'child', file, ok: true }),
      (error: unknown): Settled => (runningChildren.delete(childWorkflowId), { kind: 'child', file, ok: false, error }),
    );
    inFlight.set(`child-${uploadId}`, running);
  };

  /** Whether this run starts another page. */
  const nextPage = (startedThisRun: number) =>
    stopped === undefined && !listingDone && startedThisRun < request.chunksPerRun && !workflowInfo().continueAsNewSuggested;

  /** A pause the batch must act on: accepted, and the batch is not stopping anyway. */
  const pauseDue = () => gate.state().paused && stopped === undefined;
  let untilPaused: Promise<unknown> | undefined;
  /** Waits until a unit of work settles or a pause is due (one pending condition at most, no command). */
  const waitForOneOrPause = async () => {
    if (pauseDue()) return;
    untilPaused ??= condition(pauseDue).finally(() => {
      untilPaused = undefined;
    });
    await Promise.race([waitForOne(), untilPaused]);
  };
  /** Tells every running child to pause or resume; a child that ended meanwhile is skipped. */
  const signalChildren = (request: { paused: boolean; reason?: string }) =>
    Promise.all(
      [...runningChildren].map((id) =>
        getExternalWorkflowHandle(id)
          .signal(setPausedSignal, request)
          .catch(() => undefined),
      ),
    );
  /**
   * Returns at once unless a pause is due (paused, and not stopping anyway). Then: children are told to pause, the chunks in flight finish
   * (a chunk that fails stops the batch instead of holding), the batch holds until resumed and
   * tells the children to resume. Throws CancelledFailure when the batch is cancelled meanwhile.
   */
  const holdIfPaused = async () => {
    if (!pauseDue()) return;
    patched(BATCH_PAUSE_PATCH);
    await signalChildren({ paused: true, reason: gate.state().reason ?? `batch ${request.batchId} paused` });
    while (stopped === undefined && [...inFlight.keys()].some((id) => id.startsWith('chunk-'))) await waitForOne();
    if (stopped !== undefined) return;
    await gate.hold();
    await signalChildren({ paused: false });
  };

  try {
    for (let startedThisRun = 0; ; startedThisRun++) {
      await holdIfPaused();
      if (!nextPage(startedThisRun)) break;
      const page = await listBatchPage({
        source: request.source,
        prefix,
        ...(cursor !== undefined ? { cursor } : {}),
        maxFiles: request.filesPerChunk,
      });
      cursor = page.cursor;
      listingDone = page.cursor === undefined;
      page.failures.forEach(fail);
      const small = page.files.filter((f) => f.size <= request.partSize);
      if (small.length) startChunk(small);
      page.files.filter((f) => f.size > request.partSize).forEach(startChild);
      // A pause is acted on at once, not when the next unit of work ends.
      while (inFlight.size >= request.chunkConcurrency) {
        if (pauseDue()) await holdIfPaused();
        else await waitForOneOrPause();
      }
    }
    // The rest finishes; a pause accepted before every file started still holds (children paused).
    for (;;) {
      await holdIfPaused();
      if (inFlight.size === 0) break;
      await waitForOneOrPause();
    }
    // Nothing runs any more: a pause Update still waiting is answered, later ones are refused.
    if (listingDone) gate.close();
    if (stopped !== undefined) throw stopped;
    // A chunk may finish its files before it sees a cancel: the batch is cancelled all the same.
    if (CancellationScope.current().consideredCancelled && patched(BATCH_FINISH_NOT_CANCELLABLE_PATCH))
      throw new CancelledFailure(`batch ${request.batchId} was cancelled`);
  } catch (err) {
    // Undo what must not stay, whatever happens to this workflow meanwhile.
    await CancellationScope.nonCancellable(async () => {
      await drain();
      setPhase('compensating');
      if (request.mode === 'atomic') {
        await undoBatch({ tenant: request.tenant, batchId: request.batchId, bucket, allBelow: chunks });
      } else {
        if (unfinishedChunks.size > 0) {
          const undone = [...unfinishedChunks].sort((a, b) => a - b);
          await undoBatch({ tenant: request.tenant, batchId: request.batchId, bucket, chunks: undone });
        }
        // The files of the chunks that finished stay; their manifests are not needed any more.
        if (patched(BATCH_STOPPED_DELETES_MANIFESTS_PATCH))
          await finishBatch({ tenant: request.tenant, batchId: request.batchId, bucket, mode: 'independent', chunks });
      }
    });
    const cancelled = isCancellation(err) || isCancellation(stopped);
    if (request.mode === 'independent' && !cancelled && failedChunks.size > 0 && patched(BATCH_LISTS_FAILED_CHUNK_FILES_PATCH)) {
      // Their stored files were undone with them: each is a failed file of the batch, with the chunk's cause.
      for (const chunk of [...failedChunks.keys()].sort((a, b) => a - b)) {
        const { files, error } = failedChunks.get(chunk)!;
        files.forEach((file) => fail(chunkFailureOf(file, error)));
      }
    }
    setPhase('done');
    setOutcome(cancelled ? 'cancelled' : request.mode === 'atomic' ? 'compensated' : 'failed');
    if (cancelled) throw err;
    const cause = applicationFailureIn(err);
    throw ApplicationFailure.create({
      type: cause?.type ?? 'BatchFailed',
      nonRetryable: true,
      message:
        request.mode === 'atomic'
          ? `atomic batch ${request.batchId} failed and was undone: ${cause?.message ?? String(err)}`
          : `batch ${request.batchId} stopped: ${cause?.message ?? String(err)}; ${progress.filesDone} files stored stay, the chunks in flight were undone`,
      details: [{ ...progress, failures }],
      ...(err instanceof Error ? { cause: err } : {}),
    });
  }

  if (!listingDone) {
    const next: BatchCarriedState = {
      run: progress.run,
      filesTotal: progress.filesTotal ?? 0,
      bytesTotal: progress.bytesTotal ?? 0,
      ...(cursor !== undefined ? { cursor } : {}),
      chunks,
      largeFiles,
      filesDone: progress.filesDone,
      bytesDone: progress.bytesDone,
      filesFailed: progress.filesFailed,
      failures,
    };
    return continueAsNew<typeof batchWorkflow>(request, next);
  }
  // The pivot of an atomic batch (its reservations are committed here, and a commit is not taken
  // back): once started it runs to its end and the batch completes, whatever cancel arrives.
  const finish = () => finishBatch({ tenant: request.tenant, batchId: request.batchId, bucket, mode: request.mode, chunks });
  if (patched(BATCH_FINISH_NOT_CANCELLABLE_PATCH)) await CancellationScope.nonCancellable(finish);
  else await finish();
  setPhase('done');
  const outcome = progress.filesFailed > 0 ? 'partial' : 'completed';
  setOutcome(outcome);
  return {
    batchId: request.batchId,
    tenant: request.tenant,
    workflowId,
    bucket,
    prefix,
    mode: request.mode,
    outcome,
    filesTotal: progress.filesTotal ?? 0,
    bytesTotal: progress.bytesTotal ?? 0,
    filesDone: progress.filesDone,
    bytesDone: progress.bytesDone,
    filesFailed: progress.filesFailed,
    failures,
  };
}
