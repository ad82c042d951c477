/**
 * The gateway-upload workflow: one saga per upload a client sends through the HTTP gateway
 * (tus, or S3 presigned multipart). The durable state of the upload lives here — offset, parts,
 * staged tail, reservation, expiry — so gateways keep none and any replica can serve any request.
 *
 * Why it is built this way:
 * - The client drives `receive-parts`: each chunk a gateway wrote to S3 is recorded with an
 *   Update whose validator ({@link chunkRecordProblem}) accepts it only if it starts where the
 *   upload stands. A rejected update leaves no event in history, so conflicting or retried PATCHes
 *   cost nothing, and the recorded offset is the truth a resumed client continues from.
 * - No bytes and no per-part list are held: tus parts are summarised by a running fingerprint
 *   (checksums S3 validated), which verify recomputes from ListParts before the merge. Presigned
 *   parts a client reports (confirmed by the gateway with ListParts) are counted with the
 *   `recordPart` update and kept as ranges of part numbers, for progress only: verify checks the
 *   client's final list against ListParts either way.
 * - Expiry is a durable timer (a `condition` with a timeout): when it fires first, the step fails
 *   with `UploadExpired` and the saga compensates — multipart upload aborted, staged segments
 *   deleted, reservation released. Cancellation (tus DELETE, an aborted Uppy upload) is workflow
 *   cancellation and compensates the same way.
 * - Quota follows what is known: the length given at creation is reserved first; a tus upload
 *   with a deferred length reserves the tenant's maximum, and the `declareLength` update (checked
 *   by {@link lengthDeclarationProblem}) lowers it to the declared length before it answers, so
 *   quota is never over-held once the length is known; after verify it is lowered to the verified
 *   size and committed. A presigned upload without a length reserves after verify.
 * - Pause (the `pause`/`resume` Updates of src/upload/pause.ts, through pause-gate.ts): the client
 *   drives the bytes, so a pause refuses what would start something new — `complete`, and the
 *   gateway refuses new PATCHes, part URLs and part reports once the state says paused — while
 *   records of bytes already written (a body in flight) are still accepted. The workflow holds in
 *   receive-parts and goes on to verify only once resumed. The expiry clock runs on while paused
 *   (`expiry: 'runs'`: expired, compensated) or stops (`'stops'`: the paused time is added to
 *   `expiresAt` at resume, and pauses outlasting the input's `maxPauseMs` in all expire it,
 *   compensated as expired); the default is the input's `pauseExpiry`. Refused once every byte
 *   arrived (verify and merge start), and for a final or a stored partial.
 * - History stays bounded however many chunks arrive: after `updatesPerRun` updates (or when
 *   Temporal suggests it) the run waits for its update handlers to finish and continues as new,
 *   carrying the small state; the next run restores the completed steps' compensations.
 */
import { requireMultipartUploadId } from '../upload/wire-names';
import {
  GATEWAY_CONCURRENT_CREATION_PATCH,
  GATEWAY_LOCAL_OPEN_MULTIPART_PATCH,
  GATEWAY_PAUSE_BOUND_PATCH,
  GATEWAY_PAUSE_BOUND_TOTAL_PATCH,
  GATEWAY_PAUSE_PATCH,
  GATEWAY_TAIL_PARTS_PATCH,
  GATEWAY_LOCAL_STEPS_PATCH,
  GATEWAY_LOCAL_STEPS_WITHDRAWN_PATCH,
  GATEWAY_LOCAL_VERIFY_MERGE_PATCH,
  TUS_CONCAT_JOIN_VERIFIES_PATCH,
  TUS_CONCAT_SIGNALS_AT_ONCE_PATCH,
  TUS_CONCATENATION_PATCH,
  TUS_DEFERRED_LENGTH_PATCH,
} from '../patches';
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  ContinueAsNew,
  continueAsNew,
  getExternalWorkflowHandle,
  patched,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { UploadActivities } from '../activities';
import type { QuotaUsage } from '../quota/ledger';
import { Saga } from '../saga/workflow';
import {
  chunkRecordProblem,
  ChunkRejection,
  GatewayUploadFailureType,
  gatewayPartsProblem,
  hasPart,
  lengthDeclarationProblem,
  partCountOf,
  partReportProblem,
  tusBytesReceived,
  tusPartsPlanned,
  withPart,
  type GatewayPart,
  type GatewayUploadInput,
  type GatewayUploadPhase,
  type GatewayUploadState,
} from '../upload/gateway-upload';
import type { UploadOutcomeKind, UploadResult } from '../upload/outcome';
import { CLAIM_LEASE_MS, claimProblem, withdrawProblem, type ConcatState, type JoinSource } from '../upload/concatenation';
import { endedFailure, uploadMetricsSink } from '../metrics/upload-sinks';
import {
  gatewayUploadSteps,
  gatewayUploadStepsWithLocalSteps,
  gatewayUploadStepsWithLocalOpenMultipart,
  gatewayUploadStepsWithLocalVerifyMerge,
} from './gateway-upload-steps';
import { UploadOutcome, UploadPhase as UploadPhaseAttribute, UploadSizeBytes } from '../upload/search-attributes';
import { failureReportOf, uploadEvents } from './upload-notifications';
import {
  compensatingDetails,
  completedDetails,
  endedDetails,
  failureOutcome,
  mergedResult,
  notifyCompletedResult,
  notifyEnded,
} from './upload-ending';
import { stagingPrefixOf } from '../upload/staging';
import { DEFAULT_PAUSE_EXPIRY, formatPauseDuration } from '../upload/pause';
import { createPauseGate } from './pause-gate';
import {
  gatewayUploadProgressQuery,
  gatewayUploadSagaStateQuery,
  gatewayUploadStateQuery,
  claimPartialUpdate,
  withdrawPartialUpdate,
  completeUpdate,
  declareLengthUpdate,
  DEFAULT_UPDATES_PER_RUN,
  partialJoinedSignal,
  releasePartialSignal,
  recordChunkUpdate,
  recordPartUpdate,
  waitUntilMergedUpdate,
  waitUntilOpenUpdate,
  waitUntilStoredUpdate,
} from '../upload/gateway-upload-messages';

/** How long the record that brings the last byte waits for the merge before it answers (below the gateway's 30 s call timeout). */
const FINISHING_RECORD_WAIT = '20s';

const formatMiB = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

/** Lowers a reservation (deferred length): idempotent and quick, so a local activity outside the saga's steps. */
const { shrinkReservation } = proxyLocalActivities<UploadActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

/** An upload through the HTTP gateway (tus or S3 presigned multipart) as a saga. */
export async function gatewayUploadWorkflow(input: GatewayUploadInput): Promise<UploadResult> {
  const { workflowId } = workflowInfo();
  const { bucket, key, tenant, uploadId, carried } = input;
  const stagingPrefix = stagingPrefixOf(tenant, uploadId);
  const updatesPerRun = input.updatesPerRun ?? DEFAULT_UPDATES_PER_RUN;
  const reservationRef = { tenant, uploadId };
  // tus without Upload-Length (creation-defer-length): the tenant's maximum is reserved until a PATCH declares the length.
  const deferredLength = input.mode === 'tus' && input.length === undefined;
  // tus concatenation (src/upload/concatenation.ts): a partial stores its bytes and waits for a final; a final joins partials.
  const concat = input.concat !== undefined && patched(TUS_CONCATENATION_PATCH) ? input.concat : undefined;
  const final = concat?.kind === 'final' ? concat : undefined;
  const partial: Extract<ConcatState, { kind: 'partial' }> | undefined = concat?.kind === 'partial' ? { kind: 'partial' } : undefined;
  // tus: a PATCH may fold the remainder at its end into its last part (parts of varying size, the
  // state says `partsBytes`); runs started before keep equal parts. Asked once: the answer holds for the run.
  const varyingParts = input.mode === 'tus' && !final && patched(GATEWAY_TAIL_PARTS_PATCH);

  const state: GatewayUploadState = {
    tenant,
    uploadId,
    workflowId,
    mode: input.mode,
    bucket,
    key,
    ...(input.filename !== undefined ? { filename: input.filename } : {}),
    contentType: input.contentType,
    metadata: input.metadata,
    ...(input.tusMetadata !== undefined ? { tusMetadata: input.tusMetadata } : {}),
    ...(input.length !== undefined ? { length: input.length } : {}),
    ...(carried?.declaredLength !== undefined ? { length: carried.declaredLength } : {}),
    offset: carried?.offset ?? 0,
    partSize: input.partSize,
    partsCompleted: carried?.partsCompleted ?? 0,
    // A run continued from one of equal parts starts from their bytes.
    ...(varyingParts ? { partsBytes: carried ? (carried.partsBytes ?? carried.partsCompleted * input.partSize) : 0 } : {}),
    fingerprint: carried?.fingerprint ?? '',
    staged: carried?.staged ?? [],
    ...(carried?.reportedParts ? { reportedParts: carried.reportedParts } : {}),
    ...(input.checksumAlgorithm ? { checksumAlgorithm: input.checksumAlgorithm } : {}),
    ...(carried ? { multipartUploadId: carried.multipartUploadId } : {}),
    phase: carried ? 'receive-parts' : input.length !== undefined || deferredLength ? 'reserve-space' : 'open-multipart',
    outcome: 'running',
    createdAt: carried?.createdAt ?? Date.now(),
    expiresAt: input.expiresAt,
    runs: (carried?.runs ?? 0) + 1,
    ...(partial ? { concat: partial } : final ? { concat: { kind: 'final', partials: final.partials.map((p) => p.uploadId) } } : {}),
  };
  let reservation: QuotaUsage | undefined = carried?.reservation;
  /** How long the upload's pauses with the expiry clock stopped have held, over all its runs. */
  let stoppedPausesMs = carried?.stoppedPausesMs ?? 0;
  let reportedParts: GatewayPart[] | undefined;
  let updatesThisRun = 0;
  const timings: Record<string, number> = {};
  let phaseStartedAt = Date.now();
  // Metrics through a sink: no command, no history event, not called during replay (see upload-sinks.ts).
  // A continued run is the same upload: counted once, by its first run.
  const metrics = uploadMetricsSink();
  if (!carried) metrics.started('gateway');

  const describeBytes = () =>
    `${formatMiB(state.offset)}${state.length !== undefined ? ` of ${formatMiB(state.length)}` : ''} received, ${state.partsCompleted} parts`;
  const setPhase = (phase: GatewayUploadPhase) => {
    if (state.phase === phase) return;
    const now = Date.now();
    timings[state.phase] = (timings[state.phase] ?? 0) + (now - phaseStartedAt);
    phaseStartedAt = now;
    state.phase = phase;
    upsertSearchAttributes([{ key: UploadPhaseAttribute, value: phase }]);
    setCurrentDetails(`**${phase}** — ${describeBytes()} → s3://${bucket}/${key}`);
  };
  const setOutcome = (outcome: UploadOutcomeKind) => {
    state.outcome = outcome;
    upsertSearchAttributes([{ key: UploadOutcome, value: outcome }]);
  };
  const snapshot = (): GatewayUploadState => ({
    ...state,
    expiresAt: expiresAtNow(),
    ...(gate.state().paused ? { pause: gate.state() } : {}),
    ...(state.concat ? { concat: { ...state.concat } } : {}),
    staged: [...state.staged],
    ...(state.reportedParts ? { reportedParts: state.reportedParts.map(([first, last]): [number, number] => [first, last]) } : {}),
  });
  // tus: every part recorded (a zero-byte upload has one empty part); presigned: the client reported its parts.
  const received = () => (state.mode === 'tus' ? tusBytesReceived(state) : reportedParts !== undefined);

  // Creation and the last PATCH each wait for one workflow task, not a task-queue trip per step.
  // New tus runs that receive bytes (not a concatenation final): open-multipart, verify and merge
  // (a partial's store-partial) local, each harmless when a retried task runs it again after it
  // succeeded (see gatewayUploadStepsWithLocalVerifyMerge); what follows them in their task issues
  // no side effect (delete-staged, regular, keeps notify out of the merge's task; a partial waits).
  // Other new runs: open-multipart local only (a presigned upload's merge shares its task with
  // notify). Earlier runs replay what they recorded. Asked once at the start: the answer holds for the run.
  const localVerifyMerge = input.mode === 'tus' && !final && patched(GATEWAY_LOCAL_VERIFY_MERGE_PATCH);
  const steps = localVerifyMerge
    ? gatewayUploadStepsWithLocalVerifyMerge
    : patched(GATEWAY_LOCAL_OPEN_MULTIPART_PATCH)
      ? gatewayUploadStepsWithLocalOpenMultipart
      : !patched(GATEWAY_LOCAL_STEPS_WITHDRAWN_PATCH) && patched(GATEWAY_LOCAL_STEPS_PATCH)
        ? gatewayUploadStepsWithLocalSteps
        : gatewayUploadSteps;
  // Pause: see the module comment. Handlers and the query issue no command; a run never paused replays unchanged.
  const pausable = new Set<GatewayUploadPhase>(['reserve-space', 'open-multipart', 'receive-parts']);
  const gate = createPauseGate({
    expiry: input.pauseExpiry ?? DEFAULT_PAUSE_EXPIRY,
    refusal: () => {
      if (state.outcome !== 'running') return `the upload ended (${state.outcome})`;
      if (final) return 'a final upload joins its partials inside S3: it receives no bytes to pause';
      if (partial && state.phase === 'await-join')
        return 'the partial upload is stored and waits for a final upload to join it (or was claimed by one)';
      if (!pausable.has(state.phase)) return `the upload is at ${state.phase}: past its point of no return (verify and merge)`;
      if (received()) return 'every byte arrived: verify and merge are starting';
      if (Date.now() >= state.expiresAt) return `the upload expired at ${new Date(state.expiresAt).toISOString()}`;
      return undefined;
    },
    onChange: (pause) => {
      // The search attribute changes with `paused` only; `held` shows in the details and the query.
      upsertSearchAttributes([{ key: UploadPhaseAttribute, value: pause.paused ? 'paused' : state.phase }]);
      setCurrentDetails(
        pause.paused
          ? `**paused** at ${state.phase}${pause.reason ? ` — ${pause.reason}` : ''} (expiry clock ${pause.expiry ?? 'runs'}) — ${describeBytes()} → s3://${bucket}/${key}`
          : `**${state.phase}** — ${describeBytes()} → s3://${bucket}/${key}`,
      );
    },
  });
  // Set when a pause with a stopped clock outlasted the maximum: the upload expired then, paused.
  let pauseOutlasted = false;
  /** The expiry as of now: while paused with a stopped clock, the paused time so far is added. */
  function expiresAtNow(): number {
    const pause = gate.state();
    return pause.paused && pause.expiry === 'stops' && pause.since && !pauseOutlasted
      ? state.expiresAt + Math.max(0, Date.now() - Date.parse(pause.since))
      : state.expiresAt;
  }

  const saga = new Saga<UploadActivities, typeof gatewayUploadSteps>(steps, {
    onStepStarted: (step) => setPhase(step as GatewayUploadPhase),
    onCompensationStarted: (steps) => {
      setPhase('compensating');
      setCurrentDetails(compensatingDetails(steps, bucket, key));
    },
  });

  setHandler(gatewayUploadStateQuery, snapshot);
  setHandler(gatewayUploadSagaStateQuery, () => saga.state());
  setHandler(gatewayUploadProgressQuery, () => ({
    phase: state.phase,
    outcome: state.outcome,
    ...(state.length !== undefined
      ? { totalBytes: state.length, totalParts: state.mode === 'tus' ? tusPartsPlanned(state)! : partCountOf(state.length, state.partSize) }
      : {}),
    partsUploaded: state.partsCompleted,
    bytesUploaded: state.offset,
    batchesDone: 0,
    ...(state.multipartUploadId ? { multipartUploadId: state.multipartUploadId } : {}),
  }));
  setHandler(waitUntilOpenUpdate, async () => {
    await condition(() => state.multipartUploadId !== undefined || state.outcome !== 'running');
    return snapshot();
  });
  // A finishing request answers once the object is merged (the pivot): what follows only goes
  // forward. A run that hands over before every byte arrived lets it go first (it waits for the end then).
  setHandler(waitUntilMergedUpdate, async () => {
    await condition(
      () =>
        state.merged === true ||
        state.outcome !== 'running' ||
        (!received() && (updatesThisRun >= updatesPerRun || workflowInfo().continueAsNewSuggested)),
    );
    return snapshot();
  });
  setHandler(
    recordChunkUpdate,
    (record) => {
      updatesThisRun++;
      state.offset = record.offset;
      state.partsCompleted = record.partsCompleted;
      if (state.partsBytes !== undefined) state.partsBytes = record.partsBytes ?? record.partsCompleted * state.partSize;
      state.fingerprint = record.fingerprint;
      state.staged = record.staged.map(({ start, end }) => ({ start, end }));
      setCurrentDetails(`**receive-parts** — ${describeBytes()} → s3://${bucket}/${key}`);
      if (!(localVerifyMerge && received())) return snapshot();
      // The record that brings the last byte: verify and merge (a partial's store-partial) run
      // (local) in its workflow task, so it answers once merged (stored) and the finishing request
      // needs no waitUntilMerged (waitUntilStored), a task of its own. Bounded below the gateway's
      // call timeout: then it answers before, and the gateway waits with that update as before.
      return condition(
        () =>
          state.merged === true ||
          (partial !== undefined && state.phase === 'await-join') ||
          state.outcome !== 'running' ||
          state.phase === 'compensating',
        FINISHING_RECORD_WAIT,
      ).then(snapshot);
    },
    {
      validator: (record) => {
        const problem = chunkRecordProblem({ ...state, expiresAt: expiresAtNow() }, record, Date.now());
        if (problem) throw ApplicationFailure.create({ type: problem.type, message: problem.message, nonRetryable: true });
      },
    },
  );
  // Presigned progress, pushed: a handler with no command, so runs that never receive it replay unchanged.
  setHandler(
    recordPartUpdate,
    ({ partNumber, size }) => {
      updatesThisRun++;
      if (!hasPart(state.reportedParts ?? [], partNumber)) {
        state.reportedParts = withPart(state.reportedParts ?? [], partNumber);
        state.partsCompleted++;
        state.offset += size;
        setCurrentDetails(`**receive-parts** — ${describeBytes()} → s3://${bucket}/${key}`);
      }
      return snapshot();
    },
    {
      validator: (report) => {
        const problem = partReportProblem({ ...state, expiresAt: expiresAtNow() }, report, Date.now());
        if (problem) throw ApplicationFailure.create({ type: problem.type, message: problem.message, nonRetryable: true });
      },
    },
  );
  setHandler(
    declareLengthUpdate,
    async ({ length }) => {
      updatesThisRun++;
      state.length = length;
      upsertSearchAttributes([{ key: UploadSizeBytes, value: length }]);
      setCurrentDetails(`**receive-parts** — ${describeBytes()} → s3://${bucket}/${key}`);
      // Quota is held for the real size from now on, not the maximum.
      if (reservation) await shrinkReservation({ ...reservationRef, bytes: length });
      return snapshot();
    },
    {
      validator: (request) => {
        const problem = lengthDeclarationProblem({ ...state, expiresAt: expiresAtNow() }, request?.length, input.maxLength, Date.now());
        if (problem) throw ApplicationFailure.create({ type: problem.type, message: problem.message, nonRetryable: true });
      },
    },
  );
  setHandler(
    completeUpdate,
    ({ parts }) => {
      updatesThisRun++;
      reportedParts = parts.map(({ partNumber, etag }) => ({ partNumber, etag }));
      return snapshot();
    },
    {
      validator: (request) => {
        if (state.mode !== 'presigned' || state.phase !== 'receive-parts' || state.outcome !== 'running' || reportedParts) {
          const why =
            state.mode !== 'presigned'
              ? 'a tus upload completes when its length is reached'
              : `the upload is in phase ${state.phase}, outcome ${state.outcome}`;
          throw ApplicationFailure.create({ type: ChunkRejection.NotReceiving, message: `cannot complete: ${why}`, nonRetryable: true });
        }
        const pause = gate.state();
        if (pause.paused) {
          throw ApplicationFailure.create({
            type: ChunkRejection.Paused,
            message: `cannot complete: the upload is paused since ${pause.since}${pause.reason ? ` (${pause.reason})` : ''}; resume it first`,
            nonRetryable: true,
          });
        }
        if (Date.now() >= state.expiresAt) {
          throw ApplicationFailure.create({
            type: ChunkRejection.UploadExpired,
            message: `the upload expired at ${new Date(state.expiresAt).toISOString()}`,
            nonRetryable: true,
          });
        }
        const problem = gatewayPartsProblem(request?.parts);
        if (problem) throw ApplicationFailure.create({ type: ChunkRejection.InvalidChunk, message: problem, nonRetryable: true });
      },
    },
  );

  if (partial) {
    // The partial's finishing PATCH answers once its bytes are stored (no polling); a run about to hand over lets it go first.
    setHandler(waitUntilStoredUpdate, async () => {
      await condition(
        () =>
          state.phase === 'await-join' ||
          state.outcome !== 'running' ||
          updatesThisRun >= updatesPerRun ||
          workflowInfo().continueAsNewSuggested,
      );
      return snapshot();
    });
    setHandler(
      claimPartialUpdate,
      ({ finalUploadId }) => {
        partial.claimedBy = finalUploadId;
        return snapshot();
      },
      {
        validator: (request) => {
          const problem = claimProblem(state, request?.finalUploadId, Date.now());
          if (problem) throw ApplicationFailure.create({ type: problem.type, message: problem.message, nonRetryable: true });
        },
      },
    );
    // tus DELETE: a fence before the gateway's cancellation (which no validator can refuse). No command.
    setHandler(
      withdrawPartialUpdate,
      () => {
        partial.withdrawn = true;
        return snapshot();
      },
      {
        validator: () => {
          const problem = withdrawProblem(state);
          if (problem) throw ApplicationFailure.create({ type: problem.type, message: problem.message, nonRetryable: true });
        },
      },
    );
    setHandler(partialJoinedSignal, ({ finalUploadId }) => {
      if (partial.claimedBy === finalUploadId) partial.joinedInto = finalUploadId;
    });
    setHandler(releasePartialSignal, ({ finalUploadId }) => {
      if (partial.claimedBy === finalUploadId && partial.joinedInto === undefined) delete partial.claimedBy;
    });
  }
  // A final that ends without an object hands its claimed partials back (they wait again, until their expiry).
  let partialsSettled = false;
  const signalPartials = async (signal: typeof partialJoinedSignal) => {
    const send = async (source: JoinSource) => {
      try {
        await getExternalWorkflowHandle(source.workflowId).signal(signal, { finalUploadId: uploadId });
      } catch {
        // The partial's workflow ended (cancelled or expired): there is nothing to settle.
      }
    };
    const sources = final?.partials ?? [];
    if (sources.length === 0) return;
    // All in one workflow task: the final's answer waits for these signals.
    if (patched(TUS_CONCAT_SIGNALS_AT_ONCE_PATCH)) await Promise.all(sources.map(send));
    else for (const source of sources) await send(source);
  };

  const event = uploadEvents({ workflowId, uploadId, tenant, bucket, key });

  try {
    const result = await saga.execute(async () => {
      const reserve = async (bytes: number) => {
        reservation = await saga.run('reserve-space', [{ ...reservationRef, bytes }], {
          summary: `reserve ${bytes} bytes for tenant ${tenant}`,
          compensateWith: () => [reservationRef],
        });
      };
      if (carried) {
        // Steps done by earlier runs: register their compensations again, without running them.
        if (carried.reservation)
          saga.restoreCompleted('reserve-space', { result: carried.reservation, compensateWith: () => [reservationRef] });
        saga.restoreCompleted('open-multipart', {
          result: { multipartUploadId: carried.multipartUploadId },
          compensateWith: () => [{ bucket, key, multipartUploadId: carried.multipartUploadId, stagingPrefix }],
        });
      } else {
        // A final reserves nothing: its partials hold the reservations and commit them once it merged.
        const reserveBytes =
          input.length !== undefined && !final
            ? input.length
            : deferredLength && patched(TUS_DEFERRED_LENGTH_PATCH)
              ? input.maxLength
              : undefined;
        const open = () => {
          const openedAt = Date.now();
          return saga.run(
            'open-multipart',
            [
              {
                bucket,
                key,
                contentType: input.contentType,
                metadata: input.metadata,
                ...(input.checksumAlgorithm ? { checksumAlgorithm: input.checksumAlgorithm } : {}),
                workflowStartedMs: workflowInfo().startTime.getTime(),
              },
            ],
            {
              summary: `open the multipart upload of s3://${bucket}/${key}`,
              compensateWith: (outcome) =>
                outcome.status === 'completed'
                  ? [
                      {
                        bucket,
                        key,
                        multipartUploadId: requireMultipartUploadId(outcome.result, 'openMultipartUpload result'),
                        stagingPrefix,
                      },
                    ]
                  : // The answer was lost: abort whatever this step may have created for the key.
                    [{ bucket, key, initiatedAfterMs: openedAt - 5_000, stagingPrefix }],
            },
          );
        };
        let opened: Awaited<ReturnType<typeof open>>;
        if (reserveBytes !== undefined && patched(GATEWAY_CONCURRENT_CREATION_PATCH)) {
          // Both at once, in the creation's workflow task: neither needs the other's result. Both are
          // awaited before going on or failing, so the compensations (release, abort) meet finished
          // steps: an abort never races the create it undoes. A refused reservation (413) thus also
          // opened, and aborts, a multipart upload.
          const [reserved, openedOrNot] = await Promise.allSettled([reserve(reserveBytes), open()]);
          if (reserved.status === 'rejected') throw reserved.reason;
          if (openedOrNot.status === 'rejected') throw openedOrNot.reason;
          opened = openedOrNot.value;
        } else {
          if (reserveBytes !== undefined) await reserve(reserveBytes);
          opened = await open();
        }
        // Recorded results may name S3's id `uploadId`: read either name (see multipartUploadIdOf).
        state.multipartUploadId = requireMultipartUploadId(opened, 'openMultipartUpload result');
      }
      const multipartUploadId = state.multipartUploadId!;

      // A final's join verifies what it wrote (the verify step's check): one activity trip less before the merge.
      const joinVerifies = final !== undefined && patched(TUS_CONCAT_JOIN_VERIFIES_PATCH);
      const joined = final
        ? await saga.run(
            'join-partials',
            [
              {
                bucket,
                key,
                multipartUploadId,
                partials: final.partials,
                ...(joinVerifies
                  ? { verify: { maxLength: input.maxLength, ...(input.length !== undefined ? { length: input.length } : {}) } }
                  : {}),
              },
            ],
            { summary: `join ${final.partials.length} partial uploads into s3://${bucket}/${key}` },
          )
        : undefined;
      if (!final)
        await saga.runInWorkflow(
          'receive-parts',
          async () => {
            for (;;) {
              if (gate.state().paused) {
                // Nothing new starts (not even verify) until resumed; records of bytes in flight are still accepted.
                patched(GATEWAY_PAUSE_PATCH);
                const pause = gate.state();
                if (pause.expiry === 'stops') {
                  const pausedAt = Date.parse(pause.since!);
                  // A stopped clock holds at most the upload's maximum pause (runs created before it hold until resumed).
                  const maxPauseMs = input.maxPauseMs !== undefined && patched(GATEWAY_PAUSE_BOUND_PATCH) ? input.maxPauseMs : undefined;
                  // The bound is on all such pauses together, so pausing again cannot keep an upload (its
                  // reservation, its parts) alive for ever; runs from before counted each pause on its own.
                  const inAll = maxPauseMs !== undefined && patched(GATEWAY_PAUSE_BOUND_TOTAL_PATCH);
                  const heldBefore = inAll ? stoppedPausesMs : 0;
                  if (maxPauseMs === undefined) await gate.hold();
                  else if (!(await gate.hold(pausedAt + maxPauseMs - heldBefore - Date.now()))) {
                    // Expired now, as if its clock had run out: the reported expiry stops moving on.
                    state.expiresAt = Date.now();
                    pauseOutlasted = true;
                    throw ApplicationFailure.create({
                      type: GatewayUploadFailureType.UploadExpired,
                      nonRetryable: true,
                      message: inAll
                        ? `the upload expired at ${new Date(state.expiresAt).toISOString()}: it was paused with its expiry clock stopped since ${pause.since}${heldBefore > 0 ? ` after ${formatPauseDuration(Math.max(1000, Math.round(heldBefore / 1000) * 1000))} of such pauses before` : ''}, longer than the maximum pause in all (UPLOAD_SAGA_GATEWAY_MAX_PAUSE, ${formatPauseDuration(maxPauseMs)}), with ${describeBytes()}`
                        : `the upload expired at ${new Date(state.expiresAt).toISOString()}: it was paused with its expiry clock stopped since ${pause.since}, longer than the maximum pause (UPLOAD_SAGA_GATEWAY_MAX_PAUSE, ${formatPauseDuration(maxPauseMs)}), with ${describeBytes()}`,
                    });
                  }
                  const held = Math.max(0, Date.now() - pausedAt);
                  state.expiresAt += held;
                  stoppedPausesMs += held;
                } else if (!(await gate.hold(state.expiresAt - Date.now()))) {
                  throw ApplicationFailure.create({
                    type: GatewayUploadFailureType.UploadExpired,
                    nonRetryable: true,
                    message: `the upload expired at ${new Date(state.expiresAt).toISOString()} while paused (its expiry clock ran) with ${describeBytes()}`,
                  });
                }
                continue;
              }
              const handOver = () => updatesThisRun >= updatesPerRun || workflowInfo().continueAsNewSuggested;
              const inTime = await condition(
                () => received() || handOver() || gate.state().paused,
                Math.max(1, state.expiresAt - Date.now()),
              );
              if (gate.state().paused) continue;
              if (received()) return;
              if (!inTime) {
                throw ApplicationFailure.create({
                  type: GatewayUploadFailureType.UploadExpired,
                  nonRetryable: true,
                  message: `the upload expired at ${new Date(state.expiresAt).toISOString()} with ${describeBytes()}`,
                });
              }
              // Updates being handled must finish in this run; then only the small state moves on.
              await condition(allHandlersFinished);
              if (received()) return;
              await continueAsNew<typeof gatewayUploadWorkflow>({
                ...input,
                // A stopped expiry clock moved it on.
                expiresAt: state.expiresAt,
                carried: {
                  createdAt: state.createdAt,
                  ...(reservation ? { reservation } : {}),
                  multipartUploadId,
                  offset: state.offset,
                  partsCompleted: state.partsCompleted,
                  ...(state.partsBytes !== undefined ? { partsBytes: state.partsBytes } : {}),
                  fingerprint: state.fingerprint,
                  staged: state.staged,
                  runs: state.runs,
                  ...(state.reportedParts ? { reportedParts: state.reportedParts } : {}),
                  ...(deferredLength && state.length !== undefined ? { declaredLength: state.length } : {}),
                  ...(stoppedPausesMs > 0 ? { stoppedPausesMs } : {}),
                },
              });
            }
          },
          {},
        );
      // From here on a pause is refused (and one still waiting is answered).
      gate.close();

      const verified =
        joined?.verified ??
        (await saga.run(
          'verify',
          [
            {
              bucket,
              key,
              multipartUploadId,
              maxLength: input.maxLength,
              expected:
                state.mode === 'tus' && !joined
                  ? {
                      kind: 'tus',
                      length: state.length!,
                      partSize: state.partSize,
                      partsCompleted: state.partsCompleted,
                      // Parts of varying size: verify checks their sum and minimum instead of each size.
                      ...(state.partsBytes !== undefined ? { varyingParts: true } : {}),
                      fingerprint: state.fingerprint,
                      checksumAlgorithm: input.checksumAlgorithm ?? 'CRC32C',
                    }
                  : {
                      kind: 'client-parts',
                      parts: joined?.parts ?? reportedParts!,
                      ...(input.length !== undefined ? { length: input.length } : {}),
                    },
            },
          ],
          { summary: `verify the parts of s3://${bucket}/${key}` },
        ));
      if (deferredLength && reservation) {
        // Settled to the verified size before the commit, whatever the declaration's shrink did.
        await shrinkReservation({ ...reservationRef, bytes: verified.size });
      } else if (input.length === undefined) {
        state.length = verified.size;
        upsertSearchAttributes([{ key: UploadSizeBytes, value: verified.size }]);
        await reserve(verified.size);
      }
      state.offset = verified.size;

      const mergeInput = {
        bucket,
        key,
        multipartUploadId,
        expectedETag: verified.expectedETag,
        failIfExists: false,
        checksumAlgorithm: input.checksumAlgorithm ?? 'CRC32C',
      } as const;
      if (partial) {
        // Stored as a temporary object inside the staging prefix: undone (deleted with it) until a final joins it.
        const stored = await saga.run('store-partial', [mergeInput], {
          summary: `store partial upload ${uploadId} at s3://${bucket}/${key}`,
        });
        partial.stored = { size: verified.size, etag: stored.etag };
        await saga.runInWorkflow(
          'await-join',
          async () => {
            while (partial.joinedInto === undefined) {
              const by = partial.claimedBy;
              if (by === undefined) {
                const claimed = await condition(() => partial.claimedBy !== undefined, Math.max(1, state.expiresAt - Date.now()));
                if (!claimed) {
                  throw ApplicationFailure.create({
                    type: GatewayUploadFailureType.UploadExpired,
                    nonRetryable: true,
                    message: `the partial upload expired at ${new Date(state.expiresAt).toISOString()} without being joined by a final upload`,
                  });
                }
              } else if (!(await condition(() => partial.joinedInto !== undefined || partial.claimedBy !== by, CLAIM_LEASE_MS))) {
                // The final neither joined nor released it (it was terminated): the claim lapses.
                delete partial.claimedBy;
              }
            }
          },
          {},
        );
        await saga.run('commit-quota', [reservationRef], { summary: `commit ${verified.size} bytes to tenant ${tenant}` });
        await saga.run('delete-staged', [{ bucket, key, stagingPrefix }], { summary: `delete the stored partial under ${stagingPrefix}` });
        return mergedResult({ uploadId, tenant, workflowId, bucket, key }, verified.size, stored, {
          partCount: verified.partCount,
          partSize: state.partSize,
          timings,
        });
      }
      const merged = await saga.run('merge', [mergeInput], { summary: `complete s3://${bucket}/${key}` });
      // The pivot: the object exists from here on (waitUntilMerged answers).
      state.merged = true;
      if (final) {
        await saga.runInWorkflow(
          'settle-partials',
          async () => {
            partialsSettled = true;
            await signalPartials(partialJoinedSignal);
          },
          {},
        );
      } else if (state.mode === 'tus') {
        await saga.run('delete-staged', [{ bucket, key, stagingPrefix }], { summary: `delete what is left under ${stagingPrefix}` });
      }
      if (!final) await saga.run('commit-quota', [reservationRef], { summary: `commit ${verified.size} bytes to tenant ${tenant}` });

      const result = mergedResult({ uploadId, tenant, workflowId, bucket, key }, verified.size, merged, {
        partCount: verified.partCount,
        partSize: state.partSize,
        timings,
      });
      await notifyCompletedResult(saga, input.webhookUrl, event, result);
      return result;
    });
    setPhase('done');
    state.result = result;
    setOutcome('completed');
    metrics.ended({ kind: 'gateway', outcome: 'completed' });
    setCurrentDetails(completedDetails(result));
    await condition(allHandlersFinished);
    return result;
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    gate.close();
    const report = failureReportOf(err);
    setPhase('done');
    if (report) state.failure = report;
    setOutcome(
      failureOutcome(err instanceof CancelledFailure, report, (r) =>
        r.cause.type === GatewayUploadFailureType.UploadExpired ? 'expired' : undefined,
      ),
    );
    metrics.ended({ kind: 'gateway', outcome: state.outcome, failure: endedFailure(report) });
    setCurrentDetails(endedDetails(state.outcome, err));
    await CancellationScope.nonCancellable(async () => {
      if (final && !partialsSettled) await signalPartials(releasePartialSignal);
      await notifyEnded(saga, input.webhookUrl, event, report);
      // Callers waiting in waitUntilOpen learn the outcome before the run closes.
      await condition(allHandlersFinished);
    });
    throw err;
  }
}
