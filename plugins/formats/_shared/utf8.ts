/**
 * UTF-8 decoding for the built-in formats. Loom reads UTF-8 only; a file in another encoding is
 * refused (naming the line) rather than silently garbled, since its cells would be written back
 * garbled too.
 * @module
 */
import { dataError } from "./errors.ts";

const LF = 0x0a;

/**
 * Decodes a UTF-8 byte stream into text chunks. A byte-order mark at the very start is dropped
 * and reported by setting `seen.bom`; invalid UTF-8 throws a `LoomDataError` naming the line.
 */
export async function* decodeUtf8(
  input: AsyncIterable<Uint8Array>,
  path: string,
  seen: { bom: boolean } = { bom: false },
): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let line = 1; // line of the first byte not yet decoded
  let held: Uint8Array = new Uint8Array(0); // an incomplete character the decoder is holding back
  let first = true;
  for await (const bytes of input) {
    const pending = held.length ? concat(held, bytes) : bytes;
    let text: string;
    try {
      text = decoder.decode(bytes, { stream: true });
    } catch (error) {
      throw notUtf8(path, line + countLf(pending, invalidUtf8At(pending)), error);
    }
    // Copied: a Node Buffer's slice() would be a view into memory the stream may reuse.
    held = Uint8Array.from(pending.subarray(pending.length - incompleteTail(pending)));
    if (!text) continue;
    if (first) {
      first = false;
      if (text.charCodeAt(0) === 0xfeff) {
        seen.bom = true;
        text = text.slice(1);
      }
    }
    line += countChar(text, "\n");
    if (text) yield text;
  }
  try {
    const rest = decoder.decode();
    if (rest) yield rest;
  } catch (error) {
    throw notUtf8(path, line, error);
  }
}

/** The error for bytes that are not UTF-8, at `line` of `path`. */
export function notUtf8(path: string, line: number, cause?: unknown): Error {
  return dataError(
    path,
    line,
    "the file is not valid UTF-8 (Loom reads UTF-8 only: convert it, e.g. with " +
      "`iconv -f WINDOWS-1252 -t UTF-8`)",
    { cause },
  );
}

/** Number of occurrences of a one-character string. */
function countChar(text: string, char: string): number {
  let n = 0;
  for (let i = text.indexOf(char); i >= 0; i = text.indexOf(char, i + 1)) n++;
  return n;
}

function countLf(bytes: Uint8Array, end: number): number {
  let n = 0;
  for (let i = 0; i < end; i++) if (bytes[i] === LF) n++;
  return n;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Length of an incomplete multi-byte character at the end of `bytes` (0 to 3). */
function incompleteTail(bytes: Uint8Array): number {
  for (let k = 1; k <= Math.min(3, bytes.length); k++) {
    const c = bytes[bytes.length - k];
    if ((c & 0xc0) === 0x80) continue; // a continuation byte: look further back for the lead byte
    const size = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return size > k ? k : 0;
  }
  return 0;
}

/** How many continuation bytes follow a lead byte, or -1 when `c` cannot start a character. */
function continuationBytes(c: number): number {
  if (c < 0x80) return 0;
  if (c >= 0xc2 && c <= 0xdf) return 1;
  if (c >= 0xe0 && c <= 0xef) return 2;
  if (c >= 0xf0 && c <= 0xf4) return 3;
  return -1;
}

/**
 * Offset of the first byte in `b[from, to)` that does not start a valid UTF-8 sequence (one cut
 * off by `to` counts as invalid), or `to` when all of it is valid.
 */
export function invalidUtf8At(b: Uint8Array, from = 0, to = b.length): number {
  for (let i = from; i < to;) {
    const c = b[i];
    const more = continuationBytes(c);
    if (more < 0) return i;
    // The second byte's range excludes overlong forms and surrogates.
    const low = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
    const high = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k <= more; k++) {
      const d = i + k < to ? b[i + k] : -1;
      if (d < (k === 1 ? low : 0x80) || d > (k === 1 ? high : 0xbf)) return i;
    }
    i += more + 1;
  }
  return to;
}
