/**
 * An output file's rows, indexed once for `loom view`: one pass through Loom's own format plugin
 * writes every row as a JSON line into a spill file and keeps, per row, only its offset there and
 * what the filters and sorts need (how it ended, its finish reason, its tokens). A page then reads
 * just its rows' bytes back, so a 1M-row output costs one pass, not one per request. The index is
 * kept while the file's size and mtime stay the same.
 * @module
 */
import { open, stat } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { setTimeout as delay } from "node:timers/promises";
import { errorMessage, LoomDataError } from "../../core/base/errors.ts";
import { displayPath } from "../../core/base/paths.ts";
import { readBytes } from "../../core/data/dataset.ts";
import { rowChunksOf } from "../../core/data/row-chunks.ts";
import type { DatasetRow, FormatV1 } from "../../core/spec/format.ts";
import { ERROR_KINDS, errorKindOf } from "./error-kinds.ts";
import { RowHasher } from "./row-hash.ts";

/** How a row ended: answered, failed (`llm_error`), or unreadable. */
export type RowStatus = "ok" | "error" | "corrupt";
const STATUS: readonly RowStatus[] = ["ok", "error", "corrupt"];

/** What a page of rows may ask for. */
export interface RowQuery {
  readonly offset: number;
  readonly limit: number;
  /** `row` (file order, the default), `status`, `finish`, `input_tokens` or `output_tokens`. */
  readonly sort?: string;
  readonly descending?: boolean;
  /** Only the rows that failed or are corrupt. */
  readonly failed?: boolean;
  /** Only the rows with this finish reason (`""`: none). */
  readonly finish?: string;
  /** Only the rows whose text holds this (case-insensitive). */
  readonly text?: string;
  /** Only the failed rows whose error is of this kind (`error-kinds.ts`). */
  readonly kind?: string;
}

/** One row as a page shows it. */
export interface ShownRow {
  /** 0-based position in the file. */
  readonly n: number;
  readonly status: RowStatus;
  readonly fields: Record<string, unknown>;
  /** Why the row is corrupt. */
  readonly problem?: string;
  /** The line of the file where the row starts. */
  readonly line?: number;
}

/** The per-row numbers of the rows indexed so far, for the charts (`stats.ts`); do not change them. */
export interface RowNumbers {
  readonly indexed: number;
  readonly indexing: boolean;
  /** Per row: its tokens and cost (-1: none), and its error's kind in {@link ERROR_KINDS} (-1: none). */
  readonly inputTokens: readonly number[];
  readonly outputTokens: readonly number[];
  readonly cost: readonly number[];
  readonly kinds: readonly number[];
}

/** A page of rows and where it stands. */
export interface RowPage {
  readonly rows: ShownRow[];
  /** Rows indexed so far (all of them once `indexing` is false). */
  readonly indexed: number;
  /** Rows matching the query among those indexed. */
  readonly matched: number;
  readonly indexing: boolean;
  readonly columns: string[];
  /**
   * The top-level fields of structured answers (`llm_response` objects in JSON and JSONL), in the
   * order first met: the page shows them as columns. (In CSV they are columns already.)
   */
  readonly answerFields: string[];
  readonly finishReasons: string[];
  /** Counts by status among the rows indexed. */
  readonly counts: Record<RowStatus, number>;
  /** Why the file could not be read to its end, if it could not. */
  readonly stopped?: string;
}

const SORTS = ["row", "status", "finish", "input_tokens", "output_tokens"] as const;
/** How long a filtered or sorted page waits for the index to be finished before answering. */
const FILTER_WAIT_MS = 300;
/** Lines the format refuses that are shown as corrupt rows before the reading gives up. */
const MAX_CORRUPT_LINES = 50;
/** Structured-answer fields shown as columns at most (a wider answer is seen whole in a row). */
const MAX_ANSWER_FIELDS = 40;
/** Bytes gathered before they are written to the spill file. */
const SPILL_CHUNK = 1 << 20;

/** A number column as a CSV gives it (text) or JSON (a number); undefined when empty. */
function count(value: unknown): number | undefined | "bad" {
  if (value === null || value === undefined || value === "") return undefined;
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : "bad";
}

/** The row's status and, for a corrupt one, why. */
function classify(fields: Record<string, unknown>): { status: RowStatus; problem?: string } {
  const error = fields.llm_error;
  if (error !== undefined && error !== null && typeof error !== "string") {
    return { status: "corrupt", problem: "llm_error is not text" };
  }
  for (const column of ["llm_input_tokens", "llm_output_tokens", "llm_reasoning_tokens"]) {
    if (count(fields[column]) === "bad") {
      return { status: "corrupt", problem: `${column} is not a number` };
    }
  }
  return { status: error ? "error" : "ok" };
}

/**
 * The bytes of lines 1..`head` and then of lines [`from`, `to`) (1-based) of a byte stream.
 */
async function* linesOf(
  chunks: AsyncIterable<Uint8Array>,
  head: number,
  from: number,
  to: number,
): AsyncGenerator<Uint8Array> {
  let line = 1;
  const wanted = (n: number) => n <= head || (n >= from && n < to);
  for await (const chunk of chunks) {
    // Runs of wanted lines go out as one slice of the chunk.
    let run = wanted(line) ? 0 : -1;
    let at = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, at);
      if (nl < 0) break;
      at = nl + 1;
      line++;
      if (line >= to && line > head) {
        if (run >= 0) yield chunk.subarray(run, at);
        return;
      }
      const want = wanted(line);
      if (run >= 0 && !want) {
        yield chunk.subarray(run, at);
        run = -1;
      } else if (run < 0 && want) run = at;
    }
    if (run >= 0 && run < chunk.length) yield chunk.subarray(run);
  }
}

/** What a spilled line holds besides the row's values: its own keys, and `null` (not shown). */
const LINE_WORDS = ["fields", "problem", "line", "null"];

/**
 * Whether a line holding `text` (lower case) surely holds it in a value, so that the line need not
 * be parsed: `text` has nothing JSON escapes or uses between values, is no part of a column's name
 * or of the line's own words, and is not a number (the line's number is no value).
 */
function matchesOnlyValues(text: string, columns: ReadonlySet<string>): boolean {
  // deno-lint-ignore no-control-regex
  if (/["\\{}[\]:,\u0000-\u001f]/.test(text) || !/[^\d.eE+-]/.test(text)) return false;
  for (const word of LINE_WORDS) if (word.includes(text)) return false;
  for (const column of columns) if (column.toLowerCase().includes(text)) return false;
  return true;
}

/** Whether a spilled row's values (or its problem) hold `text` (lower case). */
function valuesHold(line: string, text: string): boolean {
  const saved = JSON.parse(line) as { fields: Record<string, unknown>; problem?: string };
  if (saved.problem?.toLowerCase().includes(text)) return true;
  for (const key in saved.fields) {
    const value = saved.fields[key];
    if (value === null || value === undefined) continue;
    const shown = typeof value === "string" ? value : JSON.stringify(value);
    if (shown.toLowerCase().includes(text)) return true;
  }
  return false;
}

/** What compare reads of an index: per row, its status and the hashes of its input and answer. */
export interface RowDigests {
  /** Rows indexed and readable so far. */
  readonly rows: number;
  /** Whether every row is indexed. */
  readonly done: boolean;
  /** Per row: 0 answered, 1 failed, 2 corrupt. */
  readonly status: readonly number[];
  readonly input: readonly number[];
  readonly answer: readonly number[];
  readonly columns: string[];
}

/** The index of one output file. Build it with {@link RowIndex.build}; close it when done. */
export class RowIndex {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly #spillPath: string;
  #spill?: FileHandle;
  /** Byte offset of each row's line in the spill file, and one past the last. */
  readonly #offsets: number[] = [0];
  readonly #status: number[] = [];
  readonly #finish: number[] = [];
  readonly #inputTokens: number[] = [];
  readonly #outputTokens: number[] = [];
  readonly #cost: number[] = [];
  readonly #kinds: number[] = [];
  /** Hashes of each row's input columns and answer (see row-hash.ts), for compare. */
  readonly #inputHash: number[] = [];
  readonly #answerHash: number[] = [];
  /** Rows whose lines are in the spill file (the ones after them are still being gathered). */
  #flushed = 0;
  readonly #finishNames: string[] = [""];
  readonly #counts: Record<RowStatus, number> = { ok: 0, error: 0, corrupt: 0 };
  readonly #columns = new Set<string>();
  readonly #answerFields = new Set<string>();
  #stopped?: string;
  #done = false;
  #waiters: (() => void)[] = [];
  /** The rows matching the last text searched, kept for the next pages of the same search. */
  #search?: { text: string; rows: number[] };
  readonly #sorted = new Map<string, number[]>();
  #finished: Promise<void> = Promise.resolve();

  private constructor(path: string, size: number, mtimeMs: number, spillPath: string) {
    this.path = path;
    this.size = size;
    this.mtimeMs = mtimeMs;
    this.#spillPath = spillPath;
  }

  /** Notes the fields of a structured answer (up to {@link MAX_ANSWER_FIELDS}). */
  #noteAnswerFields(answer: unknown): void {
    if (answer === null || typeof answer !== "object" || Array.isArray(answer)) return;
    for (const key in answer) {
      if (this.#answerFields.size >= MAX_ANSWER_FIELDS) return;
      this.#answerFields.add(key);
    }
  }

  /** Resolves once the whole file is indexed (or its reading stopped at a corrupt place). */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /**
   * Starts indexing `path` read with `format`, spilling into `spillPath`; the pages are served as
   * soon as the rows they show are indexed.
   */
  static async build(path: string, format: FormatV1, spillPath: string): Promise<RowIndex> {
    const info = await stat(path);
    const index = new RowIndex(path, info.size, info.mtimeMs, spillPath);
    index.#spill = await open(spillPath, "w+");
    index.#finished = index.#run(format);
    return index;
  }

  /** Whether the file is still the one indexed. */
  async isCurrent(): Promise<boolean> {
    const info = await stat(this.path).catch(() => undefined);
    return info !== undefined && info.size === this.size && info.mtimeMs === this.mtimeMs;
  }

  get indexed(): number {
    return this.#status.length;
  }

  async #run(format: FormatV1): Promise<void> {
    let pending: string[] = [];
    let pendingBytes = 0;
    let written = 0;
    const flush = async () => {
      if (!pending.length) return;
      const bytes = Buffer.from(pending.join(""));
      await this.#spill!.write(bytes, 0, bytes.length, written);
      written += bytes.length;
      this.#flushed = this.#status.length;
      pending = [];
      pendingBytes = 0;
      this.#wake();
    };
    const hasher = new RowHasher();
    const add = (
      fields: Record<string, unknown>,
      status: RowStatus,
      problem?: string,
      at?: number,
    ) => {
      const line = JSON.stringify({ fields, problem, line: at }) + "\n";
      const bytes = Buffer.byteLength(line);
      pending.push(line);
      pendingBytes += bytes;
      this.#offsets.push(this.#offsets[this.#offsets.length - 1] + bytes);
      this.#status.push(STATUS.indexOf(status));
      this.#counts[status]++;
      const finish = typeof fields.llm_finish_reason === "string" ? fields.llm_finish_reason : "";
      let f = this.#finishNames.indexOf(finish);
      if (f < 0) f = this.#finishNames.push(finish) - 1;
      this.#finish.push(f);
      const tokens = (v: unknown) => {
        const n = count(v);
        return typeof n === "number" ? n : -1;
      };
      this.#inputTokens.push(tokens(fields.llm_input_tokens));
      this.#outputTokens.push(tokens(fields.llm_output_tokens));
      this.#cost.push(tokens(fields.llm_cost));
      this.#kinds.push(status === "error" ? errorKindOf(fields.llm_error as string) : -1);
      const hashes = hasher.of(fields);
      this.#inputHash.push(hashes.input);
      this.#answerHash.push(hashes.answer);
    };
    try {
      await this.#readAll(
        format,
        (row, line) => {
          const fields = { ...row.fields };
          for (const key in fields) this.#columns.add(key);
          this.#noteAnswerFields(fields.llm_response);
          const { status, problem } = classify(fields);
          add(fields, status, problem, line);
        },
        (line, why) => add({}, "corrupt", why, line),
        async () => {
          if (pendingBytes >= SPILL_CHUNK || this.indexed < 1000) await flush();
        },
      );
    } catch (error) {
      // The rows before it stay readable; the place it stopped shows as one corrupt row.
      this.#stopped = errorMessage(error);
      add({}, "corrupt", `the file cannot be read from here on: ${this.#stopped}`);
    } finally {
      await flush().catch(() => {});
      this.#done = true;
      this.#wake();
    }
  }

  /**
   * Reads every row through the format, handing each to `row` with its line in the file. The
   * built-in formats parse a chunk of the file at a time, so a line they refuse takes the rows
   * read with it: those are read again up to that line, the line goes to `corrupt`, and the
   * reading goes on after it (the header, for CSV, put in front again). Up to
   * {@link MAX_CORRUPT_LINES}; any other error ends the reading.
   */
  async #readAll(
    format: FormatV1,
    row: (row: DatasetRow, line: number) => void,
    corrupt: (line: number, why: string) => void,
    chunkDone: () => Promise<void>,
  ): Promise<void> {
    const label = displayPath(this.path);
    /** The line a data error names, and what it says after `file:line:`. */
    const refused = (error: unknown) => {
      const m = error instanceof LoomDataError && error.message.startsWith(`${label}:`)
        ? /^:(\d+)(?::\d+)?: ([^]*)$/.exec(error.message.slice(label.length))
        : null;
      return m ? { line: Number(m[1]), why: m[2] } : undefined;
    };
    /** Lines before the first row (a CSV header), known once a row or a refused line is seen. */
    let head: number | undefined;
    let bad = 0;
    /** The rows of lines [from, to): in the file, or after the head lines put in front. */
    const segment = async function* (path: string, from: number, to: number) {
      const bytes = from === 1 && to === Infinity
        ? readBytes(path)
        : linesOf(readBytes(path), head ?? 0, from, to);
      const reader = await format.open(bytes, { path: label });
      const shift = from === 1 ? 0 : from - 1 - (head ?? 0);
      for await (const chunk of rowChunksOf(reader)) {
        yield chunk.map((r) => ({ r, line: r.line + shift }));
      }
    };
    for (let from = 1;;) {
      let last: number | undefined;
      try {
        for await (const chunk of segment(this.path, from, Infinity)) {
          for (const { r, line } of chunk) {
            if (from === 1) head ??= r.line - 1;
            row(r, line);
            last = line;
          }
          await chunkDone();
        }
        return;
      } catch (error) {
        const found = refused(error);
        // The segment's line in the file: after the head lines put in front of it.
        const at = found && (from === 1 ? found.line : from + found.line - (head ?? 0) - 1);
        if (!found || !at || at < from || ++bad > MAX_CORRUPT_LINES) throw error;
        // The rows read with the refused line, again, up to it.
        try {
          for await (const chunk of segment(this.path, last ?? from, at)) {
            for (const { r, line } of chunk) {
              if (from === 1 && last === undefined) head ??= r.line - 1;
              if (last === undefined || line > last) row(r, line);
            }
          }
        } catch {
          // Lines before the refused one that are unreadable by themselves: nothing to add.
        }
        head ??= at - 1;
        corrupt(at, `line ${at} cannot be read: ${found.why}`);
        await chunkDone();
        from = at + 1;
      }
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once `rows` rows are indexed, or the whole file is. */
  async #until(rows: number): Promise<void> {
    while (!this.#done && this.#flushed < rows) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Row `n` in full, or undefined past the end. */
  async row(n: number): Promise<ShownRow | undefined> {
    await this.#until(n + 1);
    if (!(n >= 0 && n < this.#flushed)) return undefined;
    return (await this.#read([n]))[0];
  }

  /** The rows at these positions (in any order) that exist, in file order. */
  async rows(positions: readonly number[]): Promise<ShownRow[]> {
    await this.#until(Math.max(-1, ...positions) + 1);
    return this.#read(positions.filter((n) => n >= 0 && n < this.#flushed).sort((a, b) => a - b));
  }

  /** The rows (among those readable) whose values hold `text`, case-insensitive. */
  search(text: string): Promise<number[]> {
    return this.#matching(text.toLowerCase(), this.#flushed);
  }

  /** The rows' status and hashes so far (the arrays grow while the index is built). */
  get digests(): RowDigests {
    return {
      rows: this.#flushed,
      done: this.#done,
      status: this.#status,
      input: this.#inputHash,
      answer: this.#answerHash,
      columns: [...this.#columns],
    };
  }

  /** The rows at these positions (each indexed and flushed), read back from the spill file. */
  async #read(rows: readonly number[]): Promise<ShownRow[]> {
    const out: ShownRow[] = [];
    // Runs of neighbours are one read: a page in file order is a single one.
    for (let i = 0; i < rows.length;) {
      let j = i + 1;
      while (j < rows.length && rows[j] === rows[j - 1] + 1) j++;
      const start = this.#offsets[rows[i]];
      const end = this.#offsets[rows[j - 1] + 1];
      const buffer = Buffer.alloc(end - start);
      await this.#spill!.read(buffer, 0, buffer.length, start);
      const lines = buffer.toString("utf8").split("\n");
      for (let k = i; k < j; k++) {
        const saved = JSON.parse(lines[k - i]) as {
          line?: number;
          fields: Record<string, unknown>;
          problem?: string;
        };
        out.push({ n: rows[k], status: STATUS[this.#status[rows[k]]], ...saved });
      }
      i = j;
    }
    return out;
  }

  /** The rows whose saved text holds `text` (lower case), among the first `upTo`. */
  async #matching(text: string, upTo: number): Promise<number[]> {
    if (this.#search?.text === text && this.#done) return this.#search.rows;
    const rows: number[] = [];
    const escaped = JSON.stringify(text).slice(1, -1);
    // Most searches need no line parsed: only those that could match a name or the line's frame.
    const direct = matchesOnlyValues(text, this.#columns);
    const end = this.#offsets[upTo];
    const size = 4 << 20;
    let row = 0;
    for (let at = 0; at < end;) {
      // Whole rows at a time, so that no row is cut between two reads.
      let last = row;
      while (last < upTo && this.#offsets[last + 1] - at <= size) last++;
      if (last === row) last = row + 1; // a row longer than the read size
      const buffer = Buffer.alloc(this.#offsets[last] - at);
      await this.#spill!.read(buffer, 0, buffer.length, at);
      const decoded = buffer.toString("utf8");
      const lower = decoded.toLowerCase();
      const lines = lower.split("\n");
      // Lower case keeps the length but for a few letters (İ): then the lines are split apart.
      const sameLength = lower.length === decoded.length;
      let original: string[] | undefined;
      let pos = 0;
      // A line holds the text as JSON escapes it; it is a match only if a value holds it (not
      // a column's name, nor the line's own keys).
      for (let k = 0; k < last - row; k++) {
        const start = pos;
        pos += lines[k].length + 1;
        if (!lines[k].includes(escaped)) continue;
        const line = sameLength
          ? decoded.slice(start, start + lines[k].length)
          : (original ??= decoded.split("\n"))[k];
        if (direct || valuesHold(line, text)) rows.push(row + k);
      }
      at = this.#offsets[last];
      row = last;
    }
    if (this.#done) this.#search = { text, rows };
    return rows;
  }

  /** The row positions in the order `sort` asks (among all rows; only once indexed). */
  #order(sort: string): number[] | undefined {
    if (sort === "row" || !this.#done) return undefined;
    let order = this.#sorted.get(sort);
    if (!order) {
      const key = sort === "status"
        ? this.#status
        : sort === "finish"
        ? this.#finish.map((f) => this.#finishNames[f])
        : sort === "input_tokens"
        ? this.#inputTokens
        : this.#outputTokens;
      order = Array.from(this.#status, (_, i) => i);
      order.sort((a, b) => (key[a] < key[b] ? -1 : key[a] > key[b] ? 1 : a - b));
      this.#sorted.set(sort, order);
    }
    return order;
  }

  /**
   * A page of rows. The unfiltered pages in file order wait for their rows; a filter or a sort
   * answers from the rows indexed so far while the index is built (`indexing` says so).
   * @throws RangeError for a sort that is none of {@link SORTS}.
   */
  async page(query: RowQuery): Promise<RowPage> {
    const sort = query.sort ?? "row";
    if (!(SORTS as readonly string[]).includes(sort)) {
      throw new RangeError(`sort by one of ${SORTS.join(", ")}, not ${JSON.stringify(sort)}`);
    }
    const kind = query.kind === undefined ? -1 : ERROR_KINDS.indexOf(query.kind);
    if (query.kind !== undefined && kind < 0) {
      throw new RangeError(
        `kind is one of ${ERROR_KINDS.join(", ")}, not ${JSON.stringify(query.kind)}`,
      );
    }
    const filtered = query.failed || query.finish !== undefined || !!query.text ||
      query.kind !== undefined;
    if (!filtered && sort === "row") await this.#until(query.offset + query.limit);
    // A small file is indexed at once: answer it whole rather than as a partial page.
    else await Promise.race([this.#finished, delay(FILTER_WAIT_MS)]);
    const upTo = this.#flushed;
    let rows: number[] | undefined;
    if (query.text) rows = await this.#matching(query.text.toLowerCase(), upTo);
    const finish = query.finish === undefined ? -1 : this.#finishNames.indexOf(query.finish);
    const keep = (i: number) =>
      (!query.failed || this.#status[i] !== 0) &&
      (query.finish === undefined || this.#finish[i] === finish) &&
      (kind < 0 || this.#kinds[i] === kind);
    const order = this.#order(sort);
    let picked: number[];
    let matched: number;
    if (!filtered && !order) {
      matched = upTo;
      const from = query.descending ? Math.max(0, upTo - query.offset - query.limit) : query.offset;
      const to = query.descending
        ? upTo - query.offset
        : Math.min(upTo, query.offset + query.limit);
      picked = [];
      for (let i = from; i < to; i++) picked.push(i);
      if (query.descending) picked.reverse();
    } else {
      // One loop over the candidates, no arrays in between: a million rows each time.
      const all: number[] = [];
      if (order && rows) {
        const inRows = new Uint8Array(upTo);
        for (const i of rows) inRows[i] = 1;
        for (const i of order) if (i < upTo && inRows[i] && keep(i)) all.push(i);
      } else if (order || rows) {
        for (const i of (order ?? rows)!) if (i < upTo && keep(i)) all.push(i);
      } else {
        for (let i = 0; i < upTo; i++) if (keep(i)) all.push(i);
      }
      if (query.descending) all.reverse();
      matched = all.length;
      picked = all.slice(query.offset, query.offset + query.limit);
    }
    const shown = await this.#read([...picked].sort((a, b) => a - b));
    const byRow = new Map(shown.map((r) => [r.n, r]));
    const counts = { ...this.#counts };
    return {
      rows: picked.map((n) => byRow.get(n)!),
      indexed: upTo,
      matched,
      indexing: !this.#done,
      columns: [...this.#columns],
      answerFields: [...this.#answerFields],
      finishReasons: this.#finishNames.filter((f) => f !== ""),
      counts,
      ...(this.#stopped ? { stopped: this.#stopped } : {}),
    };
  }

  /** The per-row numbers indexed so far (the arrays themselves: read, never change them). */
  numbers(): RowNumbers {
    return {
      indexed: this.indexed,
      indexing: !this.#done,
      inputTokens: this.#inputTokens,
      outputTokens: this.#outputTokens,
      cost: this.#cost,
      kinds: this.#kinds,
    };
  }

  /** Waits for the pass to end, then closes and leaves the spill file to its folder's owner. */
  async close(): Promise<void> {
    await this.finished;
    await this.#spill?.close();
    this.#spill = undefined;
  }

  /** The spill file's path (inside the folder the viewer removes when it stops). */
  get spillPath(): string {
    return this.#spillPath;
  }
}

/** The indexes of the files a viewer shows, each rebuilt when its file changes. */
export class RowIndexes {
  readonly #dir: string;
  readonly #indexes = new Map<string, Promise<RowIndex>>();
  #next = 0;

  /** `dir`: a private folder for the spill files (the caller removes it). */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The index of `path` read with `format`, built now if it is missing or out of date. */
  async of(path: string, format: FormatV1): Promise<RowIndex> {
    const known = this.#indexes.get(path);
    if (known) {
      const index = await known.catch(() => undefined);
      if (index && (await index.isCurrent())) return index;
      this.#indexes.delete(path);
      index?.close().catch(() => {});
    }
    const building = RowIndex.build(path, format, join(this.#dir, `rows-${this.#next++}.jsonl`));
    this.#indexes.set(path, building);
    return building;
  }

  /** Closes every index (their spill files stay for the caller to remove with the folder). */
  async close(): Promise<void> {
    const all = [...this.#indexes.values()];
    this.#indexes.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.close()));
  }
}
