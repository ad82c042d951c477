/**
 * The worker's application metrics, on prom-client: one {@link WorkerMetrics} per worker process,
 * each with a registry of its own (never prom-client's global one, so two workers in one test
 * process, or a host application's own metrics, never clash).
 *
 * Invariants:
 * - Labels are bounded: steps, outcomes, error types and S3 codes come from the code, never from
 *   input; `tenant` is a label only when the operator opts in (`UPLOAD_SAGA_METRICS_TENANT_LABEL`),
 *   since tenants are unbounded in number. No label ever carries a key, URL, bucket or secret.
 * - Names follow Prometheus conventions: `upload_saga_` prefix, `_total` counters, base units
 *   (`_seconds`, `_bytes`).
 * - Recording is cheap: the per-part path (bytes, durations) uses children bound to their labels
 *   once, so it allocates nothing per part.
 *
 * Who records what: workflow outcomes arrive through sinks (see worker-sinks.ts), per-attempt
 * activity facts through the activity interceptor (activity-interceptor.ts), S3 request errors
 * through a middleware on the S3 client (s3-middleware.ts), and parts through the upload-parts
 * activity's {@link PartMetrics} port.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Breaker states as the gauge shows them. */
export const CIRCUIT_BREAKER_STATE_VALUES = { closed: 0, 'half-open': 1, halfOpen: 1, open: 2 } as const;
/** A breaker state (opossum-style and hyphenated spellings both accepted). */
export type CircuitBreakerState = keyof typeof CIRCUIT_BREAKER_STATE_VALUES;

/** How a part's bytes reached the store: sent by the worker, or copied by the store itself. */
export type PartTransfer = 'upload' | 'copy';

/** What the upload-parts activity records per part: a small port so activities do not depend on prom-client. */
export interface PartMetrics {
  /** One part written: `bytes` of it, `seconds` from reading the source to S3's answer, `source` the source kind. */
  partUploaded(transfer: PartTransfer, source: string, bytes: number, seconds: number): void;
}

/** Options of {@link WorkerMetrics}. */
export interface WorkerMetricsOptions {
  /** Add a `tenant` label to the per-upload counters (unbounded: opt in only with few tenants). @default false */
  tenantLabel?: boolean;
  /** The registry to register into. @default a new Registry */
  registry?: Registry;
}

/** Part-duration buckets: 10 ms to 5 min, for parts of 5 MiB to several GiB. */
const PART_SECONDS_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/**
 * Every metric the worker defines. Recording methods are the API; the metric objects are public
 * for tests and for host applications that read them.
 */
export class WorkerMetrics implements PartMetrics {
  readonly registry: Registry;
  readonly tenantLabel: boolean;
  readonly uploadsStarted: Counter<string>;
  readonly uploadsEnded: Counter<string>;
  readonly uploadFailures: Counter<string>;
  readonly compensations: Counter<string>;
  readonly uploadedBytes: Counter<string>;
  readonly sourceReadBytes: Counter<string>;
  readonly partDuration: Histogram<string>;
  readonly s3RequestErrors: Counter<string>;
  readonly retries: Counter<string>;
  readonly activityAttempts: Counter<string>;
  readonly oldestRunningActivity: Gauge<string>;
  readonly quotaReservations: Counter<string>;
  readonly webhookDeliveries: Counter<string>;
  readonly circuitBreakerState: Gauge<string>;
  /** Start times (ms) of the activity attempts running now, by step (see {@link activityStarted}). */
  private readonly running = new Map<string, Set<{ startedAt: number }>>();

  constructor(options: WorkerMetricsOptions = {}) {
    const registers = [(this.registry = options.registry ?? new Registry())];
    this.tenantLabel = options.tenantLabel ?? false;
    const tenant = this.tenantLabel ? ['tenant'] : [];
    this.uploadsStarted = new Counter({
      name: 'upload_saga_uploads_started_total',
      help: 'Uploads whose workflow started, by kind (worker: sources the worker reads; gateway: bytes sent to the gateway)',
      labelNames: ['kind', ...tenant],
      registers,
    });
    this.uploadsEnded = new Counter({
      name: 'upload_saga_uploads_ended_total',
      help: 'Uploads that ended, by kind and outcome (completed, compensated, failed, cancelled, expired)',
      labelNames: ['kind', 'outcome', ...tenant],
      registers,
    });
    this.uploadFailures = new Counter({
      name: 'upload_saga_upload_failures_total',
      help: 'Uploads that did not complete (compensated, failed, expired), by kind, the saga step that failed and the failure type',
      labelNames: ['kind', 'step', 'cause', ...tenant],
      registers,
    });
    this.compensations = new Counter({
      name: 'upload_saga_compensations_total',
      help: 'Compensations run by ended uploads, by saga step and status (compensated, failed, skipped)',
      labelNames: ['step', 'status'],
      registers,
    });
    this.uploadedBytes = new Counter({
      name: 'upload_saga_uploaded_bytes_total',
      help: 'Bytes of parts the worker wrote to the store (uploaded or copied server-side)',
      labelNames: ['transfer'],
      registers,
    });
    this.sourceReadBytes = new Counter({
      name: 'upload_saga_source_read_bytes_total',
      help: 'Bytes the worker read from sources, by source kind (file, url, s3); its rate is the source read rate',
      labelNames: ['source'],
      registers,
    });
    this.partDuration = new Histogram({
      name: 'upload_saga_part_upload_duration_seconds',
      help: "Time to write one part: reading it from the source, its checksum and S3's answer (or the server-side copy)",
      labelNames: ['transfer'],
      buckets: PART_SECONDS_BUCKETS,
      registers,
    });
    this.s3RequestErrors = new Counter({
      name: 'upload_saga_s3_request_errors_total',
      help: 'S3 requests that failed, each attempt of the SDK counted, by operation, classified type (S3.<Code>, S3.NetworkError) and retryability',
      labelNames: ['operation', 'type', 'retryable'],
      registers,
    });
    this.retries = new Counter({
      name: 'upload_saga_retries_total',
      help: 'Activity attempts that failed with a retryable error (Temporal retries them within the step policy), by step and error type',
      labelNames: ['step', 'error_type'],
      registers,
    });
    this.activityAttempts = new Counter({
      name: 'upload_saga_activity_attempts_total',
      help: 'Activity attempts that ended, by step and result (succeeded, retryable, failed, cancelled)',
      labelNames: ['step', 'result'],
      registers,
    });
    const running = this.running;
    this.oldestRunningActivity = new Gauge({
      name: 'upload_saga_activity_oldest_running_seconds',
      help: 'Age of the oldest activity attempt running on this worker, by step (0 when none): an upload stuck in one phase',
      labelNames: ['step'],
      registers,
      collect() {
        const now = Date.now();
        this.reset();
        for (const [step, attempts] of running) {
          let oldest = now;
          for (const attempt of attempts) oldest = Math.min(oldest, attempt.startedAt);
          this.set({ step }, (now - oldest) / 1000);
        }
      },
    });
    this.quotaReservations = new Counter({
      name: 'upload_saga_quota_reservations_total',
      help: 'Quota reservations, by result (reserved, rejected: over quota, error)',
      labelNames: ['result', ...tenant],
      registers,
    });
    this.webhookDeliveries = new Counter({
      name: 'upload_saga_webhook_deliveries_total',
      help: 'Webhook delivery attempts, by result (delivered, or the failure type: WebhookUnavailable, WebhookRejected, WebhookNotAllowed)',
      labelNames: ['result'],
      registers,
    });
    this.circuitBreakerState = new Gauge({
      name: 'upload_saga_circuit_breaker_state',
      help: 'State of each circuit breaker: 0 closed, 1 half-open, 2 open; target is an S3 endpoint or webhook host',
      labelNames: ['target'],
      registers,
    });
    this.boundUploaded = { upload: this.uploadedBytes.labels('upload'), copy: this.uploadedBytes.labels('copy') };
    this.boundDuration = { upload: this.partDuration.labels('upload'), copy: this.partDuration.labels('copy') };
  }

  private readonly boundUploaded: Record<PartTransfer, ReturnType<Counter<string>['labels']>>;
  private readonly boundDuration: Record<PartTransfer, ReturnType<Histogram<string>['labels']>>;
  private readonly boundRead = new Map<string, ReturnType<Counter<string>['labels']>>();

  /** Labels of a per-upload series: `tenant` added only when opted in. */
  private withTenant(labels: Record<string, string>, tenant: string | undefined): Record<string, string> {
    return this.tenantLabel ? { ...labels, tenant: tenant ?? '' } : labels;
  }

  /** An upload's workflow started (first run, not replays). */
  uploadStarted(kind: string, tenant?: string): void {
    this.uploadsStarted.inc(this.withTenant({ kind }, tenant));
  }

  /**
   * An upload ended with `outcome`; for an outcome other than completed, the failed step and
   * cause type, and the compensations that ran.
   */
  uploadEnded(
    kind: string,
    outcome: string,
    tenant: string | undefined,
    failure?: { step: string; cause: string; compensations: readonly { step: string; status: string }[] },
  ): void {
    this.uploadsEnded.inc(this.withTenant({ kind, outcome }, tenant));
    if (!failure) return;
    if (outcome !== 'cancelled') this.uploadFailures.inc(this.withTenant({ kind, step: failure.step, cause: failure.cause }, tenant));
    for (const c of failure.compensations) this.compensations.inc({ step: c.step, status: c.status });
  }

  partUploaded(transfer: PartTransfer, source: string, bytes: number, seconds: number): void {
    this.boundUploaded[transfer].inc(bytes);
    this.boundDuration[transfer].observe(seconds);
    if (transfer === 'copy') return;
    let read = this.boundRead.get(source);
    if (!read) this.boundRead.set(source, (read = this.sourceReadBytes.labels(source)));
    read.inc(bytes);
  }

  /** An S3 request attempt failed. */
  s3RequestFailed(operation: string, type: string, retryable: boolean): void {
    this.s3RequestErrors.inc({ operation, type, retryable: String(retryable) });
  }

  /** An activity attempt of `step` began; call the returned function when it ends. */
  activityStarted(step: string): () => void {
    let attempts = this.running.get(step);
    if (!attempts) this.running.set(step, (attempts = new Set()));
    const attempt = { startedAt: Date.now() };
    attempts.add(attempt);
    return () => attempts.delete(attempt);
  }

  /** Sets a breaker's state: the listener the circuit breaker calls, `(target, state) => void`. */
  setCircuitBreakerState(target: string, state: CircuitBreakerState): void {
    this.circuitBreakerState.set({ target }, CIRCUIT_BREAKER_STATE_VALUES[state]);
  }

  /** The breaker listener `(target, state) => void`, bound to these metrics. */
  readonly circuitBreakerListener = (target: string, state: CircuitBreakerState): void => this.setCircuitBreakerState(target, state);

  /** The exposition text of every metric here. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
