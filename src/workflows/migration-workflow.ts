/**
 * The migration workflow: every object under an S3 prefix copied under another prefix, ONE durable
 * orchestration with a bounded history at any size (design: docs/explanation/migration.md). Built
 * like the batch workflow (batch-workflow.ts), with two differences that keep its history small:
 *
 * - a page of the source is recorded as its bounds only (the key it starts after, its last key,
 *   counts): the chunk activity lists its range again when it runs, so a million objects leave no
 *   key in history beyond two per chunk;
 * - nothing is undone: a copied object is a verified copy, and a migration that stops (a store
 *   failure, a cancel) leaves it for the next run to skip. Failed objects are counted and listed
 *   (the first 1,000; every object is in the per-object report).
 *
 * Every `chunksPerRun` chunks (or when the server suggests it) it continues as new, carrying the
 * cursor and the counts. Pause (the `pause` Update, as for uploads): chunks in flight finish, no
 * new page starts until `resume`.
 */
import {
  ApplicationFailure,
  CancellationScope,
  continueAsNew,
  defineQuery,
  isCancellation,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CopyMigrationChunkResult } from '../activities';
import { MAX_LISTED_FAILURES } from '../batch/batch-types';
import {
  migrationReportPrefix,
  type MigrationCounts,
  type MigrationFailure,
  type MigrationOutcomeKind,
  type MigrationProgress,
  type MigrationRequestWithDefaults,
  type MigrationResult,
} from '../migration/migration-types';
import { UploadOutcome, UploadPhase, UploadSizeBytes } from '../upload/search-attributes';
import { copyMigrationChunk, inspectMigration, listMigrationPage } from './migration-steps';
import { createPauseGate } from './pause-gate';

/** Objects and bytes copied, skipped and failed of the totals, phase and outcome of a migration. */
export const migrationProgressQuery = defineQuery<MigrationProgress>('migrationProgress');

/** What a run hands the next one (continue-as-new). Bounded whatever the migration's size. */
export interface MigrationCarriedState extends MigrationCounts {
  run: number;
  objectsTotal: number;
  bytesTotal: number;
  /** The source key the next page starts after; undefined at the start. */
  cursor?: string;
  /** Chunks started so far (numbered 0 … chunks − 1): names reservations and reports. */
  chunks: number;
  failures: MigrationFailure[];
}

const formatMiB = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

/** The ApplicationFailure that says why (an activity's failure wraps it). */
function applicationFailureIn(error: unknown): ApplicationFailure | undefined {
  for (let e = error; e instanceof Error; e = e.cause) if (e instanceof ApplicationFailure) return e;
  return undefined;
}

/** Copies the objects under a source prefix (see the module comment); `carried` is the state a previous run handed on. */
export async function migrationWorkflow(request: MigrationRequestWithDefaults, carried?: MigrationCarriedState): Promise<MigrationResult> {
  const { workflowId } = workflowInfo();
  const { source, destination } = request;
  const progress: MigrationProgress = {
    phase: carried ? 'copy' : 'inspect',
    outcome: 'running',
    objectsCopied: carried?.objectsCopied ?? 0,
    bytesCopied: carried?.bytesCopied ?? 0,
    objectsSkipped: carried?.objectsSkipped ?? 0,
    bytesSkipped: carried?.bytesSkipped ?? 0,
    objectsFailed: carried?.objectsFailed ?? 0,
    run: (carried?.run ?? 0) + 1,
    ...(carried ? { objectsTotal: carried.objectsTotal, bytesTotal: carried.bytesTotal } : {}),
  };
  const failures = [...(carried?.failures ?? [])];
  const showDetails = () =>
    setCurrentDetails(
      `**${progress.phase}** — ${progress.objectsCopied + progress.objectsSkipped} of ${progress.objectsTotal ?? '?'} objects ` +
        `(${progress.objectsCopied} copied, ${formatMiB(progress.bytesCopied)}; ${progress.objectsSkipped} skipped)` +
        `${progress.objectsFailed ? `, **${progress.objectsFailed} failed**` : ''} s3://${source.bucket}/${source.prefix}` +
        `${source.profile ? ` (profile ${source.profile})` : ''} → s3://${destination.bucket}/${destination.prefix} (run ${progress.run})`,
    );
  const setPhase = (phase: MigrationProgress['phase']) => {
    progress.phase = phase;
    upsertSearchAttributes([{ key: UploadPhase, value: phase }]);
    showDetails();
  };
  const setOutcome = (outcome: MigrationOutcomeKind) => {
    progress.outcome = outcome;
    upsertSearchAttributes([{ key: UploadOutcome, value: outcome }]);
  };
  const gate = createPauseGate({
    refusal: () => (progress.phase === 'done' ? 'the migration has ended' : undefined),
    onChange: (state) => setPhase(state.held ? 'paused' : 'copy'),
  });
  // A pause shows at once, before the migration holds: the gate's state.
  setHandler(migrationProgressQuery, () => {
    const pause = gate.state();
    return { ...progress, ...(pause.paused ? { pause } : {}) };
  });

  if (!carried) {
    setPhase('inspect');
    const inspection = await inspectMigration(request).catch((err: unknown) => {
      setPhase('done');
      setOutcome(isCancellation(err) ? 'cancelled' : 'failed');
      gate.close();
      throw err;
    });
    progress.objectsTotal = inspection.objectsTotal;
    progress.bytesTotal = inspection.bytesTotal;
    upsertSearchAttributes([{ key: UploadSizeBytes, value: inspection.bytesTotal }]);
    setPhase('copy');
  }
  let cursor = carried?.cursor;
  let listingDone = false;
  let chunks = carried?.chunks ?? 0;
  const inFlight = new Map<number, Promise<{ chunk: number; result?: CopyMigrationChunkResult; error?: unknown }>>();
  let stopped: unknown;

  const waitForOne = async () => {
    const { chunk, result, error } = await Promise.race(inFlight.values());
    inFlight.delete(chunk);
    if (result) {
      progress.objectsCopied += result.objectsCopied;
      progress.bytesCopied += result.bytesCopied;
      progress.objectsSkipped += result.objectsSkipped;
      progress.bytesSkipped += result.bytesSkipped;
      progress.objectsFailed += result.failures.length;
      failures.push(...result.failures.slice(0, Math.max(0, MAX_LISTED_FAILURES - failures.length)));
    } else stopped ??= error;
    showDetails();
  };
  const drain = async () => {
    while (inFlight.size > 0) await waitForOne();
  };
  /** Drains and holds while paused: a held migration runs nothing. */
  const holdIfPaused = async () => {
    if (!gate.state().paused) return;
    await drain();
    if (stopped === undefined) await gate.hold();
  };

  try {
    for (
      let startedThisRun = 0;
      stopped === undefined && !listingDone && startedThisRun < request.chunksPerRun && !workflowInfo().continueAsNewSuggested;
      startedThisRun++
    ) {
      await holdIfPaused();
      if (stopped !== undefined) break;
      const page = await listMigrationPage({ source, ...(cursor !== undefined ? { cursor } : {}), maxObjects: request.objectsPerChunk });
      cursor = page.cursor;
      listingDone = page.cursor === undefined;
      if (page.last !== undefined) {
        const chunk = chunks++;
        inFlight.set(
          chunk,
          copyMigrationChunk({
            tenant: request.tenant,
            migrationId: request.migrationId,
            source,
            destination,
            chunk,
            ...(page.after !== undefined ? { after: page.after } : {}),
            last: page.last,
            checksumAlgorithm: request.checksumAlgorithm,
            objectConcurrency: request.objectConcurrency,
          }).then(
            (result) => ({ chunk, result }),
            (error: unknown) => ({ chunk, error }),
          ),
        );
      }
      while (inFlight.size >= request.chunkConcurrency) await waitForOne();
    }
    await drain();
    if (stopped !== undefined) throw stopped;
    await holdIfPaused();
  } catch (err) {
    // Chunks in flight end first (a cancelled one settles its reservation), whatever happens to this workflow meanwhile.
    await CancellationScope.nonCancellable(drain);
    const cancelled = isCancellation(err) || isCancellation(stopped);
    setPhase('done');
    setOutcome(cancelled ? 'cancelled' : 'failed');
    gate.close();
    if (cancelled) throw err;
    const cause = applicationFailureIn(err);
    throw ApplicationFailure.create({
      type: cause?.type ?? 'MigrationFailed',
      nonRetryable: true,
      message: `migration ${request.migrationId} stopped: ${cause?.message ?? String(err)}; ${progress.objectsCopied} objects copied stay (a new run skips them)`,
      details: [{ ...progress, failures }],
      ...(err instanceof Error ? { cause: err } : {}),
    });
  }

  /** What the objects came to so far: carried into the next run, and the result's counts. */
  const objectCounts = () => ({
    objectsCopied: progress.objectsCopied,
    bytesCopied: progress.bytesCopied,
    objectsSkipped: progress.objectsSkipped,
    bytesSkipped: progress.bytesSkipped,
    objectsFailed: progress.objectsFailed,
  });
  if (!listingDone) {
    const next: MigrationCarriedState = {
      run: progress.run,
      objectsTotal: progress.objectsTotal ?? 0,
      bytesTotal: progress.bytesTotal ?? 0,
      ...(cursor !== undefined ? { cursor } : {}),
      chunks,
      ...objectCounts(),
      failures,
    };
    return continueAsNew<typeof migrationWorkflow>(request, next);
  }
  const outcome = progress.objectsFailed > 0 ? 'partial' : 'completed';
  setPhase('done');
  setOutcome(outcome);
  gate.close();
  return {
    migrationId: request.migrationId,
    tenant: request.tenant,
    workflowId,
    source,
    destination,
    outcome,
    objectsTotal: progress.objectsTotal ?? 0,
    bytesTotal: progress.bytesTotal ?? 0,
    ...objectCounts(),
    failures,
    reportPrefix: migrationReportPrefix(request.tenant, request.migrationId),
  };
}
