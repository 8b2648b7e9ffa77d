/**
 * Line handling shared by the built-in formats: counting line breaks for error messages and
 * splitting text into lines without holding more than one line in memory.
 * @module
 */
import { rowsByChunk } from "./stream.ts";

/**
 * Largest record (CSV record, JSON element, JSONL line) a format buffers, in UTF-16 code units
 * (in bytes for CSV, whose reader works on bytes).
 * Larger ones are almost always a stray quote or bracket swallowing the rest of the file, so a
 * clear error beats running out of memory.
 */
export const MAX_RECORD_LENGTH = 64 * 1024 * 1024;

/** {@link MAX_RECORD_LENGTH} for messages. */
export const MAX_RECORD_SIZE = `${MAX_RECORD_LENGTH / 2 ** 20} MiB`;

/** Counts line breaks in a text, where CRLF, LF and a lone CR each count once. */
export function countLineBreaks(text: string): number {
  if (text.indexOf("\n") < 0 && text.indexOf("\r") < 0) return 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) n++;
    else if (c === 13) {
      n++;
      if (text.charCodeAt(i + 1) === 10) i++;
    }
  }
  return n;
}

/** One line of a text. */
export interface Line {
  /** The line without its ending. */
  readonly text: string;
  /** 1-based line number. */
  readonly line: number;
  /** `"\n"`, `"\r\n"`, or `""` for a last line with no ending. */
  readonly eol: string;
}

/**
 * Splits text, chunk by chunk, into lines ended by LF or CRLF, calling `onLine` for each line as
 * soon as it ends. A line longer than {@link MAX_RECORD_LENGTH} calls `tooLong(line)`, which must
 * throw.
 */
export class LineSplitter {
  #parts: string[] = []; // pieces of the current line from earlier chunks, joined once it ends
  #length = 0;
  #line = 1;
  readonly #onLine: (line: Line) => void;
  readonly #tooLong: (line: number) => never;

  constructor(onLine: (line: Line) => void, tooLong: (line: number) => never) {
    this.#onLine = onLine;
    this.#tooLong = tooLong;
  }

  /** Splits the next chunk. */
  push(chunk: string): void {
    let start = 0;
    for (let nl = chunk.indexOf("\n"); nl >= 0; nl = chunk.indexOf("\n", start)) {
      let text = chunk.slice(start, nl);
      if (this.#parts.length) {
        text = this.#parts.join("") + text;
        this.#parts = [];
        this.#length = 0;
      }
      start = nl + 1;
      const crlf = text.charCodeAt(text.length - 1) === 13;
      this.#onLine({
        text: crlf ? text.slice(0, -1) : text,
        line: this.#line++,
        eol: crlf ? "\r\n" : "\n",
      });
    }
    if (start < chunk.length) {
      this.#parts.push(chunk.slice(start));
      this.#length += chunk.length - start;
      if (this.#length > MAX_RECORD_LENGTH) this.#tooLong(this.#line);
    }
  }

  /** Ends the text: a last line with no line ending is handed out now. */
  end(): void {
    if (this.#parts.length) this.#onLine({ text: this.#parts.join(""), line: this.#line, eol: "" });
    this.#parts = [];
  }
}

/**
 * Splits text chunks into lines ended by LF or CRLF. A line longer than
 * {@link MAX_RECORD_LENGTH} calls `tooLong(line)`, which must throw.
 */
export function splitLines(
  chunks: AsyncIterable<string>,
  tooLong: (line: number) => never,
): AsyncGenerator<Line> {
  const lines: Line[] = [];
  return rowsByChunk(chunks, new LineSplitter((line) => lines.push(line), tooLong), lines);
}
