/**
 * The upload workflow: the flagship use of the saga engine.
 *
 * It holds no bytes and no part manifest — S3 (ListParts) is the source of truth for parts — so
 * its history stays a few events per batch of parts whatever the file size. It tells people what
 * is happening: a phase search attribute, live "current details" in the Web UI, a progress query,
 * and on failure one failure naming the step, the cause and each compensation's outcome.
 */
import { multipartUploadIdOf, requireMultipartUploadId, type CarriesMultipartUploadId } from '../upload/wire-names';
import { stagingPrefixOf } from '../upload/staging';
import {
  defineQuery,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  patched,
  CancelledFailure,
  ApplicationFailure,
  condition,
  sleep,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { DeleteObjectInput, PutObjectFailureDetails, PutObjectResult, UploadActivities } from '../activities';
import type { CompleteUploadResult } from '../activities/complete-upload';
import {
  LOCAL_LISTING_VERIFY_PATCH,
  LOCAL_QUOTA_STEPS_FOLDED_PHASES_PATCH,
  LOCAL_SHORT_STEPS_PATCH,
  QUOTA_STEPS_AS_ACTIVITIES_PATCH,
  QUOTA_WAIT_PATCH,
  SMALL_FILE_ONE_PUT_PATCH,
} from '../patches';
import { QUOTA_WAIT_EXPIRED, QUOTA_WAIT_POLL_MS, quotaFreedSignal } from '../upload/pause';
import { createPauseGate } from './pause-gate';
import { Saga, type SagaState, type StepOutcome } from '../saga/workflow';
import { ASSUMED_STORE_CHECKSUMS, multipartChecksums } from '../upload/integrity';
import { storesInOnePut } from '../upload/one-put';
import { partBatches } from '../upload/part-plan';
import type { UploadRequestWithDefaults } from '../upload/request';
import { describeSource } from '../upload/request-types';
import type { UploadOutcomeKind, UploadPhase, UploadProgress, UploadResult } from '../upload/outcome';
import { UploadOutcome, UploadPhase as UploadPhaseAttribute, UploadSizeBytes } from '../upload/search-attributes';
import { endedFailure, uploadMetricsSink } from '../metrics/upload-sinks';
import { failureReportOf, uploadEvents } from './upload-notifications';
import {
  compensatingDetails,
  completedDetails,
  endedDetails,
  failureOutcome,
  mergedResult,
  notifyCompletedResult,
  notifyEnded,
} from './upload-ending';
import {
  phaseIsFolded,
  uploadSteps,
  uploadStepsWithLocalInspectAndNotify,
  uploadStepsWithLocalListingVerify,
  uploadStepsWithLocalQuotaSteps,
  uploadStepsWithLocalShortSteps,
  verifyOnlyLists,
  withOnePutSteps,
  type UploadSagaSteps,
} from './upload-steps';

export const progressQuery = defineQuery<UploadProgress>('progress');
export const sagaStateQuery = defineQuery<SagaState>('sagaState');

const formatGiB = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)} GiB`;

export async function uploadWorkflow(request: UploadRequestWithDefaults): Promise<UploadResult> {
  const { workflowId } = workflowInfo();
  // A request that did not come through the client may be anything (null, no destination, …):
  // inspect-source rejects it with InvalidUploadRequest, and until then nothing here may throw on
  // it — an exception in workflow code would retry the workflow task forever instead of failing.
  const { bucket, key } = request?.destination ?? ({} as UploadRequestWithDefaults['destination']);
  const sourceSummary = (() => {
    try {
      return describeSource(request.source);
    } catch {
      return 'an invalid source';
    }
  })();
  const progress: UploadProgress = { phase: 'inspect-source', outcome: 'running', partsUploaded: 0, bytesUploaded: 0, batchesDone: 0 };
  const timings: Record<string, number> = {};
  let stepStartedAt = Date.now();
  // Metrics through a sink: no command, no history event, not called during replay (see upload-sinks.ts).
  const metrics = uploadMetricsSink();
  metrics.started('worker');

  // Search-attribute updates. Under the folded-phases patch an update marked `fold` waits and is
  // merged into the next one that is not (see phaseIsFolded in upload-steps.ts); before it, each
  // is its own command, as recorded histories expect.
  let foldPhases = false;
  const pendingAttributes = new Map<string, SearchAttributeUpdatePair>();
  const upsert = (pair: SearchAttributeUpdatePair, fold: boolean) => {
    if (!foldPhases) return upsertSearchAttributes([pair]);
    pendingAttributes.set(pair.key.name, pair);
    if (fold) return;
    upsertSearchAttributes([...pendingAttributes.values()]);
    pendingAttributes.clear();
  };

  // Called at every step start, including each batch of parts: only a change of phase counts.
  const setPhase = (phase: UploadPhase) => {
    if (progress.phase === phase && phase !== 'inspect-source') return;
    const now = Date.now();
    if (progress.phase !== phase) timings[progress.phase] = (timings[progress.phase] ?? 0) + (now - stepStartedAt);
    stepStartedAt = now;
    progress.phase = phase;
    // Once the outcome is set, UploadPhase stays `done`: a failure webhook sent afterwards shows in
    // the current details only (before the folded-phases patch it turned the phase back to notify).
    upsert({ key: UploadPhaseAttribute, value: phase }, phaseIsFolded(phase, request) || progress.outcome !== 'running');
    setCurrentDetails(`**${phase}** — s3://${bucket}/${key}`);
  };
  const setOutcome = (outcome: UploadOutcomeKind) => {
    progress.outcome = outcome;
    upsert({ key: UploadOutcome, value: outcome }, false);
  };

  // Versioning patches: runs started before each one replay with the steps they started with.
  // The newest patch is asked first: a new run records only its marker (each patch check of a new
  // run is a marker and a search-attribute update); older runs do not have it and go on to theirs.
  const onePut = patched(SMALL_FILE_ONE_PUT_PATCH);
  const localListingVerify = onePut || patched(LOCAL_LISTING_VERIFY_PATCH);
  foldPhases = localListingVerify || patched(LOCAL_QUOTA_STEPS_FOLDED_PHASES_PATCH);
  const steps = localListingVerify
    ? verifyOnlyLists(request)
      ? uploadStepsWithLocalListingVerify
      : uploadStepsWithLocalQuotaSteps
    : foldPhases
      ? uploadStepsWithLocalQuotaSteps
      : !patched(LOCAL_SHORT_STEPS_PATCH)
        ? uploadSteps
        : patched(QUOTA_STEPS_AS_ACTIVITIES_PATCH)
          ? uploadStepsWithLocalInspectAndNotify
          : uploadStepsWithLocalShortSteps;
  const saga = new Saga<UploadActivities, UploadSagaSteps>(withOnePutSteps(steps), {
    // Runs under the folded-phases patch started after the pivot patch: no need to ask for it.
    ...(foldPhases ? { shieldPivot: true as const } : {}),
    onStepStarted: (step) => setPhase(step as UploadPhase),
    onCompensationStarted: (steps) => {
      setPhase('compensating');
      setCurrentDetails(compensatingDetails(steps, bucket, key));
    },
  });
  setHandler(progressQuery, () => {
    // A pause shows at once, before the workflow holds: the gate's state, not the last one shown.
    const pause = gate.state();
    return { ...progress, ...(pause.paused || progress.pause ? { pause } : {}) };
  });
  setHandler(sagaStateQuery, () => saga.state());

  // Pause: the workflow holds before each batch and step until its pivot (see pause-gate.ts).
  // Handlers and the query issue no command; a run that is never paused replays unchanged.
  const gate = createPauseGate({
    refusal: () =>
      progress.outcome !== 'running' || progress.phase === 'compensating' || progress.phase === 'done'
        ? `the upload has ended or is being undone (${progress.outcome === 'running' ? progress.phase : progress.outcome})`
        : pivotStarted
          ? `the upload is past its point of no return (${progress.phase})`
          : undefined,
    onChange: (state) => {
      // The search attribute changes with `paused` only; `held` shows in the details and the query.
      if (progress.pause?.paused !== state.paused)
        upsert({ key: UploadPhaseAttribute, value: state.paused ? 'paused' : progress.phase }, false);
      progress.pause = state;
      setCurrentDetails(
        state.paused
          ? `**paused**${state.held ? '' : ' (parts in flight finishing)'} at ${progress.phase}${state.reason ? ` — ${state.reason}` : ''} — s3://${bucket}/${key}`
          : `**${progress.phase}** (resumed) — s3://${bucket}/${key}`,
      );
    },
  });
  let pivotStarted = false;
  /** Holds while paused, then closes the gate: from here on the upload cannot be paused. */
  const beforePivot = async () => {
    await gate.hold();
    pivotStarted = true;
    gate.close();
  };
  // A tenant's ledger wakes uploads waiting for quota when space is given back.
  let quotaFreed = false;
  setHandler(quotaFreedSignal, () => {
    quotaFreed = true;
  });

  const event = uploadEvents({ workflowId, uploadId: request?.uploadId, tenant: request?.tenant, bucket, key });

  try {
    const result = await saga.execute(async () => {
      const inspection = await saga.run('inspect-source', [request], { summary: `inspect ${sourceSummary}` });
      const { plan } = inspection;
      progress.totalBytes = plan.size;
      progress.totalParts = plan.partCount;
      upsert({ key: UploadSizeBytes, value: plan.size }, true);

      const reservation = { tenant: request.tenant, uploadId: request.uploadId };
      if (request.onQuota === 'wait') {
        // Waits for quota instead of failing (see reserveOrWait); the ledger may wake it.
        const startedWaitingAt = Date.now();
        const deadline = startedWaitingAt + (request.quotaWaitMs ?? DEFAULT_QUOTA_WAIT_MS);
        for (;;) {
          try {
            await saga.run('reserve-space', [{ ...reservation, bytes: plan.size, wakeWorkflowId: workflowId }], {
              summary: `reserve ${plan.size} bytes for tenant ${request.tenant} (waits for quota)`,
              compensateWith: () => [reservation],
            });
            break;
          } catch (err) {
            const refusal = quotaRefusalOf(err);
            if (refusal === undefined) throw err;
            patched(QUOTA_WAIT_PATCH);
            const left = deadline - Date.now();
            if (left <= 0) {
              throw ApplicationFailure.create({
                type: QUOTA_WAIT_EXPIRED,
                nonRetryable: true,
                message: `waited ${Math.round((Date.now() - startedWaitingAt) / 1000)} s for quota, until the deadline (onQuota "wait"): ${refusal}`,
              });
            }
            if (!progress.waitingForQuota) {
              progress.waitingForQuota = {
                since: new Date(startedWaitingAt).toISOString(),
                deadline: new Date(deadline).toISOString(),
                reason: refusal,
              };
              upsert({ key: UploadPhaseAttribute, value: 'waiting-for-quota' }, false);
            }
            progress.waitingForQuota.reason = refusal;
            setCurrentDetails(`**waiting for quota** until ${progress.waitingForQuota.deadline}: ${refusal} — s3://${bucket}/${key}`);
            quotaFreed = false;
            await condition(() => quotaFreed, Math.min(left, QUOTA_WAIT_POLL_MS));
          }
        }
        if (progress.waitingForQuota) {
          delete progress.waitingForQuota;
          upsert({ key: UploadPhaseAttribute, value: progress.phase }, false);
        }
      } else {
        await saga.run('reserve-space', [{ ...reservation, bytes: plan.size }], {
          summary: `reserve ${plan.size} bytes for tenant ${request.tenant}`,
          compensateWith: () => [reservation],
        });
      }

      // Decided once, from the inspection recorded in history: copy server-side or stream, and the
      // checksum configuration that goes with it. Only activity arguments depend on it, so runs
      // recorded before S3-object sources (no `transfer`: stream) replay unchanged.
      const transfer = inspection.transfer ?? 'stream';
      const store = inspection.storeChecksums ?? ASSUMED_STORE_CHECKSUMS;
      const checksums = multipartChecksums(request, transfer, store);
      let stored: Pick<CompleteUploadResult, 'etag' | 'versionId' | 'checksum'>;
      let sha256: string | undefined;
      if (onePut && storesInOnePut(plan, transfer, store.additional)) {
        // The small-file fast path: one PutObject carrying the checksum, then verify (the pivot).
        await gate.hold();
        const putStartedAt = Date.now();
        const put = await saga.run(
          'put-object',
          [
            {
              bucket,
              key,
              source: request.source,
              sourceVersion: inspection.sourceVersion,
              size: plan.size,
              checksumAlgorithm: checksums.algorithm ?? request.checksumAlgorithm,
              ...(request.expectedChecksum ? { expectedChecksum: request.expectedChecksum } : {}),
              failIfExists: request.failIfExists,
              contentType: request.contentType,
              metadata: request.metadata,
            },
          ],
          {
            summary: `put s3://${bucket}/${key} (${plan.size} bytes, one request)${request.failIfExists ? ' if absent' : ''}`,
            compensateWith: (outcome) => [{ bucket, key, ...putCompensationOf(outcome, putStartedAt) }],
          },
        );
        progress.batchesTotal = 1;
        progress.batchesDone = 1;
        progress.partsUploaded = 1;
        progress.bytesUploaded = plan.size;
        // One durable point between the write and the commit: this workflow task ends here, so the
        // markers of reserve-space and put-object are in history before commit-quota can run. A
        // workflow task retried after the commit (a worker killed, a task timed out) then replays
        // them instead of reserving again, which the ledger refuses once the upload is committed.
        await sleep(1);
        await beforePivot();
        await saga.run(
          'verify-object',
          [
            {
              bucket,
              key,
              stored: { etag: put.etag, ...(put.versionId ? { versionId: put.versionId } : {}), checksum: put.checksum },
              size: plan.size,
              source: request.source,
              sourceVersion: inspection.sourceVersion,
              rereadSource: request.verify === 'reread',
            },
          ],
          { summary: `verify s3://${bucket}/${key} against the source` },
        );
        stored = put;
        sha256 = put.sha256;
      } else {
        const batches = partBatches(plan.partCount, request.partsPerActivity);
        progress.batchesTotal = batches.length;
        let multipartUploadId: string | undefined;
        const fingerprints: { firstPart: number; lastPart: number; checksumFingerprint: string }[] = [];
        const uploadStartedAt = Date.now();
        // Recorded heartbeats and failure details may name S3's id `uploadId`: read either name (see multipartUploadIdOf).
        const multipartUploadIdFromFailure = (outcome: StepOutcome<unknown>): string | undefined => {
          if (outcome.status !== 'failed') return undefined;
          const candidates = [outcome.lastHeartbeatDetails, ...(outcome.failureDetails ?? [])];
          for (const c of candidates) {
            const id = multipartUploadIdOf(c as CarriesMultipartUploadId | undefined);
            if (id !== undefined) return id;
          }
          return undefined;
        };
        for (const batch of batches) {
          // A batch that stopped because the upload was paused runs again once resumed: it skips
          // the parts S3 already has.
          let done: Awaited<ReturnType<UploadActivities['uploadParts']>>;
          do {
            await gate.hold();
            done = await saga.run(
              'upload-parts',
              [
                {
                  bucket,
                  key,
                  multipartUploadId,
                  source: request.source,
                  sourceVersion: inspection.sourceVersion,
                  plan,
                  firstPart: batch.firstPart,
                  lastPart: batch.lastPart,
                  partConcurrency: request.partConcurrency,
                  ...(checksums.algorithm ? { checksumAlgorithm: checksums.algorithm } : {}),
                  ...(checksums.type ? { checksumType: checksums.type } : {}),
                  transfer,
                  contentType: request.contentType,
                  metadata: request.metadata,
                },
              ],
              {
                summary: `${transfer === 'server-side-copy' ? 'copy parts server-side' : 'upload parts'} ${batch.firstPart}–${batch.lastPart} of ${plan.partCount}`,
                compensateWith: (outcome) => {
                  const known = multipartUploadId ?? multipartUploadIdFromFailure(outcome);
                  return [
                    {
                      bucket,
                      key,
                      ...(known ? { multipartUploadId: known } : { initiatedAfterMs: uploadStartedAt - 5_000 }),
                      stagingPrefix: stagingPrefixOf(request.tenant, request.uploadId),
                    },
                  ];
                },
              },
            );
            // Recorded results may name S3's id `uploadId`: read either name (see multipartUploadIdOf).
            multipartUploadId = requireMultipartUploadId(done, 'uploadParts result');
            progress.multipartUploadId = multipartUploadId;
          } while (done.paused);
          fingerprints.push({ ...batch, checksumFingerprint: done.checksumFingerprint });
          progress.batchesDone++;
          progress.partsUploaded += batch.lastPart - batch.firstPart + 1;
          progress.bytesUploaded += done.batchBytes;
          setCurrentDetails(
            `**upload-parts** — ${progress.partsUploaded} of ${plan.partCount} parts, ${formatGiB(progress.bytesUploaded)} of ${formatGiB(plan.size)} → s3://${bucket}/${key}`,
          );
        }
        const openedMultipartUploadId = multipartUploadId!;

        await gate.hold();
        const verified = await saga.run(
          'verify',
          [
            {
              bucket,
              key,
              multipartUploadId: openedMultipartUploadId,
              source: request.source,
              sourceVersion: inspection.sourceVersion,
              plan,
              ...(checksums.algorithm ? { checksumAlgorithm: checksums.algorithm } : {}),
              ...(request.expectedChecksum ? { expectedChecksum: request.expectedChecksum } : {}),
              transfer,
              batches: fingerprints,
              rereadSource: request.verify === 'reread',
            },
          ],
          { summary: `verify ${plan.partCount} parts against the source` },
        );

        await beforePivot();
        const merged = await saga.run(
          'merge',
          [
            {
              bucket,
              key,
              multipartUploadId: openedMultipartUploadId,
              expectedETag: verified.expectedETag,
              failIfExists: request.failIfExists,
              ...(checksums.algorithm ? { checksumAlgorithm: checksums.algorithm } : {}),
              ...(checksums.type ? { checksumType: checksums.type } : {}),
              ...(checksums.expectedFullObject ? { expectedChecksum: checksums.expectedFullObject } : {}),
            },
          ],
          { summary: `complete s3://${bucket}/${key}${request.failIfExists ? ' if absent' : ''}` },
        );
        stored = merged;
        sha256 = verified.sha256;
      }

      await saga.run('commit-quota', [reservation], { summary: `commit ${plan.size} bytes to tenant ${request.tenant}` });

      const result = mergedResult({ uploadId: request.uploadId, tenant: request.tenant, workflowId, bucket, key }, plan.size, stored, {
        ...(sha256 ? { sha256 } : {}),
        partCount: plan.partCount,
        partSize: plan.partSize,
        ...(plan.adjusted ? { partSizeAdjusted: plan.adjusted } : {}),
        timings,
      });
      await notifyCompletedResult(saga, request.webhookUrl, event, result);
      return result;
    });
    setPhase('done');
    result.timings = timings;
    setOutcome('completed');
    metrics.ended({ kind: 'worker', outcome: 'completed' });
    // A webhook that failed for good is part of the ending people look at in the Web UI (the
    // search attribute says completed: the object exists).
    const webhookFailure = result.notification.status === 'failed' ? `; **webhook not delivered**: ${result.notification.error}` : '';
    setCurrentDetails(completedDetails(result, webhookFailure));
    return result;
  } catch (err) {
    gate.close();
    const report = failureReportOf(err);
    setPhase('done');
    setOutcome(failureOutcome(err instanceof CancelledFailure, report));
    metrics.ended({ kind: 'worker', outcome: progress.outcome, failure: endedFailure(report) });
    setCurrentDetails(endedDetails(progress.outcome, err));
    await notifyEnded(saga, request?.webhookUrl, event, report);
    throw err;
  }
}

/** How long an upload with `onQuota: 'wait'` and no `quotaWaitMs` waits for quota. */
const DEFAULT_QUOTA_WAIT_MS = 3_600_000;

/** The ledger's refusal message when `err` is reserve-space refused for quota; undefined for any other failure. */
function quotaRefusalOf(err: unknown): string | undefined {
  // The refusal is the activity failure's cause (how deep depends on the retry-hint interceptor).
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof ApplicationFailure && e.type === 'QuotaExceeded') return e.message;
  }
  return undefined;
}

/**
 * What put-object's compensation is told, from the step's outcome: the object it reported (none
 * when it found its own earlier write: it is not sure it wrote it), or the checksum a failed
 * attempt sent; nothing when it failed before sending.
 */
function putCompensationOf(outcome: StepOutcome<PutObjectResult>, startedAt: number): Pick<DeleteObjectInput, 'stored' | 'sent'> {
  if (outcome.status === 'completed') {
    const { etag, versionId, alreadyStored } = outcome.result;
    return alreadyStored ? {} : { stored: { etag, ...(versionId ? { versionId } : {}) } };
  }
  if (outcome.status !== 'failed') return {};
  const sent = (outcome.failureDetails?.[0] as PutObjectFailureDetails | undefined)?.checksum;
  // LastModified has whole seconds: a margin, as for the multipart cleanup's initiatedAfterMs.
  return sent ? { sent: { checksum: sent, notBeforeMs: startedAt - 5_000 } } : {};
}
