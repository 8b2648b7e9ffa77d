/** Plans, estimates and the spend cap, with the offline echo provider and prices given in the job. */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { LoomUsageError } from "../base/errors.ts";
import { planJobCost, usd } from "./estimate.ts";
import { loadJob } from "../job/load.ts";
import { batchRates, costOf, priceOf, PRICES_AS_OF } from "../data/prices.ts";
import { BUILTIN_PLUGINS } from "../../plugins/_builtins.ts";
import { runJob } from "./run.ts";
import { csvFormat } from "../../plugins/formats/csv/mod.ts";
import { createEchoProvider } from "../../plugins/providers/echo/mod.ts";
import { Registry } from "../plugins/registry.ts";
import type { FormatV1 } from "../spec/format.ts";
import { tempDir } from "../test-support/temp.ts";
import { countJobTokens } from "./tokens.ts";

/**
 * 10 rows of 40 characters (10 tokens at 4 characters a token), and a job with `extra` lines
 * (read in `format` when given, sent to `provider`, echo by default).
 */
function setup(
  extra: string,
  { format, provider = "echo" }: { format?: string; provider?: string } = {},
) {
  const dir = tempDir();
  const rows = Array.from({ length: 10 }, (_, i) => `${i},${"x".repeat(39)}${i}`);
  writeFileSync(join(dir, "in.csv"), `id,text\n${rows.join("\n")}\n3x,\n`);
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv${format ? `, format: ${format}` : ""} }\nprompt: { column: text }\n` +
      `provider: ${provider}\nmodel: m\noutput: { path: out.csv }\n${extra}`,
  );
  const env = { LOOM_HOME: join(dir, "home") };
  const load = () => loadJob({ file: join(dir, "job.yaml"), cwd: dir });
  return { dir, env, load };
}

describe("plan and estimate", () => {
  it("shows rows, shards, tokens, the output assumption and the cost in both modes", async () => {
    const t = setup(
      "params: { max_tokens: 50 }\nbatch: { max_requests: 4 }\ncost: { prices: { input: 2, output: 10 } }\n",
    );
    const { estimate } = await planJobCost(await t.load(), { env: t.env });
    assert.deepEqual(
      [estimate.rows, estimate.requests],
      [11, 10],
      "the row with an empty prompt is not sent",
    );
    assert.deepEqual(estimate.shards?.map((s) => s.requests), [4, 4, 2]);
    assert.deepEqual(estimate.shards?.map((s) => [s.firstRow, s.lastRow]), [[0, 3], [4, 7], [
      8,
      9,
    ]]);
    assert.deepEqual([estimate.inputTokens, estimate.inputSource], [100, "estimate"]);
    assert.deepEqual([estimate.outputTokensPerRow, estimate.outputSource, estimate.outputTokens], [
      50,
      "max_tokens",
      500,
    ]);
    assert.equal(estimate.price?.from, "job");
    // 100 input tokens at $2 and 500 output tokens at $10 per million: $0.0002 + $0.005.
    assert.deepEqual(estimate.cost?.sync, { input: 0.0002, output: 0.005, total: 0.0052 });
    assert.deepEqual(estimate.cost?.batch, { input: 0.0001, output: 0.0025, total: 0.0026 });
  });

  it("counts with the provider on request, and says so", async () => {
    const t = setup("");
    const { estimate } = await planJobCost(await t.load(), { env: t.env, count: true });
    // The row with no prompt is not sent, so it is no count that failed.
    assert.deepEqual([estimate.inputTokens, estimate.inputSource, estimate.countErrors], [
      100,
      "counted",
      0,
    ]);
    assert.equal(estimate.outputSource, "assumed");
  });

  it("prices from the dated table, dated suffixes included, batch at half", () => {
    assert.equal(priceOf("openai", "gpt-4o-mini-2024-07-18")?.from, `table ${PRICES_AS_OF}`);
    assert.deepEqual(priceOf("anthropic", "claude-sonnet-4-5-20250929")?.price, {
      input: 3,
      output: 15,
    });
    assert.equal(priceOf("anthropic", "claude-nonesuch"), undefined);
    assert.deepEqual(costOf({ input: 1, output: 4 }, "batch", 1e6, 1e6), {
      input: 0.5,
      output: 2,
      total: 2.5,
    });
    assert.deepEqual([usd(12.345), usd(0.1234), usd(0.00012)], ["$12.35", "$0.1234", "$0.000120"]);
    assert.deepEqual([usd(0.0000015), usd(1.5e-7), usd(3e-11), usd(0)], [
      "$0.0000015",
      "$0.00000015",
      "$0.000000000030",
      "$0.00",
    ], "a tiny reported cost keeps two significant digits");
  });
});

describe("openrouter prices", () => {
  const TABLE = `table ${PRICES_AS_OF}`;

  it("prices a vendor/model id as the vendor's model, which OpenRouter passes through", () => {
    assert.deepEqual(priceOf("openrouter", "openai/gpt-4o-mini"), {
      price: { input: 0.15, output: 0.6 },
      from: `${TABLE}, as openai gpt-4o-mini`,
    });
    assert.equal(
      priceOf("openrouter", "openai/gpt-4.1-mini")?.from,
      `${TABLE}, as openai gpt-4.1-mini`,
    );
    assert.equal(
      priceOf("openrouter", "openai/gpt-4o-mini-2024-07-18")?.from,
      `${TABLE}, as openai gpt-4o-mini-2024-07-18`,
      "a dated id, as the vendor's",
    );
    // OpenRouter writes Anthropic's versions with dots.
    assert.deepEqual(priceOf("openrouter", "anthropic/claude-sonnet-4.5"), {
      price: { input: 3, output: 15 },
      from: `${TABLE}, as anthropic claude-sonnet-4-5`,
    });
    assert.equal(priceOf("openrouter", "anthropic/claude-3.5-haiku")?.price.input, 0.8);
    assert.equal(priceOf("openrouter", "google/gemini-2.5-flash")?.price.output, 2.5);
  });

  it("has no price for a model hosts price themselves, a variant, or an id without a vendor", () => {
    for (
      const model of [
        "meta-llama/llama-3.3-70b-instruct", // open weights: each host its own price
        "openai/gpt-4o-mini:free", // variants route or bill otherwise
        "anthropic/claude-sonnet-4.5:nitro",
        "openai/gpt-nonesuch",
        "gpt-4o-mini",
        "echo/anything", // a table entry, but no vendor OpenRouter routes to
      ]
    ) assert.equal(priceOf("openrouter", model), undefined, model);
    assert.equal(
      priceOf("openrouter", "meta-llama/llama-3.3-70b-instruct", { input: 0.1, output: 0.3 })
        ?.from,
      "job",
      "the job's own prices win",
    );
  });

  it("batch rates: half of sync unless the price gives its own, and says which", () => {
    assert.deepEqual(batchRates({ input: 0.15, output: 0.6 }), {
      input: 0.075,
      output: 0.3,
      given: { input: false, output: false },
    });
    assert.deepEqual(batchRates({ input: 1, output: 4, batchInput: 0.8 }), {
      input: 0.8,
      output: 2,
      given: { input: true, output: false },
    });
  });

  /**
   * A registry whose `openrouter` has a batch API (echo's), as it will once its BatchApi lands:
   * the estimate must price its batches like any provider's.
   */
  function batchingOpenRouter(): Registry {
    return new Registry({
      ...BUILTIN_PLUGINS,
      provider: {
        ...BUILTIN_PLUGINS.provider,
        openrouter: () =>
          Promise.resolve({
            default: {
              apiVersion: 1,
              kind: "provider",
              name: "openrouter",
              create: (options, context) => ({
                ...createEchoProvider(options as Record<string, unknown>, context.home),
                name: "openrouter",
              }),
            },
          }),
      },
    });
  }

  it("a batch run of a provider with a batch API is priced at half, or at the job's batch prices", async () => {
    const t = setup("");
    writeFileSync(
      join(t.dir, "job.yaml"),
      "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: openrouter\n" +
        "model: openai/gpt-4o-mini\noutput: { path: out.csv }\nparams: { max_tokens: 50 }\n",
    );
    const registry = batchingOpenRouter();
    const { estimate } = await planJobCost(await t.load(), { env: t.env, registry });
    assert.equal(estimate.mode, "batch");
    assert.equal(estimate.price?.from, `${TABLE}, as openai gpt-4o-mini`);
    assert.deepEqual(estimate.batchPrice, {
      input: 0.075,
      output: 0.3,
      given: { input: false, output: false },
    });
    // 100 input tokens and 500 output tokens at $0.15 and $0.6 per million, and half that.
    assert.deepEqual(estimate.cost?.sync, costOf({ input: 0.15, output: 0.6 }, "sync", 100, 500));
    assert.equal(estimate.cost?.batch?.total, estimate.cost!.sync.total / 2);

    writeFileSync(
      join(t.dir, "job.yaml"),
      "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: openrouter\n" +
        "model: openai/gpt-4o-mini\noutput: { path: out.csv }\nparams: { max_tokens: 50 }\n" +
        "cost: { prices: { input: 0.2, output: 0.8, batch_input: 0.2, batch_output: 0.5 } }\n",
    );
    const given = (await planJobCost(await t.load(), { env: t.env, registry })).estimate;
    assert.equal(given.price?.from, "job");
    assert.deepEqual(given.batchPrice?.given, { input: true, output: true });
    assert.deepEqual(given.cost?.batch, {
      input: (100 * 0.2) / 1e6,
      output: (500 * 0.5) / 1e6,
      total: (100 * 0.2) / 1e6 + (500 * 0.5) / 1e6,
    });
  });

  it("prices an openrouter sync job; batch prices come only with a batch cost", async () => {
    const t = setup("");
    writeFileSync(
      join(t.dir, "job.yaml"),
      "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: openrouter\n" +
        "model: anthropic/claude-haiku-4.5\nmode: sync\noutput: { path: out.csv }\n",
    );
    const { estimate } = await planJobCost(await t.load(), { env: t.env });
    assert.equal(estimate.price?.from, `${TABLE}, as anthropic claude-haiku-4-5`);
    assert.deepEqual(estimate.price?.price, { input: 1, output: 5 });
    assert.equal(estimate.batchPrice !== undefined, estimate.cost?.batch !== undefined);
  });
});

describe("spend cap", () => {
  it("refuses a run whose estimate exceeds cost.max_usd, before anything is sent", async () => {
    const t = setup(
      "mode: sync\nparams: { max_tokens: 50 }\ncost: { max_usd: 0.004, prices: { input: 2, output: 10 } }\n",
    );
    await assert.rejects(runJob(await t.load(), { env: t.env }), (e: unknown) => {
      assert.ok(e instanceof LoomUsageError && e.exitCode === 2);
      assert.match(
        e.message,
        /\$0\.005200 in sync mode .* exceeds the spend cap of \$0\.004000 \(cost\.max_usd\).*--over-cap/,
      );
      return true;
    });
    const forced = await runJob(await t.load(), { env: t.env, overCap: true });
    assert.equal(forced.ok, 10);
  });

  it("lets a run within the cap start, and batch mode is priced at the batch rate", async () => {
    const t = setup(
      "params: { max_tokens: 50 }\ncost: { max_usd: 0.004, prices: { input: 2, output: 10 } }\n",
    );
    const submitted = await runJob(await t.load(), { env: t.env });
    assert.ok(submitted.job, "$0.0026 in batch mode is within $0.004");
  });

  it("refuses a capped run it cannot price, and runs a free one", async () => {
    const t = setup("mode: sync\ncost: { max_usd: 1 }\n");
    assert.equal(
      (await runJob(await t.load(), { env: t.env })).ok,
      10,
      "echo is free in the table",
    );
    writeFileSync(
      join(t.dir, "job.yaml"),
      `dataset: { path: in.csv }\nprompt: { column: text }\nprovider: openai\nprovider_options: { base_url: "http://127.0.0.1:9/v1" }\n` +
        `model: gpt-nonesuch\nmode: sync\noutput: { path: out2.csv }\ncost: { max_usd: 1 }\n`,
    );
    await assert.rejects(
      runJob(await t.load(), { env: { ...t.env, OPENAI_API_KEY: "sk-x" } }),
      /no price for openai gpt-nonesuch; give the model's prices in cost.prices/,
    );
  });
});

/**
 * CSV whose rows count the reads of their `text` field: building a row's request reads its prompt
 * once, and nothing else in the planning pass of a CSV job reads it.
 */
function promptReadingCsv() {
  const reads = { text: 0 };
  const format: FormatV1 = {
    ...csvFormat,
    name: "prompt-reading",
    async open(bytes, options) {
      const reader = await csvFormat.open(bytes, options);
      async function* rows() {
        for await (const row of reader.rows) {
          const fields = { ...row.fields };
          const text = fields.text;
          Object.defineProperty(fields, "text", {
            enumerable: true,
            get: () => (reads.text++, text),
          });
          yield { ...row, fields };
        }
      }
      return { layout: reader.layout, rows: rows() };
    },
  };
  const registry = new Registry();
  registry.register({
    apiVersion: 1,
    kind: "format",
    name: "prompt-reading",
    create: () => format,
  });
  return { reads, registry };
}

describe("spend cap: one request a row", () => {
  it("a capped batch run builds each row's request once in the planning pass", async () => {
    const t = setup(
      "params: { max_tokens: 50 }\nbatch: { max_requests: 4 }\n" +
        "cost: { max_usd: 0.000001, prices: { input: 2, output: 10 } }\n",
      { format: "prompt-reading" },
    );
    const { reads, registry } = promptReadingCsv();
    // Over the cap: the run stops after the planning pass, before anything is built to be sent.
    await assert.rejects(
      runJob(await t.load(), { env: t.env, registry }),
      /\$0\.002600 in batch mode .* exceeds the spend cap/,
    );
    assert.equal(reads.text, 11, "one build for each of the 11 rows");
  });

  it("and measures each request once, for the shards and the estimate alike", async () => {
    const t = setup(
      "params: { max_tokens: 50 }\nbatch: { max_requests: 4 }\n" +
        "cost: { max_usd: 0.000001, prices: { input: 2, output: 10 } }\n",
      { provider: "measured" },
    );
    const measured = { items: 0 };
    const registry = new Registry();
    registry.register({
      apiVersion: 1,
      kind: "provider",
      name: "measured",
      create: (options, context) => {
        const echo = createEchoProvider(options as Record<string, unknown>, context.home);
        const batch = echo.batch!;
        return {
          ...echo,
          name: "measured",
          // Echo encodes its items: the submission sizes an item by its line, once encoded.
          batch: {
            ...batch,
            itemBytes: (item) => (measured.items++, batch.itemBytes(item)),
            encodeItem: (item) => (measured.items++, batch.encodeItem!(item)),
          },
        };
      },
    });
    await assert.rejects(
      runJob(await t.load(), { env: t.env, registry }),
      /\$0\.002600 in batch mode .* exceeds the spend cap/,
    );
    assert.equal(measured.items, 10, "one measure (or encoding) for each of the 10 requests");
  });

  it("a row too big for a batch is still named before the cap is checked", async () => {
    const t = setup(
      "batch: { max_bytes: 100 }\ncost: { max_usd: 0.000001, prices: { input: 2, output: 10 } }\n",
    );
    await assert.rejects(
      runJob(await t.load(), { env: t.env }),
      /row 1 alone is \d+ bytes, more than a echo batch may hold \(100\)/,
    );
  });
});

describe("loom tokens (core)", () => {
  it("counts every prompt, and a row that cannot be counted is an error, not the end", async () => {
    const t = setup("");
    const progress: number[] = [];
    const result = await countJobTokens(await t.load(), {
      env: t.env,
      workers: 3,
      onProgress: (p) => progress.push(p.done),
    });
    assert.deepEqual([result.total, result.prompts, result.errors], [100, 10, 1]);
    assert.match(result.samples[0], /row 11: empty prompt/);
    assert.deepEqual(progress, Array.from({ length: 11 }, (_, i) => i + 1));
  });
});
