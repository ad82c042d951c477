/**
 * The pause gate of a workflow: the `pause` and `resume` Updates, the `setPaused` signal and the
 * `pauseState` query (src/upload/pause.ts), and the one place the workflow holds while paused.
 *
 * Invariants:
 * - A pause is recorded in history (an accepted Update, or a signal), so it survives worker
 *   restarts: replay rebuilds the state, and an upload-parts attempt that starts while paused
 *   learns it from the query and starts no part.
 * - The workflow calls {@link PauseGate.hold} before each step or batch that may still be paused;
 *   while paused, `hold` waits (cancellably: a cancelled paused upload compensates).
 * - The `pause` Update answers once the workflow holds (parts in flight finished, nothing runs),
 *   or once the gate is closed (the upload reached its point of no return or ended).
 * - Asks `patched(PAUSE_RESUME_PATCH)` when a pause is accepted, so runs that were never paused
 *   record nothing, and those that were say so in their history.
 *
 * Reusable by any workflow that runs steps one after another (a batch holds before each child it
 * starts, and forwards the pause to running children with {@link setPausedSignal}).
 */
import { ApplicationFailure, condition, patched, setHandler } from '@temporalio/workflow';
import { PAUSE_RESUME_PATCH } from '../patches';
import {
  MAX_PAUSE_REASON,
  PAUSE_REFUSED,
  pauseStateQuery,
  pauseUpdate,
  resumeUpdate,
  setPausedSignal,
  type PauseRequest,
  type PauseState,
} from '../upload/pause';

/** What {@link createPauseGate} needs from its workflow. */
export interface PauseGateOptions {
  /** Why a pause cannot be accepted now (e.g. the upload is past its pivot), or undefined when it can. */
  refusal: () => string | undefined;
  /** Called when the state changed (to show it: search attributes, current details). */
  onChange: (state: Readonly<PauseState>) => void;
}

/** See the module comment. */
export interface PauseGate {
  /** The state now (a copy). */
  state(): PauseState;
  /** Returns at once unless paused; while paused, holds until resumed. Throws CancelledFailure when the workflow is cancelled meanwhile. */
  hold(): Promise<void>;
  /** No more holding: pending pause Updates are answered, later ones refused by `refusal`. */
  close(): void;
}

/** Registers the handlers on the current workflow and returns its gate. */
export function createPauseGate(options: PauseGateOptions): PauseGate {
  const state: PauseState = { paused: false, held: false };
  let closed = false;
  const snapshot = (): PauseState => ({ ...state });

  const pause = (request: PauseRequest | undefined) => {
    if (state.paused) return;
    patched(PAUSE_RESUME_PATCH);
    state.paused = true;
    state.since = new Date().toISOString();
    if (request?.reason) state.reason = request.reason;
    else delete state.reason;
    options.onChange(snapshot());
  };
  const resume = () => {
    if (!state.paused) return;
    state.paused = false;
    state.held = false;
    delete state.since;
    delete state.reason;
    options.onChange(snapshot());
  };
  const refuse = (message: string) => {
    throw ApplicationFailure.create({ type: PAUSE_REFUSED, message, nonRetryable: true });
  };

  setHandler(pauseStateQuery, snapshot);
  setHandler(
    pauseUpdate,
    async (request) => {
      pause(request);
      await condition(() => state.held || !state.paused || closed);
      return snapshot();
    },
    {
      validator: (request) => {
        const reason = request?.reason;
        if (reason !== undefined && (typeof reason !== 'string' || reason.length > MAX_PAUSE_REASON)) {
          refuse(`the pause reason must be a string of at most ${MAX_PAUSE_REASON} characters`);
        }
        const refusal = closed ? (options.refusal() ?? 'the upload can no longer be paused') : options.refusal();
        if (refusal) refuse(`cannot pause: ${refusal}`);
      },
    },
  );
  setHandler(
    resumeUpdate,
    () => {
      resume();
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
      pause({ ...(typeof request.reason === 'string' ? { reason: request.reason.slice(0, MAX_PAUSE_REASON) } : {}) });
    else if (request?.paused === false) resume();
  });

  return {
    state: snapshot,
    async hold() {
      if (!state.paused || closed) return;
      state.held = true;
      options.onChange(snapshot());
      try {
        await condition(() => !state.paused);
      } finally {
        state.held = false;
      }
    },
    close() {
      closed = true;
    },
  };
}
