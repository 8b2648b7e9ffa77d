/**
 * The line splitter of the providers' results downloads, against `String.split` on the whole
 * text: any chunking (a `\r\n` or a multi-byte character cut in two), any breaks, the same lines.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { readLineChunks, readLines } from "./lines.ts";

/** The lines of a whole text: split on every break, less the empty one after a final break. */
function oracle(text: string): string[] {
  const lines = text.split(/\r\n|\n|\r/);
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** `bytes` as a stream cut at `cuts` (positions, any order). */
function streamOf(bytes: Uint8Array, cuts: readonly number[]): ReadableStream<Uint8Array> {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const c of [...at, bytes.length]) {
    parts.push(bytes.slice(from, c));
    from = c;
  }
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
}

const texts = fc.array(
  fc.oneof(
    fc.constantFrom("\n", "\r", "\r\n", "\n\r", "", "é", "日本", "😀", '{"a":1}'),
    fc.string({ maxLength: 6 }),
  ),
  { maxLength: 30 },
).map((parts) => parts.join(""));

describe("results lines", () => {
  it("are the whole text's lines, however the stream is cut", async () => {
    await fc.assert(
      fc.asyncProperty(texts, fc.array(fc.nat(), { maxLength: 8 }), async (text, cuts) => {
        const bytes = new TextEncoder().encode(text);
        const chunks: string[][] = [];
        for await (const lines of readLineChunks(streamOf(bytes, cuts))) chunks.push(lines);
        assert.deepEqual(chunks.flat(), oracle(text));
        assert.ok(chunks.every((lines) => lines.length > 0), "no empty array is handed out");
        const one: string[] = [];
        for await (const line of readLines(streamOf(bytes, cuts))) one.push(line);
        assert.deepEqual(one, oracle(text));
      }),
      { numRuns: 1000 },
    );
  });

  it("hands out a chunk's lines at once", async () => {
    const bytes = new TextEncoder().encode("a\nb\r\nc\nd");
    const chunks: string[][] = [];
    for await (const lines of readLineChunks(streamOf(bytes, [5]))) chunks.push(lines);
    // The last line, with no break after it, comes once the stream has ended.
    assert.deepEqual(chunks, [["a", "b"], ["c"], ["d"]]);
  });
});
