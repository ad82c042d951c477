/**
 * The saga engine's worker-side surface: what a worker registers so that declared jitter works.
 */
import type { WorkerOptions } from '@temporalio/worker';
import { siblingModule } from '../../module-path';
import { createRetryInterceptor, type RetryInterceptorOptions } from './retry-interceptor';

export { createRetryInterceptor, type RetryInterceptorOptions } from './retry-interceptor';
export { type StoreRetryAfter } from '../shared/retry-hint';

/** Path of the workflow interceptor module, for `interceptors.workflowModules`. */
export const sagaWorkflowInterceptorsPath = siblingModule(__dirname, '../workflow/retry-hints');

/**
 * Both halves of the saga's retry hints, ready to spread into `Worker.create({ interceptors })`.
 */
export function sagaWorkerInterceptors(options: RetryInterceptorOptions = {}): NonNullable<WorkerOptions['interceptors']> {
  return {
    workflowModules: [sagaWorkflowInterceptorsPath],
    activity: [createRetryInterceptor(options)],
  };
}
