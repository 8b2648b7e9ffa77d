/**
 * The numbers behind `loom view`'s charts: bins and percentiles on known data, the kinds of
 * errors told from the messages Loom and the providers write, and the stats of an indexed file
 * (errors by kind, cost, the kind filter of the rows).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { JobRecord } from "../../core/batch/store.ts";
import { Registry } from "../../core/plugins/registry.ts";
import {
  client,
  VIEW_SECRETS,
  viewerOn,
  type ViewFixture,
  viewFixture,
} from "../../core/test-support/view.ts";
import type { Viewer } from "../commands/view.ts";
import { tempDir } from "../../core/test-support/temp.ts";
import { ERROR_KINDS, errorKindOf } from "./error-kinds.ts";
import { RowIndexes } from "./row-index.ts";
import { distribution, outputStats, shardStats } from "./stats.ts";

const dir = tempDir("loom-view-stats-");
const indexes = new RowIndexes(tempDir("loom-view-spill-"));
after(() => indexes.close());

describe("distribution", () => {
  it("1..100 and a missing value: 21 bins 5 wide from 0, exact percentiles, the missing left out", () => {
    const values = [-1, ...Array.from({ length: 100 }, (_, i) => 100 - i)];
    const d = distribution(values);
    assert.deepEqual([d.count, d.sum, d.min, d.max], [100, 5050, 1, 100]);
    assert.deepEqual([d.p50, d.p90, d.p99], [50, 90, 99]);
    assert.equal(d.bins.length, 21);
    assert.deepEqual(d.bins[0], { from: 0, to: 5, count: 4 });
    assert.deepEqual(d.bins[1], { from: 5, to: 10, count: 5 });
    assert.deepEqual(d.bins[19], { from: 95, to: 100, count: 5 });
    assert.deepEqual(d.bins[20], { from: 100, to: 105, count: 1 });
    assert.equal(d.bins.reduce((n, b) => n + b.count, 0), 100);
  });

  it("a skewed column: round bins over min..max, the far value alone in the last", () => {
    const d = distribution([10, 20, 1000, 12]);
    assert.equal(d.bins.length, 21);
    assert.equal(d.bins[1].from - d.bins[0].from, 50);
    assert.deepEqual(d.bins[0], { from: 0, to: 50, count: 3 });
    assert.deepEqual(d.bins[20], { from: 1000, to: 1050, count: 1 });
    assert.deepEqual([d.p50, d.p90, d.p99], [12, 1000, 1000]);
  });

  it("a span too wide to count value by value is sorted instead, to the same effect", () => {
    const d = distribution([5_000_000, 0, 10]);
    assert.deepEqual([d.min, d.max, d.p50, d.p90, d.p99], [0, 5_000_000, 10, 5_000_000, 5_000_000]);
    assert.equal(d.bins.length, 11);
    assert.deepEqual(d.bins[0], { from: 0, to: 500_000, count: 2 });
    assert.deepEqual(d.bins[10], { from: 5_000_000, to: 5_500_000, count: 1 });
  });

  it("one value many times is one bin; no values, no bins; only the first `length` rows count", () => {
    assert.deepEqual(distribution([7, 7, 7]).bins, [{ from: 7, to: 8, count: 3 }]);
    const none = distribution([-1, -1]);
    assert.deepEqual([none.count, none.p50, none.bins], [0, null, []]);
    assert.equal(distribution([1, 2, 3, 4], 2).count, 2);
  });
});

describe("the kind of an error", () => {
  it("is told from the words Loom writes and the status or code a provider's message starts with", () => {
    const cases: [string, string][] = [
      ['row has no "text" field', "no prompt"],
      ["empty prompt: nothing was sent", "no prompt"],
      ["the batch expired before this row ran; `loom retry` submits it again", "expired"],
      ["batch_expired: This request could not be executed", "expired"],
      ["the batch was cancelled before this row ran; `loom retry` submits it again", "cancelled"],
      ["the provider returned no result for this row", "no result"],
      ["the model refused to answer: I can't help with that", "refused"],
      ["the model gave no answer: blocked (SAFETY)", "content filter"],
      ["openai: 400 content_filter: the response was filtered", "content filter"],
      ["the answer does not match the schema: /age must be integer", "schema"],
      [
        "the answer is not valid JSON (Unexpected end); the raw answer is in llm_response",
        "schema",
      ],
      ["the answer was cut off at max_tokens before it was complete", "max_tokens"],
      ["openai: 429 Rate limit reached for gpt-4o", "rate limit"],
      ["anthropic: 529 Overloaded", "rate limit"],
      ["rate_limit_error: Number of requests has exceeded your rate limit", "rate limit"],
      ["429 RESOURCE_EXHAUSTED: quota", "rate limit"],
      ["openai: no answer from https://x within 600000 ms (the call timed out)", "timeout"],
      ["google: 504 DEADLINE_EXCEEDED", "timeout"],
      ["openai: 500 The server had an error", "server error"],
      ["500: no error message", "server error"],
      ["api_error: Internal server error", "server error"],
      ["openai: Connection error. (to https://api.openai.com/v1)", "connection"],
      ["openai: 400 Invalid value for 'temperature'", "bad request"],
      ["invalid_request_error: prompt is too long", "bad request"],
      ['echo: prompt contains "boom" (fail_on)', "other"],
      ["the answer has 500 words", "other"],
    ];
    for (const [message, kind] of cases) {
      assert.equal(ERROR_KINDS[errorKindOf(message)], kind, message);
    }
  });
});

describe("the stats of an indexed output", () => {
  it("tokens, errors by kind and cost of a file with failed and corrupt rows; the kind filter", async () => {
    const path = join(dir, "out.csv");
    writeFileSync(
      path,
      "id,llm_response,llm_error,llm_input_tokens,llm_output_tokens,llm_cost\n" +
        "1,a,,10,100,0.25\n" +
        "2,,openai: 429 Rate limit reached,,,\n" +
        "3,b,,20,200,0.5\n" +
        "4,,the answer does not match the schema: /x,30,,0.25\n" +
        "5,,openai: 429 Rate limit reached,,,\n" +
        "6,c,,40,,\n" +
        '7,"d"x,,,,\n' +
        "8,,the batch expired before this row ran,,,\n",
    );
    const registry = new Registry();
    const { format } = await registry.formatForPath(path, { env: {}, home: dir });
    const index = await indexes.of(path, format);
    await index.finished;
    const stats = outputStats(index.numbers());
    assert.equal(stats.indexed, 8);
    assert.equal(stats.indexing, false);
    assert.deepEqual(stats.errors, [
      { kind: "rate limit", count: 2 },
      { kind: "expired", count: 1 },
      { kind: "schema", count: 1 },
    ]);
    assert.deepEqual(stats.cost, { total: 1, rows: 3 });
    const input = stats.inputTokens;
    assert.deepEqual([input.count, input.sum, input.min, input.max], [4, 100, 10, 40]);
    assert.deepEqual([input.p50, input.p90], [20, 40]);
    assert.deepEqual(stats.outputTokens.bins.map((b) => b.count).filter((n) => n), [1, 1]);

    const rows = async (kind: string) =>
      (await index.page({ offset: 0, limit: 10, kind })).rows.map((r) => r.n);
    assert.deepEqual(await rows("rate limit"), [1, 4]);
    assert.deepEqual(await rows("expired"), [7]);
    assert.deepEqual(await rows("timeout"), []);
    await assert.rejects(rows("slow"), /kind is one of no prompt, expired/);
  });

  it("a job's batches as its record keeps them; a batch not fetched, or by an older Loom, has nulls", () => {
    const fetched = { ok: 2, errors: 1, at: "2026-01-01T00:00:00Z" };
    const job = {
      shards: [
        {
          index: 0,
          requests: 3,
          fetched: { ...fetched, inputTokens: 30, outputTokens: 9, cost: 1 },
        },
        { index: 1, requests: 3, fetched },
        { index: 2, requests: 2 },
      ],
    } as unknown as JobRecord;
    assert.deepEqual(shardStats(job), [
      { n: 1, requests: 3, ok: 2, errors: 1, inputTokens: 30, outputTokens: 9, cost: 1 },
      { n: 2, requests: 3, ok: 2, errors: 1, inputTokens: null, outputTokens: null, cost: null },
      {
        n: 3,
        requests: 2,
        ok: null,
        errors: null,
        inputTokens: null,
        outputTokens: null,
        cost: null,
      },
    ]);
  });
});

describe("…/stats over HTTP", () => {
  let fixture: ViewFixture;
  let viewer: Viewer;
  let c: ReturnType<typeof client>;
  before(async () => {
    fixture = await viewFixture();
    viewer = await viewerOn(fixture, ["out.csv"]);
    c = client(viewer);
  });
  after(() => viewer?.stop());

  it("a file's: its tokens, its two failed rows by kind, no cost (echo reports none)", async () => {
    const { status, body } = await c.json("/api/files/0/stats");
    assert.equal(status, 200);
    assert.deepEqual([body.title, body.indexed, body.indexing], ["out.csv", 6, false]);
    assert.deepEqual(body.errors, [{ kind: "other", count: 2 }]);
    assert.deepEqual(body.cost, { total: null, rows: 0 });
    assert.equal(body.inputTokens.count, 4, "the failed rows have no usage");
    assert.equal(body.outputTokens.count, 4);
    assert.ok(body.inputTokens.sum > 0 && body.inputTokens.bins.length > 0);
    assert.equal(body.shards, undefined);
  });

  it("a job's: the same, and each batch's usage as fetch recorded it", async () => {
    const file = (await c.json("/api/files/0/stats")).body;
    const { status, body } = await c.json(`/api/jobs/${fixture.merged}/stats`);
    assert.equal(status, 200);
    assert.deepEqual(body.errors, file.errors);
    assert.deepEqual(body.shards, [{
      n: 1,
      requests: 6,
      ok: 4,
      errors: 2,
      inputTokens: file.inputTokens.sum,
      outputTokens: file.outputTokens.sum,
      cost: null,
    }]);
    const pending = await c.json(`/api/jobs/${fixture.pending}/stats`);
    assert.equal(pending.status, 409);
    assert.match(pending.body.error, /has no output yet/);
    assert.equal((await c.json("/api/files/3/stats")).status, 404);
  });

  it("the rows of one kind of error: ?kind=; an unknown kind is a 400 naming the kinds", async () => {
    const other = await c.json("/api/files/0/rows?kind=other");
    assert.deepEqual(other.body.rows.map((r: { n: number }) => r.n), [1, 4]);
    const bad = await c.json("/api/files/0/rows?kind=slow");
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /kind is one of no prompt, expired, cancelled/);
  });

  it("never shows an API key", async () => {
    for (const path of ["/api/files/0/stats", `/api/jobs/${fixture.merged}/stats`]) {
      const text = await (await c.get(path)).text();
      for (const secret of Object.values(VIEW_SECRETS)) {
        assert.ok(!text.includes(secret.slice(3, 15)), `${path} shows a key`);
      }
    }
  });
});
