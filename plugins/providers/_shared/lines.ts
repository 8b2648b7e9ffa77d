/**
 * Splitting a streamed download (a JSONL results file) into lines, shared by the providers'
 * batch readers: `\n`, `\r\n` and `\r` all end a line, also when a chunk cuts one (or a
 * multi-byte character) in two, and blank lines are kept so that line numbers stay true.
 * @module
 */

/** The lines of a UTF-8 stream, split on `\n`, `\r\n` or `\r` (as the SDK's decoder splits them). */
export async function* readLines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      finished = done;
      pending += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let start = 0;
      for (let i = 0; i < pending.length; i++) {
        const ch = pending.charCodeAt(i);
        if (ch !== 10 && ch !== 13) continue;
        // A `\r` at the end of a chunk may be the first half of `\r\n`: wait for the next chunk.
        if (ch === 13 && i === pending.length - 1 && !done) break;
        yield pending.slice(start, i);
        if (ch === 13 && pending.charCodeAt(i + 1) === 10) i++;
        start = i + 1;
      }
      pending = pending.slice(start);
      if (done) break;
    }
    if (pending) yield pending;
  } finally {
    // A consumer that stopped early (or an error) leaves the body unread: release the connection.
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
