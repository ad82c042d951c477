/**
 * Replay tests: the guard on workflow code. Every history in `test/histories` — recorded from real
 * runs against Temporal and MinIO by `npm run histories:record` — is replayed against the workflow
 * bundle as it is now: the same bundle, saga interceptor included, that workers run. A change that
 * would break uploads already running (a step added, removed or reordered, another activity, one
 * timer or search-attribute update more or less) fails here, naming the history file and the event
 * where replay diverged, instead of failing in production on the next workflow task.
 *
 * No server is needed: replay feeds the recorded events to the workflow code alone.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { bundleWorkflowCode, DefaultLogger, ReplayError, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { siblingModule } from '../src/module-path';
import { sagaWorkflowInterceptorsPath } from '../src/saga/activity';
import { uploadWorkflowId } from '../src/upload/request';
import { bundleUploadWorkflows, tracingWorkflowInterceptorsPath, workflowsPath } from '../src/worker';
import { WorkerMetrics } from '../src/metrics/worker-metrics';
import { uploadMetricsSinks } from '../src/metrics/worker-sinks';
import { quotaLedgerWorkflowId } from '../src/workflows/quota-ledger';
import { historyFromJson, type History } from './replay/history-json';
import { deleteWorkflowId } from '../src/upload/delete-request';

// Replays that are meant to fail make the SDK core warn about the failed workflow task.
try {
  Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
} catch {
  // already installed in this process
}

const HISTORY_DIR = path.join(__dirname, 'histories');
const historyFiles = readdirSync(HISTORY_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();
const bundlerLogger = new DefaultLogger('WARN');

interface RecordedHistory {
  file: string;
  history: History;
  workflowType: string;
  /** Histories carry no workflow id; it is derived from the input, as the client derives it. */
  workflowId: string;
  closedAs: string;
}

/**
 * What to do with the trace headers (`_tracer-data`) of a history's inbound calls (start, signals,
 * updates): keep them as recorded, or keep each header where it is and make it carry no trace
 * context (`{}`) or a `traceparent`. The tracing workflow interceptors
 * (src/telemetry/workflow/interceptors.ts) make spans only for calls whose header carries one;
 * replaying both ways proves that the traced and the untraced path schedule the same commands, so
 * a worker may trace or not whatever the worker before it did. (Where a header is, not what it
 * carries, shapes the SDK's own interceptors, so headers are neither added nor removed.)
 */
type TraceHeaders = 'as recorded' | 'without a trace context' | 'with a trace context';

const TRACE_HEADER = '_tracer-data';
const carrierPayload = (carrier: object) => ({
  metadata: { encoding: Buffer.from('json/plain').toString('base64') },
  data: Buffer.from(JSON.stringify(carrier)).toString('base64'),
});

function withTraceHeaders(json: unknown, mode: TraceHeaders): unknown {
  if (mode === 'as recorded') return json;
  const payload = carrierPayload(
    mode === 'with a trace context' ? { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } : {},
  );
  const events = (json as { events: Record<string, Record<string, unknown> | undefined>[] }).events;
  const setHeader = (holder: Record<string, unknown> | undefined) => {
    const fields = (holder?.header as { fields?: Record<string, unknown> } | undefined)?.fields;
    if (fields?.[TRACE_HEADER]) fields[TRACE_HEADER] = payload;
  };
  for (const e of events) {
    setHeader(e.workflowExecutionStartedEventAttributes);
    setHeader(e.workflowExecutionSignaledEventAttributes);
    const accepted = e.workflowExecutionUpdateAcceptedEventAttributes as
      { acceptedRequest?: { input?: Record<string, unknown> } } | undefined;
    setHeader(accepted?.acceptedRequest?.input);
  }
  return json;
}

function loadHistory(file: string, traceHeaders: TraceHeaders = 'as recorded'): RecordedHistory {
  const history = historyFromJson(withTraceHeaders(JSON.parse(readFileSync(path.join(HISTORY_DIR, file), 'utf8')), traceHeaders));
  const events = history.events ?? [];
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  if (!started) throw new Error(`${file}: the first event is not WorkflowExecutionStarted`);
  const workflowType = started.workflowType?.name ?? '';
  const first = started.input?.payloads?.[0];
  const input = (first ? defaultPayloadConverter.fromPayload(first) : {}) as {
    tenant?: string;
    uploadId?: string;
    bucket?: string;
    key?: string;
  };
  const workflowId =
    workflowType === 'uploadWorkflow' && input.tenant && input.uploadId
      ? uploadWorkflowId(input.tenant, input.uploadId)
      : workflowType === 'quotaLedgerWorkflow' && input.tenant
        ? quotaLedgerWorkflowId(input.tenant)
        : workflowType === 'deleteObjectWorkflow' && input.tenant && input.bucket && input.key
          ? deleteWorkflowId({ tenant: input.tenant, bucket: input.bucket, key: input.key })
          : `replay:${file}`;
  const last = events.at(-1);
  const closedAs = last?.workflowExecutionCompletedEventAttributes
    ? 'completed'
    : last?.workflowExecutionFailedEventAttributes
      ? 'failed'
      : last?.workflowExecutionCanceledEventAttributes
        ? 'cancelled'
        : 'open';
  return { file, history, workflowType, workflowId, closedAs };
}

/**
 * What a failed replay reports: the history file, the event where replay diverged (the SDK core
 * names it as `HistoryEvent(id: 5, UpsertWorkflowSearchAttributes)`), and the way forward.
 */
function describeReplayFailure(file: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const at = /HistoryEvent\(id: (\d+), (\w+)\)/.exec(message);
  const where = at ? `at event ${at[1]} (${at[2]})` : 'at an event the error does not name';
  const kind = err instanceof DeterminismViolationError ? 'nondeterminism' : err instanceof ReplayError ? 'replay error' : 'error';
  return (
    `test/histories/${file} does not replay on the current workflow code: ${kind} ${where}.\n${message}\n` +
    'Running workflows would fail like this. Guard the change with patched(), or ship it to a new worker ' +
    'deployment; re-record (npm run histories:record) only once old runs are safe. See docs/how-to/changing-workflow-code.md.'
  );
}

/** Metrics the replays' sinks record into: replay must leave them at zero (sinks are not called during replay). */
const replayMetrics = new WorkerMetrics();

async function replay(bundle: WorkflowBundleWithSourceMap, recorded: RecordedHistory): Promise<void> {
  // A pre-built bundle carries its workflow interceptors: the SDK ignores interceptors.workflowModules
  // next to workflowBundle, so none are passed here (see the interceptor tests below). The metrics
  // sinks are registered as on a worker.
  await Worker.runReplayHistory(
    { workflowBundle: bundle, sinks: uploadMetricsSinks(replayMetrics) },
    recorded.history,
    recorded.workflowId,
  );
}

/** The patch ids a run recorded, in order. */
function patchIds(h: RecordedHistory): string[] {
  return (h.history.events ?? []).flatMap((e) => {
    const data =
      e.markerRecordedEventAttributes?.markerName === 'core_patch'
        ? e.markerRecordedEventAttributes.details?.['patch-data']?.payloads?.[0]
        : undefined;
    return data ? [(defaultPayloadConverter.fromPayload(data) as { id: string }).id] : [];
  });
}

/** Activity types a run scheduled (regular activities only), in order. */
function activityTypes(h: RecordedHistory): string[] {
  return (h.history.events ?? []).flatMap((e) =>
    e.activityTaskScheduledEventAttributes?.activityType?.name ? [e.activityTaskScheduledEventAttributes.activityType.name] : [],
  );
}

let bundle: WorkflowBundleWithSourceMap;
const timings = { ms: 0, events: 0, histories: 0 };

beforeAll(async () => {
  bundle = await bundleUploadWorkflows(); // once, with the saga's interceptor module, as workers do
});

afterAll(() => {
  if (timings.histories) console.log(`replay: ${timings.histories} histories, ${timings.events} events in ${timings.ms} ms`);
});

/** The history file's JSON, as recorded (payload data base64). */
const historyToJsonValue = (h: RecordedHistory): unknown => JSON.parse(readFileSync(path.join(HISTORY_DIR, h.file), 'utf8'));

describe('recorded histories', () => {
  it('include at least six upload histories, each of a finished run', () => {
    const uploads = historyFiles.map((f) => loadHistory(f)).filter((h) => h.workflowType === 'uploadWorkflow');
    expect(uploads.length).toBeGreaterThanOrEqual(6);
    for (const h of uploads) expect(h.closedAs, h.file).not.toBe('open');
  });

  it('include a migration whose history holds page bounds, not the keys it copied', () => {
    const migration = loadHistory('migration-completed.json');
    expect(migration).toMatchObject({ workflowType: 'migrationWorkflow', closedAs: 'completed' });
    expect(activityTypes(migration)).toEqual(['inspectMigration', 'copyMigrationChunk', 'copyMigrationChunk', 'copyMigrationChunk']);
    // 12 objects in chunks of 5: each chunk names the key it starts after and its last key, no other.
    const decoded: string[] = [];
    JSON.stringify(historyToJsonValue(migration), (key, value: unknown) => {
      if (key === 'data' && typeof value === 'string') decoded.push(Buffer.from(value, 'base64').toString('utf8'));
      return value;
    });
    const named = new Set(decoded.join('\n').match(/o\d\d\.bin/g) ?? []);
    expect([...named].sort()).toEqual(['o04.bin', 'o09.bin', 'o11.bin']);
  });

  it.each(historyFiles)('%s replays on the current workflow code', async (file) => {
    const recorded = loadHistory(file);
    const started = Date.now();
    try {
      await replay(bundle, recorded);
    } catch (err) {
      throw new Error(describeReplayFailure(file, err), { cause: err });
    }
    timings.ms += Date.now() - started;
    timings.events += recorded.history.events?.length ?? 0;
    timings.histories++;
  });
});

describe('metrics sinks under replay', () => {
  it('count nothing while histories replay: an upload is counted by the run that executes it, not by replays', async () => {
    const completed = historyFiles.find((f) => f === 'completed.json')!;
    const compensated = historyFiles.find((f) => f === 'compensated-after-retries.json')!;
    for (const file of [completed, compensated]) await replay(bundle, loadHistory(file));
    const counted = (await replayMetrics.registry.getMetricsAsJSON())
      .filter((m) => m.name.startsWith('upload_saga_uploads_'))
      .flatMap((m) => m.values.map((v) => v.value));
    expect(counted).toEqual([]);
  });
});

describe('the replay guard', () => {
  it('rejects a workflow that schedules an activity before inspect-source, naming the event where it diverged', async () => {
    const variant = await bundleWorkflowCode({
      workflowsPath: siblingModule(__dirname, './replay/incompatible-workflows'),
      workflowInterceptorModules: [sagaWorkflowInterceptorsPath],
      logger: bundlerLogger,
    });
    const err = await replay(variant, loadHistory('completed-before-local-short-steps.json')).then(
      () => expect.fail('an incompatible workflow replayed the history'),
      (e: unknown) => e,
    );

    expect(err).toBeInstanceOf(DeterminismViolationError);
    // Where the history has the saga's first search-attribute update, the variant scheduled an activity.
    expect((err as Error).message).toMatch(
      /Activity machine does not handle this event: HistoryEvent\(id: 5, UpsertWorkflowSearchAttributes\)/,
    );
    expect(describeReplayFailure('completed-before-local-short-steps.json', err)).toMatch(
      /^test\/histories\/completed-before-local-short-steps\.json does not replay .*: nondeterminism at event 5 \(UpsertWorkflowSearchAttributes\)/,
    );
  });

  it('replays with the saga interceptor module registered in the bundle, as workers run it', () => {
    const registered = /importInterceptors\(\) \{([\s\S]*?)\n\}/.exec(bundle.code)?.[1] ?? '';
    expect(registered).toContain(path.relative(path.join(__dirname, '..'), sagaWorkflowInterceptorsPath));
  });

  it('replays with the tracing workflow interceptors in the bundle: tracing adds no workflow command', () => {
    // Every history above replayed on this bundle; had the tracing interceptors scheduled or reordered a command, one would have diverged.
    const registered = /importInterceptors\(\) \{([\s\S]*?)\n\}/.exec(bundle.code)?.[1] ?? '';
    expect(registered).toContain(path.relative(path.join(__dirname, '..'), tracingWorkflowInterceptorsPath));
  });

  it.each(
    historyFiles.flatMap((file) => (['without a trace context', 'with a trace context'] as const).map((mode) => [file, mode] as const)),
  )('%s replays with its trace headers %s: spans or none, the same commands', async (file, mode) => {
    const recorded = loadHistory(file, mode);
    try {
      await replay(bundle, recorded);
    } catch (err) {
      throw new Error(`trace headers ${mode}: ${describeReplayFailure(file, err)}`, { cause: err });
    }
  });

  it('fails without the saga interceptor module: the recorded runs depend on it', async () => {
    // Without it, the saga refuses its first jittered step (SagaMisconfigured) instead of scheduling it.
    const bare = await bundleWorkflowCode({ workflowsPath, logger: bundlerLogger });
    const err = await replay(bare, loadHistory('completed-before-local-short-steps.json')).then(
      () => expect.fail('the history replayed without the interceptor module'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DeterminismViolationError);
    expect((err as Error).message).toMatch(/HistoryEvent\(id: \d+, ActivityTaskScheduled\)/);
  });

  it('keeps runs started before the local-short-steps patch on regular activities, and new runs on local ones', () => {
    const patchMarkers = (h: RecordedHistory) => patchIds(h).length;

    const before = loadHistory('completed-before-local-short-steps.json');
    expect(patchMarkers(before)).toBe(0);
    expect(activityTypes(before)).toEqual(expect.arrayContaining(['inspectSource', 'reserveSpace', 'commitReservation', 'notify']));

    const after = loadHistory('completed-before-local-quota-steps.json');
    expect(patchIds(after)).toEqual(['local-short-steps']);
    expect(activityTypes(after)).not.toContain('inspectSource');
    expect(activityTypes(after)).toEqual(expect.arrayContaining(['uploadParts', 'verifyUpload', 'completeUpload']));
    // Both replay on today's code (see "replays on the current workflow code" above): the patch keeps old runs on their path.
  });

  it('runs new uploads under the local-quota-steps-folded-phases patch alone: quota steps local, fewer search-attribute updates', () => {
    const upserts = (h: RecordedHistory) => (h.history.events ?? []).filter((e) => e.upsertWorkflowSearchAttributesEventAttributes).length;
    const localActivities = (h: RecordedHistory) =>
      (h.history.events ?? []).flatMap((e) => {
        const data =
          e.markerRecordedEventAttributes?.markerName === 'core_local_activity'
            ? e.markerRecordedEventAttributes.details?.data?.payloads?.[0]
            : undefined;
        return data ? [(defaultPayloadConverter.fromPayload(data) as { activity_type: string }).activity_type] : [];
      });

    const before = loadHistory('completed-before-local-quota-steps.json');
    const after = loadHistory('completed.json');
    // A new run asks only the newest patch: one marker (and the SDK's TemporalChangeVersion update), not one per patch.
    expect(patchIds(after)).toEqual(['local-quota-steps-folded-phases']);
    expect(localActivities(after)).toEqual(['inspectSource', 'reserveSpace', 'commitReservation', 'notify']);
    expect(activityTypes(after)).toEqual(['uploadParts', 'uploadParts', 'uploadParts', 'verifyUpload', 'completeUpload']);
    // Same scenario (3 batches, SHA-256 re-read, webhook). Before: 11 search-attribute updates, one
    // per phase plus size, outcome and the patch's TemporalChangeVersion. Now 6: TemporalChangeVersion;
    // size with upload-parts (inspect-source and reserve-space folded in); verify (it re-reads here);
    // merge; notify (commit-quota folded in); done with the outcome.
    expect(upserts(before)).toBe(11);
    expect(upserts(after)).toBe(6);

    // Runs under the patch that made the quota steps regular activities keep them on replay.
    const quotaAsActivities = loadHistory('s3-object-source.json');
    expect(patchIds(quotaAsActivities)).toContain('quota-steps-as-activities');
    expect(activityTypes(quotaAsActivities)).toEqual(expect.arrayContaining(['reserveSpace', 'commitReservation']));
  });
  it('runs a tus upload’s open-multipart, verify, merge and delete-staged as local activities under gateway-local-steps, verify and merge under gateway-local-verify-merge; earlier runs keep them regular', () => {
    const localActivities = (h: RecordedHistory) =>
      (h.history.events ?? []).flatMap((e) => {
        const data =
          e.markerRecordedEventAttributes?.markerName === 'core_local_activity'
            ? e.markerRecordedEventAttributes.details?.data?.payloads?.[0]
            : undefined;
        return data ? [(defaultPayloadConverter.fromPayload(data) as { activity_type: string }).activity_type] : [];
      });
    const before = loadHistory('client-upload-tus-before-gateway-local-steps.json');
    expect(patchIds(before)).not.toContain('gateway-local-steps');
    expect(activityTypes(before)).toEqual(['openMultipartUpload', 'verifyClientUpload', 'completeUpload', 'cleanupUpload']);

    const after = loadHistory('client-upload-tus-gateway-local-steps.json');
    expect(patchIds(after)).toContain('gateway-local-steps');
    expect(activityTypes(after)).toEqual([]);
    expect(localActivities(after)).toEqual([
      'reserveSpace',
      'openMultipartUpload',
      'verifyClientUpload',
      'completeUpload',
      'cleanupUpload',
      'commitReservation',
      'notify',
    ]);

    // gateway-local-open-multipart: creation's open-multipart local, the steps after the bytes regular
    // (re-run in a retried workflow task, a local verify or merge broke what the run had reported).
    const openLocal = loadHistory('client-upload-tus-before-concurrent-creation.json');
    expect(patchIds(openLocal)).toContain('gateway-local-open-multipart');
    expect(patchIds(openLocal)).not.toContain('gateway-local-steps');
    expect(patchIds(openLocal)).not.toContain('gateway-concurrent-creation');
    expect(activityTypes(openLocal)).toEqual(['verifyClientUpload', 'completeUpload', 'cleanupUpload']);
    expect(localActivities(openLocal)).toEqual(['reserveSpace', 'openMultipartUpload', 'commitReservation', 'notify']);

    // gateway-concurrent-creation: reserve-space and open-multipart at once, in the creation's task
    // (their markers in the order they finished).
    const concurrent = loadHistory('client-upload-tus.json');
    expect(patchIds(concurrent)).toEqual(expect.arrayContaining(['gateway-local-open-multipart', 'gateway-concurrent-creation']));
    expect(activityTypes(concurrent)).toEqual(['verifyClientUpload', 'completeUpload', 'cleanupUpload']);
    const [first, second, ...rest] = localActivities(concurrent);
    expect([first, second].sort()).toEqual(['openMultipartUpload', 'reserveSpace']);
    expect(rest).toEqual(['commitReservation', 'notify']);

    // gateway-local-verify-merge: a tus run's verify and merge local again, in the workflow task of
    // the last chunk's record; delete-staged regular, so notify runs in a later task than the merge.
    const verifyMerge = loadHistory('client-upload-tus-local-verify-merge.json');
    expect(patchIds(verifyMerge)).toContain('gateway-local-verify-merge');
    expect(patchIds(verifyMerge)).not.toContain('gateway-local-open-multipart');
    expect(activityTypes(verifyMerge)).toEqual(['cleanupUpload']);
    const [open1, open2, ...afterCreation] = localActivities(verifyMerge);
    expect([open1, open2].sort()).toEqual(['openMultipartUpload', 'reserveSpace']);
    expect(afterCreation).toEqual(['verifyClientUpload', 'completeUpload', 'commitReservation', 'notify']);
    const events = verifyMerge.history.events ?? [];
    const taskOf = (index: number) => events.slice(0, index).filter((e) => e.workflowTaskCompletedEventAttributes).length;
    const markerIndex = (type: string) =>
      events.findIndex((e) => {
        const data = e.markerRecordedEventAttributes?.details?.data?.payloads?.[0];
        return data !== undefined && (defaultPayloadConverter.fromPayload(data) as { activity_type: string }).activity_type === type;
      });
    const lastRecord = events
      .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name)
      .lastIndexOf('recordChunk');
    expect(taskOf(markerIndex('verifyClientUpload'))).toBe(taskOf(lastRecord));
    expect(taskOf(markerIndex('completeUpload'))).toBe(taskOf(lastRecord));
    expect(taskOf(markerIndex('notify'))).toBeGreaterThan(taskOf(markerIndex('completeUpload')));
    // The last record answers once merged (after the merge's marker, in its task): the finishing request sent no waitUntilMerged.
    const lastRecordId = events[lastRecord]?.workflowExecutionUpdateAcceptedEventAttributes?.protocolInstanceId;
    const lastRecordAnswered = events.findIndex((e) => e.workflowExecutionUpdateCompletedEventAttributes?.meta?.updateId === lastRecordId);
    expect(lastRecordAnswered).toBeGreaterThan(markerIndex('completeUpload'));
    expect(taskOf(lastRecordAnswered)).toBe(taskOf(lastRecord));
    expect(events.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'waitUntilMerged')).toBe(
      false,
    );

    // A concatenation partial under it: verify and store-partial local, in the task of its last record.
    const partial = loadHistory('client-upload-tus-concat-partial-local-verify-store.json');
    expect(patchIds(partial)).toContain('gateway-local-verify-merge');
    expect(activityTypes(partial)).toEqual(['cleanupUpload']);
    expect(localActivities(partial).slice(2)).toEqual(['verifyClientUpload', 'completeUpload', 'commitReservation']);
    const partialEvents = partial.history.events ?? [];
    const partialTaskOf = (index: number) => partialEvents.slice(0, index).filter((e) => e.workflowTaskCompletedEventAttributes).length;
    const partialRecord = partialEvents
      .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name)
      .lastIndexOf('recordChunk');
    const stored = partialEvents.findIndex((e) => {
      const data = e.markerRecordedEventAttributes?.details?.data?.payloads?.[0];
      return (
        data !== undefined && (defaultPayloadConverter.fromPayload(data) as { activity_type: string }).activity_type === 'completeUpload'
      );
    });
    expect(partialTaskOf(stored)).toBe(partialTaskOf(partialRecord));
    // Its last record answers once stored, in that task: the finishing request sent no waitUntilStored.
    const partialRecordId = partialEvents[partialRecord]?.workflowExecutionUpdateAcceptedEventAttributes?.protocolInstanceId;
    const partialRecordAnswered = partialEvents.findIndex(
      (e) => e.workflowExecutionUpdateCompletedEventAttributes?.meta?.updateId === partialRecordId,
    );
    expect(partialRecordAnswered).toBeGreaterThan(stored);
    expect(partialTaskOf(partialRecordAnswered)).toBe(partialTaskOf(partialRecord));
    expect(
      partialEvents.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'waitUntilStored'),
    ).toBe(false);
    // Earlier partials keep verify and store-partial regular.
    expect(activityTypes(loadHistory('client-upload-tus-concat-partial.json'))).toEqual(
      expect.arrayContaining(['verifyClientUpload', 'completeUpload']),
    );
  });

  it('runs a verify that only lists the parts as a local activity under local-listing-verify, and a re-reading verify as a regular one', () => {
    const localActivities = (h: RecordedHistory) =>
      (h.history.events ?? []).flatMap((e) => {
        const data =
          e.markerRecordedEventAttributes?.markerName === 'core_local_activity'
            ? e.markerRecordedEventAttributes.details?.data?.payloads?.[0]
            : undefined;
        return data ? [(defaultPayloadConverter.fromPayload(data) as { activity_type: string }).activity_type] : [];
      });

    // No expected checksum: verify lists the parts, inside the workflow task that saw upload-parts end.
    const listing = loadHistory('url-source.json');
    expect(patchIds(listing)).toEqual(['local-listing-verify']);
    expect(localActivities(listing)).toEqual(['inspectSource', 'reserveSpace', 'verifyUpload', 'commitReservation']);
    expect(activityTypes(listing)).toEqual(['uploadParts', 'completeUpload']);

    // An expected SHA-256 makes verify re-read the source: it stays a regular activity, heartbeating.
    const rereading = loadHistory('checksum-mismatch.json');
    expect(patchIds(rereading)).toEqual(['local-listing-verify']);
    expect(activityTypes(rereading)).toContain('verifyUpload');
    expect(localActivities(rereading)).not.toContain('verifyUpload');

    // Runs started under the previous patch keep verify a regular activity on replay.
    const earlier = loadHistory('checksum-mismatch-before-local-listing-verify.json');
    expect(patchIds(earlier)).toEqual(['local-quota-steps-folded-phases']);
    expect(activityTypes(earlier)).toContain('verifyUpload');
  });

  it('records a paused batch: the batch-pause patch, the paused phase, and its child told to pause and to resume', () => {
    const paused = loadHistory('batch-paused.json');
    expect(paused.workflowType).toBe('batchWorkflow');
    expect(patchIds(paused)).toEqual(['batch-pause', 'pause-resume']);
    const childSignals = (paused.history.events ?? []).flatMap((e) => {
      const attributes = e.signalExternalWorkflowExecutionInitiatedEventAttributes;
      const data = attributes?.input?.payloads?.[0];
      return attributes?.signalName === 'setPaused' && data
        ? [(defaultPayloadConverter.fromPayload(data) as { paused: boolean }).paused]
        : [];
    });
    expect(childSignals).toEqual([true, false]);
    const phases = (paused.history.events ?? []).flatMap((e) => {
      const field = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.['UploadPhase'];
      return field ? [defaultPayloadConverter.fromPayload(field) as string] : [];
    });
    expect(phases).toEqual(expect.arrayContaining(['paused']));
    expect(phases.at(-1)).toBe('done');
  });

  it('records a tus upload with parts of varying size: the gateway-tail-parts patch, records saying partsBytes, earlier tus runs without it', () => {
    const tail = loadHistory('client-upload-tus-tail-parts.json');
    expect(patchIds(tail)).toContain('gateway-tail-parts');
    const records = (tail.history.events ?? []).flatMap((e) => {
      const input = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input;
      if (input?.name !== 'recordChunk') return [];
      const [record] = (input.args?.payloads ?? []).map((p) => defaultPayloadConverter.fromPayload(p) as Record<string, unknown>);
      return [{ partsCompleted: record!.partsCompleted, partsBytes: record!.partsBytes, staged: (record!.staged as unknown[]).length }];
    });
    // 8 MiB (one 8 MiB part), 2 MiB staged, 11 MiB (a 5 MiB part with the staged bytes, then an 8 MiB last part).
    expect(records.at(-1)).toEqual({ partsCompleted: 3, partsBytes: 21 * 1024 * 1024, staged: 0 });
    expect(records).toContainEqual({ partsCompleted: 1, partsBytes: 8 * 1024 * 1024, staged: 0 });
    expect(records).toContainEqual({ partsCompleted: 1, partsBytes: 8 * 1024 * 1024, staged: 1 });
    for (const file of ['client-upload-tus.json', 'client-upload-tus-deferred.json', 'client-upload-continued.json'])
      expect(patchIds(loadHistory(file)), file).not.toContain('gateway-tail-parts');
  });

  it('records a paused gateway upload: the gateway-pause patch, the paused phase, pause and resume accepted, then completed', () => {
    const paused = loadHistory('client-upload-tus-paused.json');
    expect(paused.workflowType).toBe('clientUploadWorkflow');
    expect(patchIds(paused)).toEqual(expect.arrayContaining(['gateway-pause', 'pause-resume']));
    const updates = (paused.history.events ?? []).flatMap((e) => {
      const name = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name;
      return name === 'pause' || name === 'resume' ? [name] : [];
    });
    expect(updates).toEqual(['pause', 'resume']);
    const phases = (paused.history.events ?? []).flatMap((e) => {
      const field = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.['UploadPhase'];
      return field ? [defaultPayloadConverter.fromPayload(field) as string] : [];
    });
    expect(phases).toEqual(expect.arrayContaining(['paused', 'receive-parts', 'merge']));
    expect(phases.at(-1)).toBe('done');
  });

  it('records pauses with the expiry clock stopped bounded by maxPauseMs (gateway-pause-bound): resumed in time, or outlasted and expired', () => {
    const timers = (h: RecordedHistory) =>
      (h.history.events ?? []).flatMap((e) => {
        const timeout = e.timerStartedEventAttributes?.startToFireTimeout;
        return timeout ? [Number(timeout.seconds ?? 0) * 1000 + Math.round((timeout.nanos ?? 0) / 1e6)] : [];
      });
    const inputOf = (h: RecordedHistory) => {
      const first = h.history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      return defaultPayloadConverter.fromPayload(first!) as { maxPauseMs?: number };
    };
    // Before the patch: no maxPauseMs in the input, no marker, a hold without a timer.
    const before = loadHistory('client-upload-tus-paused-before-pause-bound.json');
    expect(inputOf(before).maxPauseMs).toBeUndefined();
    expect(patchIds(before)).toContain('gateway-pause');
    expect(patchIds(before)).not.toContain('gateway-pause-bound');
    // Resumed within the default maximum (7 d): its timer started, then cancelled at resume.
    const resumed = loadHistory('client-upload-tus-paused.json');
    expect(inputOf(resumed).maxPauseMs).toBe(7 * 86_400_000);
    expect(patchIds(resumed)).toEqual(expect.arrayContaining(['gateway-pause', 'gateway-pause-bound']));
    expect(timers(resumed).some((ms) => ms > 6 * 86_400_000 && ms <= 7 * 86_400_000)).toBe(true);
    expect((resumed.history.events ?? []).some((e) => e.timerCanceledEventAttributes)).toBe(true);
    expect(resumed.closedAs).toBe('completed');
    // Never resumed: the 2-second timer fired and the run failed as expired, its compensations run.
    const outlasted = loadHistory('client-upload-tus-pause-outlasted.json');
    expect(inputOf(outlasted).maxPauseMs).toBe(2000);
    expect(patchIds(outlasted)).toEqual(expect.arrayContaining(['gateway-pause', 'gateway-pause-bound']));
    expect(timers(outlasted).some((ms) => ms > 0 && ms <= 2000)).toBe(true);
    expect((outlasted.history.events ?? []).some((e) => e.timerFiredEventAttributes)).toBe(true);
    expect(outlasted.closedAs).toBe('failed');
    const failure = outlasted.history.events?.at(-1)?.workflowExecutionFailedEventAttributes?.failure;
    const messages: string[] = [];
    for (let f = failure; f; f = f.cause ?? undefined) messages.push(f.message ?? '');
    expect(messages.join('\n')).toMatch(/longer than the maximum pause \(UPLOAD_SAGA_GATEWAY_MAX_PAUSE, 2s\)/);
  });

  it('records pauses with the expiry clock stopped bounded in all (gateway-pause-bound-total): the second hold gets what the first left', () => {
    const timers = (h: RecordedHistory) =>
      (h.history.events ?? []).flatMap((e) => {
        const timeout = e.timerStartedEventAttributes?.startToFireTimeout;
        return timeout ? [Number(timeout.seconds ?? 0) * 1000 + Math.round((timeout.nanos ?? 0) / 1e6)] : [];
      });
    for (const file of ['client-upload-tus-paused.json', 'client-upload-tus-pause-outlasted.json'])
      expect(patchIds(loadHistory(file)), file).not.toContain('gateway-pause-bound-total');
    const outlasted = loadHistory('client-upload-tus-pauses-outlasted.json');
    expect(patchIds(outlasted)).toEqual(expect.arrayContaining(['gateway-pause-bound', 'gateway-pause-bound-total']));
    // The pause timers: the whole 3 s for the first hold, then the rest after a hold of about 2 s.
    const holds = timers(outlasted).filter((ms) => ms <= 3000);
    expect(holds[0]).toBeGreaterThan(2900);
    expect(holds.at(-1)).toBeGreaterThan(0);
    expect(holds.at(-1)).toBeLessThan(1500);
    expect(outlasted.closedAs).toBe('failed');
    const failure = outlasted.history.events?.at(-1)?.workflowExecutionFailedEventAttributes?.failure;
    const messages: string[] = [];
    for (let f = failure; f; f = f.cause ?? undefined) messages.push(f.message ?? '');
    expect(messages.join('\n')).toMatch(
      /of such pauses before, longer than the maximum pause in all \(UPLOAD_SAGA_GATEWAY_MAX_PAUSE, 3s\)/,
    );
  });
});
