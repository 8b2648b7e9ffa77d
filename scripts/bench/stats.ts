/**
 * What the benchmark scripts share: the median of repetitions, and the time a reader takes over a
 * file.
 * @module
 */

/** The median of `xs` (the upper one of an even count). */
export const median = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs `read` over `path`: the records it counted and the seconds it took. */
export async function timeRead(
  read: (path: string) => Promise<number>,
  path: string,
): Promise<{ records: number; seconds: number }> {
  const start = performance.now();
  const records = await read(path);
  return { records, seconds: (performance.now() - start) / 1000 };
}
