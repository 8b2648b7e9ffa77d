import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupCommit } from "./group-commit.ts";

/** A GroupCommit on a fake clock and fake timers, committing `waiting` rows when it runs. */
function harness(options = { windowMs: 50, groupRows: 64, maxRows: 1_000 }) {
  let now = 0;
  const timers: { ms: number; work: () => void; cancelled: boolean }[] = [];
  const commits: number[] = [];
  let waiting = 0;
  const group = new GroupCommit(() => {
    commits.push(waiting);
    const rows = waiting;
    waiting = 0;
    return rows;
  }, {
    ...options,
    now: () => now,
    schedule: (work, ms) => {
      const timer = { ms, work, cancelled: false };
      timers.push(timer);
      return () => (timer.cancelled = true);
    },
  });
  return {
    group,
    commits,
    timers,
    /** `n` sets, each told to the group. */
    set(n: number) {
      for (let i = 0; i < n; i++) group.added(++waiting);
    },
    /** Runs the last timer scheduled, `ms` later. */
    fire(ms = 0) {
      now += ms;
      const timer = timers.at(-1)!;
      assert.equal(timer.cancelled, false);
      timer.work();
    },
    advance: (ms: number) => (now += ms),
  };
}

describe("group commit", () => {
  it("commits a few sets on the next turn, however closely they follow the last commit", () => {
    const h = harness();
    for (let round = 0; round < 5; round++) {
      h.set(8); // eight writers, each waiting for its commit
      assert.equal(h.timers.at(-1)!.ms, 0);
      h.fire(1);
    }
    assert.deepEqual(h.commits, [8, 8, 8, 8, 8]);
    assert.equal(h.timers.length, 5, "one commit scheduled per round");
  });

  it("after a large commit, commits at most once a window while sets keep coming", () => {
    const h = harness();
    h.set(300);
    h.fire();
    h.advance(10);
    h.set(200);
    assert.equal(h.timers.at(-1)!.ms, 40, "the window counts from the last commit's start");
    h.set(200);
    assert.equal(h.timers.length, 2, "later sets join the commit scheduled");
    h.fire(40);
    assert.deepEqual(h.commits, [300, 400]);
    h.advance(60);
    h.set(100);
    assert.ok(h.timers.at(-1)!.ms <= 0, "the window has passed: next turn");
  });

  it("a small commit ends the grouping: the first set after a quiet spell commits at once", () => {
    const h = harness();
    h.set(300);
    h.fire();
    h.set(1);
    h.fire(50);
    h.advance(1);
    h.set(1);
    assert.equal(h.timers.at(-1)!.ms, 0);
  });

  it("commits on the next turn once max rows wait, and everything when flushed", () => {
    const h = harness();
    h.set(300);
    h.fire();
    h.set(999);
    const timer = h.timers.at(-1)!;
    assert.equal(timer.ms, 50);
    h.set(1);
    assert.equal(timer.cancelled, true);
    assert.equal(h.timers.at(-1)!.ms, 0);
    h.set(500);
    h.group.flush();
    assert.equal(h.timers.at(-1)!.cancelled, true);
    assert.deepEqual(h.commits, [300, 1_500]);
  });
});
