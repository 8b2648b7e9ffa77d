/**
 * A file's lines as bytes, a megabyte at a time, each chunk whole lines: for files of JSON lines
 * (the submission spool, echo's uploads) read back without a stream, and decoded, where they
 * must be, whole (a decoder in stream mode is several times slower).
 * @module
 */
import { open } from "node:fs/promises";

/** Bytes read at a time. */
const READ_BYTES = 1024 * 1024;
const NEWLINE = 0x0a;

/**
 * The bytes of `path` from `start` to `end` (its end by default), each chunk whole lines, every
 * line ending in `\n`. The chunks share one buffer: a chunk is the reader's until it asks for the
 * next (a megabyte fresh for each, dead at once but freed only by a later garbage collection,
 * raised a 1M-row submit's peak by tens of megabytes). A file that ends within a line, or before
 * `end`, throws what `cutShort(path)` makes.
 */
export async function* lineBytes(
  path: string,
  start = 0,
  end = Infinity,
  cutShort: (path: string) => Error = (p) => new Error(`${p} ends within a line`),
): AsyncGenerator<Uint8Array> {
  const file = await open(path);
  try {
    let buffer = new Uint8Array(READ_BYTES);
    /** Bytes at the buffer's start that are the beginning of a line not read to its end. */
    let carry = 0;
    let at = start;
    while (at < end) {
      if (carry === buffer.length) {
        // A line longer than the buffer: it grows.
        const grown = new Uint8Array(buffer.length * 2);
        grown.set(buffer);
        buffer = grown;
      }
      const want = Math.min(buffer.length - carry, end - at);
      const { bytesRead } = await file.read(buffer, carry, want, at);
      if (bytesRead === 0) break;
      at += bytesRead;
      const filled = carry + bytesRead;
      const last = buffer.lastIndexOf(NEWLINE, filled - 1);
      if (last >= 0) yield buffer.subarray(0, last + 1);
      buffer.copyWithin(0, last + 1, filled);
      carry = filled - (last + 1);
    }
    if (carry || (end !== Infinity && at < end)) throw cutShort(path);
  } finally {
    await file.close();
  }
}
