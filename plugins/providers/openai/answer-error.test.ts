import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { answerError } from "./answer-error.ts";

const inChoice = (error: unknown, finish = "error") => ({
  choices: [{ finish_reason: finish, error: error as { code?: number } }],
});
const kind = (e: ReturnType<typeof answerError>) => e && [e.status, e.retryable, e.fatal];

describe("answerError (failures inside an HTTP 200 completion)", () => {
  it("finds nothing in a normal completion", () => {
    assert.equal(answerError({ choices: [{ finish_reason: "stop" }] }, "openrouter"), undefined);
    assert.equal(answerError({ choices: [] }, "openrouter"), undefined);
  });

  it("reads the code of a top-level error or a choice's error: 408, 429, 5xx retryable; 401, 402 fatal; others the row's", () => {
    assert.deepEqual(
      kind(answerError({ error: { code: 503, message: "no provider" } }, "openrouter")),
      [503, true, false],
    );
    assert.deepEqual(kind(answerError(inChoice({ code: 408 }), "openrouter")), [408, true, false]);
    assert.deepEqual(kind(answerError(inChoice({ code: 429 }), "openrouter")), [429, true, false]);
    assert.deepEqual(kind(answerError(inChoice({ code: 402 }), "openrouter")), [402, false, true]);
    assert.deepEqual(kind(answerError(inChoice({ code: 401 }), "openrouter")), [401, false, true]);
    assert.deepEqual(kind(answerError(inChoice({ code: 403, message: "flagged" }), "openrouter")), [
      403,
      false,
      false,
    ]);
  });

  it("takes finish_reason error without a usable code as an upstream failure (502, retryable), and says where it was", () => {
    const e = answerError(inChoice(undefined), "openrouter");
    assert.deepEqual(kind(e), [502, true, false]);
    assert.equal(
      e?.message,
      "openrouter: 502 the answer ended with an error (in the answer's choice, after generation started)",
    );
    assert.deepEqual(
      kind(answerError(inChoice({ code: "server_error", message: "x" }), "openrouter")),
      [502, true, false],
    );
  });
});
