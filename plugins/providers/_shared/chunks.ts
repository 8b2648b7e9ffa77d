/**
 * Arrays of outcomes as one stream: a provider's `results` from its `resultChunks`.
 * @module
 */

/** The items of arrays of them, one at a time. */
export async function* eachOf<T>(chunks: AsyncIterable<readonly T[]>): AsyncGenerator<T> {
  for await (const chunk of chunks) yield* chunk;
}
