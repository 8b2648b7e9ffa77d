/**
 * A streaming splitter for a top-level JSON array: it tracks strings, escapes and bracket depth
 * to find where each element starts and ends, and hands out each element's exact text. Only one
 * element is held in memory at a time; validating an element is left to `JSON.parse`.
 * @module
 */
import { dataError } from "../_shared/errors.ts";
import { MAX_RECORD_LENGTH, MAX_RECORD_SIZE } from "../_shared/lines.ts";

/** One element of the top-level array. */
export interface JsonElement {
  /** The element's exact text. */
  readonly text: string;
  /** 0-based position in the array. */
  readonly index: number;
  /** 1-based line where it starts. */
  readonly line: number;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const LF = 0x0a;

function isSpace(c: number): boolean {
  return c === 0x20 || c === LF || c === 0x0d || c === 0x09;
}

/** Where the splitter is: before `[`, expecting an element, inside one, after one, after `]`. */
type State = "start" | "value" | "element" | "after" | "end";

/**
 * Splits the text of a JSON array, chunk by chunk, calling `onElement` the moment an element
 * ends, before looking further: an element's own error (thrown by `onElement`) is thus reported
 * before any fault after it, however the input is cut into chunks.
 */
export class ArraySplitter {
  #state: State = "start";
  #line = 1;
  #lineStart = 0; // absolute offset of the current line's first character
  #offset = 0; // absolute offset of the current chunk
  #depth = 0;
  #inString = false;
  #escaped = false;
  #afterComma = false;
  #parts: string[] = []; // the current element's text from earlier chunks
  #length = 0;
  #index = 0;
  #elementLine = 0;
  readonly #path: string;
  readonly #onElement: (element: JsonElement) => void;

  /** `path` is the file to name in errors. */
  constructor(path: string, onElement: (element: JsonElement) => void) {
    this.#path = path;
    this.#onElement = onElement;
  }

  /** Splits the next chunk of text. */
  push(chunk: string): void {
    let lf = chunk.indexOf("\n"); // the next line break not yet counted
    let backslash = -1; // the next backslash at or after the current string position, if known
    /** Counts the line breaks before `i`, so that `#line` is the line of the character at `i`. */
    const lineAt = (i: number): void => {
      while (lf >= 0 && lf < i) {
        this.#line++;
        this.#lineStart = this.#offset + lf + 1;
        lf = chunk.indexOf("\n", lf + 1);
      }
    };
    /** Throws for the unexpected character at `i`, saying what was expected instead. */
    const fail = (i: number, expected: string, hint = ""): never => {
      lineAt(i);
      const message = `${expected}, found ${JSON.stringify(chunk[i])}${hint}`;
      throw dataError(this.#path, this.#line, message, {
        column: this.#offset + i - this.#lineStart + 1,
      });
    };
    let start = 0; // where the current element's text begins in this chunk
    const n = chunk.length;
    for (let i = 0; i < n; i++) {
      if (this.#state === "element") {
        if (this.#inString) {
          if (this.#escaped) {
            this.#escaped = false;
            continue;
          }
          // Most of an element is string content: jump to its closing quote.
          const quote = chunk.indexOf('"', i);
          if (backslash < i && backslash !== -2) {
            backslash = chunk.indexOf("\\", i);
            if (backslash < 0) backslash = -2; // none left in this chunk
          }
          if (backslash >= 0 && (quote < 0 || backslash < quote)) {
            i = backslash + 1; // the escaped character, skipped whatever it is
            if (i === n) this.#escaped = true;
            continue;
          }
          if (quote < 0) break;
          i = quote;
          this.#inString = false;
          continue;
        }
        const c = chunk.charCodeAt(i);
        if (c === QUOTE) this.#inString = true;
        else if (c === OPEN_BRACE || c === OPEN_BRACKET) this.#depth++;
        else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && this.#depth > 0) this.#depth--;
        // At depth 0 a comma, a closing bracket or whitespace ends the element (`}` included, so
        // a stray one cannot make the element swallow the rest of the file).
        else if (
          this.#depth === 0 &&
          (c === COMMA || c === CLOSE_BRACKET || c === CLOSE_BRACE || isSpace(c))
        ) {
          const last = chunk.slice(start, i);
          const text = this.#parts.length ? this.#parts.join("") + last : last;
          this.#parts = [];
          this.#length = 0;
          this.#state = "after";
          this.#onElement({ text, index: this.#index++, line: this.#elementLine });
        }
        if (this.#state === "element") continue;
      }
      const c = chunk.charCodeAt(i);
      if (isSpace(c)) continue;
      if (this.#state === "start") {
        if (c !== OPEN_BRACKET) {
          const hint = c === OPEN_BRACE ? " (for one object per line, name the file .jsonl)" : "";
          fail(i, `the file must be a JSON array of objects like [{"prompt": "..."}]`, hint);
        }
        this.#state = "value";
      } else if (this.#state === "value") {
        if (c === CLOSE_BRACKET && !this.#afterComma) this.#state = "end";
        else if (c === CLOSE_BRACKET || c === COMMA) {
          const after = this.#afterComma ? "','" : "'['";
          fail(i, `expected an array element after ${after}`, " (remove the extra comma)");
        } else {
          this.#state = "element";
          start = i;
          lineAt(i);
          this.#elementLine = this.#line;
          this.#depth = c === OPEN_BRACE || c === OPEN_BRACKET ? 1 : 0;
          this.#inString = c === QUOTE;
        }
      } else if (this.#state === "after") {
        if (c === COMMA) {
          this.#state = "value";
          this.#afterComma = true;
        } else if (c === CLOSE_BRACKET) this.#state = "end";
        else fail(i, `expected ',' or ']' after array element [${this.#index - 1}]`);
      } else {
        fail(i, "the array is already closed", " (remove what follows its closing ']')");
      }
    }
    lineAt(n);
    if (this.#state === "element") {
      this.#parts.push(chunk.slice(start));
      this.#length += n - start;
      if (this.#length > MAX_RECORD_LENGTH) {
        const message = `array element [${this.#index}] is larger than ${MAX_RECORD_SIZE}`;
        throw dataError(
          this.#path,
          this.#elementLine,
          `${message} (an unclosed string or bracket?)`,
        );
      }
    }
    this.#offset += n;
  }

  /** Checks that the input ended where it may: whitespace only, or after the closing `]`. */
  end(): void {
    if (this.#state === "start" || this.#state === "end") return;
    throw dataError(
      this.#path,
      this.#line,
      "unexpected end of file: the array is not closed with ']' (is the file truncated?)",
    );
  }
}

/**
 * Yields the elements of the JSON array in `chunks`. Whitespace-only input yields nothing;
 * anything but an array, a missing `]` or text after it throws a `LoomDataError` naming the
 * line and column.
 */
export async function* arrayElements(
  chunks: AsyncIterable<string>,
  path: string,
): AsyncGenerator<JsonElement> {
  let found: JsonElement[] = [];
  const splitter = new ArraySplitter(path, (element) => found.push(element));
  for await (const chunk of chunks) {
    splitter.push(chunk);
    yield* found;
    found = [];
  }
  splitter.end();
}
