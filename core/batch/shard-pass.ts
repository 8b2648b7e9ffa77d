/**
 * The submission pass: one reading of the dataset that hands each unsubmitted shard its items as
 * a stream, shard after shard in the order of their last rows. A shard's items are built while
 * its provider reads them, so no shard's requests are held at once (50,000 of them were tens of
 * megabytes, promoted to the old generation and then garbage, which grew the heap by as much).
 * The items of a row that belongs to a later shard (a retry's scattered rows) are kept for that
 * shard until its turn.
 * @module
 */
import type { DatasetRow } from "../spec/format.ts";
import type { BatchItem, BatchItemSource } from "../spec/provider.ts";
import type { ShardRecord } from "./store.ts";

/** The last row of a shard. */
export function lastRowOf(shard: ShardRecord): number {
  return "list" in shard.rows ? shard.rows.list[shard.rows.list.length - 1] : shard.rows.end - 1;
}

/** What a pass needs: how to read the rows, which shards hold a row, and a row's item. */
export interface PassSource {
  /** Opens the dataset's rows (again: a second reading of a shard opens them anew). */
  readonly open: () => Promise<AsyncIterable<DatasetRow>>;
  /** The shards (among those of the pass) holding row `index`; asked in ascending order. */
  readonly owners: (index: number) => readonly ShardRecord[];
  /** Whether `shard` holds row `index` (for a shard read again on its own). */
  readonly holds: (shard: ShardRecord, index: number) => boolean;
  /** A row's item, or undefined when its request cannot be built (it is never sent). */
  readonly item: (row: DatasetRow) => BatchItem | undefined;
}

/** What a shard's stream reports. */
export interface ShardStreamHooks {
  /** The input no longer matches the plan: `count` items where `shard.requests` were planned. */
  readonly changed: (count: number) => Error;
  /** Awaited once every item was read, with their custom ids, before the stream ends. */
  readonly ended: (ids: readonly string[]) => Promise<void>;
}

/** One reading of the dataset shared by the shards it submits, in the order of their last rows. */
export class ShardPass {
  readonly #source: PassSource;
  #rows: AsyncIterator<DatasetRow> | undefined;
  /** Items read for shards whose turn has not come. */
  readonly #held = new Map<ShardRecord, BatchItem[]>();
  /** Shards whose turn of the shared reading was taken (a second reading opens the rows anew). */
  readonly #taken = new Set<ShardRecord>();
  #position = -1;

  constructor(source: PassSource) {
    this.#source = source;
  }

  /**
   * The items of `shard` as a {@link BatchItemSource}: its first reading goes on with the shared
   * pass, a later one (a retry) reads the dataset anew. Each checks the count against the plan.
   */
  source(shard: ShardRecord, hooks: ShardStreamHooks): BatchItemSource {
    return { count: shard.requests, items: () => this.#items(shard, hooks) };
  }

  /** One reading of `shard`'s items for {@link source}, checked against the plan's count. */
  async *#items(shard: ShardRecord, hooks: ShardStreamHooks): AsyncGenerator<BatchItem> {
    // Sized once: grown a push at a time, 50,000 ids left a trail of large copies.
    const ids = new Array<string>(shard.requests);
    let count = 0;
    const first = !this.#taken.has(shard);
    this.#taken.add(shard);
    for await (const item of first ? this.#turn(shard) : this.#again(shard)) {
      if (count === shard.requests) throw hooks.changed(count + 1);
      ids[count++] = item.customId;
      yield item;
    }
    if (count !== shard.requests) throw hooks.changed(count);
    await hooks.ended(ids);
  }

  /** `shard`'s items from the shared reading: those kept for it, then rows up to its last. */
  async *#turn(shard: ShardRecord): AsyncGenerator<BatchItem> {
    const held = this.#held.get(shard);
    this.#held.delete(shard);
    if (held) yield* held;
    const last = lastRowOf(shard);
    while (this.#position < last) {
      const row = await this.#next();
      if (!row) return;
      const owners = this.#source.owners(row.index);
      if (!owners.length) continue;
      const item = this.#source.item(row);
      if (!item) continue;
      for (const owner of owners) {
        if (owner !== shard) this.#keep(owner, item);
      }
      if (owners.includes(shard)) yield item;
    }
  }

  /** `shard`'s items read anew from the start of the dataset. */
  async *#again(shard: ShardRecord): AsyncGenerator<BatchItem> {
    const last = lastRowOf(shard);
    for await (const row of await this.#source.open()) {
      if (row.index > last) return;
      if (!this.#source.holds(shard, row.index)) continue;
      const item = this.#source.item(row);
      if (item) yield item;
    }
  }

  /**
   * Moves the shared reading past `shard`'s last row, keeping the items of later shards: what
   * a provider left unread (a failed submit) is never handed to the next shard.
   */
  async skipPast(shard: ShardRecord): Promise<void> {
    this.#taken.add(shard);
    this.#held.delete(shard);
    const last = lastRowOf(shard);
    while (this.#position < last) {
      const row = await this.#next();
      if (!row) return;
      const owners = this.#source.owners(row.index).filter((s) => s !== shard);
      const item = owners.length ? this.#source.item(row) : undefined;
      if (item) { for (const owner of owners) this.#keep(owner, item); }
    }
  }

  #keep(shard: ShardRecord, item: BatchItem): void {
    if (this.#taken.has(shard)) return;
    const held = this.#held.get(shard);
    if (held) held.push(item);
    else this.#held.set(shard, [item]);
  }

  async #next(): Promise<DatasetRow | undefined> {
    this.#rows ??= (await this.#source.open())[Symbol.asyncIterator]();
    const step = await this.#rows.next();
    if (step.done) {
      this.#position = Infinity;
      return undefined;
    }
    this.#position = step.value.index;
    return step.value;
  }

  /** Ends the shared reading (closes the input). */
  async close(): Promise<void> {
    await this.#rows?.return?.();
  }
}
