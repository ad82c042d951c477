/**
 * Which worker runs, or ran, an activity of a workflow — read from Temporal itself (the pending
 * activity's last worker identity, the history's started events), so crash and failover tests
 * can kill the right process and prove where an attempt completed. A worker's default identity
 * is `<pid>@<host>`.
 */
import type { WorkflowHandle } from '@temporalio/client';

/** Process id of the worker running the pending attempt of `activityType`, if one is running. */
export async function pendingActivityWorkerPid(handle: WorkflowHandle, activityType: string): Promise<number | undefined> {
  const { raw } = await handle.describe();
  const pending = raw.pendingActivities?.find((a) => a.activityType?.name === activityType && a.lastWorkerIdentity);
  const pid = Number(pending?.lastWorkerIdentity?.split('@')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The pending attempt number of `activityType` (1 for the first), if it is pending. */
export async function pendingActivityAttempt(handle: WorkflowHandle, activityType: string): Promise<number | undefined> {
  const { raw } = await handle.describe();
  const pending = raw.pendingActivities?.find((a) => a.activityType?.name === activityType);
  return pending ? (pending.attempt ?? 1) : undefined;
}

/** Every completed attempt of `activityType`, in history order: which worker ran it and which attempt it was. */
export async function completedActivityAttempts(
  handle: WorkflowHandle,
  activityType: string,
): Promise<{ identity: string; attempt: number }[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  const byId = new Map(events.map((e) => [Number(e.eventId), e]));
  const attempts: { identity: string; attempt: number }[] = [];
  for (const e of events) {
    const completed = e.activityTaskCompletedEventAttributes;
    if (!completed) continue;
    if (byId.get(Number(completed.scheduledEventId))?.activityTaskScheduledEventAttributes?.activityType?.name !== activityType) continue;
    const started = byId.get(Number(completed.startedEventId))?.activityTaskStartedEventAttributes;
    attempts.push({ identity: started?.identity ?? '', attempt: started?.attempt ?? 1 });
  }
  return attempts;
}
