/**
 * The submission spool: a batch submission's items, written to a scratch file by the planning
 * pass that cuts the shards, so that sending a shard reads its lines back instead of reading the
 * dataset and building its requests a second time (the input is read once). A provider that
 * encodes its items ({@link BatchApi.encodeItem}) gets its own lines back as bytes, built and
 * serialized once; any other gets the items as Loom's JSON, parsed back.
 *
 * Scratch only, never flushed to disk: a submission killed after its planning pass is finished by
 * reading the dataset again (`shard-pass.ts`), and the next spool made in the same home removes
 * what a dead process left.
 * @module
 */
import { Buffer } from "node:buffer";
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { randomBytes } from "node:crypto";
import { LoomError } from "../base/errors.ts";
import { writeUtf8 } from "../base/runtime.ts";
import { customIdOf } from "./custom-ids.ts";
import { lineBytes } from "../data/line-bytes.ts";
import { isAlive } from "../data/output.ts";
import type { BatchApi, BatchItem, BatchItemSource } from "../spec/provider.ts";
import type { ShardStreamHooks } from "./shard-pass.ts";
import type { ShardRecord } from "./store.ts";

/** Bytes gathered before one write: a write of a line each would be a million calls. */
const WRITE_BYTES = 1024 * 1024;
const NEWLINE = 0x0a;

/** The folder of spools under Loom's home. */
export function spoolDir(home: string): string {
  return join(home, "spool");
}

/**
 * Writes a planning pass's items, one line each, and notes where each shard's lines begin.
 * Writing is synchronous (the planning pass hands rows over one at a time, synchronously); a
 * failed write (a full disk) drops the spool, and the submission reads the dataset again instead.
 */
export class SpoolWriter {
  readonly #path: string;
  readonly #encode: ((item: BatchItem) => string) | undefined;
  #fd: number | undefined;
  /** Lines not written yet, encoded into it one by one (not joined into a string first). */
  #buffer = Buffer.allocUnsafe(WRITE_BYTES);
  #used = 0;
  /** Bytes in the spool so far, and where its last line begins. */
  #offset = 0;
  #last = 0;
  readonly #starts: number[] = [];
  /** Rows of the pass that have no item (their request could not be built), ascending. */
  readonly #skipped: number[] = [];

  private constructor(path: string, fd: number, encode: BatchApi["encodeItem"]) {
    this.#path = path;
    this.#fd = fd;
    this.#encode = encode;
  }

  /**
   * A new spool in `home`, for `batch`'s lines (its own, or Loom's JSON of each item); undefined
   * when the file cannot be made (the submission then reads the dataset again). Removes the
   * spools of processes that are gone.
   */
  static create(home: string, batch: BatchApi): SpoolWriter | undefined {
    const dir = spoolDir(home);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      removeDeadSpools(dir);
      const path = join(dir, `${process.pid}.${randomBytes(6).toString("hex")}.jsonl`);
      const encode = batch.encodeItem?.bind(batch);
      return new SpoolWriter(path, openSync(path, "wx", 0o600), encode);
    } catch {
      return undefined;
    }
  }

  /** Whether the lines are the provider's own ({@link BatchApi.encodeItem}). */
  get encoded(): boolean {
    return this.#encode !== undefined;
  }

  /**
   * `item`'s line, as the provider sends it: sizes the item (its UTF-8 length plus one is
   * `itemBytes`). Only for an encoding provider.
   */
  encode(item: BatchItem): string {
    return this.#encode!(item);
  }

  /** Notes that row `index` has no item. */
  skip(index: number): void {
    if (this.#fd !== undefined) this.#skipped.push(index);
  }

  /**
   * Appends one item's line (its {@link encode}d line, or Loom's JSON of the item) and returns
   * its UTF-8 length (also once the spool was dropped).
   */
  write(line: string): number {
    if (this.#fd === undefined) return Buffer.byteLength(line);
    // A UTF-16 unit takes at most 3 bytes in UTF-8.
    const most = line.length * 3 + 1;
    if (this.#buffer.length - this.#used < most) {
      this.#flush();
      if (this.#buffer.length < most) this.#buffer = Buffer.allocUnsafe(most);
    }
    const bytes = writeUtf8(this.#buffer, line, this.#used);
    this.#buffer[this.#used + bytes] = NEWLINE;
    this.#used += bytes + 1;
    this.#last = this.#offset;
    this.#offset += bytes + 1;
    return bytes;
  }

  /** Marks the line written last as the first of a new shard. */
  begin(): void {
    if (this.#fd !== undefined) this.#starts.push(this.#last);
  }

  #flush(): void {
    if (this.#fd === undefined) return;
    try {
      for (let done = 0; done < this.#used;) {
        const written = writeSync(this.#fd, this.#buffer, done, this.#used - done);
        if (written <= 0) throw new Error("the file system took no more bytes");
        done += written;
      }
      this.#used = 0;
    } catch {
      this.discard();
    }
  }

  /** The spool, once the pass is over; undefined when it was dropped. */
  finish(): Spool | undefined {
    this.#flush();
    if (this.#fd === undefined) return undefined;
    closeSync(this.#fd);
    this.#fd = undefined;
    return new Spool(this.#path, this.encoded, this.#starts, this.#offset, this.#skipped);
  }

  /** Drops the spool (the pass failed, or its rows cannot be submitted). */
  discard(): void {
    if (this.#fd !== undefined) {
      try {
        closeSync(this.#fd);
      } catch { /* closed already */ }
    }
    this.#fd = undefined;
    this.#used = 0;
    rmSync(this.#path, { force: true });
  }
}

/** Removes the spools in `dir` whose process is gone (a killed submission's). */
function removeDeadSpools(dir: string): void {
  for (const name of readdirSync(dir)) {
    const pid = Number(name.split(".")[0]);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) {
      rmSync(join(dir, name), { force: true });
    }
  }
}

/** A finished spool: each shard's lines, in the order the planning pass cut them. */
export class Spool {
  /** Where each shard's lines begin, by shard number, and where the last ends. */
  readonly #starts: readonly number[];
  readonly #end: number;
  readonly #skipped: readonly number[];
  readonly path: string;
  readonly encoded: boolean;

  constructor(
    path: string,
    encoded: boolean,
    starts: readonly number[],
    end: number,
    skipped: readonly number[],
  ) {
    this.path = path;
    this.encoded = encoded;
    this.#starts = starts;
    this.#end = end;
    this.#skipped = skipped;
  }

  /** How many shards it holds. */
  get shards(): number {
    return this.#starts.length;
  }

  /**
   * Shard `shard`'s items as a source: its lines as they are (an encoded spool), or its items
   * parsed back. `fallback` reads the items from the dataset, for a provider that asks an encoded
   * spool for items. The custom ids go to `hooks.ended` once the stream is read.
   */
  source(
    shard: ShardRecord,
    hooks: Pick<ShardStreamHooks, "ended">,
    fallback: () => AsyncIterable<BatchItem>,
  ): BatchItemSource {
    const start = this.#starts[shard.index];
    const end = this.#starts[shard.index + 1] ?? this.#end;
    const path = this.path;
    const ids = () => this.#ids(shard);
    const items = this.encoded ? fallback : async function* (): AsyncGenerator<BatchItem> {
      const decoder = new TextDecoder();
      let count = 0;
      for await (const chunk of lineBytes(path, start, end, cutShort)) {
        const lines = decoder.decode(chunk).split("\n");
        lines.pop(); // after the last newline
        for (const line of lines) {
          count++;
          yield JSON.parse(line) as BatchItem;
        }
      }
      if (count !== shard.requests) throw spoiled(path, shard);
      await hooks.ended(ids());
    };
    return {
      count: shard.requests,
      items,
      ...(this.encoded
        ? {
          async *lines() {
            yield* lineBytes(path, start, end, cutShort);
            await hooks.ended(ids());
          },
        }
        : {}),
    };
  }

  /** The custom ids of a shard: every row of its range that has an item. */
  #ids(shard: ShardRecord): string[] {
    if ("list" in shard.rows) throw spoiled(this.path, shard);
    const ids = new Array<string>(shard.requests);
    let n = 0;
    let k = lowerBound(this.#skipped, shard.rows.start);
    for (let row = shard.rows.start; row < shard.rows.end; row++) {
      if (this.#skipped[k] === row) k++;
      else ids[n++] = customIdOf(row);
    }
    if (n !== shard.requests) throw spoiled(this.path, shard);
    return ids;
  }

  /** Removes the file. */
  async remove(): Promise<void> {
    await rm(this.path, { force: true });
  }
}

/** The first position of `sorted` holding a value ≥ `value`. */
function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The error of a spool that ends before its last shard does. */
function cutShort(path: string): LoomError {
  return new LoomError(`the submission spool ${path} was cut short; nothing more was submitted`);
}

/** A spool that does not hold what its plan says: a bug, never a reason to send wrong rows. */
function spoiled(path: string, shard: ShardRecord): LoomError {
  return new LoomError(
    `the submission spool ${path} does not match batch ${
      shard.index + 1
    }; nothing more was submitted`,
  );
}
