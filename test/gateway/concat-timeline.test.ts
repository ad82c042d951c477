/**
 * Diagnostic (runs only with UPLOAD_SAGA_CONCAT_TIMELINE=1): one tus-js-client upload with
 * `parallelUploads: 4` through an in-process gateway, then the histories of its 4 partials and its
 * final laid out on one clock, in ms after the client's last byte — where the time between the
 * last byte and the final's 201 goes (docs/explanation/performance.md).
 */
import { randomBytes } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadWorkflowId } from '../../src/upload/request';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { idOf, startTestGateway, startTus, testTenant, type TestGateway } from './gateway-harness';

const enabled = process.env.UPLOAD_SAGA_CONCAT_TIMELINE === '1';
const SIZE = Number(process.env.UPLOAD_SAGA_CONCAT_TIMELINE_MIB ?? 128) * MiB;
let stack: TestStack;
let worker: RunningWorker;
let gateway: TestGateway;
const tenant = testTenant('concat-timeline');

beforeAll(async () => {
  if (!enabled) return;
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  const defaults = { maxUploadBytes: 1024 * MiB, requestsPerSecond: 1000, maxBodyStreams: 8 };
  gateway = await startTestGateway(stack, [tenant], { overrides: { defaults } });
});

afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
  await stack?.close();
});

/** `EVENT_TYPE_WORKFLOW_TASK_STARTED` → `workflow-task-started`. */
const EventType = (n: number | null | undefined) =>
  (temporal.api.enums.v1.EventType[n ?? 0] ?? `event-${n}`)
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replaceAll('_', '-');

function describeEvent(event: temporal.api.history.v1.IHistoryEvent): string {
  const type = EventType(event.eventType);
  if (event.activityTaskScheduledEventAttributes) return `${type} ${event.activityTaskScheduledEventAttributes.activityType?.name}`;
  if (event.markerRecordedEventAttributes) {
    const details = event.markerRecordedEventAttributes.details ?? {};
    const activity = details.type?.payloads?.[0]?.data;
    return `${type} ${event.markerRecordedEventAttributes.markerName}${activity ? ` ${Buffer.from(activity).toString()}` : ''}`;
  }
  if (event.workflowExecutionUpdateAcceptedEventAttributes)
    return `${type} ${event.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest?.input?.name}`;
  if (event.workflowExecutionSignaledEventAttributes) return `${type} ${event.workflowExecutionSignaledEventAttributes.signalName}`;
  return type;
}

describe.runIf(enabled)('parallel upload timeline', () => {
  it('lays out the partials and the final after the last byte', async () => {
    const data = randomBytes(SIZE);
    let lastByte = NaN;
    const answered: string[] = [];
    const t0 = Date.now();
    const run = startTus(data, {
      endpoint: `${gateway.url}/files`,
      headers: tenant.auth,
      parallelUploads: 4,
      metadata: { filename: 'timeline.bin' },
      onProgress: (sent, total) => {
        if (sent === total && Number.isNaN(lastByte)) lastByte = Date.now();
      },
      onAfterResponse: (request, response) => {
        answered.push(
          `${Date.now()} ${request.getMethod()} ${request.getHeader('Upload-Concat')?.slice(0, 5) ?? ''} → ${response.getStatus()}`,
        );
      },
    });
    await run.done;
    const done = Date.now();
    const finalId = idOf(run.upload.url);
    const final = await gateway.app.uploads.waitForEnd(tenant.name, finalId, 30_000);
    expect(final.outcome).toBe('completed');
    const ids = final.concat?.kind === 'final' ? final.concat.partials : [];
    const lines: [number, string][] = [];
    for (const [name, id] of [...ids.map((id, i) => [`partial ${i}`, id] as const), ['final', finalId] as const]) {
      await gateway.app.uploads.waitForEnd(tenant.name, id, 30_000);
      const history = await stack.client.workflow.getHandle(uploadWorkflowId(tenant.name, id)).fetchHistory();
      for (const event of history.events ?? []) {
        const at = Number(event.eventTime?.seconds ?? 0) * 1000 + Math.round((event.eventTime?.nanos ?? 0) / 1e6);
        if (at >= lastByte - 1500) lines.push([at, `${name}: #${event.eventId} ${describeEvent(event)}`]);
      }
    }
    for (const line of answered) {
      const [at, ...rest] = line.split(' ');
      if (Number(at) >= lastByte - 1500) lines.push([Number(at), `client: ${rest.join(' ')}`]);
    }
    lines.push([lastByte, 'client: last byte sent'], [done, 'client: done']);
    lines.sort((a, b) => a[0] - b[0]);
    console.log(
      `${SIZE / MiB} MiB in ${done - t0} ms, done ${done - lastByte} ms after the last byte\n` +
        lines.map(([at, what]) => `${String(at - lastByte).padStart(6)} ms  ${what}`).join('\n'),
    );
  }, 120_000);
});
