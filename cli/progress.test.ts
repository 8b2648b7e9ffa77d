import assert from "node:assert/strict";
import process from "node:process";
import { describe, it } from "node:test";
import { createProgress, formatDuration, liveStyle } from "./progress.ts";

describe("liveStyle", () => {
  it("draws a bar on a terminal, lines elsewhere", () => {
    assert.equal(liveStyle(true, {}), "bar");
    assert.equal(liveStyle(false, {}), "lines");
    assert.equal(liveStyle(undefined, {}), "lines");
  });

  it("honours NO_COLOR: any non-empty value means plain lines on a terminal too", () => {
    for (const value of ["1", "0", "true", "yes"]) {
      assert.equal(liveStyle(true, { NO_COLOR: value }), "lines", `NO_COLOR=${value}`);
    }
    // no-color.org: an empty NO_COLOR is as if unset.
    assert.equal(liveStyle(true, { NO_COLOR: "" }), "bar");
  });
});

describe("createProgress", () => {
  it("writes plain lines, with no terminal escapes, in the lines style", () => {
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => (written.push(String(chunk)), true)) as never;
    try {
      const { onEvent, stop } = createProgress("lines");
      onEvent({ type: "plan", rows: 2, input: "in.csv", output: "out.csv", mode: "batch" });
      onEvent({ type: "plan", rows: 1, input: "one.csv", output: "out.csv", mode: "batch" });
      onEvent({ type: "shard", shard: 0, action: "submitted", batchId: "b1", requests: 2 });
      onEvent({
        type: "poll",
        job: "j1",
        shards: [{ shard: 0, state: "completed", done: 2, total: 2 }],
      });
      stop();
    } finally {
      process.stderr.write = write;
    }
    const text = written.join("");
    assert.match(text, /loom: 2 rows from in\.csv \(batch\)/);
    assert.match(text, /loom: 1 row from one\.csv \(batch\)/);
    assert.match(text, /loom: batch 1 submitted as b1 \(2 requests\)/);
    assert.match(text, /loom: job j1: 1\/1 batches ended, 2\/2 requests done \(completed\)/);
    assert.ok(!text.includes("\x1b"), "no escape sequence");
  });
});

describe("formatDuration", () => {
  it("reads as seconds, minutes and hours", () => {
    assert.deepEqual([5, 83, 3725, Infinity].map(formatDuration), ["5s", "1m23s", "1h02m", "?"]);
  });
});
