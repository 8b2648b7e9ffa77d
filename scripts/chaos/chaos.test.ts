/**
 * The chaos harness in the test suite: first its checks (each must catch the harm it names, or
 * the harness proves nothing), then one deterministic round of every scenario, every variant,
 * against the real CLI: zero double payments, lost files or rows, stack traces, stranded jobs and
 * leaked keys. `scripts/chaos.ts` runs many more rounds, with kills at random moments.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, describe, it } from "node:test";
import OpenAI, { toFile } from "openai";
import { formatReport, runTrial } from "./scenario.ts";
import { SCENARIOS } from "./scenarios/mod.ts";
import { seededRng } from "./rng.ts";
import { type PostgresServer, startPostgres } from "../../core/test-support/postgres.ts";
import { closeTrial, openTrial, stackTraceIn, type Trial, type ViolationKind } from "./trial.ts";

const kinds = (t: Trial): ViolationKind[] => t.violations.map((v) => v.kind);

describe("chaos harness: its checks catch what they name", () => {
  it("a stack trace, from Node or Deno, and not a one-line error", () => {
    assert.ok(stackTraceIn("TypeError: x is undefined\n    at run (file:///a/b.js:10:5)\n"));
    assert.ok(stackTraceIn("error: Uncaught (in promise) Error: boom\n"));
    assert.ok(stackTraceIn("file:///a/cli/main.js:12\n  throw e;\n  ^\n"));
    assert.equal(stackTraceIn("loom: out.csv exists; pass --force to overwrite it\n"), undefined);
  });

  it("a changed input, a leaked key, a wrong row and a second batch for one shard", async () => {
    const t = await openTrial(
      { provider: "openai", mode: "batch", prompts: ["a", "b"], shardSize: 2 },
      seededRng(1),
    );
    try {
      writeFileSync(t.output, `id,prompt,llm_response,llm_error\n1,a,${t.answerOf("a")},\n2,b,,\n`);
      assert.equal(t.checkOutput(), false);
      assert.deepEqual(kinds(t), ["lost-row"]);
      writeFileSync(t.output, `id,prompt,llm_response,llm_error\n2,b,x,\n1,a,y,\n`);
      t.checkOutput();
      assert.equal(kinds(t).at(-1), "wrong-row");

      const client = new OpenAI({ apiKey: t.key, baseURL: t.emu!.baseURL, maxRetries: 0 });
      const line = JSON.stringify({
        custom_id: "r1",
        method: "POST",
        url: "/v1/chat/completions",
        body: { model: "gpt-4o-mini", messages: [{ role: "user", content: "a" }] },
      });
      const file = await client.files.create({
        file: await toFile(Buffer.from(`${line}\n`), "in.jsonl"),
        purpose: "batch",
      });
      for (let i = 0; i < 2; i++) {
        await client.batches.create({
          input_file_id: file.id,
          endpoint: "/v1/chat/completions",
          completion_window: "24h",
        });
      }
      t.checkPayments();
      assert.equal(kinds(t).at(-1), "double-payment");

      writeFileSync(t.input, "id,prompt\n1,changed\n");
      writeFileSync(`${t.dir}/notes.txt`, `key=${t.key}\n`);
      t.finalChecks();
      assert.ok(kinds(t).includes("lost-file"), JSON.stringify(t.violations));
      assert.ok(kinds(t).includes("secret-leak"), JSON.stringify(t.violations));
    } finally {
      t.violations.length = 0;
      await closeTrial(t);
    }
  });

  it("a create refused for a wrong key is not a payment; another key is a secret too", async () => {
    const t = await openTrial(
      { provider: "anthropic", mode: "batch", prompts: ["a"], apiKey: "QxZj" },
      seededRng(2),
    );
    try {
      const wrong = "sk-wrong-0123456789abcdef";
      const created = () =>
        fetch(`${t.emu!.baseURL}/v1/messages/batches`, {
          method: "POST",
          headers: { "x-api-key": wrong, "anthropic-version": "2023-06-01" },
          body: "{}",
        }).then((r) => r.body?.cancel());
      await created();
      assert.equal(t.emu!.log.count("POST /v1/messages/batches"), 1, "the create was seen");
      assert.equal(t.creations(), 0);
      t.secret(`${wrong}\n`);
      writeFileSync(`${t.dir}/.env`, `ANTHROPIC_API_KEY=${wrong}\n`);
      t.finalChecks();
      assert.deepEqual(kinds(t), [], "the user's own .env may hold a key");
      writeFileSync(`${t.dir}/log.txt`, `sent ${wrong}\n`);
      t.finalChecks();
      assert.deepEqual(kinds(t), ["secret-leak"]);
      writeFileSync(`${t.dir}/log.txt`, `sent QxZj\n`);
      t.finalChecks();
      assert.deepEqual(kinds(t), ["secret-leak", "secret-leak"]);
    } finally {
      t.violations.length = 0;
      await closeTrial(t);
    }
  });
});

/** The scenarios where the state store is what is attacked, run again on a PostgreSQL store. */
const ON_POSTGRES = ["kill", "kill-sync", "concurrent", "fetch-flags"];

describe("chaos on a PostgreSQL store (a fresh database a trial)", () => {
  let server: PostgresServer | undefined;
  after(() => server?.stop());
  const state = async () => (server ??= await startPostgres()).createDatabase();
  for (const scenario of SCENARIOS.filter((s) => ON_POSTGRES.includes(s.name))) {
    for (const variant of scenario.variants) {
      it(`${scenario.name}: ${variant}`, async () => {
        const outcome = await runTrial(scenario, variant, 20261204, true, state);
        assert.equal(outcome.skipped, undefined, `skipped: ${outcome.skipped}`);
        assert.deepEqual(outcome.violations, [], formatReport({ seed: 0, trials: [outcome] }));
      });
    }
  }
});

for (const scenario of SCENARIOS) {
  describe(`chaos: ${scenario.name} (${scenario.about})`, () => {
    for (const variant of scenario.variants) {
      it(variant, async (t) => {
        const outcome = await runTrial(scenario, variant, 20261204, true);
        // Only a machine that cannot mount a tmpfs (not root) may skip, and only the disk trials.
        if (outcome.skipped?.startsWith("cannot mount")) return t.skip(outcome.skipped);
        assert.equal(outcome.skipped, undefined, `skipped: ${outcome.skipped}`);
        assert.deepEqual(outcome.violations, [], formatReport({ seed: 0, trials: [outcome] }));
      });
    }
  });
}
