/**
 * Where the time of a small upload goes, read from the recorded histories of a latency run.
 *
 * Why from histories: the event timestamps are written by the server, so they show queueing
 * (a task scheduled but not yet picked up), worker time (a workflow task started but not yet
 * completed — local activities run inside it) and activity time without instrumenting the code
 * under test. Local activity durations come from their markers (`complete_time` is the workflow
 * task's start plus the activity's run time). The quota ledger's history shows how many updates
 * each of its workflow tasks carried.
 *
 * `npm run bench -- --skip throughput memory history --breakdown` prints it after the latency row.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { percentile } from './measure';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const EventType = temporal.api.enums.v1.EventType;

/** Milliseconds per category, for one workflow run. */
export type Breakdown = Record<string, number>;

export interface LedgerBreakdown {
  workflowTasks: number;
  updates: number;
  /** Updates accepted per workflow task that accepted any. */
  updatesPerTask: { mean: number; max: number };
  /** Workflow task schedule → start and start → complete, ms. */
  taskQueueMs: { p50: number; max: number };
  taskRunMs: { p50: number; max: number };
  /** From the first to the last event of the window, ms. */
  spanMs: number;
}

export interface LatencyBreakdown {
  /** Median over the runs of each category (ms). */
  saga: Breakdown;
  baseline: Breakdown;
  ledger?: LedgerBreakdown;
}

const ms = (event: HistoryEvent): number => {
  const t = event.eventTime;
  return Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
};

function markerData(event: HistoryEvent): { activity_type?: string; complete_time?: { seconds: number; nanos: number } } | undefined {
  const payload = event.markerRecordedEventAttributes?.details?.data?.payloads?.[0];
  if (!payload?.data) return undefined;
  try {
    return JSON.parse(Buffer.from(payload.data).toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Splits one workflow run into: workflow tasks waiting in the queue, workflow tasks running on
 * the worker (minus the local activities they ran), each local activity, each activity waiting
 * and running, and the rest.
 */
export function breakdownOf(events: HistoryEvent[]): Breakdown {
  const out: Breakdown = {};
  const add = (k: string, v: number) => (out[k] = (out[k] ?? 0) + v);
  const byId = new Map<number, HistoryEvent>();
  for (const e of events) byId.set(Number(e.eventId), e);
  const activityType = new Map<number, string>();
  let wftStarted = 0;
  let laChainFrom = 0;
  let localInTask = 0;
  for (const e of events) {
    switch (e.eventType) {
      case EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: {
        const scheduled = byId.get(Number(e.workflowTaskStartedEventAttributes?.scheduledEventId));
        if (scheduled) add('workflow task queued', ms(e) - ms(scheduled));
        wftStarted = ms(e);
        laChainFrom = wftStarted;
        localInTask = 0;
        break;
      }
      case EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
      case EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
      case EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT: {
        // Local activity markers follow the completion they belong to; count them first.
        let next = Number(e.eventId) + 1;
        for (let m = byId.get(next); m && m.eventType !== EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED; m = byId.get(++next)) {
          if (m.eventType !== EventType.EVENT_TYPE_MARKER_RECORDED || m.markerRecordedEventAttributes?.markerName !== 'core_local_activity')
            continue;
          const data = markerData(m);
          if (!data?.complete_time) continue;
          const done = data.complete_time.seconds * 1000 + data.complete_time.nanos / 1e6;
          const took = Math.max(0, done - laChainFrom);
          add(`local ${data.activity_type ?? '?'}`, took);
          localInTask += took;
          laChainFrom = Math.max(laChainFrom, done);
        }
        add('workflow task running (without local activities)', Math.max(0, ms(e) - wftStarted - localInTask));
        break;
      }
      case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        activityType.set(Number(e.eventId), e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?');
        break;
      case EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: {
        const id = Number(e.activityTaskStartedEventAttributes?.scheduledEventId);
        add(`activity ${activityType.get(id)} queued`, ms(e) - ms(byId.get(id)!));
        break;
      }
      case EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: {
        const started = byId.get(Number(e.activityTaskCompletedEventAttributes?.startedEventId));
        const id = Number(e.activityTaskCompletedEventAttributes?.scheduledEventId);
        if (started) add(`activity ${activityType.get(id)} running`, ms(e) - ms(started));
        break;
      }
    }
  }
  const first = events[0];
  const last = events[events.length - 1];
  if (first && last) {
    const total = ms(last) - ms(first);
    const counted = Object.values(out).reduce((a, b) => a + b, 0);
    out['other (between tasks)'] = Math.max(0, total - counted);
    out['total (server)'] = total;
  }
  out['workflow tasks'] = events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED).length;
  out['timers (retry backoffs)'] = events.filter((e) => e.eventType === EventType.EVENT_TYPE_TIMER_STARTED).length;
  out['search-attribute updates'] = events.filter((e) => e.eventType === EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES).length;
  out['events'] = events.length;
  return out;
}

function median(runs: Breakdown[]): Breakdown {
  const keys = new Set(runs.flatMap((r) => Object.keys(r)));
  const out: Breakdown = {};
  for (const k of keys)
    out[k] = Math.round(
      percentile(
        runs.map((r) => r[k] ?? 0),
        50,
      ),
    );
  return out;
}

/** The ledger's workflow tasks between `from` and `to` (ms since epoch). */
export function ledgerBreakdownOf(events: HistoryEvent[], from: number, to: number): LedgerBreakdown {
  const window = events.filter((e) => ms(e) >= from && ms(e) <= to);
  const byId = new Map<number, HistoryEvent>();
  for (const e of events) byId.set(Number(e.eventId), e);
  const queue: number[] = [];
  const run: number[] = [];
  const perTask: number[] = [];
  let accepted = 0;
  let updates = 0;
  for (const e of window) {
    if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) {
      const scheduled = byId.get(Number(e.workflowTaskStartedEventAttributes?.scheduledEventId));
      if (scheduled) queue.push(ms(e) - ms(scheduled));
    } else if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) {
      const started = byId.get(Number(e.workflowTaskCompletedEventAttributes?.startedEventId));
      if (started) run.push(ms(e) - ms(started));
      if (accepted) perTask.push(accepted);
      accepted = 0;
    } else if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) {
      accepted++;
      updates++;
    }
  }
  if (accepted) perTask.push(accepted);
  const stat = (xs: number[]) => ({
    p50: Math.round(xs.length ? percentile(xs, 50) : 0),
    max: Math.round(xs.length ? Math.max(...xs) : 0),
  });
  return {
    workflowTasks: run.length,
    updates,
    updatesPerTask: {
      mean: perTask.length ? Math.round((updates / perTask.length) * 10) / 10 : 0,
      max: perTask.length ? Math.max(...perTask) : 0,
    },
    taskQueueMs: stat(queue),
    taskRunMs: stat(run),
    spanMs: window.length ? Math.round(ms(window[window.length - 1]!) - ms(window[0]!)) : 0,
  };
}

async function eventsOf(client: Client, workflowId: string, runId?: string): Promise<HistoryEvent[]> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  return history.events ?? [];
}

/**
 * Reads the histories of a latency run and returns the median breakdown of the saga's and the
 * baseline's runs, and what the tenant's quota ledger did while the sagas ran.
 */
export async function latencyBreakdown(
  client: Client,
  runs: { sagaWorkflowIds: string[]; baselineWorkflowIds: string[]; ledgerWorkflowId?: string },
): Promise<LatencyBreakdown> {
  const sagaEvents = await Promise.all(runs.sagaWorkflowIds.map((id) => eventsOf(client, id)));
  const baselineEvents = await Promise.all(runs.baselineWorkflowIds.map((id) => eventsOf(client, id)));
  const result: LatencyBreakdown = { saga: median(sagaEvents.map(breakdownOf)), baseline: median(baselineEvents.map(breakdownOf)) };
  if (runs.ledgerWorkflowId && sagaEvents.length) {
    const from = Math.min(...sagaEvents.map((e) => ms(e[0]!)));
    const to = Math.max(...sagaEvents.map((e) => ms(e[e.length - 1]!)));
    // The ledger may have continued as new during the window: read every run it had.
    const handle = client.workflow.getHandle(runs.ledgerWorkflowId);
    const ledgerEvents: HistoryEvent[] = [];
    const runIds = new Set<string>();
    for await (const info of client.workflow.list({ query: `WorkflowId = '${runs.ledgerWorkflowId}'` })) runIds.add(info.runId);
    for (const runId of runIds) ledgerEvents.push(...(await eventsOf(client, handle.workflowId, runId)));
    ledgerEvents.sort((a, b) => ms(a) - ms(b));
    result.ledger = ledgerBreakdownOf(ledgerEvents, from, to);
  }
  return result;
}

/** The breakdown as a Markdown table: one row per category, saga and baseline side by side. */
export function breakdownMarkdown(b: LatencyBreakdown): string {
  const keys = [...new Set([...Object.keys(b.saga), ...Object.keys(b.baseline)])].sort();
  const lines = ['| median per upload | saga | baseline |', '| --- | --- | --- |'];
  for (const k of keys) lines.push(`| ${k} | ${b.saga[k] ?? '—'} | ${b.baseline[k] ?? '—'} |`);
  if (b.ledger) {
    const l = b.ledger;
    lines.push(
      '',
      `Quota ledger: ${l.updates} updates in ${l.workflowTasks} workflow tasks (≤ ${l.updatesPerTask.max} per task, mean ${l.updatesPerTask.mean}); ` +
        `task queued p50 ${l.taskQueueMs.p50} ms (max ${l.taskQueueMs.max}), running p50 ${l.taskRunMs.p50} ms (max ${l.taskRunMs.max}); span ${l.spanMs} ms`,
    );
  }
  return `${lines.join('\n')}\n`;
}
