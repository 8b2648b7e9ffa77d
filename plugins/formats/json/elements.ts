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
const BACKSLASH = 0x5c;
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

/** States in which the input may not end. */
const UNFINISHED: readonly State[] = ["value", "element", "after"];

/**
 * Yields the elements of the JSON array in `chunks`. Whitespace-only input yields nothing;
 * anything but an array, a missing `]` or text after it throws a `LoomDataError` naming the
 * line and column.
 */
export async function* arrayElements(
  chunks: AsyncIterable<string>,
  path: string,
): AsyncGenerator<JsonElement> {
  let state: State = "start";
  let line = 1;
  let lineStart = 0; // absolute offset of the current line's first character
  let offset = 0; // absolute offset of the current chunk
  let depth = 0;
  let inString = false;
  let escaped = false;
  let afterComma = false;
  let parts: string[] = []; // the current element's text so far
  let length = 0;
  let index = 0;
  let elementLine = 0;

  for await (const chunk of chunks) {
    /** Throws for the unexpected character at `i`, saying what was expected instead. */
    const fail = (i: number, expected: string, hint = ""): never => {
      const message = `${expected}, found ${JSON.stringify(chunk[i])}${hint}`;
      throw dataError(path, line, message, { column: offset + i - lineStart + 1 });
    };
    const found: JsonElement[] = [];
    let start = 0; // where the current element's text begins in this chunk
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c === LF) {
        line++;
        lineStart = offset + i + 1;
      }
      if (state === "element") {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === BACKSLASH) escaped = true;
          else if (c === QUOTE) inString = false;
          continue;
        }
        if (c === QUOTE) inString = true;
        else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
        else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && depth > 0) depth--;
        // At depth 0 a comma, a closing bracket or whitespace ends the element (`}` included, so
        // a stray one cannot make the element swallow the rest of the file).
        else if (
          depth === 0 && (c === COMMA || c === CLOSE_BRACKET || c === CLOSE_BRACE || isSpace(c))
        ) {
          parts.push(chunk.slice(start, i));
          found.push({ text: parts.join(""), index: index++, line: elementLine });
          parts = [];
          length = 0;
          state = "after";
        }
        if (state === "element") continue;
      }
      if (isSpace(c)) continue;
      if (state === "start") {
        if (c !== OPEN_BRACKET) {
          const hint = c === OPEN_BRACE ? " (for one object per line, name the file .jsonl)" : "";
          fail(i, `the file must be a JSON array of objects like [{"prompt": "..."}]`, hint);
        }
        state = "value";
      } else if (state === "value") {
        if (c === CLOSE_BRACKET && !afterComma) state = "end";
        else if (c === CLOSE_BRACKET || c === COMMA) {
          const after = afterComma ? "','" : "'['";
          fail(i, `expected an array element after ${after}`, " (remove the extra comma)");
        } else {
          state = "element";
          start = i;
          elementLine = line;
          depth = c === OPEN_BRACE || c === OPEN_BRACKET ? 1 : 0;
          inString = c === QUOTE;
        }
      } else if (state === "after") {
        if (c === COMMA) {
          state = "value";
          afterComma = true;
        } else if (c === CLOSE_BRACKET) state = "end";
        else fail(i, `expected ',' or ']' after array element [${index - 1}]`);
      } else {
        fail(i, "the array is already closed", " (remove what follows its closing ']')");
      }
    }
    if (state === "element") {
      parts.push(chunk.slice(start));
      length += chunk.length - start;
      if (length > MAX_RECORD_LENGTH) {
        const message = `array element [${index}] is larger than ${MAX_RECORD_SIZE}`;
        throw dataError(path, elementLine, `${message} (an unclosed string or bracket?)`);
      }
    }
    offset += chunk.length;
    yield* found;
  }
  if (UNFINISHED.includes(state)) {
    throw dataError(
      path,
      line,
      "unexpected end of file: the array is not closed with ']' (is the file truncated?)",
    );
  }
}
