/**
 * The upload workflow: the flagship use of the saga engine.
 *
 * It holds no bytes and no part manifest — S3 (ListParts) is the source of truth for parts — so
 * its history stays a few events per batch of parts whatever the file size. It tells people what
 * is happening: a phase search attribute, live "current details" in the Web UI, a progress query,
 * and on failure one failure naming the step, the cause and each compensation's outcome.
 */
import {
  CancellationScope,
  defineQuery,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  log,
  patched,
  ApplicationFailure,
  CancelledFailure,
} from '@temporalio/workflow';
import type { UploadActivities } from '../activities';
import { Saga, summarizeFailure, type SagaFailureReport, type SagaState, type StepOutcome } from '../saga/workflow';
import { partBatches } from '../upload/part-plan';
import { describeSource, type UploadRequestWithDefaults } from '../upload/request';
import type { UploadEvent, UploadEventType, UploadOutcomeKind, UploadPhase, UploadProgress, UploadResult } from '../upload/outcome';
import { UploadOutcome, UploadPhase as UploadPhaseAttribute, UploadSizeBytes } from './search-attributes';
import { LOCAL_SHORT_STEPS_PATCH, uploadSteps, uploadStepsWithLocalShortSteps } from './upload-steps';

export const progressQuery = defineQuery<UploadProgress>('progress');
export const sagaStateQuery = defineQuery<SagaState>('sagaState');

/** Where the saga keeps staged part objects of one upload (deleted by the compensation). */
export function stagingPrefixOf(tenant: string, uploadId: string): string {
  return `.upload-saga/staging/${tenant}/${uploadId}/`;
}

const formatGiB = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)} GiB`;

export async function uploadWorkflow(request: UploadRequestWithDefaults): Promise<UploadResult> {
  const { workflowId } = workflowInfo();
  const { bucket, key } = request.destination;
  const progress: UploadProgress = { phase: 'inspect-source', outcome: 'running', partsUploaded: 0, bytesUploaded: 0, batchesDone: 0 };
  const timings: Record<string, number> = {};
  let stepStartedAt = Date.now();

  // Called at every step start, including each batch of parts: only a change of phase counts.
  const setPhase = (phase: UploadPhase) => {
    if (progress.phase === phase && phase !== 'inspect-source') return;
    const now = Date.now();
    if (progress.phase !== phase) timings[progress.phase] = (timings[progress.phase] ?? 0) + (now - stepStartedAt);
    stepStartedAt = now;
    progress.phase = phase;
    upsertSearchAttributes([{ key: UploadPhaseAttribute, value: phase }]);
    setCurrentDetails(`**${phase}** — s3://${bucket}/${key}`);
  };
  const setOutcome = (outcome: UploadOutcomeKind) => {
    progress.outcome = outcome;
    upsertSearchAttributes([{ key: UploadOutcome, value: outcome }]);
  };

  // A versioning patch: runs started before it replay with every step as a regular activity.
  const steps = patched(LOCAL_SHORT_STEPS_PATCH) ? uploadStepsWithLocalShortSteps : uploadSteps;
  const saga = new Saga<UploadActivities, typeof uploadSteps>(steps, {
    onStepStarted: (step) => setPhase(step as UploadPhase),
    onCompensationStarted: (steps) => {
      setPhase('compensating');
      setCurrentDetails(`**compensating** — undoing ${steps.join(', ') || 'nothing'} for s3://${bucket}/${key}`);
    },
  });
  setHandler(progressQuery, () => ({ ...progress }));
  setHandler(sagaStateQuery, () => saga.state());

  const event = (type: UploadEventType, extra: Partial<UploadEvent>): UploadEvent => ({
    type,
    id: `${workflowId}/${type}`,
    uploadId: request.uploadId,
    tenant: request.tenant,
    workflowId,
    bucket,
    key,
    occurredAt: new Date(Date.now()).toISOString(),
    ...extra,
  });

  try {
    const result = await saga.execute(async () => {
      const inspection = await saga.run('inspect-source', [request], { summary: `inspect ${describeSource(request.source)}` });
      const { plan } = inspection;
      progress.totalBytes = plan.size;
      progress.totalParts = plan.partCount;
      upsertSearchAttributes([{ key: UploadSizeBytes, value: plan.size }]);

      const reservation = { tenant: request.tenant, uploadId: request.uploadId };
      await saga.run('reserve-space', [{ ...reservation, bytes: plan.size }], {
        summary: `reserve ${plan.size} bytes for tenant ${request.tenant}`,
        compensateWith: () => [reservation],
      });

      const batches = partBatches(plan.partCount, request.partsPerActivity);
      progress.batchesTotal = batches.length;
      let uploadId: string | undefined;
      const fingerprints: { firstPart: number; lastPart: number; checksumFingerprint: string }[] = [];
      const uploadStartedAt = Date.now();
      const uploadIdFromFailure = (outcome: StepOutcome<unknown>): string | undefined => {
        if (outcome.status !== 'failed') return undefined;
        const candidates = [outcome.lastHeartbeatDetails, ...(outcome.failureDetails ?? [])];
        for (const c of candidates) {
          const id = (c as { uploadId?: unknown } | undefined)?.uploadId;
          if (typeof id === 'string') return id;
        }
        return undefined;
      };
      for (const batch of batches) {
        const done = await saga.run(
          'upload-parts',
          [
            {
              bucket,
              key,
              uploadId,
              source: request.source,
              sourceVersion: inspection.sourceVersion,
              plan,
              firstPart: batch.firstPart,
              lastPart: batch.lastPart,
              partConcurrency: request.partConcurrency,
              checksumAlgorithm: request.checksumAlgorithm,
              contentType: request.contentType,
              metadata: request.metadata,
            },
          ],
          {
            summary: `upload parts ${batch.firstPart}–${batch.lastPart} of ${plan.partCount}`,
            compensateWith: (outcome) => {
              const known = uploadId ?? uploadIdFromFailure(outcome);
              return [
                {
                  bucket,
                  key,
                  ...(known ? { uploadId: known } : { initiatedAfterMs: uploadStartedAt - 5_000 }),
                  stagingPrefix: stagingPrefixOf(request.tenant, request.uploadId),
                },
              ];
            },
          },
        );
        uploadId = done.uploadId;
        fingerprints.push({ ...batch, checksumFingerprint: done.checksumFingerprint });
        progress.uploadId = uploadId;
        progress.batchesDone++;
        progress.partsUploaded += batch.lastPart - batch.firstPart + 1;
        progress.bytesUploaded += done.batchBytes;
        setCurrentDetails(
          `**upload-parts** — ${progress.partsUploaded} of ${plan.partCount} parts, ${formatGiB(progress.bytesUploaded)} of ${formatGiB(plan.size)} → s3://${bucket}/${key}`,
        );
      }
      const multipartUploadId = uploadId!;

      const verified = await saga.run(
        'verify',
        [
          {
            bucket,
            key,
            uploadId: multipartUploadId,
            source: request.source,
            sourceVersion: inspection.sourceVersion,
            plan,
            checksumAlgorithm: request.checksumAlgorithm,
            ...(request.expectedChecksum ? { expectedChecksum: request.expectedChecksum } : {}),
            batches: fingerprints,
            rereadSource: request.verify === 'reread',
          },
        ],
        { summary: `verify ${plan.partCount} parts against the source` },
      );

      const merged = await saga.run(
        'merge',
        [{ bucket, key, uploadId: multipartUploadId, expectedETag: verified.expectedETag, failIfExists: request.failIfExists, checksumAlgorithm: request.checksumAlgorithm }],
        { summary: `complete s3://${bucket}/${key}${request.failIfExists ? ' if absent' : ''}` },
      );

      await saga.run('commit-quota', [reservation], { summary: `commit ${plan.size} bytes to tenant ${request.tenant}` });

      const result: UploadResult = {
        uploadId: request.uploadId,
        tenant: request.tenant,
        workflowId,
        bucket,
        key,
        size: plan.size,
        etag: merged.etag,
        ...(merged.versionId ? { versionId: merged.versionId } : {}),
        ...(merged.checksum ? { checksum: merged.checksum } : {}),
        ...(verified.sha256 ? { sha256: verified.sha256 } : {}),
        partCount: plan.partCount,
        partSize: plan.partSize,
        ...(plan.adjusted ? { partSizeAdjusted: plan.adjusted } : {}),
        timings,
        notification: { status: 'not-requested' },
      };

      if (request.webhookUrl) {
        const { notification: _, ...eventResult } = result;
        const completed = event('upload.completed', { result: eventResult });
        try {
          await saga.run('notify', [{ url: request.webhookUrl, idempotencyKey: completed.id, event: { ...completed } }], {
            summary: 'notify upload.completed',
          });
          result.notification = { status: 'delivered' };
        } catch (err) {
          // After the pivot the object stays: a webhook that is down for good is reported, not undone.
          const cause = summarizeFailure(err);
          result.notification = { status: 'failed', error: `${cause.type}: ${cause.message}` };
          log.warn('webhook delivery failed after the object was merged', { error: result.notification.error });
        }
      }
      return result;
    });
    setPhase('done');
    result.timings = timings;
    setOutcome('completed');
    setCurrentDetails(`**completed** — s3://${bucket}/${key}, ${result.size} bytes in ${result.partCount} parts`);
    return result;
  } catch (err) {
    const report = reportOf(err);
    setPhase('done');
    setOutcome(err instanceof CancelledFailure ? 'cancelled' : report && report.compensations.every((c) => c.status === 'compensated') ? 'compensated' : 'failed');
    setCurrentDetails(`**${progress.outcome}** — ${err instanceof Error ? err.message : String(err)}`);
    if (request.webhookUrl && report) {
      // Sent after the compensations ran, with the notify step's policy; it never masks the failure.
      const failed = event(report.cancelled ? 'upload.cancelled' : 'upload.failed', { failure: report });
      await CancellationScope.nonCancellable(() =>
        saga
          .run('notify', [{ url: request.webhookUrl!, idempotencyKey: failed.id, event: { ...failed } }], { summary: `notify ${failed.type}` })
          .catch((notifyErr: unknown) => log.warn('failure webhook could not be delivered', { error: summarizeFailure(notifyErr) })),
      );
    }
    throw err;
  }
}

function reportOf(err: unknown): SagaFailureReport | undefined {
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure) {
    const first = err.details?.[0] as SagaFailureReport | undefined;
    if (first && typeof first === 'object' && 'failedStep' in first) return first;
  }
  return undefined;
}
