/**
 * Loom's traffic for every provider, recorded through a proxy and checked by the harness's own
 * validators against the published definitions (OpenAI's OpenAPI file, Anthropic's SDK types,
 * Gemini's protos), in both directions: what Loom sends and what the emulator answers.
 *
 * Each provider runs Loom's real code paths through the core (the CLI's functions): a sync job,
 * a sync job with an answer schema, a batch job with the schema (submit, the emulator steps one
 * state per poll, fetch), and a token count, wherever the provider has them.
 *
 * `LOOM_HARNESS_SHOW=1` prints every recorded exchange (method, path, body kinds, status).
 *
 * Needs OpenAI's published definition (`LOOM_OPENAI_SPEC`, or `../shared/reference/specs/` beside
 * the repo): it fails, never skips, without it.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { ApiError, GoogleGenAI } from "@google/genai";
import { cancelJob, fetchJobs } from "../../core/batch/jobs.ts";
import { LoomJobError, LoomUsageError } from "../../core/base/errors.ts";
import { loadJob } from "../../core/job/load.ts";
import { runJob } from "../../core/commands/run.ts";
import { tempDir } from "../../core/test-support/temp.ts";
import type { BatchOutcome } from "../../core/spec/provider.ts";
import { countJobTokens } from "../../core/commands/tokens.ts";
import { googleBatch } from "../../plugins/providers/google/batch.ts";
import { FAST_RETRY } from "../../plugins/providers/_shared/test-emulator.ts";
import { type Emulator, type EmulatorOptions, startEmulator } from "../../emulator/mod.ts";
import { anthropicValidator } from "./anthropic.ts";
import { geminiValidator } from "./gemini.ts";
import { type OpenApiChecks, openApiChecks } from "./openapi.ts";
import { openAiValidator } from "./openai.ts";
import { type RecordingProxy, startRecordingProxy } from "./proxy.ts";
import { formatViolations, type Validator } from "./violations.ts";

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
/**
 * A schema that looks strict-ready (closed, all required) but uses a keyword strict mode refuses:
 * Loom must not mark it strict (issue 10 item 2).
 */
const STRICT_LOOKING = {
  type: "object",
  properties: {
    summary: { type: "string" },
    tags: { type: "array", items: { type: "string" }, uniqueItems: true },
  },
  required: ["summary", "tags"],
  additionalProperties: false,
};
/** An ordinary schema as users write them: an open nested object, a minItems above 1 (item 1 for Anthropic). */
const LOOSE = {
  type: "object",
  properties: {
    summary: { type: "string" },
    tags: { type: "array", items: { type: "string" }, minItems: 2 },
    meta: { type: "object", properties: { lang: { type: "string" } } },
  },
  required: ["summary", "tags"],
};
const ROWS = ["the quick brown fox", "jumps over the lazy dog", "and runs away"];

/** A provider under test: how to start its emulator, configure Loom, and check its traffic. */
interface Case {
  readonly provider: string;
  readonly emulator: EmulatorOptions;
  readonly model: string;
  readonly keyEnv: string;
  /** Extra provider_options (YAML flow mapping members). */
  readonly options?: string;
  readonly batch: boolean;
  readonly tokens: boolean;
  /** A reasoning model, run with the sampling parameters such models refuse (issue 10 item 3). */
  readonly reasoningModel?: string;
  /** A schema the provider's own rules are picky about, sent in one more sync run (its answers aren't asserted). */
  readonly pickySchema: object;
  readonly validator: () => Promise<Validator>;
  /** More of Loom's code, for paths a job can't reach (run after the jobs, through the proxy). */
  readonly extra?: (emu: Emulator, baseURL: string) => Promise<void>;
  /** Endpoints the run must have used (method and path pattern), so a silent skip can't pass. */
  readonly covers: readonly RegExp[];
}

let openApi: OpenApiChecks | undefined;
/** One parse of OpenAI's definition for every OpenAI-shaped case. */
const openAiChecks = () => (openApi ??= openApiChecks());

const CASES: readonly Case[] = [
  {
    provider: "openai",
    emulator: { provider: "openai" },
    model: "gpt-4o-mini",
    keyEnv: "OPENAI_API_KEY",
    batch: true,
    tokens: true,
    reasoningModel: "o4-mini",
    pickySchema: STRICT_LOOKING,
    validator: async () =>
      openAiValidator(openAiChecks(), { basePath: "/v1", closedRequests: true }),
    covers: [
      /^POST \/v1\/chat\/completions$/,
      /^POST \/v1\/responses\/input_tokens$/,
      /^POST \/v1\/files$/,
      /^POST \/v1\/batches$/,
      /^GET \/v1\/batches\/[^/]+$/,
      /^GET \/v1\/files\/[^/]+\/content$/,
      /^POST \/v1\/batches\/[^/]+\/cancel$/,
    ],
  },
  {
    provider: "anthropic",
    emulator: { provider: "anthropic" },
    model: "claude-sonnet-5-5",
    keyEnv: "ANTHROPIC_API_KEY",
    batch: true,
    tokens: true,
    pickySchema: LOOSE,
    validator: () => anthropicValidator(),
    covers: [
      /^POST \/v1\/messages$/,
      /^POST \/v1\/messages\/count_tokens$/,
      /^POST \/v1\/messages\/batches$/,
      /^GET \/v1\/messages\/batches\/[^/]+$/,
      /^GET \/v1\/messages\/batches\/[^/]+\/results$/,
      /^POST \/v1\/messages\/batches\/[^/]+\/cancel$/,
    ],
  },
  {
    provider: "google",
    emulator: { provider: "gemini" },
    model: "gemini-2.5-flash",
    keyEnv: "GOOGLE_API_KEY",
    batch: true,
    tokens: true,
    pickySchema: LOOSE,
    validator: async () => geminiValidator(),
    extra: googleFileBatch,
    covers: [
      /:generateContent$/,
      /:countTokens$/,
      /:batchGenerateContent$/,
      /^GET \/v1beta\/batches\/[^/]+$/,
      /^POST \/v1beta\/batches\/[^/]+:cancel$/,
      /^POST \/upload\/v1beta\/files$/,
      /^GET \/download\/v1beta\/files\/[^/]+:download$/,
    ],
  },
  {
    provider: "openrouter",
    emulator: { provider: "openrouter" },
    model: "openai/gpt-4o-mini",
    keyEnv: "OPENROUTER_API_KEY",
    batch: false,
    tokens: false,
    pickySchema: STRICT_LOOKING,
    validator: async () =>
      openAiValidator(openAiChecks(), {
        basePath: "/api/v1",
        closedRequests: false,
        errors: "openrouter",
      }),
    covers: [/^POST \/api\/v1\/chat\/completions$/],
  },
  {
    provider: "openai-compatible",
    emulator: { provider: "openai", models: "any" },
    model: "llama3.1:8b",
    keyEnv: "LOCAL_LLM_KEY",
    options: "api_key_env: LOCAL_LLM_KEY",
    batch: false,
    tokens: false,
    pickySchema: STRICT_LOOKING,
    validator: async () =>
      openAiValidator(openAiChecks(), { basePath: "/v1", closedRequests: true }),
    covers: [/^POST \/v1\/chat\/completions$/],
  },
];

/** Runs a job Loom may refuse before any work (a usage error); any other failure is the test's. */
async function orRefused(run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (!(error instanceof LoomUsageError)) throw error;
  }
}

/** Runs one job file's worth of Loom against the proxied emulator. */
async function runCase(c: Case, emu: Emulator, proxy: RecordingProxy): Promise<void> {
  const dir = tempDir();
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${ROWS.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
  );
  writeFileSync(join(dir, "schema.json"), JSON.stringify(SCHEMA));
  writeFileSync(join(dir, "picky.json"), JSON.stringify(c.pickySchema));
  const env = { LOOM_HOME: join(dir, "home"), [c.keyEnv]: emu.apiKey };
  const options = `{ base_url: "${proxy.via(emu.baseURL)}"${c.options ? `, ${c.options}` : ""} }`;
  const write = (
    name: string,
    extra: string,
    modelAndParams = `model: ${c.model}\nparams: { max_tokens: 200 }\n`,
  ) => {
    writeFileSync(
      join(dir, name),
      `dataset: { path: in.csv }\nprompt: { column: text, system: You label short texts. }\nprovider: ${c.provider}\n` +
        `provider_options: ${options}\n${modelAndParams}${extra}`,
    );
    return loadJob({ file: join(dir, name), cwd: dir });
  };
  const opts = { env, cwd: dir };

  // One refusal with a rate limit, so an error answer crosses the proxy too (and is retried).
  emu.faults.add({
    match: { promptContains: ROWS[0], first: 1 },
    action: { kind: "status", status: 429, retryAfterMs: 1 },
  });
  const sync = await runJob(
    await write("sync.yaml", "mode: sync\noutput: { path: sync.csv }\nsync: { cache: false }\n"),
    { ...opts, retry: FAST_RETRY },
  );
  emu.faults.clear();
  assert.deepEqual([sync.ok, sync.errors], [ROWS.length, 0], `${c.provider} sync run`);

  const structured = await runJob(
    await write(
      "structured.yaml",
      "mode: sync\nschema: schema.json\noutput: { path: structured.csv }\nsync: { cache: false }\n",
    ),
    opts,
  );
  assert.deepEqual(
    [structured.ok, structured.errors],
    [ROWS.length, 0],
    `${c.provider} structured run`,
  );

  // Whatever Loom decides for this schema (send it as is, transform it, refuse it), what goes out must be accepted.
  await orRefused(async () => {
    await runJob(
      await write(
        "picky.yaml",
        "mode: sync\nschema: picky.json\noutput: { path: picky.csv }\nsync: { cache: false }\n",
      ),
      opts,
    );
  });

  if (c.reasoningModel) {
    // Loom refuses these parameters before any work, in both modes: nothing reaches the provider.
    const refused =
      `params: { max_tokens: 200, stop: ["END"], presence_penalty: 0.5 }\nmodel: ${c.reasoningModel}\n`;
    const tail = (mode: string) =>
      `mode: ${mode}\noutput: { path: reasoning-${mode}.csv }\nsync: { cache: false }\n`;
    for (const mode of c.batch ? ["sync", "batch"] : ["sync"]) {
      const before = proxy.exchanges.length;
      await assert.rejects(
        runJob(await write(`reasoning-${mode}.yaml`, tail(mode), refused), opts),
        (e: unknown) => {
          assert.ok(e instanceof LoomJobError, String(e));
          assert.match(e.message, /params\.stop: .*params\.presence_penalty: /s);
          return true;
        },
      );
      assert.equal(
        proxy.exchanges.length,
        before,
        `${c.provider}: a refused ${mode} job sends nothing`,
      );
    }
  }

  if (c.batch) {
    const batchJob = await write(
      "batch.yaml",
      "mode: batch\nschema: schema.json\noutput: { path: batch.csv }\nbatch: { max_requests: 2 }\n",
    );
    const submitted = (await runJob(batchJob, opts)).job!;
    const [fetched] = await fetchJobs([submitted.id], { ...opts, wait: true, pollMs: 1 });
    assert.ok(!("error" in fetched), `${c.provider} batch fetch`);
    const rows = parse(readFileSync(join(dir, "batch.csv")), { columns: true }) as Record<
      string,
      string
    >[];
    assert.deepEqual(
      rows.map((r) => r.llm_error),
      ROWS.map(() => ""),
      `${c.provider} batch answers`,
    );
  }

  if (c.batch) {
    // A batch cancelled before it ends: `loom cancel`.
    const cancelJobFile = await write("cancel.yaml", "mode: batch\noutput: { path: cancel.csv }\n");
    const submitted = (await runJob(cancelJobFile, opts)).job!;
    const cancelled = await cancelJob(submitted.id, opts);
    assert.deepEqual(cancelled.failed, [], `${c.provider} cancel`);
  }

  if (c.tokens) {
    const counted = await countJobTokens(
      await write("tokens.yaml", "mode: sync\noutput: { path: tokens.csv }\n"),
      opts,
    );
    assert.deepEqual(
      [counted.prompts, counted.errors],
      [ROWS.length, 0],
      `${c.provider} token count`,
    );
  }
}

/**
 * Gemini's file batch (JSONL uploaded through the resumable protocol, results downloaded): Loom
 * sends a batch this way only above 19 MB, so the plugin's batch API is driven directly with the
 * inline limit at 0.
 */
async function googleFileBatch(emu: Emulator, baseUrl: string): Promise<void> {
  const ai = new GoogleGenAI({
    apiKey: emu.apiKey,
    httpOptions: { baseUrl, apiVersion: "v1beta" },
  });
  const batch = googleBatch({
    ai,
    ApiError,
    apiKey: emu.apiKey,
    baseUrl,
    timeoutMs: 30_000,
    inlineMaxBytes: 0,
  });
  const items = ROWS.map((text, i) => ({
    customId: `row-${i + 1}`,
    request: {
      model: "gemini-2.5-flash",
      system: "Be brief.",
      messages: [{ role: "user" as const, content: text }],
      params: { max_tokens: 50 },
    },
  }));
  const handle = await batch.submit(items, { job: "harness", shard: 1, name: "loom-harness-1" });
  assert.equal(
    (handle.data as { mode?: string }).mode,
    "file",
    "the batch went as an uploaded file",
  );
  emu.step(handle.id.replace(/^batches\//, ""), 5);
  assert.equal((await batch.status(handle)).state, "completed");
  const outcomes: BatchOutcome[] = [];
  for await (const outcome of batch.results(handle, items.map((i) => i.customId))) {
    outcomes.push(outcome);
  }
  assert.deepEqual(
    outcomes.map((o) => "result" in o),
    ROWS.map(() => true),
    "every file line answered",
  );
}

for (const c of CASES) {
  describe(`recorded traffic: ${c.provider}`, () => {
    let emu: Emulator;
    let proxy: RecordingProxy;
    before(async () => {
      // Three polls per batch state: a batch is still running when `loom cancel` reaches it.
      emu = await startEmulator({ schedule: { advance: "polls", polls: 3 }, ...c.emulator });
      proxy = await startRecordingProxy(emu.url);
    });
    after(async () => {
      await proxy?.stop();
      await emu?.stop();
    });

    it("sends and receives only what the published definitions allow", async () => {
      const validate = await c.validator();
      await runCase(c, emu, proxy);
      await c.extra?.(emu, proxy.via(emu.baseURL));
      const seen = proxy.exchanges.map((x) => `${x.method} ${x.path}`);
      if (process.env.LOOM_HARNESS_SHOW) {
        for (const x of proxy.exchanges) {
          process.stdout.write(
            `${c.provider} ${x.method} ${x.path} ${x.request.body.kind} ${x.response.status} ${x.response.body.kind}\n`,
          );
        }
      }
      assert.ok(
        proxy.exchanges.some((x) => x.response.status === 429),
        `${c.provider}: the rate-limit answer was recorded`,
      );
      for (const endpoint of c.covers) {
        assert.ok(
          seen.some((s) => endpoint.test(s)),
          `${c.provider}: no exchange matches ${endpoint}`,
        );
      }

      const violations = proxy.exchanges.flatMap(validate);
      assert.equal(
        violations.length,
        0,
        `${c.provider}: ${violations.length} violation(s):\n${formatViolations(violations)}`,
      );
    });
  });
}
