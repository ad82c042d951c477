/**
 * Bounded concurrency: `concurrency` workers pull from one shared iterator, as lib-storage does.
 * The first failure stops the others from taking new items, and the pool waits for every worker
 * to settle before it rejects, so nothing is left running after an activity returns.
 */
export async function runPool<T>(items: Iterable<T>, concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let failed = false;
  let firstError: unknown;
  const worker = async () => {
    for (let next = iterator.next(); !next.done && !failed; next = iterator.next()) {
      try {
        await work(next.value);
      } catch (err) {
        if (!failed) firstError = err;
        failed = true;
      }
    }
  };
  await Promise.allSettled(Array.from({ length: Math.max(1, concurrency) }, worker));
  if (failed) throw firstError;
}
