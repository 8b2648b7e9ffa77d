/** The google provider through the official @google/genai SDK against the loopback emulator. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { LoomProviderError } from "../../../core/base/errors.ts";
import { loadJob } from "../../../core/job/load.ts";
import { runJob } from "../../../core/commands/run.ts";
import type { RetryPolicy } from "../../../core/run/retry.ts";
import { countJobTokens } from "../../../core/commands/tokens.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { FAST_RETRY, useEmulator } from "../_shared/test-emulator.ts";
import { durationMs, googleFailure } from "./errors.ts";
import { googleFetch } from "./fetch.ts";
import { generateContentParams, jobNotes, paramProblems } from "./request.ts";

const t = useEmulator({ provider: "gemini" });

const MODEL = "gemini-2.5-flash";

/** A sync job over `rows`; `extra.params` is added to `temperature: 0`. */
async function job(
  rows: string[],
  emu = t.emu,
  extra = { params: "max_tokens: 50", cache: false, output: "" },
) {
  const dir = tempDir();
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${rows.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
  );
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text, system: Be brief. }\nprovider: google\n` +
      `provider_options: { base_url: "${emu.baseURL}" }\nmodel: ${MODEL}\nmode: sync\n` +
      `params: { temperature: 0, ${extra.params} }\noutput: { path: out.csv${extra.output} }\nsync: { workers: 2, cache: ${extra.cache} }\n`,
  );
  return { dir, loaded: await loadJob({ file: join(dir, "job.yaml"), cwd: dir }) };
}

describe("google provider (sync) against the emulator", () => {
  it("answers every row in place, with the key from GEMINI_API_KEY", async () => {
    const { dir, loaded } = await job(["first prompt", "second prompt"]);
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), GEMINI_API_KEY: t.emu.apiKey },
      cwd: dir,
    });
    assert.deepEqual([summary.ok, summary.errors], [2, 0]);
    const rows = parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<
      string,
      string
    >[];
    assert.deepEqual(rows.map((r) => r.llm_response), [
      `[${MODEL}] first prompt`,
      `[${MODEL}] second prompt`,
    ]);
    const body = t.emu.log.find(`/v1beta/models/${MODEL}:generateContent`)[0].body as Record<
      string,
      unknown
    >;
    assert.deepEqual(body.generationConfig, { temperature: 0, maxOutputTokens: 50 });
    assert.deepEqual(body.systemInstruction, { parts: [{ text: "Be brief." }], role: "user" });
  });

  it("retries 429 and 503 itself (the SDK does not), and stops the run on a wrong key", async () => {
    t.emu.faults.add({ match: { first: 1 }, action: { kind: "status", status: 429 } });
    t.emu.faults.add({ match: { first: 2 }, action: { kind: "status", status: 503 } });
    const { dir, loaded } = await job(["only row"]);
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), GOOGLE_API_KEY: t.emu.apiKey },
      cwd: dir,
      retry: FAST_RETRY,
    });
    assert.equal(summary.ok, 1);
    assert.deepEqual(t.emu.log.find(":generateContent").map((c) => c.status), [429, 503, 200]);
    t.emu.log.clear();
    await assert.rejects(
      () =>
        runJob(loaded, {
          env: { LOOM_HOME: join(dir, "home") },
          apiKey: "AIza-wrong-000000",
          cwd: dir,
          force: true,
        }),
      (e: unknown) =>
        e instanceof LoomProviderError && e.fatal && !e.message.includes("AIza-wrong-000000"),
    );
    assert.equal(t.emu.log.count(":generateContent"), 1);
  });

  it("maps Loom's parameters to Gemini's names", () => {
    assert.deepEqual(
      generateContentParams({
        model: "m",
        system: "s",
        messages: [{ role: "user", content: "u" }],
        params: { max_tokens: 9, top_p: 0.5, stop: "END", seed: 2 },
      }),
      {
        model: "m",
        contents: [{ role: "user", parts: [{ text: "u" }] }],
        config: {
          maxOutputTokens: 9,
          topP: 0.5,
          stopSequences: ["END"],
          seed: 2,
          systemInstruction: "s",
        },
      },
    );
  });
  it("takes Loom's, snake-case and Gemini's parameter names, and refuses names Gemini lacks", () => {
    const { config } = generateContentParams({
      model: "m",
      messages: [{ role: "user", content: "u" }],
      params: { top_k: 3, topP: 0.5, max_tokens: 9 },
    });
    assert.deepEqual(config, { topK: 3, topP: 0.5, maxOutputTokens: 9 });
    const problems = paramProblems({
      top_k: 3,
      frequency_penalty: 0.1,
      bogus_knob: 1,
      candidate_count: 2,
      stream: true,
    }, { model: "gemini-2.5-flash", structured: false });
    assert.deepEqual(problems.map((p) => p.param), ["candidateCount", "stream", "bogus_knob"]);
    assert.match(problems[2].message, /has no bogusKnob/);
    assert.deepEqual(
      paramProblems({ responseJsonSchema: {} }, { model: "m", structured: true }).map((p) =>
        p.param
      ),
      ["responseJsonSchema"],
    );
  });
});

/** Backoff that alone would wait a few milliseconds, but lets a provider's hint wait up to 5 s. */
const HINTED_RETRY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 1,
  maxDelayMs: 5_000,
  maxTotalWaitMs: 10_000,
};

/** Milliseconds between consecutive logged calls. */
const gaps = (entries: ReadonlyArray<{ receivedMs?: number }>) =>
  entries.slice(1).map((e, i) => e.receivedMs! - entries[i].receivedMs!);

describe("google provider: the retry waits what a 429's RetryInfo asks", () => {
  // The emulator's 429s carry `RetryInfo.retryDelay: "0.4s"`.
  const slow = useEmulator({ provider: "gemini", limits: { retryDelaySeconds: 0.4 } });

  it("waits retryDelay between sync attempts, not the shorter backoff", async () => {
    slow.emu.faults.add({
      match: { path: ":generateContent", first: 2 },
      action: { kind: "status", status: 429 },
    });
    const { dir, loaded } = await job(["only row"], slow.emu);
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), GOOGLE_API_KEY: slow.emu.apiKey },
      cwd: dir,
      retry: HINTED_RETRY,
    });
    assert.equal(summary.ok, 1);
    const calls = slow.emu.log.find(":generateContent");
    assert.deepEqual(calls.map((c) => c.status), [429, 429, 200]);
    for (const gap of gaps(calls)) {
      assert.ok(gap >= 380, `retried after ${gap} ms, asked to wait 400`);
    }
  });

  it("waits a retry-after header that asks for longer than the RetryInfo (the SDK's ApiError drops headers)", async () => {
    slow.emu.faults.add({
      match: { path: ":generateContent", first: 1 },
      action: { kind: "status", status: 429, retryAfter: 1 },
    });
    const { dir, loaded } = await job(["only row"], slow.emu);
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), GOOGLE_API_KEY: slow.emu.apiKey },
      cwd: dir,
      retry: HINTED_RETRY,
    });
    assert.equal(summary.ok, 1);
    const calls = slow.emu.log.find(":generateContent");
    assert.deepEqual(calls.map((c) => c.status), [429, 200]);
    assert.ok(gaps(calls)[0] >= 980, `retried after ${gaps(calls)[0]} ms, asked to wait 1 s`);
  });

  it("waits retryDelay between token-counting attempts", async () => {
    slow.emu.faults.add({
      match: { path: ":countTokens", first: 1 },
      action: { kind: "status", status: 429 },
    });
    const { dir, loaded } = await job(["only row"], slow.emu);
    const counted = await countJobTokens(loaded, {
      env: { LOOM_HOME: join(dir, "home"), GOOGLE_API_KEY: slow.emu.apiKey },
      cwd: dir,
      retry: HINTED_RETRY,
    });
    assert.deepEqual([counted.prompts, counted.errors], [1, 0]);
    const calls = slow.emu.log.find(":countTokens");
    assert.deepEqual(calls.map((c) => c.status), [429, 200]);
    assert.ok(gaps(calls)[0] >= 380, `retried after ${gaps(calls)[0]} ms, asked to wait 400`);
  });
});

describe("google job notes", () => {
  it("warns that a thinking model's thoughts count against max_tokens, unless thinking is configured", () => {
    const notes = (model: string, params: Record<string, unknown>) =>
      jobNotes(params, { model, structured: false });
    assert.match(
      notes("gemini-2.5-flash", { max_tokens: 20 })[0],
      /^gemini-2\.5-flash thinks before it answers.*max_tokens \(20\)/,
    );
    assert.equal(notes("gemini-3-pro-preview", { maxOutputTokens: 20 }).length, 1);
    assert.equal(notes("gemini-flash-latest", { max_tokens: 20 }).length, 1);
    assert.deepEqual(
      notes("gemini-2.5-flash", { max_tokens: 20, thinking_config: { thinking_budget: 0 } }),
      [],
    );
    assert.deepEqual(
      notes("gemini-2.5-flash", {}),
      [],
      "no cap: the model's own limit leaves room",
    );
    assert.deepEqual(notes("gemini-2.5-flash-lite", { max_tokens: 20 }), []);
    assert.deepEqual(notes("gemini-2.0-flash", { max_tokens: 20 }), []);
  });
});

describe("google errors", () => {
  it("fails in the SDK's fetch with Loom's error: headers kept, a proxy's page shown by its status line", async () => {
    const answering = (response: Response) => googleFetch(() => Promise.resolve(response));
    const ok = new Response("{}", { status: 200 });
    assert.equal(await answering(ok)("http://x"), ok);
    const limited = await answering(
      new Response('{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}', {
        status: 429,
        headers: { "retry-after": "3" },
      }),
    )("http://x")
      .catch((e: unknown) => e);
    assert.ok(limited instanceof LoomProviderError && limited.retryable);
    assert.deepEqual([limited.message, limited.retryAfterMs], [
      "google: 429 RESOURCE_EXHAUSTED: slow down",
      3_000,
    ]);
    const page = await answering(
      new Response("<html>upstream down</html>", { status: 502, statusText: "Bad Gateway" }),
    )("http://x").catch((e: unknown) => e);
    assert.ok(page instanceof LoomProviderError && page.retryable);
    assert.equal(page.message, "google: 502 Bad Gateway: <html>upstream down</html>");
  });

  it("reads RetryInfo's protobuf Duration, and a retry-after header, taking the longer", () => {
    assert.deepEqual(["37s", "0.3s", "1.000000001s", "-2s", "37", "1m", 5].map(durationMs), [
      37_000,
      300,
      1_000,
      0,
      undefined,
      undefined,
      undefined,
    ]);
    const body = (delay: string) =>
      JSON.stringify({
        error: {
          code: 429,
          status: "RESOURCE_EXHAUSTED",
          message: "quota",
          details: [{ "@type": "type.googleapis.com/google.rpc.Help" }, {
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            retryDelay: delay,
          }],
        },
      });
    assert.equal(googleFailure(429, body("20s")).retryAfterMs, 20_000);
    assert.equal(
      googleFailure(429, body("2.5s"), new Headers({ "retry-after": "7" })).retryAfterMs,
      7_000,
    );
    assert.equal(
      googleFailure(429, body("20s"), new Headers({ "retry-after": "7" })).retryAfterMs,
      20_000,
    );
    assert.equal(googleFailure(503, '{"error":{"code":503}}').retryAfterMs, undefined);
    assert.equal(googleFailure(429, body("soon")).retryable, true);
  });
});

describe("google provider: thinking models", () => {
  // gemini-2.5-flash thinks 30 tokens by default here, out of max_tokens.
  const thinking = useEmulator({ provider: "gemini", limits: { thinkingTokens: 30 } });
  const rows = (dir: string) =>
    parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<string, string>[];

  it("makes an answer emptied by thinking the row's error, saying to raise max_tokens, and caches nothing", async () => {
    const { dir, loaded } = await job(["think first"], thinking.emu, {
      params: "max_tokens: 20",
      cache: true,
      output: ", with_usage: true",
    });
    const env = { LOOM_HOME: join(dir, "home"), GOOGLE_API_KEY: thinking.emu.apiKey };
    const warnings: string[] = [];
    const onEvent = (e: { type: string; message?: string }) =>
      void (e.type === "note" && warnings.push(e.message ?? ""));
    const summary = await runJob(loaded, { env, cwd: dir, onEvent });
    assert.deepEqual([summary.ok, summary.errors], [0, 1]);
    assert.equal(
      warnings.filter((w) => /thinks before it answers.*max_tokens \(20\)/.test(w)).length,
      1,
      warnings.join("\n"),
    );
    const [row] = rows(dir);
    assert.equal(row.llm_response, "");
    assert.match(
      row.llm_error,
      /spent all of max_tokens on reasoning \(20 tokens\).*raise params\.max_tokens/,
    );
    assert.deepEqual([row.llm_output_tokens, row.llm_reasoning_tokens], ["20", "20"]);
    await runJob(loaded, { env, cwd: dir, force: true });
    assert.equal(thinking.emu.log.count(":generateContent"), 2, "the empty answer was not cached");
  });

  it("reports thinking as reasoning tokens within the billed output, and the answering model", async () => {
    const { dir, loaded } = await job(["think first"], thinking.emu, {
      params: "max_tokens: 100",
      cache: false,
      output: ", with_usage: true, with_meta: true",
    });
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), GOOGLE_API_KEY: thinking.emu.apiKey },
      cwd: dir,
    });
    assert.equal(summary.ok, 1);
    const [row] = rows(dir);
    assert.equal(row.llm_response, `[${MODEL}] think first`);
    const answerTokens = 3; // "[gemini-2.5-flash] think first", one token a word
    assert.deepEqual([row.llm_output_tokens, row.llm_reasoning_tokens, row.llm_model], [
      String(answerTokens + 30),
      "30",
      MODEL,
    ]);
  });

  it("answers within a small max_tokens when the job turns thinking off, as the note suggests", async () => {
    const params = "max_tokens: 20, thinking_config: { thinking_budget: 0 }";
    const { dir, loaded } = await job(["think first"], thinking.emu, {
      params,
      cache: false,
      output: ", with_usage: true",
    });
    const warnings: string[] = [];
    const onEvent = (e: { type: string; message?: string }) =>
      void (e.type === "note" && warnings.push(e.message ?? ""));
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), GOOGLE_API_KEY: thinking.emu.apiKey },
      cwd: dir,
      onEvent,
    });
    assert.equal(summary.ok, 1);
    assert.deepEqual(warnings.filter((w) => /thinks before it answers/.test(w)), []);
    const [row] = rows(dir);
    assert.deepEqual([row.llm_response, row.llm_reasoning_tokens], [`[${MODEL}] think first`, ""]);
    const body = thinking.emu.log.find(":generateContent")[0].body as {
      generationConfig: Record<string, unknown>;
    };
    assert.deepEqual(body.generationConfig.thinkingConfig, { thinking_budget: 0 });
  });
});
