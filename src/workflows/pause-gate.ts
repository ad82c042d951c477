/**
 * The pause gate of a workflow: the `pause` and `resume` Updates, the `setPaused` signal and the
 * `pauseState` query (src/upload/pause.ts), and the one place the workflow holds while paused.
 *
 * Invariants:
 * - A pause is recorded in history (an accepted Update, or a signal), so it survives worker
 *   restarts: replay rebuilds the state, and an upload-parts attempt that starts while paused
 *   learns it from the query and starts no part.
 * - The handlers only change state: every command (the patch marker, search attributes) comes from
 *   {@link PauseGate.hold}, in the workflow's main line. So the order of commands and Update
 *   answers never depends on how promise callbacks interleave, which replay need not repeat.
 * - The workflow calls `hold` before each step or batch that may still be paused; while paused,
 *   `hold` waits (cancellably: a cancelled paused upload compensates).
 * - The `pause` Update answers once the workflow holds (parts in flight finished, nothing runs),
 *   or once the gate is closed (the upload reached its point of no return or ended); `resume`
 *   answers once the workflow stopped holding and went on (its next command is in history first).
 * - Asks `patched(PAUSE_RESUME_PATCH)` when a paused run first holds, so runs that never held
 *   record nothing, and those that did say so in their history.
 *
 * Reusable by any workflow that runs steps one after another (a batch holds before each child it
 * starts, and forwards the pause to running children with {@link setPausedSignal}).
 */
import { ApplicationFailure, condition, patched, setHandler } from '@temporalio/workflow';
import { PAUSE_RESUME_PATCH } from '../patches';
import {
  MAX_PAUSE_REASON,
  PAUSE_REFUSED,
  pauseExpiryProblem,
  pauseStateQuery,
  pauseUpdate,
  resumeUpdate,
  setPausedSignal,
  type PauseExpiry,
  type PauseRequest,
  type PauseState,
} from '../upload/pause';

/** What {@link createPauseGate} needs from its workflow. */
export interface PauseGateOptions {
  /** Why a pause cannot be accepted now (e.g. the upload is past its pivot), or undefined when it can. */
  refusal: () => string | undefined;
  /** Called by `hold` when it starts and stops holding, in the workflow's main line: may issue commands (search attributes). */
  onChange: (state: Readonly<PauseState>) => void;
  /**
   * A workflow with an expiry clock (a gateway upload): the default of a pause request's `expiry`,
   * recorded in the state. Without it, a request naming `expiry` is refused.
   */
  expiry?: PauseExpiry;
}

/** See the module comment. */
export interface PauseGate {
  /** The state now (a copy). */
  state(): PauseState;
  /**
   * Returns at once unless paused; while paused, holds until resumed, or until `timeoutMs` passed
   * (then returns false, still paused, and holds no more). Throws CancelledFailure when the
   * workflow is cancelled meanwhile.
   */
  hold(timeoutMs?: number): Promise<boolean>;
  /** No more holding: pending pause Updates are answered, later ones refused by `refusal`. */
  close(): void;
}

/** Registers the handlers on the current workflow and returns its gate. */
export function createPauseGate(options: PauseGateOptions): PauseGate {
  const state: PauseState = { paused: false, held: false };
  let closed = false;
  const snapshot = (): PauseState => ({ ...state });

  const pause = (reason: string | undefined, expiry?: PauseExpiry) => {
    if (state.paused) return;
    state.paused = true;
    state.since = new Date().toISOString();
    if (reason) state.reason = reason;
    else delete state.reason;
    if (options.expiry) state.expiry = expiry ?? options.expiry;
  };
  const resume = () => {
    if (!state.paused) return;
    state.paused = false;
    delete state.since;
    delete state.reason;
    delete state.expiry;
  };
  const refuse = (message: string) => {
    throw ApplicationFailure.create({ type: PAUSE_REFUSED, message, nonRetryable: true });
  };

  setHandler(pauseStateQuery, snapshot);
  setHandler(
    pauseUpdate,
    async (request: PauseRequest) => {
      pause(request?.reason, request?.expiry);
      await condition(() => state.held || !state.paused || closed);
      return snapshot();
    },
    {
      validator: (request) => {
        const reason = request?.reason;
        if (reason !== undefined && (typeof reason !== 'string' || reason.length > MAX_PAUSE_REASON)) {
          refuse(`the pause reason must be a string of at most ${MAX_PAUSE_REASON} characters`);
        }
        if (request?.expiry !== undefined) {
          const problem = pauseExpiryProblem(request.expiry);
          if (problem) refuse(problem);
          if (!options.expiry) refuse('expiry applies to gateway uploads only: this workflow has no expiry clock');
        }
        const refusal = closed ? (options.refusal() ?? 'the upload can no longer be paused') : options.refusal();
        if (refusal) refuse(`cannot pause: ${refusal}`);
      },
    },
  );
  setHandler(
    resumeUpdate,
    async () => {
      resume();
      // `hold` clears `held` once it went on: the answer follows the workflow's next command.
      await condition(() => !state.held || state.paused || closed);
      return snapshot();
    },
    {
      validator: () => {
        if (!state.paused) refuse(`cannot resume: the upload is not paused${options.refusal() ? ` (${options.refusal()})` : ''}`);
      },
    },
  );
  setHandler(setPausedSignal, (request) => {
    if (request?.paused === true && !closed && !options.refusal())
      pause(typeof request.reason === 'string' ? request.reason.slice(0, MAX_PAUSE_REASON) : undefined);
    else if (request?.paused === false) resume();
  });

  return {
    state: snapshot,
    async hold(timeoutMs?: number) {
      if (!state.paused || closed) return true;
      patched(PAUSE_RESUME_PATCH);
      state.held = true;
      options.onChange(snapshot());
      let resumed = true;
      try {
        if (timeoutMs === undefined) await condition(() => !state.paused);
        else resumed = await condition(() => !state.paused, Math.max(1, timeoutMs));
      } finally {
        state.held = false;
      }
      if (resumed) options.onChange(snapshot());
      return resumed;
    },
    close() {
      closed = true;
    },
  };
}
