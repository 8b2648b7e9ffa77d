/**
 * Costs as a user sees them, through the CLI: `llm_cost` and the reported total of a sync
 * OpenRouter run against the emulator and of its cached rerun, a batch merge's total (`loom
 * fetch`), and the prices `loom plan` shows for OpenRouter models and for batches.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { useEmulator } from "../plugins/providers/_shared/test-emulator.ts";
import { runCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";

const t = useEmulator({ provider: "openrouter" });

/** Rows 1 and 3 send the same request. */
function setup() {
  const dir = tempDir();
  writeFileSync(
    join(dir, "in.csv"),
    "id,prompt\n1,hello world\n2,a longer prompt here\n3,hello world\n",
  );
  return { dir, opts: { cwd: dir, env: { LOOM_HOME: join(dir, "home") } } };
}

const OUTPUT = "in_results_openrouter_openai_gpt-4o-mini.csv";

describe("reported costs (CLI)", () => {
  it("a sync OpenRouter run with --with-usage writes llm_cost and its total; a cached rerun the same column", async () => {
    const s = setup();
    const args = [
      "run",
      "-f",
      "in.csv",
      "-p",
      "openrouter",
      "-m",
      "openai/gpt-4o-mini",
      "--sync",
      "--with-usage",
      "--base-url",
      t.emu.baseURL,
      "--api-key",
      t.emu.apiKey,
    ];
    const first = await runCli(args, s.opts);
    assert.equal(first.code, 0, first.stderr);
    const csv = readFileSync(join(s.dir, OUTPUT), "utf8");
    assert.equal(
      csv.split("\n")[0],
      "id,prompt,llm_response,llm_error,llm_finish_reason,llm_input_tokens,llm_output_tokens,llm_reasoning_tokens,llm_cost",
    );
    const rows = parse(csv, { columns: true }) as Record<string, string>[];
    // The emulator charges a made-up $0.000001 a token: input and output together.
    assert.deepEqual(
      rows.map((r) => [r.llm_input_tokens, r.llm_output_tokens, r.llm_cost]),
      [["2", "3", "0.000005"], ["4", "5", "0.000009"], ["2", "3", "0.000005"]],
    );
    assert.equal(t.emu.log.count("POST /api/v1/chat/completions"), 2, "rows 1 and 3 share a call");
    assert.match(first.stdout, /\n {2}cost reported by the provider: \$0\.000014\n/);

    const again = await runCli([...args, "--force"], s.opts);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /\(0 answered, 3 from cache, 0 failed\)/);
    assert.doesNotMatch(again.stdout, /cost reported/, "nothing was paid for");
    assert.equal(readFileSync(join(s.dir, OUTPUT), "utf8"), csv);
    assert.equal(t.emu.log.count("POST /api/v1/chat/completions"), 2);
  });

  it("loom fetch prints the total the batches reported; status and list keep it for a kept job", async () => {
    const s = setup();
    // Echo, whose batch answers report a cost as OpenRouter's do.
    // Beside this file in the source tree (.ts) and in the npm build that Node tests run (.js).
    const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
    const echo = new URL(`../plugins/providers/echo/mod${ext}`, import.meta.url);
    writeFileSync(
      join(s.dir, "priced.mjs"),
      `import { createEchoProvider } from ${JSON.stringify(echo.href)};
const priced = (r) => ({ ...r, usage: { ...r.usage, cost: r.usage.outputTokens / 1e7 } });
export default { apiVersion: 1, kind: "provider", name: "priced", create: (o, context) => {
  const echo = createEchoProvider(o, context.home);
  const batch = echo.batch;
  async function* resultChunks(...a) {
    for await (const chunk of batch.resultChunks(...a)) {
      yield chunk.map((x) => ("result" in x ? { ...x, result: priced(x.result) } : x));
    }
  }
  async function* results(...a) { for await (const chunk of resultChunks(...a)) yield* chunk; }
  return { ...echo, name: "priced", batch: { ...batch, resultChunks, results } };
} };
`,
    );
    writeFileSync(
      join(s.dir, "job.yaml"),
      "dataset: { path: in.csv }\nprovider: priced\nmodel: m\nplugins: [./priced.mjs]\n" +
        "output: { path: out.csv, with_usage: true }\n",
    );
    const submitted = await runCli(["run", "job.yaml"], s.opts);
    assert.equal(submitted.code, 0, submitted.stderr);
    const fetched = await runCli(["fetch", "--keep"], s.opts);
    assert.equal(fetched.code, 0, fetched.stderr);
    // Outputs of 3, 5 and 3 tokens at $0.0000001: each request of a batch is its own.
    assert.match(
      fetched.stdout,
      /\(3 answered, 0 failed\).*\n {2}cost reported by the provider: \$0\.0000011\n/,
    );
    const rows = parse(readFileSync(join(s.dir, "out.csv")), { columns: true }) as Record<
      string,
      string
    >[];
    assert.deepEqual(
      rows.map((r) => r.llm_cost),
      ["0.0000003", "0.0000005", "0.0000003"],
    );
    const listed = await runCli(["list", "--json"], s.opts);
    const job = JSON.parse(listed.stdout.trim());
    assert.deepEqual([job.status, job.merged.cost], ["merged", 0.0000011]);
    const status = await runCli(["status", job.id], s.opts);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /\n {2}cost reported by the provider: \$0\.0000011\n$/);
  });

  it("plan: an OpenRouter model at its vendor's price, and where batch prices come from", async () => {
    const s = setup();
    const plan = (...args: string[]) => runCli(["plan", "-f", "in.csv", ...args], s.opts);
    const routed = await plan("-p", "openrouter", "-m", "anthropic/claude-sonnet-4.5", "--sync");
    assert.equal(routed.code, 0, routed.stderr);
    assert.match(
      routed.stdout,
      /\n {2}prices \(table \d{4}-\d\d-\d\d, as anthropic claude-sonnet-4-5\): \$3 input, \$15 output per million tokens\n {2}batch prices: \$1\.5 input, \$7\.5 output per million tokens \(half the sync prices\)\n {2}cost in batch mode: up to \$0\.0231 .*\n {2}cost in sync mode: {2}up to \$0\.0461 /,
    );
    const unknown = await plan("-p", "openrouter", "-m", "meta-llama/llama-3.3-70b-instruct");
    assert.match(
      unknown.stdout,
      /cost: unknown \(no price for openrouter meta-llama\/llama-3\.3-70b-instruct in Loom's table; give it in cost\.prices\)/,
    );
    const half = await plan("-p", "openai", "-m", "gpt-4o-mini", "--batch");
    assert.match(
      half.stdout,
      /\n {2}batch prices: \$0\.075 input, \$0\.3 output per million tokens \(half the sync prices\)\n {2}cost in batch mode: /,
    );
    writeFileSync(
      join(s.dir, "job.yaml"),
      "dataset: { path: in.csv }\nprovider: openai\nmodel: gpt-4o-mini\n" +
        "cost: { prices: { input: 0.2, output: 0.8, batch_input: 0.15 } }\n",
    );
    const given = await runCli(["plan", "job.yaml"], s.opts);
    assert.match(
      given.stdout,
      /\n {2}prices \(job\): \$0\.2 input, \$0\.8 output per million tokens\n {2}batch prices: \$0\.15 input, \$0\.4 output per million tokens \(cost\.prices batch_input, the output at half the sync price\)\n/,
    );
  });
});
