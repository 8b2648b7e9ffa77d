import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoomProviderError } from "../base/errors.ts";
import { DEFAULT_RETRY, gaveUp, retryDelay, retryPolicy, withRetries } from "./retry.ts";

const fast = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5, maxTotalWaitMs: 1_000 };

describe("retries", () => {
  it("retries retryable errors until success, and stops at once on others", async () => {
    let calls = 0;
    const value = await withRetries(async () => {
      if (++calls < 3) {
        throw new LoomProviderError("busy", { status: 429, retryable: true, retryAfterMs: 1 });
      }
      return "ok";
    }, { policy: fast });
    assert.deepEqual([value, calls], ["ok", 3]);
    calls = 0;
    await assert.rejects(
      withRetries(async () => {
        calls++;
        throw new LoomProviderError("bad request", { status: 400 });
      }, { policy: fast }),
      /bad request/,
    );
    assert.equal(calls, 1);
  });

  it("gives up after maxAttempts with the last error", async () => {
    let calls = 0;
    const retries: number[] = [];
    await assert.rejects(
      withRetries(async () => {
        calls++;
        throw new LoomProviderError(`503 #${calls}`, { status: 503, retryable: true });
      }, { policy: fast, onRetry: (_, wait) => retries.push(wait) }),
      /503 #4/,
    );
    assert.equal(calls, 4);
    assert.equal(retries.length, 3);
  });

  it("counts a first attempt the caller made itself (firstFailure) as one of the attempts", async () => {
    let calls = 0;
    const failing = () => {
      calls++;
      return Promise.reject(
        new LoomProviderError(`503 #${calls + 1}`, { status: 503, retryable: true }),
      );
    };
    const first = new LoomProviderError("503 #1", { status: 503, retryable: true });
    await assert.rejects(
      withRetries(failing, { policy: fast, firstFailure: { error: first } }),
      /503 #4/,
    );
    assert.equal(calls, 3, "three more attempts: four in all");
    calls = 0;
    const refused = new LoomProviderError("bad request", { status: 400 });
    await assert.rejects(
      withRetries(failing, { policy: fast, firstFailure: { error: refused } }),
      /bad request/,
    );
    assert.equal(calls, 0, "a first failure that is not retryable is thrown as it is");
  });

  it("waits at least as long as retry-after says, else backs off exponentially with jitter", () => {
    const policy = {
      maxAttempts: 6,
      baseDelayMs: 500,
      maxDelayMs: 60_000,
      maxTotalWaitMs: 600_000,
    };
    assert.equal(retryDelay({ retryAfterMs: 2_000 }, 0, policy, () => 1), 2_000);
    assert.equal(retryDelay({ retryAfterMs: 600_000 }, 0, policy), 60_000);
    // A hint shorter than the backoff (retry-after: 0 in a storm) does not cut the backoff short.
    assert.equal(retryDelay({ retryAfterMs: 0 }, 3, policy, () => 1), 4_000);
    assert.equal(retryDelay({}, 0, policy, () => 1), 500);
    assert.equal(retryDelay({}, 3, policy, () => 1), 4_000);
    assert.equal(retryDelay({}, 3, policy, () => 0), 3_000);
    assert.equal(retryDelay({}, 20, policy, () => 1), 60_000);
  });

  it("rate limits (429, 529) spend no attempt, only waiting: a storm within the budget ends in success", async () => {
    for (const status of [429, 529]) {
      let calls = 0;
      const value = await withRetries(async () => {
        if (++calls <= 10) {
          throw new LoomProviderError("slow down", { status, retryable: true, retryAfterMs: 0 });
        }
        return "ok";
      }, { policy: fast });
      assert.deepEqual([value, calls], ["ok", 11], `status ${status}`);
    }
  });

  it("a rate limit that outlasts the waiting budget gives up with the last error", async () => {
    let calls = 0;
    const waits: number[] = [];
    await assert.rejects(
      withRetries(async () => {
        calls++;
        throw new LoomProviderError(`429 #${calls}`, { status: 429, retryable: true });
      }, { policy: { ...fast, maxTotalWaitMs: 30 }, onRetry: (_, wait) => waits.push(wait) }),
      /429 #\d+/,
    );
    assert.ok(calls > fast.maxAttempts, `${calls} calls`);
    assert.ok(waits.reduce((a, b) => a + b, 0) <= 30);
  });

  it("other failures mixed into a rate-limit storm still run out of attempts", async () => {
    let calls = 0;
    await assert.rejects(
      withRetries(async () => {
        calls++;
        throw new LoomProviderError(`#${calls}`, {
          status: calls % 2 ? 503 : 429,
          retryable: true,
        });
      }, { policy: fast }),
      /#7/,
    );
    assert.equal(calls, 7); // four 503s, three 429s between them
  });

  it("a transient failure that outlasted the retries says so, and what to do next", () => {
    const busy = new LoomProviderError("openai: 503 busy", { status: 503, retryable: true });
    const told = gaveUp(busy, "job j1 is intact: run the same command again later");
    assert.ok(told instanceof LoomProviderError);
    assert.equal(
      told.message,
      "openai: 503 busy (gave up after retrying; job j1 is intact: run the same command again later)",
    );
    assert.equal(told.status, 503);
    const refused = new LoomProviderError("openai: 401 no", { status: 401, fatal: true });
    assert.equal(gaveUp(refused, "x"), refused);
  });

  it("takes the total waiting per call from LOOM_RETRY_WAIT_SECONDS, else the defaults", () => {
    assert.deepEqual(retryPolicy({ LOOM_RETRY_WAIT_SECONDS: "1.5" }), {
      ...DEFAULT_RETRY,
      maxTotalWaitMs: 1_500,
    });
    for (const value of [undefined, "", "soon", "-1"]) {
      assert.equal(retryPolicy({ LOOM_RETRY_WAIT_SECONDS: value }), DEFAULT_RETRY, String(value));
    }
  });
});
