/**
 * Waits until a server this package started answers 2xx on a readiness URL, polling every 200 ms.
 * Ends early, with the caller's error, when the process exits; gives up, with the caller's error
 * naming the last answer or network error, after `timeoutMs`. Used by the S3 stores, whose
 * readiness is one HTTP GET.
 */
import type { ManagedProcess, ProcessExit } from './managed-process';

export interface HttpReadyErrors {
  /** The process exited before it was ready. */
  exited(exit: ProcessExit, logTail: string): Error;
  /** Not ready within the timeout; `lastError` is the last answer's status or the network error. */
  timedOut(timeoutMs: number, logTail: string, lastError: unknown): Error;
}

export async function waitForHttpReady(child: ManagedProcess, url: string, timeoutMs: number, errors: HttpReadyErrors): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = new Error('not checked yet');
  let processExit: ProcessExit | undefined;
  void child.exited.then((exit) => (processExit = exit));
  for (;;) {
    if (processExit) throw errors.exited(processExit, await child.logTail());
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.ok) return;
      lastError = new Error(`${new URL(url).pathname} answered HTTP ${response.status}`);
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw errors.timedOut(timeoutMs, await child.logTail(), lastError);
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 200)), child.exited]);
  }
}
