/**
 * Splitting a streamed download (a JSONL results file) into lines, shared by the providers'
 * batch readers: `\n`, `\r\n` and `\r` all end a line, also when a chunk cuts one (or a
 * multi-byte character) in two, and blank lines are kept so that line numbers stay true.
 * @module
 */

import { eachOf } from "./chunks.ts";

/** Any line break: `\r\n`, `\n` or `\r`. */
const BREAK = /\r\n|\n|\r/;

/**
 * The lines of a UTF-8 stream, split on `\n`, `\r\n` or `\r` (as the SDK's decoder splits them),
 * in arrays: the lines each chunk of the stream completes. A results file of a million lines is
 * then split by the engine a chunk at a time, not searched a character at a time in script.
 */
export async function* readLineChunks(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<string[]> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      finished = done;
      pending += done ? decoder.decode() : decoder.decode(value, { stream: true });
      if (done) break;
      // A `\r` at the end may be the first half of `\r\n`: it waits for the next chunk.
      const end = pending.endsWith("\r") ? pending.length - 1 : pending.length;
      if (end === 0) continue;
      const last = Math.max(pending.lastIndexOf("\n", end - 1), pending.lastIndexOf("\r", end - 1));
      if (last < 0) continue;
      // The complete lines end at the last break (both halves of a `\r\n` left out).
      const cut = pending[last] === "\n" && pending[last - 1] === "\r" ? last - 1 : last;
      const lines = pending.slice(0, cut).split(BREAK);
      pending = pending.slice(last + 1);
      yield lines;
    }
    if (pending) {
      // The rest, whatever breaks it holds, and a last line with none after it.
      const lines = pending.split(BREAK);
      if (lines[lines.length - 1] === "") lines.pop();
      yield lines;
    }
  } finally {
    // A consumer that stopped early (or an error) leaves the body unread: release the connection.
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** The lines of a UTF-8 stream one at a time ({@link readLineChunks}). */
export function readLines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  return eachOf(readLineChunks(body));
}
