import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupCommit } from "./group-commit.ts";

/**
 * A GroupCommit on a fake clock and a fake event loop (pause 3, waits of 25 ms to 1 s, groups from
 * 64 rows, at most 1,000), whose commits write what waits and take `commitMs` of the clock.
 */
function harness() {
  let now = 1_000;
  let turn: (() => void) | undefined;
  const commits: number[] = [];
  let waiting = 0;
  const h = {
    commitMs: 1,
    commits,
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
      schedule: (work) => {
        assert.equal(turn, undefined, "one check scheduled at a time");
        turn = work;
        return () => (turn = undefined);
      },
    }),
    /** `n` sets in this turn, each told to the group. */
    set(n: number) {
      for (let i = 0; i < n; i++) h.group.added(++waiting);
    },
    /** Ends this turn `ms` after it began (the scheduled check runs), and begins the next. */
    turn(ms = 1) {
      now += ms;
      const work = turn;
      turn = undefined;
      work?.();
    },
    get scheduled() {
      return turn !== undefined;
    },
  };
  return h;
}

describe("group commit", () => {
  it("commits a few sets on the next turn, however closely they follow the last commit", () => {
    const h = harness();
    for (let round = 0; round < 5; round++) {
      h.set(8); // eight writers, each waiting for its commit
      h.turn();
    }
    assert.deepEqual(h.commits, [8, 8, 8, 8, 8]);
  });

  it("after a large commit, waits three times as long as it took while sets keep coming", () => {
    const h = harness();
    h.commitMs = 20;
    h.set(300);
    h.turn();
    assert.deepEqual(h.commits, [300]);
    for (let t = 0; t < 5; t++) {
      h.set(100);
      h.turn(10);
    }
    assert.deepEqual(h.commits, [300], "50 ms of the 60 after it");
    h.set(100);
    h.commitMs = 2;
    h.turn(10);
    assert.deepEqual(h.commits, [300, 600]);
    for (let t = 0; t < 3; t++) {
      h.set(100);
      h.turn(10);
    }
    assert.deepEqual(h.commits, [300, 600, 300], "25 ms at least");
  });

  it("a turn that brings no set commits at once", () => {
    const h = harness();
    h.set(300);
    h.turn();
    h.set(100);
    h.turn(1);
    assert.deepEqual(h.commits, [300]);
    h.turn(1); // nothing set: the run waits, maybe for this commit
    assert.deepEqual(h.commits, [300, 100]);
    assert.equal(h.scheduled, false);
  });

  it("waits 1 s at most after a slow commit", () => {
    const h = harness();
    h.commitMs = 900;
    h.set(100);
    h.turn();
    for (let t = 0; t < 99; t++) {
      h.set(1);
      h.turn(10);
    }
    assert.deepEqual(h.commits, [100]);
    h.set(1);
    h.turn(10);
    assert.deepEqual(h.commits, [100, 100]);
  });

  it("a small commit ends the grouping: the first set after a quiet spell commits at once", () => {
    const h = harness();
    h.set(300);
    h.turn();
    h.set(1);
    h.turn();
    h.turn();
    assert.deepEqual(h.commits, [300, 1]);
    h.set(1);
    h.turn();
    assert.deepEqual(h.commits, [300, 1, 1]);
  });

  it("commits on the next turn once max rows wait, and everything when flushed", () => {
    const h = harness();
    h.set(300);
    h.turn();
    h.set(999);
    h.turn();
    assert.deepEqual(h.commits, [300]);
    h.set(1);
    h.turn();
    assert.deepEqual(h.commits, [300, 1_000]);
    h.set(500);
    assert.equal(h.scheduled, true);
    h.group.flush();
    assert.equal(h.scheduled, false, "the check is cancelled");
    assert.deepEqual(h.commits, [300, 1_000, 500]);
  });
});
