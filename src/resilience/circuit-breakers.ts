/**
 * Circuit breakers of one worker process: one per target (an S3 endpoint, a webhook host), so that
 * a store that is down is not hammered by every upload's own retries.
 *
 * Why it is built this way:
 * - The state machine is cockatiel's (`circuitBreaker` with a `ConsecutiveBreaker`): closed → open
 *   after `failureThreshold` outage failures in a row → half-open after `halfOpenAfterMs`, when ONE
 *   call goes through as a probe (cockatiel makes the others wait for its outcome) → closed on
 *   success, open again on failure. cockatiel 3 is CommonJS; cockatiel 4 is ESM-only (which
 *   `require` loads from Node 22.12, this package's oldest) and would change nothing we use.
 * - Only failures that mean "the target is down" count (the caller's `isOutage`: network errors,
 *   5xx, throttling). A 4xx (AccessDenied, NoSuchKey, a checksum mismatch) is an answer from a
 *   living target: it neither counts nor, as a probe, keeps the breaker open.
 * - Per target and per process: a breaker sees only what this process sent, so no coordination is
 *   needed and one dead store does not stop uploads to another.
 * - While open, calls fail at once with {@link CircuitOpenError}, which carries `retryAfterMs`: the
 *   time left until the half-open probe. Activities turn it into a retryable failure whose
 *   `nextRetryDelay` is at least that (see `s3Failure` and the saga's retry interceptor).
 * - Observable: every state change is logged and sent to the listeners registered with
 *   {@link onBreakerStateChange} (the metrics gauge subscribes there).
 */
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, type CircuitBreakerPolicy } from 'cockatiel';
import type { Logger } from '../logging';

/** A breaker's state, as logs and metrics show it. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Options of {@link CircuitBreakers}: when a breaker opens and for how long. */
export interface CircuitBreakerOptions {
  /** `false`: every call goes through, nothing is counted. @default true */
  enabled?: boolean;
  /** Outage failures in a row that open a breaker. @default 5 */
  failureThreshold?: number;
  /** How long a breaker stays open before it lets one probe through. @default 10000 */
  halfOpenAfterMs?: number;
}

/** {@link CircuitBreakerOptions} with every default filled. */
export type CircuitBreakerOptionsWithDefaults = Required<CircuitBreakerOptions>;

/** Fills the defaults of {@link CircuitBreakerOptions}. */
export function circuitBreakerOptionsWithDefaults(options: CircuitBreakerOptions = {}): CircuitBreakerOptionsWithDefaults {
  return {
    enabled: options.enabled ?? true,
    failureThreshold: options.failureThreshold ?? 5,
    halfOpenAfterMs: options.halfOpenAfterMs ?? 10_000,
  };
}

/** Thrown instead of calling a target whose breaker is open. Retryable: the target may come back. */
export class CircuitOpenError extends Error {
  override readonly name = 'CircuitOpenError';
  constructor(
    /** The breaker's target, e.g. `s3:http://127.0.0.1:9000` or `webhook:example.com:443`. */
    readonly target: string,
    /** Time left until the breaker lets a probe through (at least 100 ms). */
    readonly retryAfterMs: number,
  ) {
    super(`circuit breaker for ${target} is open (the target kept failing); next probe in ${Math.ceil(retryAfterMs / 1000)} s`);
  }
}

/** Called on every state change of any breaker in this process. */
export type BreakerStateListener = (target: string, state: BreakerState) => void;

const listeners = new Set<BreakerStateListener>();

/**
 * Registers `listener` for the state changes of every breaker in this process (e.g. a metrics
 * gauge). A listener that throws is ignored. @returns a function that unregisters it
 */
export function onBreakerStateChange(listener: BreakerStateListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const STATE_NAMES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'open',
};

/** Decides whether an error of a call means "the target is down". */
export type OutageTest = (err: unknown) => boolean;

interface Breaker {
  policy: CircuitBreakerPolicy;
  openedAt: number;
}

/** The breakers of one process, created on first use per target. */
export class CircuitBreakers {
  /** The options, defaults filled. */
  readonly options: CircuitBreakerOptionsWithDefaults;
  private readonly breakers = new Map<string, Breaker>();

  constructor(
    options: CircuitBreakerOptions = {},
    private readonly logger?: Logger,
  ) {
    this.options = circuitBreakerOptionsWithDefaults(options);
  }

  /**
   * Runs `fn` through the breaker of `target` (created with `isOutage` on first use).
   * @throws CircuitOpenError while the breaker is open; otherwise whatever `fn` throws
   */
  async run<T>(target: string, isOutage: OutageTest, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (!this.options.enabled) return fn(new AbortController().signal);
    const breaker = this.breaker(target, isOutage);
    try {
      return await breaker.policy.execute(({ signal }) => fn(signal));
    } catch (err) {
      if (err instanceof BrokenCircuitError) {
        throw new CircuitOpenError(target, Math.max(100, breaker.openedAt + this.options.halfOpenAfterMs - Date.now()));
      }
      throw err;
    }
  }

  /** The state of `target`'s breaker (`closed` when it has none yet). */
  state(target: string): BreakerState {
    const breaker = this.breakers.get(target);
    return breaker ? STATE_NAMES[breaker.policy.state] : 'closed';
  }

  private breaker(target: string, isOutage: OutageTest): Breaker {
    const existing = this.breakers.get(target);
    if (existing) return existing;
    const policy = circuitBreaker(
      handleWhen((err) => isOutage(err)),
      { halfOpenAfter: this.options.halfOpenAfterMs, breaker: new ConsecutiveBreaker(this.options.failureThreshold) },
    );
    const breaker: Breaker = { policy, openedAt: 0 };
    policy.onBreak(() => {
      breaker.openedAt = Date.now();
    });
    policy.onStateChange((state) => {
      const name = STATE_NAMES[state];
      const fields = { breakerTarget: target, breakerState: name };
      if (name === 'open')
        this.logger?.warn(fields, `circuit breaker for ${target} opened: calls fail fast for ${this.options.halfOpenAfterMs} ms`);
      else this.logger?.info(fields, `circuit breaker for ${target} is ${name}`);
      for (const listener of listeners) {
        try {
          listener(target, name);
        } catch {
          // a listener's failure must not break the call that changed the state
        }
      }
    });
    this.breakers.set(target, breaker);
    return breaker;
  }
}
