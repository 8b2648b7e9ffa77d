/**
 * A shard's custom ids as the store keeps them (`packIds`): runs of Loom's consecutive ids are one
 * line, anything else a line an id, and every list reads back as it was.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { packIds, unpackIds } from "./custom-ids.ts";

/** Ids as a shard may hold them: runs of Loom's own, with ids of other shapes among them. */
const idLists = fc.array(
  fc.oneof(
    fc.tuple(fc.nat(1000), fc.nat(40)).map(([first, n]) =>
      Array.from({ length: n }, (_, k) => `row-${first + k}`)
    ),
    fc.constantFrom(["row-007"], ["row-"], ["row-1e3"], ["row--1"], ["rows-5"], ["row-5x"]),
    fc.stringMatching(/^[a-zA-Z0-9_-]{1,12}$/).map((id) => [id]),
  ),
  { maxLength: 12 },
).map((parts) => parts.flat());

describe("custom ids in the store", () => {
  it("read back as they were saved, whatever they are", () => {
    fc.assert(
      fc.property(idLists, (ids) => {
        assert.deepEqual(unpackIds(packIds(ids)), ids);
      }),
      { numRuns: 500 },
    );
  });

  it("a shard of consecutive rows is one line", () => {
    const ids = Array.from({ length: 50_000 }, (_, k) => `row-${70_000 + k}`);
    assert.equal(packIds(ids), "row-70000..row-119999");
    assert.deepEqual(unpackIds("row-70000..row-119999"), ids);
    // Rows left out (never sent) cut the runs; short runs stay a line an id.
    assert.equal(
      packIds(["row-1", "row-2", "row-3", "row-5", "row-6", "row-8", "x", "row-9"]),
      "row-1..row-3\nrow-5\nrow-6\nrow-8\nx\nrow-9",
    );
  });

  it("reads a migrated file's ids, one a line with a newline at the end", () => {
    assert.deepEqual(unpackIds("row-0\nrow-1\nrow-2\n"), ["row-0", "row-1", "row-2"]);
    assert.deepEqual(unpackIds(""), []);
  });

  it("refuses a range it cannot read", () => {
    assert.throws(() => unpackIds("row-9..row-3"), /unreadable custom ids: row-9\.\.row-3/);
    assert.throws(() => unpackIds("a..b"), /unreadable custom ids/);
  });
});
