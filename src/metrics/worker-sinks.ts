/**
 * The worker side of the upload metrics sink (see upload-sinks.ts): what `Worker.create({ sinks })`
 * registers so that workflow starts and endings reach {@link WorkerMetrics}.
 */
import type { InjectedSinks } from '@temporalio/worker';
import { parseUploadWorkflowId } from '../upload/request';
import type { UploadMetricsSinks } from './upload-sinks';
import type { WorkerMetrics } from './worker-metrics';

/** The tenant of an upload workflow id (`upload:<tenant>:<id>`), when `metrics` labels tenants. */
function tenantOf(metrics: WorkerMetrics, workflowId: string): string | undefined {
  if (!metrics.tenantLabel) return undefined;
  return parseUploadWorkflowId(workflowId)?.tenant;
}

/** The sinks to pass as `sinks` to `Worker.create`. Not called during replay. */
export function uploadMetricsSinks(metrics: WorkerMetrics): InjectedSinks<UploadMetricsSinks> {
  return {
    uploadMetrics: {
      started: {
        fn: (info, kind) => metrics.uploadStarted(kind, tenantOf(metrics, info.workflowId)),
        callDuringReplay: false,
      },
      ended: {
        fn: (info, report) => metrics.uploadEnded(report.kind, report.outcome, tenantOf(metrics, info.workflowId), report.failure),
        callDuringReplay: false,
      },
    },
  };
}
