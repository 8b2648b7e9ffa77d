import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { answer, countTokens, hexId } from "./answers.ts";
import { ManualClock } from "./clock.ts";
import { FaultEngine, parseFaultSpec } from "./faults.ts";
import { maskHeaders, RequestLog } from "./log.ts";
import { BatchProgress } from "./schedule.ts";

const subject = (path: string, prompts: string[] = []) => ({ method: "POST", path, prompts: () => prompts });

describe("fault rules", () => {
  it("applies every Nth and first-N rules by their own counters", () => {
    const engine = new FaultEngine([
      { name: "every3", match: { every: 3, path: "/chat" }, action: { kind: "status", status: 500 } },
      { name: "first2", match: { first: 2, path: "/files" }, action: { kind: "drop" } },
    ]);
    const chat = Array.from({ length: 7 }, () => engine.pick(subject("/v1/chat"))?.name);
    assert.deepEqual(chat, [undefined, undefined, "every3", undefined, undefined, "every3", undefined]);
    const files = Array.from({ length: 4 }, () => engine.pick(subject("/v1/files"))?.name);
    assert.deepEqual(files, ["first2", "first2", undefined, undefined]);
  });

  it("matches prompts, batches and methods", () => {
    const engine = new FaultEngine([
      { name: "marker", match: { promptContains: "[[slow]]" }, action: { kind: "slow", delayMs: 1 } },
      { name: "batch", match: { batch: "batch_abc", method: "get" }, action: { kind: "status", status: 503 } },
    ]);
    assert.equal(engine.pick(subject("/v1/chat", ["hello"])), undefined);
    assert.equal(engine.pick(subject("/v1/chat", ["a [[slow]] b"]))?.name, "marker");
    assert.equal(engine.pick({ method: "GET", path: "/v1/batches/batch_abc", prompts: () => [] })?.name, "batch");
    assert.equal(engine.pick({ method: "POST", path: "/v1/batches/batch_abc/cancel", prompts: () => [] }), undefined);
  });

  it("parses the launcher's compact syntax", () => {
    assert.deepEqual(parseFaultSpec("status=429,retry-after=2,every=5"), {
      name: "status=429,retry-after=2,every=5",
      match: { every: 5 },
      action: { kind: "status", status: 429, retryAfter: 2 },
    });
    assert.deepEqual(parseFaultSpec("drop,first=3,path=/v1/chat").match, { first: 3, path: "/v1/chat" });
    assert.deepEqual(parseFaultSpec("slow=250,prompt=SLOW").action, { kind: "slow", delayMs: 250 });
    assert.throws(() => parseFaultSpec("explode"), /status=N/);
    assert.throws(() => parseFaultSpec("status=abc"), /needs a number/);
  });
});

describe("batch schedule", () => {
  it("moves by polls, by the clock, at once, or by hand", () => {
    const clock = new ManualClock();
    const polls = new BatchProgress({ advance: "polls", polls: 2 }, clock);
    polls.track("b");
    assert.equal(polls.steps("b"), 0);
    polls.poll("b");
    polls.poll("b");
    polls.poll("b");
    assert.equal(polls.steps("b"), 1);
    const timed = new BatchProgress({ advance: "clock", stepMs: 1000 }, clock);
    timed.track("t");
    clock.advance(2500);
    assert.equal(timed.steps("t"), 2);
    const instant = new BatchProgress({ advance: "instant" }, clock);
    instant.track("i");
    assert.equal(instant.steps("i"), Number.POSITIVE_INFINITY);
    const manual = new BatchProgress({ advance: "manual" }, clock);
    manual.track("m");
    manual.step("m", 2);
    manual.stepAll();
    assert.equal(manual.steps("m"), 3);
    assert.equal(manual.steps("unknown"), 0);
    assert.throws(() => clock.advance(-1), RangeError);
  });
});

describe("answers and the log", () => {
  it("answers deterministically, cuts at max tokens, and counts words as tokens", () => {
    const a = answer("m-1", "say  hello to everyone", ["sys prompt", "say  hello to everyone"]);
    assert.deepEqual(a, { text: "[m-1] say  hello to everyone", finish: "stop", inputTokens: 6, outputTokens: 5 });
    const cut = answer("m-1", "one two three four", ["one two three four"], 3);
    assert.deepEqual([cut.text, cut.finish, cut.outputTokens], ["[m-1] one two", "length", 3]);
    assert.equal(countTokens("  "), 0);
    assert.equal(hexId(1), hexId(1));
    assert.notEqual(hexId(1), hexId(2));
    assert.match(hexId(7, 10), /^[0-9a-f]{10}$/);
  });

  it("masks credentials and finds requests", () => {
    assert.deepEqual(maskHeaders({ authorization: "Bearer sk-1", "x-api-key": "k", "x-goog-api-key": "g", accept: "a" }), {
      authorization: "***",
      "x-api-key": "***",
      "x-goog-api-key": "***",
      accept: "a",
    });
    const log = new RequestLog();
    log.add({ method: "POST", path: "/v1/batches", query: {}, headers: {}, bytes: 0, status: 200 });
    log.add({ method: "GET", path: "/v1/batches/b1", query: {}, headers: {}, bytes: 0, status: 200 });
    assert.equal(log.count("POST /v1/batches"), 1);
    assert.equal(log.count("/v1/batches"), 2);
    assert.equal(log.count(/^GET /), 1);
    assert.equal(log.entries[1].seq, 2);
  });
});
