/**
 * Finds where CSV records start and end in UTF-8 bytes, without decoding them. The scan jumps
 * between the bytes that matter (quote, CR, LF) with `indexOf`, so unquoted text and the inside
 * of quoted fields cost nothing per byte. It resumes where it stopped when more bytes arrive, so
 * a record, a CRLF or a multi-byte quote may span any number of chunks.
 * @module
 */

const CR = 0x0d;
const LF = 0x0a;

/** The kinds of malformed quoting a scan stops at. */
export type FaultKind = "opening-quote" | "closing-quote" | "not-closed" | "too-large";

/** Where a scan found malformed quoting, in the scanner's buffer. */
export interface Fault {
  readonly kind: FaultKind;
  /** Offset of the offending byte: the stray quote, the byte after a closing quote, ... */
  readonly at: number;
  /** Bytes after `at` that belong to the offending character (already in the buffer). */
  readonly width: number;
  /** Offset of the quote that opened the field left open (`not-closed` only). */
  readonly opened: number;
}

/** The records a scan completed, as parallel arrays (cheap to fill and reuse). */
export interface Spans {
  /** Offset of each record's first byte. */
  readonly starts: number[];
  /** Offset just past each record's text (where its line ending starts). */
  readonly ends: number[];
  /** Each record's line ending: 0 none, 1 LF, 2 CRLF, 3 a lone CR. */
  readonly eols: number[];
  /** Whether a record has a quoted field (its cells need unquoting). */
  readonly quoted: boolean[];
  /** CR and LF bytes inside each record's quoted fields. */
  readonly inner: number[];
  /** Line breaks inside each record's quoted fields (a CRLF counts once). */
  readonly breaks: number[];
  /**
   * Fields of each record: its delimiters outside quotes, plus one. Counted only for a one-byte
   * delimiter (see {@link RecordScanner.countsFields}); otherwise meaningless.
   */
  readonly fields: number[];
}

/** UTF-8 sequence length announced by a lead byte, or 1 for bytes that cannot lead one. */
function sequenceLength(byte: number): number {
  if (byte >= 0xc2 && byte <= 0xdf) return 2;
  if (byte >= 0xe0 && byte <= 0xef) return 3;
  if (byte >= 0xf0 && byte <= 0xf4) return 4;
  return 1;
}

/**
 * Splits bytes into CSV records: quotes open fields only at a field's start, a quote inside a
 * quoted field is written twice, and records end at CRLF, LF or a lone CR outside quotes.
 * Feed it with {@link RecordScanner.scan}; it keeps the state of the record in progress.
 */
export class RecordScanner {
  readonly spans: Spans = {
    starts: [],
    ends: [],
    eols: [],
    quoted: [],
    inner: [],
    breaks: [],
    fields: [],
  };
  /**
   * Whether `spans.fields` counts fields: for a one-byte (ASCII) delimiter, whose byte cannot
   * be part of another character, so counting it costs one comparison a byte.
   */
  readonly countsFields: boolean;
  /** Offset of the record in progress (everything before it is done with). */
  start = 0;
  /** The first malformed record, once found; the scan stops there. */
  fault?: Fault;

  #pos = 0; // where to resume
  #quoting = false; // inside a quoted field
  #opened = 0; // offset of the quote that opened the current quoted field
  #quoted = false;
  #inner = 0;
  #breaks = 0;
  #fields = 1;
  readonly #quote: Uint8Array;
  readonly #delimiter: Uint8Array;
  readonly #limit: number;

  /** `limit` is the largest record, in bytes, the scan accepts. */
  constructor(delimiter: string, quote: string, limit: number) {
    const encoder = new TextEncoder();
    this.#delimiter = encoder.encode(delimiter);
    this.#quote = encoder.encode(quote);
    this.#limit = limit;
    this.countsFields = this.#delimiter.length === 1;
  }

  /** Moves every offset back by `n`, after the caller dropped the first `n` bytes. */
  shift(n: number): void {
    this.start -= n;
    this.#pos -= n;
    this.#opened -= n;
  }

  /**
   * Scans `buf[0, len)` from where the last scan stopped, appending completed records to
   * `spans` (cleared first). Stops at the end of the bytes, or at a fault. With `end` set the
   * input ends there, which completes the last record.
   */
  scan(buf: Uint8Array, len: number, end: boolean): void {
    const spans = this.spans;
    for (const list of Object.values(spans)) list.length = 0;
    const quote = this.#quote;
    const delimiter = this.#delimiter;
    const q0 = quote[0];
    const ql = quote.length;
    const dl = delimiter.length;
    const d0 = dl === 1 ? delimiter[0] : -1; // a byte that never matches when not counting
    // Outside quotes, bytes above the quote's, the delimiter's and CR (with `"` and `,`, letters
    // and digits) are passed over with one comparison: counting delimiters then costs nothing.
    const plain = Math.max(q0, d0, CR);
    let p = this.#pos;
    let quoting = this.#quoting;
    // A byte loop: on records of a few dozen bytes it beats indexOf, whose calls cost more
    // than the bytes they skip. Each `break` waits for more bytes, with p where to resume.
    scan: while (!this.fault) {
      if (quoting) {
        for (; p < len; p++) { // to the next quote, counting the line breaks on the way
          const b = buf[p];
          if (b > CR) {
            if (b === q0) break;
          } else if (b === LF) {
            this.#inner++;
            if (buf[p - 1] !== CR) this.#breaks++; // the CR before it counted already
          } else if (b === CR) {
            this.#inner++;
            this.#breaks++;
          } else if (b === q0) break; // a control character as the quote
        }
        if (p >= len) break;
        if (ql > 1) {
          const m = matchAt(buf, len, end, quote, p);
          if (m < 0) break;
          if (m === 0) {
            p++;
            continue;
          }
        }
        const after = p + ql;
        if (after >= len) {
          if (!end) break;
          quoting = false; // closed by the end of the input
          p = this.#complete(len, 0, len);
          break;
        }
        const twice = buf[after] !== q0 ? 0 : ql === 1 ? 1 : matchAt(buf, len, end, quote, after);
        if (twice < 0) break;
        if (twice) { // a doubled quote: still inside the field
          p = after + ql;
          continue;
        }
        // The field closes: a delimiter, a line break or the end must follow.
        const next = buf[after];
        const delimited = next !== delimiter[0]
          ? 0
          : dl === 1
          ? 1
          : matchAt(buf, len, end, delimiter, after);
        if (delimited < 0) break;
        if (delimited) {
          quoting = false;
          p = after + dl;
          this.#fields++;
        } else if (next === LF || next === CR) {
          quoting = false;
          p = after;
        } else {
          // Text after the closing quote: its whole character is needed to tell whether it
          // is valid UTF-8, which decides which error is reported.
          const width = sequenceLength(next);
          if (after + width > len && !end) break;
          this.#fault("closing-quote", after, Math.min(width, len - after));
        }
      } else {
        for (; p < len; p++) { // to the next quote or line break, counting delimiters
          const b = buf[p];
          if (b > plain) continue;
          if (b === q0 || b === LF || b === CR) break;
          if (b === d0) this.#fields++;
        }
        if (p >= len) {
          if (end && len > this.start) p = this.#complete(len, 0, len);
          break;
        }
        const b = buf[p];
        if (b === LF) p = this.#complete(p, 1, p + 1);
        else if (b === CR) {
          if (p + 1 < len && buf[p + 1] === LF) p = this.#complete(p, 2, p + 2);
          else if (p + 1 < len || end) p = this.#complete(p, 3, p + 1);
          else break;
        } else {
          if (ql > 1) {
            const m = matchAt(buf, len, end, quote, p);
            if (m < 0) break;
            if (m === 0) { // another character with the same first byte, or a cut-off one
              p++;
              continue;
            }
          }
          const atFieldStart = p === this.start ||
            (p - dl >= this.start && buf[p - 1] === delimiter[dl - 1] &&
              matchAt(buf, len, end, delimiter, p - dl) === 1);
          if (!atFieldStart) {
            this.#fault("opening-quote", p, ql);
            break scan;
          }
          quoting = true;
          this.#quoted = true;
          this.#opened = p;
          p += ql;
        }
      }
    }
    if (!this.fault) {
      if (end && quoting) this.#fault("not-closed", len);
      else if (!end && len - this.start > this.#limit) {
        this.#fault("too-large", this.start + this.#limit);
      }
    }
    this.#pos = p;
    this.#quoting = quoting;
  }

  #fault(kind: FaultKind, at: number, width = 0): void {
    this.fault = { kind, at, width, opened: this.#opened };
  }

  /** Records the record in progress as ending at `textEnd`; returns `next`, where the next starts. */
  #complete(textEnd: number, eol: number, next: number): number {
    if (textEnd - this.start > this.#limit) {
      this.fault = { kind: "too-large", at: this.start + this.#limit, width: 0, opened: 0 };
      return next;
    }
    const spans = this.spans;
    spans.starts.push(this.start);
    spans.ends.push(textEnd);
    spans.eols.push(eol);
    spans.quoted.push(this.#quoted);
    spans.inner.push(this.#inner);
    spans.breaks.push(this.#breaks);
    spans.fields.push(this.#fields);
    this.start = next;
    this.#quoted = false;
    this.#inner = 0;
    this.#breaks = 0;
    this.#fields = 1;
    return next;
  }
}

/** 1 when `bytes` are at `buf[at]`, 0 when not, -1 when `len` cuts them off before the end. */
function matchAt(buf: Uint8Array, len: number, end: boolean, bytes: Uint8Array, at: number) {
  for (let k = 0; k < bytes.length; k++) {
    if (at + k >= len) return end ? 0 : -1;
    if (buf[at + k] !== bytes[k]) return 0;
  }
  return 1;
}
