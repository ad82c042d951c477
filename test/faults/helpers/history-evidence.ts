/**
 * What an upload's history says happened, for scenarios that must prove their fault landed before
 * they check the outcome: when each activity (and local activity) of the saga was scheduled and
 * finished, at which attempt, and when a cancellation was requested.
 *
 * Why it is built this way: the history is the server's own record, written independently of the
 * code under test, so it is evidence that the fault met the upload mid-flight (a restart between
 * an activity's scheduling and its completion, a cancel request before the merge finished) rather
 * than before it began or after it ended. Local activities leave only a marker, whose data names
 * the activity; its time is when the workflow task that recorded it completed.
 */
import type { temporal } from '@temporalio/proto';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** One activity of the saga, as the history records it. */
export interface ActivityRecord {
  readonly type: string;
  /** A local activity: only its marker is in the history (`scheduledAt` is then the marker's time too). */
  readonly local: boolean;
  /** Event id of the scheduling (or of the marker). */
  readonly eventId: number;
  readonly scheduledAt: number;
  /** Event id and time of its completion (any close: completed, failed, timed out, cancelled); the marker's for a local activity. */
  readonly closedEventId?: number;
  readonly closedAt?: number;
  readonly outcome?: 'completed' | 'failed' | 'timed out' | 'cancelled';
  /** The attempt that closed it (from the started event, or the marker's data). */
  readonly attempt?: number;
}

/** What the scenarios read from an upload's history. */
export interface HistoryEvidence {
  readonly activities: readonly ActivityRecord[];
  /** The cancel request's event, if the workflow got one. */
  readonly cancelRequested?: { readonly eventId: number; readonly at: number };
  /** Time of every event, in order. */
  readonly eventTimes: readonly number[];
}

/** Milliseconds since the epoch of an event's time. */
export function eventTimeMs(event: HistoryEvent): number {
  const t = event.eventTime;
  return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
}

/** A workflow whose history can be read: an upload's or a batch's (their handles' `workflow`). */
export interface WithHistory {
  readonly handle: { readonly workflow: { fetchHistory(): Promise<temporal.api.history.v1.IHistory> } };
}

/** Reads the upload's (or batch's) history and lists its activities and cancel request. */
export async function historyEvidence(upload: WithHistory): Promise<HistoryEvidence> {
  const events = (await upload.handle.workflow.fetchHistory()).events ?? [];
  const byId = new Map(events.map((e) => [Number(e.eventId), e]));
  const activities: ActivityRecord[] = [];
  const open = new Map<number, { type: string; eventId: number; scheduledAt: number }>();
  let cancelRequested: HistoryEvidence['cancelRequested'];
  const close = (scheduledEventId: unknown, startedEventId: unknown, event: HistoryEvent, outcome: ActivityRecord['outcome']) => {
    const scheduled = open.get(Number(scheduledEventId));
    if (!scheduled) return;
    open.delete(scheduled.eventId);
    const attempt = byId.get(Number(startedEventId))?.activityTaskStartedEventAttributes?.attempt ?? undefined;
    activities.push({
      ...scheduled,
      local: false,
      closedEventId: Number(event.eventId),
      closedAt: eventTimeMs(event),
      ...(outcome ? { outcome } : {}),
      ...(attempt ? { attempt } : {}),
    });
  };
  for (const event of events) {
    const id = Number(event.eventId);
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) open.set(id, { type: scheduled.activityType?.name ?? '?', eventId: id, scheduledAt: eventTimeMs(event) });
    const a = event.activityTaskCompletedEventAttributes;
    if (a) close(a.scheduledEventId, a.startedEventId, event, 'completed');
    const f = event.activityTaskFailedEventAttributes;
    if (f) close(f.scheduledEventId, f.startedEventId, event, 'failed');
    const t = event.activityTaskTimedOutEventAttributes;
    if (t) close(t.scheduledEventId, t.startedEventId, event, 'timed out');
    const c = event.activityTaskCanceledEventAttributes;
    if (c) close(c.scheduledEventId, c.startedEventId, event, 'cancelled');
    const marker = event.markerRecordedEventAttributes;
    if (marker?.markerName === 'core_local_activity') {
      const data = marker.details?.data?.payloads?.[0]?.data;
      const parsed = data ? (JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type?: string; attempt?: number }) : {};
      const at = eventTimeMs(event);
      activities.push({
        type: parsed.activity_type ?? '?',
        local: true,
        eventId: id,
        scheduledAt: at,
        closedEventId: id,
        closedAt: at,
        outcome: marker.failure ? 'failed' : 'completed',
        ...(parsed.attempt ? { attempt: parsed.attempt } : {}),
      });
    }
    if (event.workflowExecutionCancelRequestedEventAttributes) cancelRequested = { eventId: id, at: eventTimeMs(event) };
  }
  for (const scheduled of open.values()) activities.push({ ...scheduled, local: false });
  activities.sort((x, y) => x.eventId - y.eventId);
  return { activities, ...(cancelRequested ? { cancelRequested } : {}), eventTimes: events.map(eventTimeMs) };
}

/** The activities of `type` in the history (e.g. `uploadParts`, `completeUpload`, `notify`). */
export function activitiesOf(evidence: HistoryEvidence, type: string): ActivityRecord[] {
  return evidence.activities.filter((a) => a.type === type);
}
