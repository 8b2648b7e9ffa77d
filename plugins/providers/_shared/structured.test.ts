/**
 * Structured output through each provider's SDK against the emulator: the schema goes out in the
 * provider's native form, answers come back as columns, and every kind of bad answer (not JSON,
 * the wrong shape, cut off at max_tokens) ends as that row's error.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { loadJob } from "../../../core/job/load.ts";
import { runJob } from "../../../core/commands/run.ts";
import { repoRoot } from "../../../core/test-support/paths.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import type { Emulator } from "../../../emulator/mod.ts";
import { useEmulator } from "./test-emulator.ts";

const SCHEMA = {
  type: "object",
  properties: {
    summary: { type: "string" },
    words: { type: "integer" },
    tags: { type: "array", items: { type: "string" } },
  },
  required: ["summary", "words", "tags"],
  additionalProperties: false,
};

/** A provider under test: its emulator, model, key variable, and where its request carries the schema. */
interface Case {
  provider: string;
  holder: { emu: Emulator };
  model: string;
  keyVar: string;
  path: string;
  schemaSent: (body: Record<string, unknown>) => unknown;
}

const CASES: Case[] = [
  {
    provider: "openai",
    holder: useEmulator({ provider: "openai" }),
    model: "gpt-4o-mini",
    keyVar: "OPENAI_API_KEY",
    path: "POST /v1/chat/completions",
    schemaSent: (b) => {
      const format = b.response_format as {
        type: string;
        json_schema: { strict: boolean; schema: unknown };
      };
      assert.equal(format.type, "json_schema");
      assert.equal(format.json_schema.strict, true);
      return format.json_schema.schema;
    },
  },
  {
    provider: "anthropic",
    holder: useEmulator({ provider: "anthropic" }),
    model: "claude-sonnet-5-5",
    keyVar: "ANTHROPIC_API_KEY",
    path: "POST /v1/messages",
    schemaSent: (b) => {
      const format = (b.output_config as { format: { type: string; schema: unknown } }).format;
      assert.equal(format.type, "json_schema");
      return format.schema;
    },
  },
  {
    provider: "google",
    holder: useEmulator({ provider: "gemini" }),
    model: "gemini-2.5-flash",
    keyVar: "GOOGLE_API_KEY",
    path: ":generateContent",
    schemaSent: (b) => {
      const config = b.generationConfig as Record<string, unknown>;
      assert.equal(config.responseMimeType, "application/json");
      return config.responseJsonSchema;
    },
  },
];

/** Runs a structured job over `rows`; returns the summary and the output's rows. */
async function run(c: Case, rows: string[], maxTokens = 200) {
  const dir = tempDir();
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${rows.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
  );
  writeFileSync(join(dir, "schema.json"), JSON.stringify(SCHEMA));
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text }\nprovider: ${c.provider}\n` +
      `provider_options: { base_url: "${c.holder.emu.baseURL}" }\nmodel: ${c.model}\nmode: sync\n` +
      `params: { max_tokens: ${maxTokens} }\nschema: schema.json\noutput: { path: out.csv, with_usage: true }\nsync: { workers: 2, cache: false }\n`,
  );
  const loaded = await loadJob({ file: join(dir, "job.yaml"), cwd: dir });
  const summary = await runJob(loaded, {
    env: { LOOM_HOME: join(dir, "home"), [c.keyVar]: c.holder.emu.apiKey },
    cwd: dir,
  });
  return {
    summary,
    rows: parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<string, string>[],
  };
}

for (const c of CASES) {
  describe(`structured output: ${c.provider}`, () => {
    it("sends the schema natively and writes each field of the answer in its own column", async () => {
      const { summary, rows } = await run(c, ["first prompt", "second prompt"]);
      assert.deepEqual([summary.ok, summary.errors], [2, 0]);
      for (const [i, row] of rows.entries()) {
        const prompt = ["first prompt", "second prompt"][i];
        assert.equal(row.llm_error, "", row.llm_error);
        assert.equal(
          row.summary,
          `[${c.model}] ${prompt}`,
          "the emulator's strings carry its plain answer",
        );
        assert.match(row.words, /^\d+$/);
        assert.deepEqual(JSON.parse(row.tags), [`[${c.model}] ${prompt}`]);
        assert.deepEqual(JSON.parse(row.llm_response), {
          summary: row.summary,
          words: Number(row.words),
          tags: JSON.parse(row.tags),
        });
      }
      const bodies = c.holder.emu.log.find(c.path).map((call) =>
        call.body as Record<string, unknown>
      );
      assert.equal(bodies.length, 2);
      for (const body of bodies) assert.deepEqual(c.schemaSent(body), SCHEMA);
    });

    it("makes an answer that is not JSON, or of the wrong shape, that row's error and keeps its text", async () => {
      c.holder.emu.faults.add({
        match: { promptContains: "bad-json" },
        action: { kind: "reply", text: "Sure! Here it is: {" },
      });
      c.holder.emu.faults.add({
        match: { promptContains: "bad-shape" },
        action: { kind: "reply", text: '{"summary":"s","words":"many","tags":[]}' },
      });
      const { summary, rows } = await run(c, ["fine", "bad-json", "bad-shape"]);
      assert.deepEqual([summary.ok, summary.errors], [1, 2]);
      assert.equal(rows[0].llm_error, "");
      assert.match(rows[1].llm_error, /not valid JSON/);
      assert.equal(rows[1].llm_response, "Sure! Here it is: {");
      assert.match(rows[2].llm_error, /does not match the schema: \/words must be integer/);
      assert.deepEqual([rows[1].summary, rows[2].summary], ["", ""]);
      assert.notEqual(rows[2].llm_output_tokens, "", "a rejected answer keeps its usage");
    });

    it("makes an answer cut off at max_tokens that row's error, not invalid JSON", async () => {
      const { summary, rows } = await run(c, [
        "a prompt long enough that its structured answer cannot fit in three tokens at all",
      ], 3);
      assert.equal(summary.errors, 1);
      assert.match(rows[0].llm_error, /cut off at max_tokens.*raise params\.max_tokens/);
      assert.ok(
        ["length", "max_tokens", "MAX_TOKENS"].includes(rows[0].llm_finish_reason),
        rows[0].llm_finish_reason,
      );
    });
  });
}

describe("the checked-in structured job", () => {
  it("runs against the emulator and fills every schema column for every article", async () => {
    const openai = CASES[0].holder.emu;
    const out = join(tempDir(), "out");
    mkdirSync(out);
    const job = await loadJob({
      file: join(repoRoot(), "jobs", "structured.yaml"),
      cwd: out,
      overrides: [
        { path: ["provider_options", "base_url"], value: openai.baseURL, flag: "--base-url" },
        { path: ["output", "path"], value: join(out, "articles.csv"), flag: "--output" },
      ],
    });
    const summary = await runJob(job, {
      env: { LOOM_HOME: join(out, "home"), OPENAI_API_KEY: openai.apiKey },
      cwd: out,
    });
    assert.equal(summary.errors, 0);
    const rows = parse(readFileSync(join(out, "articles.csv")), { columns: true }) as Record<
      string,
      string
    >[];
    assert.deepEqual(rows.map((r) => r.id), ["a1", "a2", "a3"]);
    for (const row of rows) {
      assert.ok(row.headline.startsWith("[gpt-4o-mini] Read this article"), row.headline);
      assert.ok(["positive", "neutral", "negative"].includes(row.sentiment));
      assert.ok(Array.isArray(JSON.parse(row.places)));
    }
  });
});
