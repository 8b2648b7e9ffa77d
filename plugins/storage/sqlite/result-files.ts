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
 * escaping to undo.
 * @module
 */
import { Buffer } from "node:buffer";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { type FileHandle, open, rename } from "node:fs/promises";
import { join } from "node:path";
import type { ResultRow } from "../../../core/spec/storage.ts";

/** The first line of a result file: its format, so a later one can be told apart. */
const HEADER = "loom-results 1\n";
/** Characters gathered before a write, and bytes read at once: a megabyte each. */
const CHUNK = 1024 * 1024;
const PART = ".part";
const NEWLINE = 10;
const SPACE = 32;
const DIGIT_0 = 48;
const DIGIT_9 = 57;
/** Bytes of a row's header at most (two numbers below 2⁵³, a space and a newline). */
const MAX_HEAD = 34;

/** The folder of a database file's result sets. */
export const resultsFolder = (databaseFile: string): string => `${databaseFile}-results`;

/** The result set files of one state database. */
export class ResultFiles {
  /** Where the files are ({@link resultsFolder}); made 0700 when first written. */
  readonly folder: string;

  constructor(folder: string) {
    this.folder = folder;
  }

  /** The file of set `id`. */
  path(id: number): string {
    return join(this.folder, String(id));
  }

  /**
   * Writes set `id`'s rows, each checked by `check`, complete and flushed to disk before it
   * resolves; answers whether they came in ascending row order (they are read back in the order
   * written). On any error nothing is left: no file, no part of one.
   */
  async write(
    id: number,
    rows: Iterable<ResultRow> | AsyncIterable<ResultRow>,
    check: (row: ResultRow) => void,
  ): Promise<boolean> {
    mkdirSync(this.folder, { recursive: true, mode: 0o700 });
    const part = this.path(id) + PART;
    const file = await open(part, "wx", 0o600);
    try {
      // Encoded straight into one buffer: no string of a megabyte made and dropped per write.
      let buffer = Buffer.allocUnsafe(CHUNK);
      let at = buffer.write(HEADER, 0, "latin1");
      let last = -1;
      let ascending = true;
      for await (const row of rows) {
        check(row);
        if (row.row <= last) ascending = false;
        last = row.row;
        const bytes = Buffer.byteLength(row.value);
        const head = `${row.row} ${bytes}\n`;
        const needs = head.length + bytes + 1;
        if (at + needs > buffer.length) {
          await writeAll(file, buffer.subarray(0, at));
          at = 0;
          if (needs > buffer.length) buffer = Buffer.allocUnsafe(needs);
        }
        at += buffer.write(head, at, "latin1");
        at += buffer.write(row.value, at, "utf8");
        buffer[at++] = NEWLINE;
      }
      await writeAll(file, buffer.subarray(0, at));
      // Flushed before the set can be made current: a set the database says is saved is whole
      // even after the operating system crashed.
      await file.sync();
      await file.close();
      await rename(part, this.path(id));
      return ascending;
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

  /** Removes set `id`'s file and any part of one (none is not an error). */
  remove(id: number): void {
    rmSync(this.path(id), { force: true });
    rmSync(this.path(id) + PART, { force: true });
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
 * The rows of an open result file, in the order written; closes the file at the end (or when
 * the caller stops early). Each value is decoded from the file's bytes on its own: no string
 * larger than a value is made.
 * @throws Error when the file is not a whole result file.
 */
export async function* readResultFile(
  file: FileHandle,
  name: string,
): AsyncGenerator<ResultRow> {
  const bad = () => new Error(`${name} is not a whole result file`);
  let buffer = Buffer.allocUnsafe(CHUNK);
  /** Bytes of `buffer` read and not handed out yet: `at` to `end`. */
  let at = 0;
  let end = 0;
  let ended = false;
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
    const { bytesRead } = await file.read(buffer, end, buffer.length - end, null);
    if (bytesRead === 0) ended = true;
    end += bytesRead;
  };
  try {
    while (end < HEADER.length && !ended) await more(HEADER.length);
    if (buffer.toString("latin1", 0, HEADER.length) !== HEADER) throw bad();
    at = HEADER.length;
    for (;;) {
      // `<row> <bytes>\n`: digits read off the bytes, no string made.
      let p = at;
      let row = 0;
      let bytes = 0;
      let c = 0;
      while (p < end && (c = buffer[p]) >= DIGIT_0 && c <= DIGIT_9) {
        row = row * 10 + c - DIGIT_0, p++;
      }
      const space = p;
      if (p < end && c === SPACE) p++;
      while (p < end && (c = buffer[p]) >= DIGIT_0 && c <= DIGIT_9) {
        bytes = bytes * 10 + c - DIGIT_0, p++;
      }
      const headEnd = p;
      if (p === end || headEnd - at > MAX_HEAD) {
        if (at === end && ended) return;
        if (ended || headEnd - at > MAX_HEAD) throw bad();
        await more(0);
        continue;
      }
      if (space === at || buffer[space] !== SPACE || headEnd === space + 1 || c !== NEWLINE) {
        throw bad();
      }
      const from = headEnd + 1;
      if (from + bytes + 1 > end) {
        if (ended) throw bad();
        await more(from - at + bytes + 1);
        continue;
      }
      if (buffer[from + bytes] !== NEWLINE) throw bad();
      yield { row, value: buffer.toString("utf8", from, from + bytes) };
      at = from + bytes + 1;
    }
  } finally {
    await file.close();
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
