import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { answer, countTokens, cutToTokens, hexId, limitAnswer, measureTokens } from "./answers.ts";
import { ManualClock } from "./clock.ts";
import { FaultEngine, parseFaultSpec } from "./faults.ts";
import { maskHeaders, RequestLog } from "./log.ts";
import { BatchProgress } from "./schedule.ts";
import { sampleValue } from "./schema-sample.ts";

const subject = (path: string, prompts: string[] = []) => ({
  method: "POST",
  path,
  prompts: () => prompts,
});

describe("fault rules", () => {
  it("applies every Nth and first-N rules by their own counters", () => {
    const engine = new FaultEngine([
      {
        name: "every3",
        match: { every: 3, path: "/chat" },
        action: { kind: "status", status: 500 },
      },
      { name: "first2", match: { first: 2, path: "/files" }, action: { kind: "drop" } },
    ]);
    const chat = Array.from({ length: 7 }, () => engine.pick(subject("/v1/chat"))?.name);
    assert.deepEqual(chat, [
      undefined,
      undefined,
      "every3",
      undefined,
      undefined,
      "every3",
      undefined,
    ]);
    const files = Array.from({ length: 4 }, () => engine.pick(subject("/v1/files"))?.name);
    assert.deepEqual(files, ["first2", "first2", undefined, undefined]);
  });

  it("matches prompts, batches and methods", () => {
    const engine = new FaultEngine([
      {
        name: "marker",
        match: { promptContains: "[[slow]]" },
        action: { kind: "slow", delayMs: 1 },
      },
      {
        name: "batch",
        match: { batch: "batch_abc", method: "get" },
        action: { kind: "status", status: 503 },
      },
    ]);
    assert.equal(engine.pick(subject("/v1/chat", ["hello"])), undefined);
    assert.equal(engine.pick(subject("/v1/chat", ["a [[slow]] b"]))?.name, "marker");
    assert.equal(
      engine.pick({ method: "GET", path: "/v1/batches/batch_abc", prompts: () => [] })?.name,
      "batch",
    );
    assert.equal(
      engine.pick({ method: "POST", path: "/v1/batches/batch_abc/cancel", prompts: () => [] }),
      undefined,
    );
  });

  it("looks only at the rules asked for (reply rules for batch lines), and matches a line by its batch", () => {
    const engine = new FaultEngine([
      { name: "down", match: { path: "/v1/chat" }, action: { kind: "status", status: 503 } },
      {
        name: "garble",
        match: { batch: "batch_7", first: 1 },
        action: { kind: "reply", text: "x" },
      },
    ]);
    const replies = (rule: { action: { kind: string } }) => rule.action.kind === "reply";
    const line = { ...subject("/v1/chat/completions"), batch: "batch_7" };
    assert.equal(engine.pick(line, replies)?.name, "garble");
    assert.equal(engine.pick(line, replies), undefined, "first: 1 is spent");
    assert.equal(engine.pick({ ...line, batch: "batch_8" }, replies), undefined);
    assert.equal(engine.pick(subject("/v1/chat/completions"), (r) => !replies(r))?.name, "down");
  });

  it("parses the launcher's compact syntax", () => {
    assert.deepEqual(parseFaultSpec('reply={"a":1%2C"b":,prompt=BAD'), {
      name: 'reply={"a":1%2C"b":,prompt=BAD',
      match: { promptContains: "BAD" },
      action: { kind: "reply", text: '{"a":1,"b":' },
    });
    assert.throws(() => parseFaultSpec("reply=%E0%A4%A"), /% escapes/);
    assert.deepEqual(parseFaultSpec("status=429,retry-after=2,every=5"), {
      name: "status=429,retry-after=2,every=5",
      match: { every: 5 },
      action: { kind: "status", status: 429, retryAfter: 2 },
    });
    assert.deepEqual(parseFaultSpec("drop,first=3,path=/v1/chat").match, {
      first: 3,
      path: "/v1/chat",
    });
    assert.deepEqual(parseFaultSpec("slow=250,prompt=SLOW").action, { kind: "slow", delayMs: 250 });
    assert.deepEqual(
      parseFaultSpec("lost=late,delay=5000,listed-after=2,method=POST,path=/v1/batches,first=1"),
      {
        name: "lost=late,delay=5000,listed-after=2,method=POST,path=/v1/batches,first=1",
        match: { method: "POST", path: "/v1/batches", first: 1 },
        action: { kind: "lost", answer: "late", delayMs: 5000, listedAfter: 2 },
      },
    );
    assert.deepEqual(parseFaultSpec("lost").action, { kind: "lost", answer: "reset" });
    assert.throws(() => parseFaultSpec("lost=maybe"), /late, reset or never/);
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
    assert.deepEqual(a, {
      text: "[m-1] say  hello to everyone",
      finish: "stop",
      inputTokens: 6,
      outputTokens: 5,
    });
    const cut = answer("m-1", "one two three four", ["one two three four"], 3);
    assert.deepEqual([cut.text, cut.finish, cut.outputTokens], ["[m-1] one two", "length", 3]);
    assert.equal(countTokens("  "), 0);
    assert.equal(hexId(1), hexId(1));
    assert.notEqual(hexId(1), hexId(2));
    assert.match(hexId(7, 10), /^[0-9a-f]{10}$/);
  });

  it("measures JSON answers at 4 characters a token and cuts them mid-text", () => {
    const json = JSON.stringify({ summary: "[m] one two three", n: 4 });
    assert.equal(measureTokens(json, "json"), Math.ceil(json.length / 4));
    assert.equal(measureTokens("one two", "words"), 2);
    assert.deepEqual(limitAnswer(json, "json", 3), { text: '{"summary":"', finish: "length" });
    assert.deepEqual(limitAnswer(json, "json", 100), { text: json, finish: "stop" });
    assert.deepEqual(limitAnswer("a b c", "words", 2), { text: "a b", finish: "length" });
    assert.equal(cutToTokens('"😀😀"', 1, "json"), '"😀', "never half a surrogate pair");
    assert.equal(cutToTokens("{}", 0, "json"), "");
  });

  it("samples a value of a JSON Schema or of Gemini's schema (either case of type names)", () => {
    const text = "[m] hello there";
    const schema = {
      $defs: { tag: { type: "string", enum: ["red", "blue"] } },
      type: "object",
      properties: {
        name: { type: "string", maxLength: 5 },
        code: { type: "string", minLength: 20 },
        at: { type: "string", format: "date-time" },
        id: { type: "string", format: "uuid" },
        n: { type: "integer", minimum: 10, maximum: 20 },
        small: { type: "number", exclusiveMaximum: 2 },
        maybe: { anyOf: [{ type: "null" }, { type: "boolean" }] },
        tags: { type: "array", items: { $ref: "#/$defs/tag" }, minItems: 2 },
        none: { type: "array", items: { type: "string" }, maxItems: 0 },
        fixed: { const: 7 },
        both: {
          allOf: [{ type: "object", properties: { a: { type: "integer" } } }, {
            properties: { b: { type: "boolean" } },
          }],
        },
      },
    };
    assert.deepEqual(sampleValue(schema, text), {
      name: "[m] h",
      code: "[m] hello there.....",
      at: "2026-01-01T00:00:00Z",
      id: "00000000-0000-4000-8000-000000000000",
      n: 10,
      small: 1,
      maybe: true,
      tags: ["red", "red"],
      none: [],
      fixed: 7,
      both: { a: 3, b: true },
    });
    const gemini = {
      type: "OBJECT",
      properties: {
        count: { type: "INTEGER" },
        words: { type: "ARRAY", items: { type: "STRING" }, minItems: "2" },
        ok: { type: "BOOLEAN", nullable: true },
      },
      propertyOrdering: ["words", "ok", "count"],
    };
    const value = sampleValue(gemini, text);
    assert.deepEqual(value, { words: [text, text], ok: true, count: 3 });
    assert.deepEqual(Object.keys(value as object), ["words", "ok", "count"]);
    const lower = {
      type: "object",
      properties: { count: { type: "integer" }, label: { type: "STRING" } },
    };
    assert.deepEqual(sampleValue(lower, text), { count: 3, label: text });
    assert.equal(sampleValue({ type: ["integer", "null"] }, text), 3);
    assert.equal(sampleValue({}, text), text);
  });

  it("masks credentials and finds requests", () => {
    assert.deepEqual(
      maskHeaders({
        authorization: "Bearer sk-1",
        "x-api-key": "k",
        "x-goog-api-key": "g",
        accept: "a",
      }),
      {
        authorization: "***",
        "x-api-key": "***",
        "x-goog-api-key": "***",
        accept: "a",
      },
    );
    const log = new RequestLog();
    log.add({ method: "POST", path: "/v1/batches", query: {}, headers: {}, bytes: 0, status: 200 });
    log.add({
      method: "GET",
      path: "/v1/batches/b1",
      query: {},
      headers: {},
      bytes: 0,
      status: 200,
    });
    assert.equal(log.count("POST /v1/batches"), 1);
    assert.equal(log.count("/v1/batches"), 2);
    assert.equal(log.count(/^GET /), 1);
    assert.equal(log.entries[1].seq, 2);
  });
});
