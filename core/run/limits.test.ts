import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdaptiveGate, estimateTokens, RatePacer } from "./limits.ts";

describe("rate pacing", () => {
  it("spaces starts so no minute holds more than rpm requests", () => {
    let now = 0;
    const pacer = new RatePacer({ rpm: 120 }, () => now);
    const starts: number[] = [];
    for (let i = 0; i < 500; i++) {
      const wait = pacer.reserve(1);
      starts.push(now + wait);
      now += Math.random() * 10; // callers arrive faster than the limit allows
    }
    for (let i = 0; i + 120 < starts.length; i++) {
      assert.ok(
        starts[i + 120] - starts[i] >= 60_000 - 1e-6,
        `more than 120 starts within a minute at ${i}`,
      );
    }
    assert.ok(Math.abs(starts[1] - starts[0] - 502.5) < 1e-6);
  });

  it("paces by tokens too, whichever limit is tighter", () => {
    let now = 0;
    const pacer = new RatePacer({ rpm: 10_000, tpm: 6_000 }, () => now);
    assert.equal(pacer.reserve(100), 0);
    assert.ok(Math.abs(pacer.reserve(100) - 1_005) < 1e-6); // 100 tokens at 6,000/min = 1 s, plus the margin
    now = 5_000;
    assert.equal(pacer.reserve(100), 0);
    assert.ok(!new RatePacer({}).active);
    assert.equal(estimateTokens(["abcdefgh", "ijkl"], 10), 13);
  });
});

describe("adaptive concurrency", () => {
  it("halves on 429 and grows back one step per `limit` successes", async () => {
    const gate = new AdaptiveGate(8);
    gate.backOff();
    assert.equal(gate.limit, 4);
    gate.backOff();
    gate.backOff();
    gate.backOff();
    assert.equal(gate.limit, 1);
    gate.succeeded();
    assert.equal(gate.limit, 2);
    gate.succeeded();
    gate.succeeded();
    assert.equal(gate.limit, 3);
    await gate.acquire();
    await gate.acquire();
    await gate.acquire();
    let fourth = false;
    const pending = gate.acquire().then(() => (fourth = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(fourth, false, "the cap holds");
    gate.release();
    await pending;
    assert.equal(fourth, true);
  });
});
