/**
 * The submission pass hands each shard its items as a stream, reading the dataset once for all
 * shards: a shard's items are built while its provider reads them (never a whole shard at once),
 * a retry reads them anew, and a count that no longer matches the plan stops the stream.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DatasetRow } from "../spec/format.ts";
import type { BatchItem } from "../spec/provider.ts";
import { ShardPass } from "./shard-pass.ts";
import type { ShardRecord } from "./store.ts";
import { shardFinder, shardHolds } from "./submit.ts";

/** A pass over `rows` rows (row 4 has no prompt), counting the rows read and the readings. */
function passOver(rows: number, shards: ShardRecord[]) {
  const read = { rows: 0, openings: 0 };
  const pass = new ShardPass({
    open: async () => {
      read.openings++;
      return (async function* (): AsyncGenerator<DatasetRow> {
        for (let index = 0; index < rows; index++) {
          read.rows++;
          yield { index, line: index + 2, fields: { prompt: index === 4 ? "" : `p${index}` } };
        }
      })();
    },
    owners: shardFinder(shards),
    holds: (shard, index) => shardHolds(shard.rows, index),
    item: (row) =>
      row.fields.prompt
        ? {
          customId: `row-${row.index}`,
          request: {
            model: "m",
            messages: [{ role: "user", content: String(row.fields.prompt) }],
            params: {},
          },
        }
        : undefined,
  });
  return { pass, read };
}

const shard = (index: number, rows: ShardRecord["rows"], requests: number): ShardRecord => ({
  index,
  rows,
  requests,
  bytes: 1,
});

async function all(items: AsyncIterable<BatchItem>): Promise<string[]> {
  const ids: string[] = [];
  for await (const item of items) ids.push(item.customId);
  return ids;
}

const hooks = (saved: string[][] = []) => ({
  changed: (count: number) => new Error(`changed: ${count}`),
  ended: async (ids: readonly string[]) => void saved.push([...ids]),
});

describe("the submission pass", () => {
  it("streams each shard's items in one reading, building them as they are read", async () => {
    const shards = [shard(0, { start: 0, end: 5 }, 4), shard(1, { start: 5, end: 8 }, 3)];
    const { pass, read } = passOver(8, shards);
    const saved: string[][] = [];
    const first = pass.source(shards[0], hooks(saved)).items()[Symbol.asyncIterator]();
    assert.equal((await first.next()).value.customId, "row-0");
    assert.equal(read.rows, 1, "one row read for the first item, not the whole shard");
    const rest = [];
    for (let step = await first.next(); !step.done; step = await first.next()) {
      rest.push(step.value.customId);
    }
    assert.deepEqual(rest, ["row-1", "row-2", "row-3"], "row 4 has no prompt: never sent");
    assert.deepEqual(await all(pass.source(shards[1], hooks(saved)).items()), [
      "row-5",
      "row-6",
      "row-7",
    ]);
    assert.deepEqual(saved, [["row-0", "row-1", "row-2", "row-3"], ["row-5", "row-6", "row-7"]]);
    assert.deepEqual(read, { rows: 8, openings: 1 });
    await pass.close();
  });

  it("keeps a later shard's scattered rows for its turn", async () => {
    const shards = [shard(0, { list: [0, 2, 6] }, 3), shard(1, { list: [1, 3, 7] }, 3)];
    const { pass, read } = passOver(8, shards);
    assert.deepEqual(await all(pass.source(shards[0], hooks()).items()), [
      "row-0",
      "row-2",
      "row-6",
    ]);
    assert.deepEqual(await all(pass.source(shards[1], hooks()).items()), [
      "row-1",
      "row-3",
      "row-7",
    ]);
    assert.equal(read.openings, 1);
  });

  it("reads a shard anew for a second reading (a retried upload), and skips what was left unread", async () => {
    const shards = [shard(0, { start: 0, end: 4 }, 4), shard(1, { start: 4, end: 8 }, 3)];
    const { pass, read } = passOver(8, shards);
    const source = pass.source(shards[0], hooks());
    const cut = source.items()[Symbol.asyncIterator]();
    await cut.next();
    await cut.return!(undefined); // the provider's upload failed after one item
    assert.deepEqual(await all(source.items()), ["row-0", "row-1", "row-2", "row-3"]);
    assert.equal(read.openings, 2);
    await pass.skipPast(shards[0]);
    assert.deepEqual(await all(pass.source(shards[1], hooks()).items()), [
      "row-5",
      "row-6",
      "row-7",
    ]);
  });

  it("stops the stream when the input no longer has the planned requests, saving no ids", async () => {
    const shards = [shard(0, { start: 0, end: 5 }, 5)];
    const { pass } = passOver(8, shards);
    const saved: string[][] = [];
    await assert.rejects(all(pass.source(shards[0], hooks(saved)).items()), /changed: 4/);
    assert.deepEqual(saved, []);
  });
});
