/**
 * What must hold after ANY upload settles, whatever failed on the way (issue 5):
 *
 * 1. the object is byte-identical to the source (SHA-256 over a GetObject), or absent — present
 *    exactly when the upload completed;
 * 2. no incomplete multipart upload exists for the key (ListMultipartUploads);
 * 3. no staged object exists under `.upload-saga/staging/<tenant>/<uploadId>/`;
 * 4. the tenant's ledger holds no reservation for the upload: it is committed when the upload
 *    completed, released otherwise (or was never taken, when the upload ended before or at
 *    reserve-space); and per tenant, used bytes equal the sizes of its completed uploads and
 *    nothing stays reserved — a double commit or a leaked reservation shows up there;
 * 5. the webhook receiver got the outcome's event (`upload.completed`, `upload.failed`,
 *    `upload.cancelled`) at least once with a 2xx answer, every delivery carries its event id as
 *    `Idempotency-Key`, repeats of one key carry the same event (byte-identical but, possibly, a
 *    later `occurredAt` — so de-duplicating by the key is safe), the signature verifies, and no
 *    event contradicts the outcome.
 *
 * Why it is built this way: every check reads the real systems independently of the code under
 * test — S3 through its own API with root credentials, the ledger through its query, the webhook
 * through what the receiver saw — and all violations are collected before failing, so one run
 * shows everything that is wrong. The ledger is read through `TemporalQuotaLedger.reservation()`,
 * the ledger module's own API, so a change of the ledger's protocol stays inside that module.
 */
import { AssertionError } from 'node:assert';
import { createHmac } from 'node:crypto';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { UploadFailedError } from '../../src/client';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import type { SagaFailureReport } from '../../src/saga/workflow';
import type { UploadResult } from '../../src/upload/outcome';
import { stagingPrefixOf } from '../../src/upload/staging';
import type { ReservationStatus } from '../../src/workflows/quota-ledger';
import { incompleteUploads, keysUnder, objectSha256 } from '../support/s3-inspect';
import type { FaultContext, TrackedUpload } from './framework';

/**
 * What the checks read: the systems and the receiver, nothing of the scenario's servers (so the
 * checker also runs against the test stack of `npm test`, see invariants.test.ts).
 */
export type InvariantContext = Pick<FaultContext, 'client' | 'taskQueue' | 's3' | 'webhook' | 'webhookSecret' | 'log'>;

/** How an upload ended. `failed`: it failed and at least one compensation did not succeed. */
export type SettledOutcome = 'completed' | 'compensated' | 'cancelled' | 'failed';

/** The end of an upload, as the client reports it. */
export type Settled =
  | { readonly outcome: 'completed'; readonly result: UploadResult }
  | {
      readonly outcome: 'compensated' | 'cancelled' | 'failed';
      readonly error: UploadFailedError;
      readonly report: SagaFailureReport | undefined;
    };

/** What a scenario expects on top of the invariants. */
export interface InvariantExpectation {
  /**
   * The outcome(s) the scenario expects.
   * @default any of 'completed', 'compensated', 'cancelled' ('failed' — a compensation that did
   * not succeed — is accepted only when listed)
   */
  readonly outcome?: SettledOutcome | readonly SettledOutcome[];
  /** The failure's cause type (`report.cause.type`), e.g. `QuotaExceeded`, `S3.AccessDenied`. */
  readonly causeType?: string | RegExp;
  /** The step that failed (`report.failedStep`), e.g. `verify`. */
  readonly failedStep?: string;
  /**
   * The webhook: `delivered` — the outcome's event got a 2xx answer at least once; `undelivered` —
   * the upload completed and reports `notification.status: 'failed'` (the receiver was down for
   * good); `skip` — not checked. Uploads without a webhook URL are never checked.
   * @default 'delivered'
   */
  readonly webhook?: 'delivered' | 'undelivered' | 'skip';
  /**
   * How long to wait for the upload to end.
   * @default 300_000
   */
  readonly settleTimeoutMs?: number;
}

/** What was found (for logs and scenario notes). */
export interface InvariantReport {
  readonly outcome: SettledOutcome;
  readonly failedStep?: string;
  readonly causeType?: string;
  readonly objectPresent: boolean;
  readonly reservation: ReservationStatus['status'];
  /** Webhook deliveries of this upload the receiver answered. */
  readonly deliveries: number;
  readonly settled: Settled;
}

const settledCache = new WeakMap<TrackedUpload, Promise<Settled>>();

/**
 * What a workflow that did not end is waiting for, for the failure message: its pending
 * activities with their attempt and last failure (a hang is diagnosed from this line, after the
 * scenario's servers are gone). Local activities and timers are not listed by the server.
 */
/** What the upload's workflow waits for now: each pending activity with its attempt, timings and last failure. */
export async function stillPending(upload: Pick<TrackedUpload, 'handle'>): Promise<string> {
  try {
    const { raw } = await upload.handle.workflow.describe();
    // When each time was, relative to now: what the activity waits for (a retry's backoff, a running attempt, a worker).
    const ago = (ts: { seconds?: unknown } | null | undefined) =>
      ts?.seconds === undefined || ts.seconds === null ? 'never' : `${((Date.now() / 1000 - Number(ts.seconds)) | 0).toString()} s ago`;
    const inS = (ts: { seconds?: unknown } | null | undefined) =>
      ts?.seconds === undefined || ts.seconds === null ? 'none' : `in ${((Number(ts.seconds) - Date.now() / 1000) | 0).toString()} s`;
    const pending = (raw.pendingActivities ?? []).map(
      (a) =>
        `${a.activityType?.name ?? '?'} attempt ${a.attempt ?? 1}, state ${String(a.state)}, last started ${ago(a.lastStartedTime)}, ` +
        `next attempt ${inS(a.nextAttemptScheduleTime)}, last heartbeat ${ago(a.lastHeartbeatTime)}, worker ${a.lastWorkerIdentity || 'none'}, ` +
        `last failure: ${a.lastFailure?.message ?? 'none'}`,
    );
    return pending.length > 0 ? `pending: ${pending.join(' | ')}` : 'no pending activity (a local activity or a timer, if anything)';
  } catch (error) {
    return `describe failed: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/**
 * Waits until the upload's workflow has closed and tells how it ended. Compensations and the
 * failure webhook run before the workflow closes, so once this resolves everything has settled.
 */
export function settle(upload: TrackedUpload, timeoutMs = 300_000): Promise<Settled> {
  let settled = settledCache.get(upload);
  if (!settled) {
    settled = (async (): Promise<Settled> => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          void stillPending(upload).then((pending) =>
            reject(new Error(`${upload.workflowId} did not end within ${timeoutMs / 1000} s; ${pending}`)),
          );
        }, timeoutMs);
      });
      try {
        const result = await Promise.race([upload.handle.result(), timeout]);
        return { outcome: 'completed', result };
      } catch (error) {
        if (error instanceof UploadFailedError) return { outcome: error.outcome, error, report: error.report };
        throw error;
      } finally {
        clearTimeout(timer);
      }
    })();
    settledCache.set(upload, settled);
    // A timed-out settle may be retried by a later call.
    settled.catch(() => settledCache.delete(upload));
  }
  return settled;
}

async function withTimeout<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Where the upload stands in its tenant's ledger, through the ledger module's own API. */
export function reservationOf(ctx: InvariantContext, tenant: string, uploadId: string): Promise<ReservationStatus> {
  const ledger = new TemporalQuotaLedger({ client: ctx.client, taskQueue: ctx.taskQueue, limits: { defaultBytes: 0 } });
  return withTimeout(
    `the quota ledger of tenant ${tenant} (is a worker running on its task queue?)`,
    30_000,
    ledger.reservation(tenant, uploadId),
  );
}

async function objectExists(ctx: InvariantContext, bucket: string, key: string): Promise<boolean> {
  try {
    await ctx.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}

const EVENT_OF: Record<SettledOutcome, string> = {
  completed: 'upload.completed',
  compensated: 'upload.failed',
  failed: 'upload.failed',
  cancelled: 'upload.cancelled',
};

/** How long a ledger may take to apply a commit or release its step already reported done. */
const LEDGER_SETTLE_MS = 15_000;

/** Steps at or before which an upload holds no reservation when it fails. */
const BEFORE_RESERVATION = new Set(['inspect-source', 'reserve-space', 'workflow']);

/**
 * Waits for the upload to settle, then asserts every invariant and `expectation`.
 *
 * @throws AssertionError listing every violation found
 */
export async function assertUploadInvariants(
  ctx: InvariantContext,
  upload: TrackedUpload,
  expectation: InvariantExpectation = {},
): Promise<InvariantReport> {
  const settled = await settle(upload, expectation.settleTimeoutMs);
  const violations: string[] = [];
  const where = `s3://${upload.bucket}/${upload.key}`;
  const report = settled.outcome === 'completed' ? undefined : settled.report;

  // 0. The outcome the scenario expects, and a consistent one in any case.
  const allowed = expectation.outcome === undefined ? ['completed', 'compensated', 'cancelled'] : [expectation.outcome].flat();
  if (!allowed.includes(settled.outcome)) {
    const why = settled.outcome === 'completed' ? '' : `: ${settled.error.message}`;
    violations.push(`outcome is ${settled.outcome}, expected ${allowed.join(' or ')}${why}`);
  }
  if (settled.outcome !== 'completed') {
    if (!report) violations.push(`the failure carries no saga report (${settled.error.message})`);
    if (expectation.causeType !== undefined && !matches(expectation.causeType, report?.cause.type)) {
      violations.push(
        `cause type is ${report?.cause.type ?? '(none)'}, expected ${String(expectation.causeType)}: ${report?.cause.message ?? ''}`,
      );
    }
    if (expectation.failedStep !== undefined && report?.failedStep !== expectation.failedStep) {
      violations.push(`failed step is ${report?.failedStep ?? '(none)'}, expected ${expectation.failedStep}`);
    }
    for (const c of report?.compensations ?? []) {
      if (c.status !== 'compensated' && !allowed.includes('failed'))
        violations.push(`compensation ${c.activity} of ${c.step} ${c.status}: ${c.error?.message ?? ''}`);
    }
  } else if (expectation.causeType !== undefined || expectation.failedStep !== undefined) {
    violations.push(
      `the upload completed, but the scenario expected a failure (${String(expectation.causeType ?? expectation.failedStep)})`,
    );
  }

  // 1. Byte-identical or absent — present exactly when completed.
  const present = await objectExists(ctx, upload.bucket, upload.key);
  if (settled.outcome === 'completed') {
    if (!present) violations.push(`the upload completed but ${where} does not exist`);
    else {
      const sha256 = await objectSha256(ctx.s3, upload.bucket, upload.key);
      if (sha256 !== upload.source.sha256)
        violations.push(`${where} is not byte-identical to the source: SHA-256 ${sha256}, source ${upload.source.sha256}`);
    }
    if (settled.result.size !== upload.source.size)
      violations.push(`the result says ${settled.result.size} bytes, the source has ${upload.source.size}`);
  } else if (present) {
    violations.push(`the upload ended ${settled.outcome} but ${where} exists`);
  }

  // 2. No incomplete multipart upload for the key.
  const open = await incompleteUploads(ctx.s3, upload.bucket, upload.key);
  if (open.length > 0) violations.push(`${open.length} incomplete multipart upload(s) left for ${where}: ${open.join(', ')}`);

  // 3. No staged object.
  const staging = stagingPrefixOf(upload.tenant, upload.uploadId);
  const staged = await keysUnder(ctx.s3, upload.bucket, staging);
  if (staged.length > 0) violations.push(`${staged.length} staged object(s) left under ${staging}: ${staged.slice(0, 3).join(', ')}`);

  // 4. The reservation: committed exactly when completed, otherwise released (or never taken).
  let reservation: ReservationStatus['status'] = 'unknown';
  try {
    const failedAt = report?.failedStep ?? 'workflow';
    const expected: ReservationStatus['status'][] =
      settled.outcome === 'completed' ? ['committed'] : BEFORE_RESERVATION.has(failedAt) ? ['released', 'unknown'] : ['released'];
    // A ledger may apply a commit or release after the step returned (e.g. sent as a signal): give
    // it a little while to get there, never a wrong state a pass.
    const deadline = Date.now() + LEDGER_SETTLE_MS;
    for (;;) {
      reservation = (await reservationOf(ctx, upload.tenant, upload.uploadId)).status;
      if (expected.includes(reservation) || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    if (!expected.includes(reservation)) {
      violations.push(
        `the ledger has the reservation ${reservation}, expected ${expected.join(' or ')} (the upload ended ${settled.outcome}${report ? ` at ${report.failedStep}` : ''})`,
      );
    }
  } catch (error) {
    violations.push(`could not read the ledger: ${error instanceof Error ? error.message : String(error)}`);
  }

  // 5. The webhook.
  const deliveries = ctx.webhook.deliveries.filter((d) => d.json.workflowId === upload.workflowId);
  const mode = expectation.webhook ?? 'delivered';
  if (upload.webhookUrl && mode !== 'skip') {
    violations.push(...webhookViolations(ctx, upload, settled, deliveries, mode));
  }

  if (violations.length > 0) {
    throw new AssertionError({ message: `invariants violated for ${upload.workflowId}:\n  - ${violations.join('\n  - ')}` });
  }
  return {
    outcome: settled.outcome,
    ...(report ? { failedStep: report.failedStep, causeType: report.cause.type } : {}),
    objectPresent: present,
    reservation,
    deliveries: deliveries.length,
    settled,
  };
}

function webhookViolations(
  ctx: InvariantContext,
  upload: TrackedUpload,
  settled: Settled,
  deliveries: FaultContext['webhook']['deliveries'],
  mode: 'delivered' | 'undelivered',
): string[] {
  const violations: string[] = [];
  const expectedType = EVENT_OF[settled.outcome];
  const bodyByKey = new Map<string, string>();
  const keyByType = new Map<string, string>();
  for (const d of deliveries) {
    const key = d.headers['idempotency-key'];
    const type = String(d.json.type);
    if (typeof key !== 'string' || key !== d.json.id)
      violations.push(`a ${type} delivery has Idempotency-Key ${String(key)}, but the event id is ${String(d.json.id)}`);
    if (typeof key === 'string') {
      const earlier = bodyByKey.get(key);
      if (earlier !== undefined && earlier !== d.body) {
        // A notify run as a local activity whose workflow task was lost (timed out under load, or its
        // worker killed) is sent again by the retried task, with that task's later time as
        // `occurredAt` and in the step timings it reports (`result.timings`): the same event for a
        // receiver that de-duplicates by key. Anything else differing is a violation.
        const fields = differingFields(earlier, d.body);
        if (differingFields(withoutClockFields(earlier), withoutClockFields(d.body)) === '')
          ctx.log(`${upload.workflowId}: a repeated ${type} delivery differs only in its clock fields (${fields})`);
        else violations.push(`two deliveries with Idempotency-Key ${key} differ (${fields}): a receiver could not de-duplicate them`);
      }
      bodyByKey.set(key, d.body);
      const otherKey = keyByType.get(type);
      if (otherKey !== undefined && otherKey !== key) violations.push(`${type} was sent under two idempotency keys (${otherKey}, ${key})`);
      keyByType.set(type, key);
    }
    if (type !== expectedType) violations.push(`the receiver got ${type}, which contradicts the outcome ${settled.outcome}`);
    const signature = d.headers['x-upload-saga-signature'];
    const t = typeof signature === 'string' ? /^t=(\d+),v1=([0-9a-f]+)$/.exec(signature) : null;
    const mac = t ? createHmac('sha256', ctx.webhookSecret).update(`${t[1]}.${d.body}`).digest('hex') : undefined;
    if (!t || mac !== t[2]) violations.push(`a ${type} delivery has no valid signature (${String(signature)})`);
  }
  const delivered = deliveries.filter((d) => d.json.type === expectedType && d.status >= 200 && d.status < 300);
  if (mode === 'delivered' && delivered.length === 0) {
    violations.push(
      `the receiver never acknowledged ${expectedType} (${deliveries.length} deliveries: ${deliveries.map((d) => `${String(d.json.type)}→${d.status}`).join(', ') || 'none'})`,
    );
  }
  if (mode === 'undelivered') {
    if (settled.outcome !== 'completed')
      violations.push(`expected a completed upload whose webhook failed, but it ended ${settled.outcome}`);
    else if (settled.result.notification.status !== 'failed')
      violations.push(`the webhook was down for good, but the result says notification ${settled.result.notification.status}`);
    if (delivered.length > 0)
      violations.push(`the webhook was expected to stay undelivered, but ${delivered.length} deliveries were acknowledged`);
  }
  return violations;
}

/** The top-level JSON fields in which two bodies differ, with both values shortened. */
/** The event without the fields a retried workflow task computes again from its own clock. */
function withoutClockFields(body: string): string {
  try {
    const { occurredAt: _occurredAt, result, ...rest } = JSON.parse(body) as Record<string, unknown>;
    if (result && typeof result === 'object') {
      const { timings: _timings, ...resultRest } = result as Record<string, unknown>;
      return JSON.stringify({ ...rest, result: resultRest });
    }
    return JSON.stringify(rest);
  } catch {
    return body;
  }
}

function differingFields(a: string, b: string): string {
  try {
    const x = JSON.parse(a) as Record<string, unknown>;
    const y = JSON.parse(b) as Record<string, unknown>;
    const show = (v: unknown) => JSON.stringify(v)?.slice(0, 120) ?? 'undefined';
    return [...new Set([...Object.keys(x), ...Object.keys(y)])]
      .filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k]))
      .map((k) => `${k}: ${show(x[k])} vs ${show(y[k])}`)
      .join('; ');
  } catch {
    return 'not JSON';
  }
}

function matches(expected: string | RegExp, actual: string | undefined): boolean {
  if (actual === undefined) return false;
  return typeof expected === 'string' ? expected === actual : expected.test(actual);
}

/**
 * Per tenant: the ledger's used bytes equal the sizes of the tenant's completed uploads (and the
 * files its batches left stored) and no reservation is left open. Valid when every upload and
 * batch of the tenant was tracked and has settled.
 *
 * @throws AssertionError naming the tenant and the difference
 */
export async function assertTenantLedgerInvariants(
  ctx: InvariantContext,
  tenant: string,
  uploads: readonly TrackedUpload[],
  /** Bytes the tenant's settled batches leave stored (batch-invariants.ts `batchStoredBytes`). */
  batchBytes = 0,
): Promise<void> {
  let committedBytes = batchBytes;
  for (const upload of uploads) {
    const settled = await settle(upload);
    if (settled.outcome === 'completed') committedBytes += settled.result.size;
  }
  const ledger = new TemporalQuotaLedger({ client: ctx.client, taskQueue: ctx.taskQueue, limits: { defaultBytes: 0 } });
  const read = () => withTimeout(`the quota ledger of tenant ${tenant}`, 30_000, ledger.usage(tenant));
  const balanced = (u: Awaited<ReturnType<typeof read>>) => u.usedBytes === committedBytes && u.reservedBytes === 0 && u.reservations === 0;
  // Commits and releases may land shortly after the steps returned (see assertUploadInvariants).
  const deadline = Date.now() + LEDGER_SETTLE_MS;
  let usage = await read();
  while (!balanced(usage) && Date.now() <= deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    usage = await read();
  }
  const problems: string[] = [];
  if (usage.usedBytes !== committedBytes) {
    problems.push(
      `used bytes are ${usage.usedBytes}, but the completed uploads${batchBytes ? ' and the files batches stored' : ''} add up to ${committedBytes} (a commit counted ${usage.usedBytes > committedBytes ? 'more than once' : 'not at all'})`,
    );
  }
  if (usage.reservedBytes !== 0 || usage.reservations !== 0) {
    problems.push(`${usage.reservations} reservation(s) of ${usage.reservedBytes} bytes left open after every upload ended`);
  }
  if (problems.length > 0) throw new AssertionError({ message: `ledger of tenant ${tenant}: ${problems.join('; ')}` });
}
