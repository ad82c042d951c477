/**
 * Activity-side counting: one interceptor sees every activity attempt on the worker, so retries,
 * quota reservations, webhook deliveries and the age of running attempts are recorded in one
 * place instead of in each activity.
 *
 * Why here and not in workflow code: these are per-attempt facts (a retried attempt never shows
 * in workflow code, only its last failure does), and the interceptor runs outside the workflow
 * sandbox, so it can touch prom-client freely without any effect on histories.
 */
import { type Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { parseUploadWorkflowId } from '../upload/request';
import type { WorkerMetrics } from './worker-metrics';

/** The failure type of an activity error, as Temporal reports it. */
export function failureTypeOf(err: unknown): string {
  if (err instanceof ApplicationFailure) return err.type ?? 'Error';
  if (err instanceof Error) return err.name;
  return 'Error';
}

/** How an attempt ended, for `upload_saga_activity_attempts_total`. */
function attemptResult(err: unknown, nonRetryableTypes: readonly string[]): 'cancelled' | 'failed' | 'retryable' {
  if (err instanceof CancelledFailure) return 'cancelled';
  if (err instanceof ApplicationFailure && err.nonRetryable) return 'failed';
  return nonRetryableTypes.includes(failureTypeOf(err)) ? 'failed' : 'retryable';
}

/** The activity interceptor factory that records into `metrics`; register it with `interceptors.activity`. */
export function createMetricsActivityInterceptor(metrics: WorkerMetrics): ActivityInterceptorsFactory {
  return (ctx: Context) => ({
    inbound: {
      async execute(input, next) {
        const { activityType: step, workflowExecution, retryPolicy } = ctx.info;
        const done = metrics.activityStarted(step);
        const tenant = metrics.tenantLabel ? parseUploadWorkflowId(workflowExecution?.workflowId ?? '')?.tenant : undefined;
        try {
          const result = await next(input);
          metrics.activityAttempts.inc({ step, result: 'succeeded' });
          if (step === 'reserveSpace') metrics.quotaReservations.inc(withTenant(metrics, { result: 'reserved' }, tenant));
          if (step === 'notify') metrics.webhookDeliveries.inc({ result: 'delivered' });
          return result;
        } catch (err) {
          const result = attemptResult(err, retryPolicy?.nonRetryableErrorTypes ?? []);
          const type = failureTypeOf(err);
          metrics.activityAttempts.inc({ step, result });
          if (result === 'retryable') metrics.retries.inc({ step, error_type: type });
          if (step === 'reserveSpace') {
            metrics.quotaReservations.inc(withTenant(metrics, { result: type === 'QuotaExceeded' ? 'rejected' : 'error' }, tenant));
          }
          if (step === 'notify' && result !== 'cancelled') metrics.webhookDeliveries.inc({ result: type });
          throw err;
        } finally {
          done();
        }
      },
    },
  });
}

function withTenant(metrics: WorkerMetrics, labels: Record<string, string>, tenant: string | undefined): Record<string, string> {
  return metrics.tenantLabel ? { ...labels, tenant: tenant ?? '' } : labels;
}
