/**
 * Saved result sets as files beside the state database (`state.db-results/<set id>`), one a set.
 * A million outcomes are some 100 MB of JSON: through SQLite they were written twice (the WAL,
 * then the file at a checkpoint, every page checksummed) and read back a page at a time, a third
 * of a fetch's CPU; a file is written once and read with one buffered stream.
 *
 * The database stays the only truth of which sets exist (`result_sets`, see mod.ts): a set's row
 * is committed before its file is made, its file is complete (written as `<id>.part`, flushed to
 * disk, renamed) before the set is made current, and its row is deleted before its file is. So a
 * file whose set has no row is garbage ({@link ResultFiles.sweep}), and a reader only ever opens
 * the file of a current set, which is whole.
 *
 * A file is a header line, then per row `<row> <value's UTF-8 bytes>\n<value>\n`: values are any
 * strings (a newline inside one is no separator), and their text is copied as it is, with no
 * escaping to undo. Rows are written as they come, so a file is a few **segments**, each in
 * ascending row order (Loom's saved outcomes: the answers, then the errors held back to the end);
 * the database keeps where each begins, and a read merges them. Rows in more disorder than
 * {@link MAX_SEGMENTS} segments are the table's to sort (mod.ts).
 * @module
 */
import { Buffer } from "node:buffer";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { type FileHandle, open, rename } from "node:fs/promises";
import { join } from "node:path";
import { errorMessage, LoomError, systemFaultMessage } from "../../../core/base/errors.ts";
import type { ResultRow } from "../../../core/spec/storage.ts";

/** The first line of a result file: its format, so a later one can be told apart. */
const HEADER = "loom-results 1\n";
/**
 * Bytes gathered before a write, and read at once: 256 KiB (a megabyte, no faster, raised a
 * 1M-row fetch's peak on Deno by 25 MiB: buffers of 20 shards waiting for a collection).
 */
const CHUNK = 256 * 1024;
const PART = ".part";
const NEWLINE = 10;
const SPACE = 32;
const DIGIT_0 = 48;
const DIGIT_9 = 57;
/** Segments a file may have; rows in more disorder than this are not kept in a file. */
export const MAX_SEGMENTS = 16;
/** Bytes a segment's reader reads at once at least, when there are several. */
const MIN_READ = 64 * 1024;
/** Bytes of a row's header at most (two numbers below 2⁵³, a space and a newline). */
const MAX_HEAD = 34;

/** The folder of a database file's result sets. */
export const resultsFolder = (databaseFile: string): string => `${databaseFile}-results`;

/** The result set files of one state database. */
export class ResultFiles {
  /** Where the files are ({@link resultsFolder}); made 0700 when first written. */
  readonly folder: string;
  /** LOOM_HOME, named in messages about a file under it. */
  readonly #home: string | undefined;

  constructor(folder: string, home?: string) {
    this.folder = folder;
    this.#home = home;
  }

  /** Runs a file operation; its fault is told as one of the result files (a full disk, say). */
  async #io<T>(operation: () => T | Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      const fault = systemFaultMessage(error, this.#home) ?? errorMessage(error);
      throw new LoomError(`cannot save results in ${this.folder}: ${fault}`, { cause: error });
    }
  }

  /** The file of set `id`. */
  path(id: number): string {
    return join(this.folder, String(id));
  }

  /**
   * Writes set `id`'s rows, each checked by `check`, complete and flushed to disk before it
   * resolves. Answers the file's segments as their bounds (byte offsets: where each begins, then
   * where the last ends), and whether they are in order: rows in more disorder than
   * {@link MAX_SEGMENTS} segments are not, and their bounds are the whole file's (to read them as
   * written). On any error nothing is left: no file, no part of one.
   */
  async write(
    id: number,
    rows: Iterable<ResultRow> | AsyncIterable<ResultRow>,
    check: (row: ResultRow) => void,
  ): Promise<{ bounds: number[]; inOrder: boolean }> {
    const part = this.path(id) + PART;
    const file = await this.#io(() => {
      mkdirSync(this.folder, { recursive: true, mode: 0o700 });
      return open(part, "wx", 0o600);
    });
    // Errors of the rows (a provider's, a bad row) pass through as they are; the file's are told.
    try {
      // Encoded straight into one buffer: no string of a megabyte made and dropped per write.
      let buffer = Buffer.allocUnsafe(CHUNK);
      let at = buffer.write(HEADER, 0, "latin1");
      /** Bytes written before `buffer`'s. */
      let written = 0;
      let last = -1;
      let starts: number[] | undefined = [at];
      for await (const row of rows) {
        check(row);
        if (row.row <= last && starts) {
          starts.push(written + at);
          if (starts.length > MAX_SEGMENTS) starts = undefined;
        }
        last = row.row;
        const bytes = Buffer.byteLength(row.value);
        const head = `${row.row} ${bytes}\n`;
        const needs = head.length + bytes + 1;
        if (at + needs > buffer.length) {
          const full = buffer.subarray(0, at);
          await this.#io(() => writeAll(file, full));
          written += at;
          at = 0;
          if (needs > buffer.length) buffer = Buffer.allocUnsafe(needs);
        }
        at += buffer.write(head, at, "latin1");
        at += buffer.write(row.value, at, "utf8");
        buffer[at++] = NEWLINE;
      }
      const tail = buffer.subarray(0, at);
      // Flushed before the set can be made current: a set the database says is saved is whole
      // even after the operating system crashed.
      await this.#io(async () => {
        await writeAll(file, tail);
        await file.sync();
        await file.close();
        await rename(part, this.path(id));
      });
      const size = written + at;
      return starts
        ? { bounds: [...starts, size], inOrder: true }
        : { bounds: [HEADER.length, size], inOrder: false };
    } catch (error) {
      await file.close().catch(() => {});
      rmSync(part, { force: true });
      throw error;
    }
  }

  /** Opens set `id`'s file, or answers undefined when there is none. */
  async open(id: number): Promise<FileHandle | undefined> {
    try {
      return await open(this.path(id), "r");
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return undefined;
      throw error;
    }
  }

  /**
   * Removes set `id`'s file and any part of one, if it can: its set's row is gone already, so a
   * file left (a read-only place) is garbage that a later open sweeps, never a fault.
   */
  remove(id: number): void {
    for (const path of [this.path(id), this.path(id) + PART]) {
      try {
        rmSync(path, { force: true });
      } catch {
        // Swept later.
      }
    }
  }

  /**
   * Removes the files of sets that no longer exist (`exists` answers from the database): a
   * process killed after deleting a set's row and before its file. The folder is listed before
   * `exists` is asked, so a set made meanwhile by another process (its row first) is never taken
   * for garbage.
   */
  sweep(exists: (id: number) => boolean): void {
    let names: string[];
    try {
      names = readdirSync(this.folder);
    } catch {
      return;
    }
    for (const name of names) {
      const id = Number(name.endsWith(PART) ? name.slice(0, -PART.length) : name);
      if (Number.isSafeInteger(id) && id > 0 && !exists(id)) this.remove(id);
    }
  }
}

/**
 * The rows of an open result file, its segments (bounded by the byte offsets `bounds`, as
 * {@link ResultFiles.write} answered them) merged by row; closes the file at the end (or when the
 * caller stops early).
 * @throws Error when the file is not a whole result file of these segments.
 */
export async function* readResultFile(
  file: FileHandle,
  name: string,
  bounds: readonly number[],
): AsyncGenerator<ResultRow> {
  const bad = () =>
    new LoomError(`${name} is not a whole result file (cut short, or changed outside Loom)`);
  try {
    const head = Buffer.alloc(HEADER.length);
    const { bytesRead } = await file.read(head, 0, HEADER.length, 0);
    if (bytesRead !== HEADER.length || head.toString("latin1") !== HEADER) throw bad();
    // Longer or shorter than written: not this set's whole file (shorter is caught by reading).
    if ((await file.stat()).size !== bounds.at(-1)) throw bad();
    const starts = bounds.slice(0, -1);
    const chunk = Math.max(MIN_READ, Math.floor(CHUNK / starts.length));
    const segments = starts.map((from, k) => readSegment(file, from, bounds[k + 1], chunk, bad));
    if (segments.length === 1) {
      yield* segments[0];
      return;
    }
    // A merge of a few: the next row is the least of their heads.
    const heads: (ResultRow | undefined)[] = [];
    for (const segment of segments) heads.push((await segment.next()).value ?? undefined);
    for (;;) {
      let least = -1;
      for (let k = 0; k < heads.length; k++) {
        const row = heads[k];
        if (row && (least < 0 || row.row < heads[least]!.row)) least = k;
      }
      if (least < 0) return;
      yield heads[least]!;
      heads[least] = (await segments[least].next()).value ?? undefined;
    }
  } finally {
    await file.close();
  }
}

/**
 * The rows of the bytes `from` to `to` of a result file, read `chunk` bytes at a time at their
 * positions (several segments share one handle). Each value is decoded from the bytes on its own:
 * no string larger than a value is made.
 */
async function* readSegment(
  file: FileHandle,
  from: number,
  to: number,
  chunk: number,
  bad: () => Error,
): AsyncGenerator<ResultRow, undefined> {
  let buffer = Buffer.allocUnsafe(Math.min(chunk, Math.max(0, to - from)));
  /** Bytes of `buffer` read and not handed out yet: `at` to `end`; `position`: the file's next. */
  let at = 0;
  let end = 0;
  let position = from;
  /** Reads more after the bytes not handed out (moved to the front; the buffer grown for `need`). */
  const more = async (need: number) => {
    if (at > 0) {
      buffer.copy(buffer, 0, at, end);
      end -= at;
      at = 0;
    }
    if (need > buffer.length) {
      const grown = Buffer.allocUnsafe(need);
      buffer.copy(grown, 0, 0, end);
      buffer = grown;
    }
    const length = Math.min(buffer.length - end, to - position);
    const { bytesRead } = await file.read(buffer, end, length, position);
    // Shorter than the database says: cut off.
    if (bytesRead === 0) throw bad();
    end += bytesRead;
    position += bytesRead;
  };
  for (;;) {
    const ended = position === to;
    if (at === end) {
      if (ended) return undefined;
      await more(0);
      continue;
    }
    // `<row> <bytes>\n`: digits read off the bytes, no string made.
    let p = at;
    let row = 0;
    let bytes = 0;
    let c = 0;
    while (p < end && (c = buffer[p]) >= DIGIT_0 && c <= DIGIT_9) row = row * 10 + c - DIGIT_0, p++;
    const space = p;
    if (p < end && c === SPACE) p++;
    while (p < end && (c = buffer[p]) >= DIGIT_0 && c <= DIGIT_9) {
      bytes = bytes * 10 + c - DIGIT_0, p++;
    }
    const headEnd = p;
    if (p === end) {
      if (ended || headEnd - at > MAX_HEAD) throw bad();
      await more(0);
      continue;
    }
    if (space === at || buffer[space] !== SPACE || headEnd === space + 1 || c !== NEWLINE) {
      throw bad();
    }
    const valueAt = headEnd + 1;
    if (valueAt + bytes + 1 > end) {
      if (ended) throw bad();
      await more(valueAt - at + bytes + 1);
      continue;
    }
    if (buffer[valueAt + bytes] !== NEWLINE) throw bad();
    yield { row, value: buffer.toString("utf8", valueAt, valueAt + bytes) };
    at = valueAt + bytes + 1;
  }
}

/**
 * Writes the whole of `text`: one write may take only part of it (write(2) may, as on a disk
 * that fills up); the next write then fails with the reason.
 */
async function writeAll(file: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done);
    if (bytesWritten <= 0) {
      throw Object.assign(new Error("the file system took no more bytes"), { code: "ENOSPC" });
    }
    done += bytesWritten;
  }
}
