/** The anthropic provider through the official SDK against the loopback emulator, in sync mode. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { LoomJobError, LoomProviderError } from "../../../core/base/errors.ts";
import { loadJob } from "../../../core/job/load.ts";
import { runJob } from "../../../core/commands/run.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { FAST_RETRY, useEmulator } from "../_shared/test-emulator.ts";
import { jobNotes } from "./notes.ts";
import { messagesBody, paramProblems } from "./request.ts";

const t = useEmulator({ provider: "anthropic" });

const MODEL = "claude-sonnet-5-5";

async function job(
  rows: string[],
  params = "{ max_tokens: 50 }",
  schema?: Record<string, unknown>,
  model = MODEL,
  cache = false,
) {
  const dir = tempDir();
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${rows.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
  );
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text, system: Be brief. }\nprovider: anthropic\n` +
      `provider_options: { base_url: "${t.emu.baseURL}" }\nmodel: ${model}\nmode: sync\n` +
      `params: ${params}\noutput: { path: out.csv, with_usage: true }\nsync: { workers: 2, cache: ${cache} }\n` +
      (schema ? `schema: ${JSON.stringify(schema)}\n` : ""),
  );
  return { dir, loaded: await loadJob({ file: join(dir, "job.yaml"), cwd: dir }) };
}

describe("anthropic provider (sync) against the emulator", () => {
  it("answers every row in place through the SDK", async () => {
    const { dir, loaded } = await job(["first prompt", "second prompt"]);
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), ANTHROPIC_API_KEY: t.emu.apiKey },
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
    const bodies = t.emu.log.find("POST /v1/messages").map((c) =>
      c.body as Record<string, unknown>
    );
    assert.ok(bodies.every((b) => b.system === "Be brief." && b.max_tokens === 50));
  });

  it("refuses temperature before any call, at its place in the job file", async () => {
    const { dir, loaded } = await job(["a"], "{ temperature: 0, max_tokens: 50 }");
    await assert.rejects(
      () =>
        runJob(loaded, {
          env: { LOOM_HOME: join(dir, "home"), ANTHROPIC_API_KEY: t.emu.apiKey },
          cwd: dir,
        }),
      (e: unknown) => {
        assert.ok(e instanceof LoomJobError);
        assert.match(
          e.message,
          /job\.yaml:7:\d+: params\.temperature: the Anthropic API version in use .* does not accept temperature/,
        );
        return true;
      },
    );
    assert.equal(t.emu.log.count("POST /v1/messages"), 0);
  });

  it("retries 529 overloaded and 429 itself, and stops the run on a wrong key", async () => {
    t.emu.faults.add({ match: { first: 1 }, action: { kind: "status", status: 529 } });
    t.emu.faults.add({
      match: { first: 2 },
      action: { kind: "status", status: 429, retryAfterMs: 1 },
    });
    const { dir, loaded } = await job(["only row"]);
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), ANTHROPIC_API_KEY: t.emu.apiKey },
      cwd: dir,
      retry: FAST_RETRY,
    });
    assert.equal(summary.ok, 1);
    assert.deepEqual(t.emu.log.find("POST /v1/messages").map((c) => c.status), [529, 429, 200]);
    t.emu.log.clear();
    await assert.rejects(
      () =>
        runJob(loaded, {
          env: { LOOM_HOME: join(dir, "home") },
          apiKey: "sk-ant-wrong-000000",
          cwd: dir,
          force: true,
        }),
      (e: unknown) =>
        e instanceof LoomProviderError && e.fatal && /check the API key/.test(e.message) &&
        !e.message.includes("sk-ant-wrong"),
    );
    assert.equal(t.emu.log.count("POST /v1/messages"), 1);
  });

  /** A schema as users write them: open objects, bounds, lengths, a dialect, a format the API lacks. */
  const userSchema = {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    type: "object",
    properties: {
      title: { type: "string", maxLength: 30, description: "A short title." },
      tags: { type: "array", items: { type: "string" }, minItems: 2, maxItems: 3 },
      score: { type: "integer", minimum: 1, maximum: 5 },
      when: { type: "string", format: "date" },
      site: { type: "string", format: "idn-hostname" },
      meta: { type: "object", properties: { lang: { type: "string" } }, required: ["lang"] },
    },
    required: ["title", "tags", "score", "when", "site", "meta"],
  };

  it("sends a schema the strict API accepts, and still checks answers against the job's own", async () => {
    const { dir, loaded } = await job(
      ["first prompt", "second prompt"],
      "{ max_tokens: 400 }",
      userSchema,
    );
    const warnings: string[] = [];
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), ANTHROPIC_API_KEY: t.emu.apiKey },
      cwd: dir,
      onEvent: (e) => void (e.type === "note" && warnings.push(e.message)),
    });
    assert.deepEqual([summary.ok, summary.errors], [2, 0]);
    assert.deepEqual(warnings, [
      "anthropic: Anthropic structured outputs do not enforce the schema's format, maxItems, maxLength, maximum, minItems, minimum; " +
      "they are sent in descriptions for the model to follow, and each answer is still checked against the job's schema",
    ]);
    const rows = parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<
      string,
      string
    >[];
    assert.deepEqual(
      JSON.parse(rows[0].tags).length,
      2,
      "the minItems moved into the description was followed",
    );
    assert.ok(rows[0].title.length <= 30);
    const sent = t.emu.log.find("POST /v1/messages").map((c) =>
      (c.body as { output_config: { format: { schema: unknown } } }).output_config.format.schema
    );
    assert.equal(sent.length, 2);
    assert.deepEqual(sent[0], {
      type: "object",
      properties: {
        title: { type: "string", description: 'A short title.\n\n{"maxLength":30}' },
        tags: {
          type: "array",
          items: { type: "string" },
          description: '{"minItems":2,"maxItems":3}',
        },
        score: { type: "integer", description: '{"minimum":1,"maximum":5}' },
        when: { type: "string", format: "date" },
        site: { type: "string", description: '{"format":"idn-hostname"}' },
        meta: {
          type: "object",
          properties: { lang: { type: "string" } },
          required: ["lang"],
          additionalProperties: false,
        },
      },
      required: ["title", "tags", "score", "when", "site", "meta"],
      additionalProperties: false,
    });
  });

  it("refuses a schema it cannot send at its place in the job file, before any call", async () => {
    const recursive = {
      type: "object",
      properties: { name: { type: "string" }, child: { $ref: "#" } },
      required: ["name"],
    };
    const map = {
      type: "object",
      properties: { counts: { type: "object", additionalProperties: { type: "integer" } } },
    };
    for (
      const [schema, reason] of [[recursive, /recursive/], [
        map,
        /properties\.counts: .*additionalProperties/,
      ]] as const
    ) {
      const { dir, loaded } = await job(["a"], "{ max_tokens: 50 }", schema);
      await assert.rejects(
        () =>
          runJob(loaded, {
            env: { LOOM_HOME: join(dir, "home"), ANTHROPIC_API_KEY: t.emu.apiKey },
            cwd: dir,
          }),
        (e: unknown) => {
          assert.ok(e instanceof LoomJobError);
          assert.match(e.message, /job\.yaml:10:\d+: schema: /);
          assert.match(e.message, reason);
          return true;
        },
      );
    }
    assert.equal(t.emu.log.count("POST /v1/messages"), 0);
  });

  it("says a model is deprecated once per run, as a Loom warning, and the SDK prints nothing", async () => {
    const { dir, loaded } = await job(
      ["one", "two", "three", "four"],
      "{ max_tokens: 50, workspace_id: wrkspc_01x }",
      undefined,
      "claude-sonnet-4-5",
    );
    const printed: unknown[][] = [];
    // The global console the SDK prints with (typed by hand: Deno's check here has no DOM lib).
    const globalConsole =
      (globalThis as unknown as { console: { warn: (...args: unknown[]) => void } }).console;
    const warn = globalConsole.warn;
    globalConsole.warn = (...args: unknown[]) => void printed.push(args);
    const warnings: string[] = [];
    try {
      const summary = await runJob(loaded, {
        env: { LOOM_HOME: join(dir, "home"), ANTHROPIC_API_KEY: t.emu.apiKey },
        cwd: dir,
        onEvent: (e) => void (e.type === "note" && warnings.push(e.message)),
      });
      assert.equal(summary.ok, 4);
    } finally {
      globalConsole.warn = warn;
    }
    assert.deepEqual(printed, [], "the SDK printed nothing");
    const deprecated = warnings.filter((w) => /deprecated/.test(w));
    assert.equal(deprecated.length, 1, deprecated.join("\n"));
    assert.match(
      deprecated[0],
      /^anthropic: model claude-sonnet-4-5 is deprecated and reaches end-of-life on November 30th, 2026; /,
    );
    const calls = t.emu.log.find("POST /v1/messages");
    assert.equal(calls.length, 4);
    assert.ok(
      calls.every((c) =>
        c.headers["anthropic-workspace-id"] === "wrkspc_01x" &&
        !("workspace_id" in (c.body as object))
      ),
      "header params as the SDK sends them",
    );
  });

  it("notes thinking.type=enabled on a model the SDK says wants adaptive thinking", () => {
    const context = { model: "claude-opus-4-6", structured: false };
    assert.deepEqual(jobNotes({ thinking: { type: "enabled", budget_tokens: 1024 } }, context), [
      "thinking.type=enabled is deprecated for claude-opus-4-6; Anthropic recommends thinking: { type: adaptive }",
    ]);
    assert.deepEqual(jobNotes({ thinking: { type: "adaptive" } }, context), []);
    assert.deepEqual(jobNotes({}, { model: "claude-sonnet-5-5", structured: false }), []);
  });

  it("answers with the text, not the thinking, and reports the thinking tokens as reasoning", async () => {
    const { dir, loaded } = await job(
      ["think first"],
      "{ max_tokens: 2000, thinking: { type: enabled, budget_tokens: 1024 } }",
    );
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), ANTHROPIC_API_KEY: t.emu.apiKey },
      cwd: dir,
    });
    assert.equal(summary.ok, 1);
    const [row] = parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<
      string,
      string
    >[];
    assert.equal(row.llm_response, `[${MODEL}] think first`);
    // The answer is 3 words; the emulator thinks 8 tokens per answer token.
    assert.deepEqual([row.llm_output_tokens, row.llm_reasoning_tokens], ["27", "24"]);
  });

  it("makes thinking that fills max_tokens a row error that says to raise it, never cached", async () => {
    const { dir, loaded } = await job(
      ["a question"],
      "{ max_tokens: 10, thinking: { type: adaptive } }",
      undefined,
      MODEL,
      true,
    );
    const env = { LOOM_HOME: join(dir, "home"), ANTHROPIC_API_KEY: t.emu.apiKey };
    for (const attempt of [1, 2]) {
      const summary = await runJob(loaded, { env, cwd: dir, force: attempt === 2 });
      assert.deepEqual([summary.ok, summary.errors], [0, 1]);
      const [row] = parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<
        string,
        string
      >[];
      assert.match(row.llm_error, /raise params\.max_tokens/);
      assert.equal(row.llm_reasoning_tokens, "10");
      assert.equal(
        t.emu.log.count("POST /v1/messages"),
        attempt,
        "asked again, not answered from the cache",
      );
    }
  });

  it("builds the Messages body from the neutral request", () => {
    assert.deepEqual(
      messagesBody({
        model: "m",
        messages: [{ role: "user", content: "u" }],
        params: { stop: "END", metadata: { user_id: "u1" } },
      }),
      {
        model: "m",
        max_tokens: 1024,
        messages: [{ role: "user", content: "u" }],
        stop_sequences: ["END"],
        metadata: { user_id: "u1" },
      },
    );
  });

  it("refuses parameters the Messages API would refuse, naming each", () => {
    const context = { model: "claude-sonnet-4-5", structured: true };
    const problems = paramProblems({
      temperature: 0,
      seed: 1,
      stream: true,
      max_tokens: 5,
      thinking: { type: "disabled" },
      output_config: { format: {} },
    }, context);
    assert.deepEqual(problems.map((p) => p.param), [
      "temperature",
      "seed",
      "stream",
      "output_config",
    ]);
    assert.match(problems[1].message, /has no seed parameter/);
    assert.deepEqual(
      paramProblems({ output_config: { effort: "low" } }, context),
      [],
      "effort alongside the schema is fine",
    );
    const thinking = (budget: number, max?: number) =>
      paramProblems({
        thinking: { type: "enabled", budget_tokens: budget },
        ...(max ? { max_tokens: max } : {}),
      }, context).map((p) => `${p.param}: ${p.message}`);
    assert.deepEqual(thinking(1024, 2000), []);
    assert.match(thinking(512, 2000).join(), /^thinking: budget_tokens must be at least 1024/);
    assert.match(
      thinking(1024).join(),
      /^thinking: budget_tokens \(1024\) must be less than max_tokens \(1024\)/,
      "the default max_tokens counts",
    );
  });
});
