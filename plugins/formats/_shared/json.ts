/**
 * JSON object records, shared by the JSON and JSONL formats. Each record keeps its original
 * text: the writer edits that text (adding or replacing members) instead of re-serialising the
 * parsed object, so input values come out byte for byte, including integers beyond 2^53 that
 * `JSON.parse` cannot represent.
 * @module
 */
import type { AddedValue, OutputRow } from "../../../core/spec/format.ts";
import { dataError } from "./errors.ts";

/** Keeps integers that a double cannot hold exactly as their digits, so prompts see the real id. */
function exactIntegers(
  this: unknown,
  _key: string,
  value: unknown,
  context?: { source?: string },
): unknown {
  if (typeof value !== "number" || Number.isSafeInteger(value)) return value;
  const source = context?.source; // JSON.parse source access (Node 22, Deno); absent elsewhere
  return source !== undefined && /^-?\d+$/.test(source) ? source : value;
}

/**
 * Whether `text` has a run of 16 or more ASCII digits (what `/\d{16}/` tests, several times
 * faster): only integers of 16+ digits can exceed 2^53, and the reviver is slow, so it runs only
 * then. Any 16 consecutive positions hold one probe, so probing every 16th character and
 * measuring the digit run around a digit found misses no run.
 */
export function hasLongDigitRun(text: string): boolean {
  const n = text.length;
  for (let i = 15; i < n; i += 16) {
    if (!isDigit(text.charCodeAt(i))) continue;
    let start = i;
    while (start > 0 && isDigit(text.charCodeAt(start - 1))) start--;
    let end = i + 1;
    while (end < n && isDigit(text.charCodeAt(end))) end++;
    if (end - start >= 16) return true;
    i = end - 1; // the next probes start after this run; every later run still holds one
  }
  return false;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * Whether this engine's `JSON.parse` misnames an object key spelled with an escape: V8's bug
 * reported as nodejs/node#63785 (on Node 24 and 26 too), seen in Deno 2.9.6 (V8 15.0), not in
 * Node 22. Once an object key of one backslash (`"\\"` in JSON) was parsed, a key `"\n"` in the
 * same place comes back as a backslash: a row would silently get another column's name. Probed
 * once, with a first key no dataset has, so only a broken engine pays for the check in
 * {@link parseObject}.
 */
const MISNAMES_ESCAPED_KEYS = (() => {
  JSON.parse('{"\\u0000loom probe":1,"\\\\":2}');
  return Object.keys(JSON.parse('{"\\u0000loom probe":1,"\\n":2}'))[1] !== "\n";
})();

/**
 * Parses one record's text, which must be a JSON object. `label` prefixes the message after the
 * place (e.g. `element [3]: `). Integers beyond 2^53 become strings of their exact digits.
 */
export function parseObject(
  text: string,
  path: string,
  line: number,
  label = "",
): Record<string, unknown> {
  let value: unknown;
  try {
    value = hasLongDigitRun(text) ? JSON.parse(text, exactIntegers) : JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw dataError(path, line, `${label}invalid JSON (${reason})`, { cause: error });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
    throw dataError(
      path,
      line,
      `${label}expected a JSON object like {"prompt": "..."}, got ${kind}`,
    );
  }
  const object = value as Record<string, unknown>;
  return MISNAMES_ESCAPED_KEYS && text.includes("\\") && hasBackslashKey(object)
    ? withKeysAsWritten(text, object)
    : object;
}

/**
 * Whether a key of `object` holds a backslash: every misnamed key seen holds one (the bug hands
 * back raw text of the name, up to its escape), so only such rows are checked (a row whose text
 * has a backslash in a value, as most text does, is not). unverified: that a misnamed key always
 * holds one (observed in every case tried, and in nodejs/node#63785's reports; not documented).
 */
function hasBackslashKey(object: Record<string, unknown>): boolean {
  for (const key in object) if (key.includes("\\")) return true;
  return false;
}

/**
 * `object` (parsed from `text`) with its members named as `text` writes them: each key parsed
 * alone (a string, which the engine bug of {@link MISNAMES_ESCAPED_KEYS} does not touch) and,
 * when the names differ, each value parsed again under its own name (a later duplicate wins in
 * the first one's place, as `JSON.parse` does). unverified: that nested objects' keys are safe;
 * rows' columns are their top-level members, which this checks.
 */
function withKeysAsWritten(
  text: string,
  object: Record<string, unknown>,
): Record<string, unknown> {
  const members = scanMembers(text).members;
  const written = [...new Set(members.map((m) => m.key))];
  const parsed = Object.keys(object);
  if (written.length === parsed.length && written.every((key, k) => key === parsed[k])) {
    return object;
  }
  const fixed: Record<string, unknown> = {};
  for (const m of members) {
    const value = text.slice(m.valueStart, m.valueEnd);
    fixed[m.key] = hasLongDigitRun(value) ? JSON.parse(value, exactIntegers) : JSON.parse(value);
  }
  return fixed;
}

/**
 * The text of a record with `values` set: a member the object already has keeps its place and
 * gets the new value; new members go before the closing brace, in the style of the object
 * (compact on one line, or one member per line with the last member's indentation).
 * `text` must be the text of a valid JSON object.
 */
export function setMembers(
  text: string,
  values: readonly (readonly [string, AddedValue])[],
): string {
  if (values.length === 0) return text;
  let out = text;
  let fresh = values;
  let close = text.lastIndexOf("}");
  // Finding the members costs a scan, needed only if an added key may already be there: when
  // its quoted text occurs somewhere, or an escape could spell it differently.
  if (values.some(([key]) => mayHold(text, key))) {
    const scan = scanMembers(text);
    const keys = new Set(scan.members.map((m) => m.key));
    const given = new Map(values);
    fresh = values.filter(([key]) => !keys.has(key));
    // Replace values from the end so that earlier offsets stay valid.
    for (const m of scan.members.reverse()) {
      if (given.has(m.key)) {
        out = out.slice(0, m.valueStart) + JSON.stringify(given.get(m.key) ?? null) +
          out.slice(m.valueEnd);
      }
    }
    close = scan.close + out.length - text.length;
  }
  if (fresh.length === 0) return out;
  const body = out.slice(0, close);
  const head = body.trimEnd();
  const gap = body.slice(head.length); // whitespace before the closing brace stays there
  const empty = head.endsWith("{"); // no member ends with "{", so this is `{}`
  const multiline = !empty && gap.includes("\n");
  const indent = multiline ? "\n" + /^[ \t]*/.exec(head.slice(head.lastIndexOf("\n") + 1))![0] : "";
  const added = fresh.map(([k, v]) =>
    JSON.stringify(k) + (multiline ? ": " : ":") + JSON.stringify(v ?? null)
  );
  return head + (empty ? "" : "," + indent) + added.join("," + indent) + gap + out.slice(close);
}

/**
 * Whether the object `text` may have a member named `key`: its quoted name occurs, or an escape
 * could spell it differently. Short escapes (`\"`, `\\`, `\/`, `\n`...) spell only `"`, `\`,
 * `/` and control characters; a `\uXXXX` escape matters only if it spells a character of `key`.
 */
function mayHold(text: string, key: string): boolean {
  if (text.includes(JSON.stringify(key))) return true;
  if (!text.includes("\\")) return false;
  // deno-lint-ignore no-control-regex -- control characters are what this looks for
  if (/["\\/\u0000-\u001f]/.test(key)) return true;
  for (let at = text.indexOf("\\u"); at >= 0; at = text.indexOf("\\u", at + 2)) {
    const code = parseInt(text.slice(at + 2, at + 6), 16);
    if (key.includes(String.fromCharCode(code))) return true;
  }
  return false;
}

/** A row's object text for output: its original text with the added columns set. */
export function outputText({ row, added: values }: OutputRow, added: readonly string[]): string {
  // A row this format did not read has no source text: serialise its fields.
  const text = typeof row.source === "string" ? row.source : JSON.stringify(row.fields);
  return setMembers(text, added.map((name) => [name, values[name] ?? null]));
}

interface Member {
  readonly key: string;
  readonly valueStart: number;
  readonly valueEnd: number;
}

/** Finds the top-level members of a valid JSON object text and the offset of its closing brace. */
function scanMembers(text: string): { members: Member[]; close: number } {
  const members: Member[] = [];
  let i = skipSpace(text, text.indexOf("{") + 1);
  while (text[i] === '"') {
    const keyEnd = skipValue(text, i);
    const valueStart = skipSpace(text, skipSpace(text, keyEnd) + 1); // past the colon
    const valueEnd = skipValue(text, valueStart);
    members.push({ key: JSON.parse(text.slice(i, keyEnd)) as string, valueStart, valueEnd });
    i = skipSpace(text, valueEnd);
    if (text[i] === ",") i = skipSpace(text, i + 1);
  }
  return { members, close: i };
}

function skipSpace(text: string, i: number): number {
  while (
    i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")
  ) i++;
  return i;
}

/** Offset just past the JSON value starting at `i`. */
function skipValue(text: string, i: number): number {
  let depth = 0;
  let inString = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') {
        inString = false;
        if (depth === 0) return i + 1;
      }
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      if (depth === 0) return i; // the end of a scalar followed by the enclosing bracket
      if (--depth === 0) return i + 1;
    } else if (depth === 0 && (c === "," || c === " " || c === "\t" || c === "\n" || c === "\r")) {
      return i;
    }
  }
  return i;
}
