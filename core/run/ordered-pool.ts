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
  const concurrency = Math.max(1, options.concurrency);
  const window = Math.max(concurrency, options.window);
  const tasks = new Tasks(task, options.ready);
  const queue = tasks.queue;

  try {
    for await (const chunk of chunks) {
      for (const item of chunk) {
        while (queue.length && queue[0].settled) yield unwrap(queue.shift()!.settled!);
        while (queue.length >= window) {
          const head = queue.shift()!;
          yield unwrap(head.settled ?? await head.promise!);
        }
        if (tasks.pushReady(item)) continue;
        while (tasks.running >= concurrency) {
          await tasks.oneSettled();
          while (queue.length && queue[0].settled) yield unwrap(queue.shift()!.settled!);
        }
        tasks.start(item);
      }
    }
    while (queue.length) {
      const head = queue.shift()!;
      yield unwrap(head.settled ?? await head.promise!);
    }
  } finally {
    await options.finally?.();
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
  const tasks = new Tasks(task, options.ready);
  const queue = tasks.queue;
  // Results done in order and not yet handed on.
  let out: R[] = [];

  /** Moves the settled results at the head of the queue to `out`; a failure stops it. */
  const take = (): { error: unknown } | undefined => {
    while (queue.length && queue[0].settled) {
      const settled = queue.shift()!.settled!;
      if (!settled.ok) return settled;
      out.push(settled.value);
    }
    return undefined;
  };

  /** The results in `out`, handed on: `out` starts again empty. */
  const handOn = (): R[] => {
    const batch = out;
    out = [];
    return batch;
  };

  try {
    for await (const chunk of chunks) {
      for (const item of chunk) {
        // Results are handed on before each wait, and an error once those before it are.
        let failed = take();
        while (failed || queue.length >= window) {
          if (out.length) yield handOn();
          if (failed) throw failed.error;
          if (!queue[0].settled) await queue[0].promise;
          failed = take();
        }
        if (tasks.pushReady(item)) continue;
        while (tasks.running >= concurrency) {
          if (out.length) yield handOn();
          // Tasks may have settled while the consumer had the batch: they woke no one.
          if (tasks.running < concurrency) break;
          await tasks.oneSettled();
          if ((failed = take())) {
            if (out.length) yield handOn();
            throw failed.error;
          }
        }
        tasks.start(item);
      }
      const failed = take();
      if (out.length) yield handOn();
      if (failed) throw failed.error;
    }
    while (queue.length) {
      if (out.length) yield handOn();
      if (!queue[0].settled) await queue[0].promise;
      const failed = take();
      if (failed) {
        if (out.length) yield handOn();
        throw failed.error;
      }
    }
    if (out.length) yield handOn();
  } finally {
    await options.finally?.();
  }
}

/**
 * The entries of a pool in input order (started tasks and results known without one), and how
 * many tasks still run. Shared by both pools; they differ only in how they hand results on.
 */
class Tasks<T, R> {
  // A ring would save the shifts, but V8 shifts arrays this short in place.
  readonly queue: Entry<R>[] = [];
  running = 0;
  readonly #task: (item: T) => Promise<R>;
  readonly #ready: ((item: T) => R | undefined) | undefined;
  #wake: (() => void) | undefined;

  constructor(task: (item: T) => Promise<R>, ready: ((item: T) => R | undefined) | undefined) {
    this.#task = task;
    this.#ready = ready;
  }

  /** Starts `item`'s task, its entry last in the queue. */
  start(item: T): void {
    this.running++;
    const entry: Entry<R> = {};
    const settle = (settled: Settled<R>) => {
      entry.settled = settled;
      this.running--;
      this.#wake?.();
      return settled;
    };
    entry.promise = this.#task(item).then(
      (value) => settle({ ok: true, value }),
      (error) => settle({ ok: false, error }),
    );
    this.queue.push(entry);
  }

  /** Queues `item`'s result if it needs no task (see `ready`); whether it did. */
  pushReady(item: T): boolean {
    if (!this.#ready) return false;
    let settled: Settled<R> | undefined;
    try {
      const value = this.#ready(item);
      if (value !== undefined) settled = { ok: true, value };
    } catch (error) {
      settled = { ok: false, error };
    }
    if (settled) this.queue.push({ settled });
    return settled !== undefined;
  }

  /** Resolves once a running task settles. */
  oneSettled(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
  }
}

async function* alone<T>(items: AsyncIterable<T> | Iterable<T>): AsyncGenerator<readonly T[]> {
  for await (const item of items) yield [item];
}

function unwrap<R>(settled: Settled<R>): R {
  if (settled.ok) return settled.value;
  throw settled.error;
}
