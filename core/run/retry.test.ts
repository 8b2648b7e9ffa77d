import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoomProviderError } from "../errors.ts";
import { retryDelay, withRetries } from "./retry.ts";

const fast = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5, maxTotalWaitMs: 1_000 };

describe("retries", () => {
  it("retries retryable errors until success, and stops at once on others", async () => {
    let calls = 0;
    const value = await withRetries(async () => {
      if (++calls < 3) throw new LoomProviderError("busy", { status: 429, retryable: true, retryAfterMs: 1 });
      return "ok";
    }, { policy: fast });
    assert.deepEqual([value, calls], ["ok", 3]);
    calls = 0;
    await assert.rejects(withRetries(async () => {
      calls++;
      throw new LoomProviderError("bad request", { status: 400 });
    }, { policy: fast }), /bad request/);
    assert.equal(calls, 1);
  });

  it("gives up after maxAttempts with the last error", async () => {
    let calls = 0;
    const retries: number[] = [];
    await assert.rejects(withRetries(async () => {
      calls++;
      throw new LoomProviderError(`503 #${calls}`, { status: 503, retryable: true });
    }, { policy: fast, onRetry: (_, wait) => retries.push(wait) }), /503 #4/);
    assert.equal(calls, 4);
    assert.equal(retries.length, 3);
  });

  it("honours retry-after up to the cap, else backs off exponentially with jitter", () => {
    const policy = { maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 60_000, maxTotalWaitMs: 600_000 };
    assert.equal(retryDelay({ retryAfterMs: 2_000 }, 0, policy), 2_000);
    assert.equal(retryDelay({ retryAfterMs: 600_000 }, 0, policy), 60_000);
    assert.equal(retryDelay({}, 0, policy, () => 1), 500);
    assert.equal(retryDelay({}, 3, policy, () => 1), 4_000);
    assert.equal(retryDelay({}, 3, policy, () => 0), 3_000);
    assert.equal(retryDelay({}, 20, policy, () => 1), 60_000);
  });
});
