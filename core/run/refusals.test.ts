import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoomProviderError } from "../base/errors.ts";
import { refusalOf, RefusalStreak } from "./refusals.ts";

describe("refusal streaks", () => {
  it("only refusals Loom cannot place count", () => {
    assert.deepEqual(
      refusalOf(new LoomProviderError("x: 400 odd", { status: 400, refused: true })),
      { status: 400, message: "x: 400 odd" },
    );
    assert.equal(refusalOf(new LoomProviderError("x: 400 too long", { status: 400 })), undefined);
    assert.equal(
      refusalOf(new LoomProviderError("x: 401", { status: 401, fatal: true })),
      undefined,
    );
    assert.equal(refusalOf(new Error("plain")), undefined);
  });

  it("stops at the limit of refusals alike in a row; numbers and ids do not tell them apart", () => {
    const streak = new RefusalStreak(3);
    const at = (n: number) => ({ status: 400, message: `got ${n} tokens (request req_${n}ab)` });
    assert.equal(streak.refused(at(1)), false);
    assert.equal(streak.refused(at(22)), false);
    assert.equal(streak.refused(at(333)), true);
  });

  it("an answer, another failure or another refusal breaks the streak", () => {
    const streak = new RefusalStreak(2);
    const odd = { status: 400, message: "odd" };
    assert.equal(streak.refused(odd), false);
    streak.reset();
    assert.equal(streak.refused(odd), false);
    assert.equal(streak.refused({ status: 422, message: "odd" }), false);
    assert.equal(streak.refused({ status: 400, message: "other" }), false);
    assert.equal(streak.refused({ status: 400, message: "other" }), true);
  });

  it("the stop says why, what is kept and what to do", () => {
    const streak = new RefusalStreak(1);
    const odd = { status: 400, message: "openai: 400 Unsupported parameter: 'seed'" };
    streak.refused(odd);
    const cached = streak.stopError(odd, true);
    assert.equal(cached.fatal, true);
    assert.match(
      cached.message,
      /^stopped: the provider refused 1 rows in a row with "openai: 400 Unsupported parameter: 'seed'"; the answers so far are cached/,
    );
    assert.match(streak.stopError(odd, false).message, /the cache is off, so a rerun starts over/);
    const count = streak.countStopError(odd);
    assert.equal(count.fatal, true);
    assert.match(
      count.message,
      /; the count is incomplete\. Fix what the message names .* and count again$/,
    );
  });
});
