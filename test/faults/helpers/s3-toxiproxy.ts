/**
 * Toxiproxy between a scenario's workers and its MinIO, and what the scenarios read back from
 * Temporal about the attempts a fault caused.
 *
 * Why it is built this way: every network scenario needs the same three things — a toxiproxy
 * server of its own (stopped by the scenario's clean-up), one proxy whose URL becomes the
 * worker's `S3_ENDPOINT`, and a look at the pending `uploadParts` activity (attempt number, last
 * failure) to tell *how* the saga got through the fault, not only that it did.
 */
import path from 'node:path';
import type { temporal } from '@temporalio/proto';
import { startToxiproxyServer, type ToxiproxyProxy } from '../../../src/embedded';
import type { FaultContext, TrackedUpload } from '../framework';

/** A toxiproxy proxy in front of the scenario's MinIO, stopped after the scenario. */
export async function startS3Proxy(ctx: FaultContext): Promise<ToxiproxyProxy> {
  const server = await startToxiproxyServer({ dataDir: path.join(ctx.tmpDir, 'toxiproxy') });
  ctx.defer(() => server.stop());
  const proxy = await server.client.createProxy({ name: 's3', upstream: new URL(ctx.minio.endpoint).host });
  ctx.log(`toxiproxy ${server.apiUrl}: proxy ${proxy.listen} → ${proxy.state.upstream} (log ${server.logFile})`);
  return proxy;
}

/** What Temporal shows about a running activity attempt. */
export interface PendingAttempt {
  readonly activityType: string;
  readonly attempt: number;
  /** Type of the last failure: an ApplicationFailure's type, or `Timeout:<kind>` for a timeout. */
  readonly lastFailureType?: string;
  readonly lastFailureMessage?: string;
}

function failureType(failure: temporal.api.failure.v1.IFailure | null | undefined): string | undefined {
  if (!failure) return undefined;
  if (failure.applicationFailureInfo) return failure.applicationFailureInfo.type ?? 'Error';
  if (failure.timeoutFailureInfo) {
    const kinds = ['UNSPECIFIED', 'START_TO_CLOSE', 'SCHEDULE_TO_START', 'SCHEDULE_TO_CLOSE', 'HEARTBEAT'];
    return `Timeout:${kinds[Number(failure.timeoutFailureInfo.timeoutType ?? 0)] ?? String(failure.timeoutFailureInfo.timeoutType)}`;
  }
  return failure.cause ? failureType(failure.cause) : 'Unknown';
}

/** The upload's pending activity of `activityType` (default `uploadParts`), if one is scheduled. */
export async function pendingAttempt(upload: TrackedUpload, activityType = 'uploadParts'): Promise<PendingAttempt | undefined> {
  const { raw } = await upload.handle.workflow.describe();
  const pending = raw.pendingActivities?.find((a) => a.activityType?.name === activityType);
  if (!pending) return undefined;
  // An ApplicationFailure from an activity arrives wrapped: the activity's own failure is the cause.
  const last = pending.lastFailure;
  const own = last?.applicationFailureInfo || last?.timeoutFailureInfo ? last : (last?.cause ?? last);
  const type = failureType(own);
  return {
    activityType,
    attempt: pending.attempt ?? 1,
    ...(type ? { lastFailureType: type } : {}),
    ...(own?.message ? { lastFailureMessage: own.message } : {}),
  };
}

/** The attempt number of every completed `activityType` activity, from the workflow history. */
export async function completedAttempts(upload: TrackedUpload, activityType = 'uploadParts'): Promise<number[]> {
  const events = (await upload.handle.workflow.fetchHistory()).events ?? [];
  const byId = new Map(events.map((e) => [Number(e.eventId), e]));
  const attempts: number[] = [];
  for (const event of events) {
    const completed = event.activityTaskCompletedEventAttributes;
    if (!completed) continue;
    const scheduled = byId.get(Number(completed.scheduledEventId))?.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name !== activityType) continue;
    attempts.push(byId.get(Number(completed.startedEventId))?.activityTaskStartedEventAttributes?.attempt ?? 0);
  }
  return attempts;
}
