/**
 * Cache writes that arrive while one is being committed are committed together: one statement
 * and one commit (one fsync on the server) for all of them, instead of one each. A caller's
 * promise still resolves only once its own value is committed, so `set` stays durable.
 * @module
 */

interface Waiting {
  readonly key: string;
  readonly value: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Returns a `set(key, value)` that calls `write(keys, values)` with the writes gathered since
 * the previous call (at most `max` at once; for a key written twice, only its last value).
 */
export function coalesceWrites(
  write: (keys: string[], values: string[]) => Promise<void>,
  max = 1000,
): (key: string, value: string) => Promise<void> {
  let waiting: Waiting[] = [];
  let writing = false;
  async function drain() {
    writing = true;
    while (waiting.length > 0) {
      const batch = waiting.slice(0, max);
      waiting = waiting.slice(max);
      // One statement may not update a row twice: keep each key's last value.
      const last = new Map(batch.map((w) => [w.key, w.value]));
      try {
        await write([...last.keys()], [...last.values()]);
        for (const w of batch) w.resolve();
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
    writing = false;
  }
  return (key, value) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ key, value, resolve, reject });
      if (!writing) void drain();
    });
}
