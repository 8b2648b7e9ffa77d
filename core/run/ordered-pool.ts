/**
 * Runs an async task per item with bounded concurrency and yields the results in input order.
 * Input is pulled only while fewer than `window` results are waiting, so memory stays bounded
 * however long the input is, and a slow item never lets the others race arbitrarily far ahead.
 * @module
 */

/** Options of {@link orderedPool}. */
export interface OrderedPoolOptions {
  /** Tasks running at once. */
  readonly concurrency: number;
  /** Results held at most (running + finished but not yet yielded); at least `concurrency`. */
  readonly window: number;
}

type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };
interface Entry<R> {
  promise: Promise<Settled<R>>;
  settled?: Settled<R>;
}

/**
 * Maps `items` through `task`, `concurrency` at a time, yielding results in input order as soon
 * as they and every earlier one are done. If a task rejects, the error is thrown in its turn;
 * tasks already started are left to settle (give them an AbortSignal to stop them).
 */
export async function* orderedPool<T, R>(
  items: AsyncIterable<T> | Iterable<T>,
  task: (item: T) => Promise<R>,
  options: OrderedPoolOptions,
): AsyncGenerator<R> {
  const concurrency = Math.max(1, options.concurrency);
  const window = Math.max(concurrency, options.window);
  const queue: Entry<R>[] = [];
  let running = 0;
  let wake: (() => void) | undefined;

  const start = (item: T) => {
    running++;
    const entry = {} as Entry<R>;
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

  for await (const item of items) {
    while (queue.length && queue[0].settled) yield unwrap(queue.shift()!.settled!);
    while (queue.length >= window) yield unwrap(await queue.shift()!.promise);
    while (running >= concurrency) {
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      while (queue.length && queue[0].settled) yield unwrap(queue.shift()!.settled!);
    }
    start(item);
  }
  while (queue.length) yield unwrap(await queue.shift()!.promise);
}

function unwrap<R>(settled: Settled<R>): R {
  if (settled.ok) return settled.value;
  throw settled.error;
}
