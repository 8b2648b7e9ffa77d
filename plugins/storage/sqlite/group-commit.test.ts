import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupCommit } from "./group-commit.ts";

/**
 * A GroupCommit on a fake clock and fake timers (pause 3, waits of 25 ms to 1 s, groups from 64
 * rows, at most 1,000), whose commits write what waits and take `commitMs` of the clock.
 */
function harness() {
  let now = 1_000;
  const timers: { ms: number; work: () => void; cancelled: boolean }[] = [];
  const commits: number[] = [];
  let waiting = 0;
  const h = {
    commitMs: 1,
    commits,
    timers,
    group: new GroupCommit(() => {
      commits.push(waiting);
      now += h.commitMs;
      const rows = waiting;
      waiting = 0;
      return rows;
    }, {
      pause: 3,
      minWaitMs: 25,
      maxWaitMs: 1_000,
      groupRows: 64,
      maxRows: 1_000,
      now: () => now,
      schedule: (work, ms) => {
        const timer = { ms, work, cancelled: false };
        timers.push(timer);
        return () => (timer.cancelled = true);
      },
    }),
    /** `n` sets, each told to the group. */
    set(n: number) {
      for (let i = 0; i < n; i++) h.group.added(++waiting);
    },
    /** The wait of the commit scheduled last. */
    get wait() {
      return timers.at(-1)!.ms;
    },
    /** Runs the commit scheduled last, `ms` later. */
    fire(ms = 0) {
      now += ms;
      const timer = timers.at(-1)!;
      assert.equal(timer.cancelled, false);
      timer.work();
    },
    advance: (ms: number) => (now += ms),
  };
  return h;
}

describe("group commit", () => {
  it("commits a few sets on the next turn, however closely they follow the last commit", () => {
    const h = harness();
    for (let round = 0; round < 5; round++) {
      h.set(8); // eight writers, each waiting for its commit
      assert.equal(h.wait, 0);
      h.fire(1);
    }
    assert.deepEqual(h.commits, [8, 8, 8, 8, 8]);
    assert.equal(h.timers.length, 5, "one commit scheduled per round");
  });

  it("after a large commit, waits three times as long as it took, 25 ms at least", () => {
    const h = harness();
    h.commitMs = 20;
    h.set(300);
    h.fire();
    h.advance(10);
    h.set(200);
    assert.equal(h.wait, 50, "60 ms after the commit ended");
    h.set(200);
    assert.equal(h.timers.length, 2, "later sets join the commit scheduled");
    h.commitMs = 2;
    h.fire(50);
    assert.deepEqual(h.commits, [300, 400]);
    h.set(100);
    assert.equal(h.wait, 25);
    h.fire(25);
    h.advance(30);
    h.set(100);
    assert.equal(h.wait, 0, "the wait has passed: next turn");
  });

  it("waits 1 s at most after a slow commit", () => {
    const h = harness();
    h.commitMs = 900;
    h.set(100);
    h.fire();
    h.set(1);
    assert.equal(h.wait, 1_000);
  });

  it("a small commit ends the grouping: the first set after a quiet spell commits at once", () => {
    const h = harness();
    h.set(300);
    h.fire();
    h.set(1);
    h.fire(25);
    h.advance(1);
    h.set(1);
    assert.equal(h.wait, 0);
  });

  it("commits on the next turn once max rows wait, and everything when flushed", () => {
    const h = harness();
    h.set(300);
    h.fire();
    h.set(999);
    const timer = h.timers.at(-1)!;
    assert.equal(timer.ms, 25);
    h.set(1);
    assert.equal(timer.cancelled, true);
    assert.equal(h.wait, 0);
    h.set(500);
    h.group.flush();
    assert.equal(h.timers.at(-1)!.cancelled, true);
    assert.deepEqual(h.commits, [300, 1_500]);
  });
});
