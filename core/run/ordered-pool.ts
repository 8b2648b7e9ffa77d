/**
 * Runs an async task per item with bounded concurrency and yields the results in input order.
 * Input is pulled only while fewer than `window` results are waiting, so memory stays bounded
 * however long the input is, and a slow item never lets the others race arbitrarily far ahead.
 * @module
 */

/** Options of {@link orderedPool}. */
export interface OrderedPoolOptions<T, R> {
  /** Tasks running at once. */
  readonly concurrency: number;
  /** Results held at most (running + finished but not yet yielded); at least `concurrency`. */
  readonly window: number;
  /**
   * An item's result when it needs no task (a cache hit, say), else undefined. Such items take
   * no slot and no promise: their results wait in line with the others and cost next to nothing.
   * May throw: the error is the item's result, thrown in its turn.
   */
  readonly ready?: (item: T) => R | undefined;
  /**
   * Awaited when the pool ends, well or not: its end (or its error) reaches the consumer only
   * after (a run's cache writes, say). Here rather than in a generator around the pool, which
   * would cost a few promises per result.
   */
  readonly finally?: () => Promise<void>;
}

type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };
interface Entry<R> {
  promise?: Promise<Settled<R>>;
  settled?: Settled<R>;
}

/**
 * Maps `items` through `task`, `concurrency` at a time, yielding results in input order as soon
 * as they and every earlier one are done. If a task rejects, the error is thrown in its turn;
 * tasks already started are left to settle (give them an AbortSignal to stop them).
 */
export function orderedPool<T, R>(
  items: AsyncIterable<T> | Iterable<T>,
  task: (item: T) => Promise<R>,
  options: OrderedPoolOptions<T, R>,
): AsyncGenerator<R> {
  return orderedChunkPool(alone(items), task, options);
}

/** {@link orderedPool} over items that arrive in chunks (read and prepared many at a time). */
export async function* orderedChunkPool<T, R>(
  chunks: AsyncIterable<readonly T[]> | Iterable<readonly T[]>,
  task: (item: T) => Promise<R>,
  options: OrderedPoolOptions<T, R>,
): AsyncGenerator<R> {
  for await (const batch of orderedBatchPool(chunks, task, options)) {
    for (const result of batch) yield result;
  }
}

/**
 * {@link orderedChunkPool} yielding its results in batches: whatever is done, in order, each time
 * the pool is about to wait (for a task, or for the next chunk). A consumer that takes many rows
 * at once (a sync run's writer) then pays for one step of a generator a batch, not one a row. A
 * failed task's error is thrown in its turn: after the batch of the results before it.
 */
export async function* orderedBatchPool<T, R>(
  chunks: AsyncIterable<readonly T[]> | Iterable<readonly T[]>,
  task: (item: T) => Promise<R>,
  options: OrderedPoolOptions<T, R>,
): AsyncGenerator<R[]> {
  const concurrency = Math.max(1, options.concurrency);
  const window = Math.max(concurrency, options.window);
  const ready = options.ready;
  // A ring would save the shifts, but V8 shifts arrays this short in place.
  const queue: Entry<R>[] = [];
  let running = 0;
  let wake: (() => void) | undefined;
  // Results done in order and not yet handed on.
  let out: R[] = [];

  const start = (item: T) => {
    running++;
    const entry: Entry<R> = {};
    const settle = (settled: Settled<R>) => {
      entry.settled = settled;
      running--;
      wake?.();
      return settled;
    };
    entry.promise = task(item).then(
      (value) => settle({ ok: true, value }),
      (error) => settle({ ok: false, error }),
    );
    queue.push(entry);
  };

  /** Moves the settled results at the head of the queue to `out`; a failure stops it. */
  const take = (): { error: unknown } | undefined => {
    while (queue.length && queue[0].settled) {
      const settled = queue.shift()!.settled!;
      if (!settled.ok) return settled;
      out.push(settled.value);
    }
    return undefined;
  };

  /** Hands `out` on (when it holds anything), then throws `failed`'s error, if any. */
  async function* handOn(failed?: { error: unknown }): AsyncGenerator<R[]> {
    if (out.length) {
      const batch = out;
      out = [];
      yield batch;
    }
    if (failed) throw failed.error;
  }

  try {
    for await (const chunk of chunks) {
      for (const item of chunk) {
        let failed = take();
        if (failed) yield* handOn(failed);
        while (queue.length >= window) {
          yield* handOn();
          if (!queue[0].settled) await queue[0].promise;
          if ((failed = take())) yield* handOn(failed);
        }
        if (ready) {
          let settled: Settled<R> | undefined;
          try {
            const value = ready(item);
            if (value !== undefined) settled = { ok: true, value };
          } catch (error) {
            settled = { ok: false, error };
          }
          if (settled) {
            queue.push({ settled });
            continue;
          }
        }
        while (running >= concurrency) {
          yield* handOn();
          // Tasks may have settled while the consumer had the batch: they woke no one.
          if (running < concurrency) break;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          if ((failed = take())) yield* handOn(failed);
        }
        start(item);
      }
      const failed = take();
      yield* handOn(failed);
    }
    while (queue.length) {
      yield* handOn();
      if (!queue[0].settled) await queue[0].promise;
      const failed = take();
      if (failed) yield* handOn(failed);
    }
    yield* handOn();
  } finally {
    await options.finally?.();
  }
}

async function* alone<T>(items: AsyncIterable<T> | Iterable<T>): AsyncGenerator<readonly T[]> {
  for await (const item of items) yield [item];
}
