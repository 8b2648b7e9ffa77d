/**
 * Sync runs under a hostile provider and a busy user: one row the provider refuses (or a whole
 * streak of them), a 429 storm that passes or outlasts the retry budget (sync and batch), and
 * `loom cache clear --yes` run again and again while a run is answering. Rows are never lost:
 * every row is answered or carries its own error, a stopped run says why and what is kept, and
 * the command it suggests finishes the job.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { parse } from "csv-parse/sync";
import type { FaultAction } from "../../../emulator/mod.ts";
import type { ChaosContext, Scenario } from "../scenario.ts";
import { recover } from "../recover.ts";
import type { Rng } from "../rng.ts";
import type { ChaosProvider, CommandResult, Trial } from "../trial.ts";

type Open = ChaosContext["open"];

/** Every provider's sync generate call (chat completions, messages, generateContent). */
export const GENERATE = /(\/chat\/completions|\/v1\/messages|:generateContent)$/;

/** A batch's status call, per provider. */
const BATCH_STATUS = {
  openai: /^\/v1\/batches\/[^/]+$/,
  anthropic: /^\/v1\/messages\/batches\/[^/]+$/,
  google: /^\/v1beta\/batches\/[^/:]+$/,
} as const;

/** A batch create, per provider. */
const BATCH_CREATE = {
  openai: /^\/v1\/batches$/,
  anthropic: /^\/v1\/messages\/batches$/,
  google: /:batchGenerateContent$/,
} as const;

/** `n` distinct prompts, `mark` in those the scenario's faults pick out. */
export function prompts(n: number, marked: (i: number) => boolean, mark: string): string[] {
  return Array.from(
    { length: n },
    (_, i) => `row ${i + 1}: write a line about the number ${i + 1}${marked(i) ? ` ${mark}` : ""}`,
  );
}

/** The counts a finished sync run prints: `(6 answered, 1 from cache, 0 failed)`. */
function countsOf(result: CommandResult): { ok: number; cached: number; failed: number } | null {
  const m = result.stdout.match(/\((\d+) answered, (\d+) from cache, (\d+) failed\)/);
  return m ? { ok: Number(m[1]), cached: Number(m[2]), failed: Number(m[3]) } : null;
}

/** The last line a command printed on stderr: its error, after any notes and progress. */
export function lastLine(text: string): string {
  return text.trim().split("\n").at(-1) ?? "";
}

/** Records `unexpected` unless the command exited with `code`. */
function expectExit(t: Trial, result: CommandResult, code: number): boolean {
  return t.expect(
    result.code === code,
    `loom ${result.args.join(" ")} exited ${result.code}, not ${code}: ${lastLine(result.stderr)}`,
  );
}

/** A message a provider might refuse a prompt with; undefined: the emulator's own. */
/**
 * A sync run stopped early (exit 1, saying why and that answers are cached) and wrote no output;
 * once the fault is gone, a rerun finishes, taking the `good` rows answered before the stop from
 * the cache.
 */
async function expectStoppedThenResumed(
  t: Trial,
  run: CommandResult,
  why: RegExp,
  good: number,
): Promise<void> {
  if (expectExit(t, run, 1)) {
    t.expect(
      why.test(run.stderr) && /cached, so a rerun resumes/.test(run.stderr),
      `the stopped run says why and what is kept: ${run.stderr.trim()}`,
    );
  }
  t.expect(!existsSync(t.output), "a stopped run wrote no output");
  t.emu!.faults.clear();
  const rerun = await t.loom(["run", "job.yaml"]);
  if (expectExit(t, rerun, 0)) {
    t.checkOutput();
    t.expect(
      countsOf(rerun)?.cached === good,
      `the rerun takes the ${good} rows answered before the stop from the cache: ${rerun.stdout.trim()}`,
    );
  }
}

function refusalMessage(rng: Rng): string | undefined {
  return rng.pick([
    undefined,
    "Invalid request",
    "Bad Request",
    "The request was rejected because it was considered high risk",
    "Request contains an invalid argument.",
  ]);
}

/** The `llm_error` of each output row (0-based), read back. */
function errorsIn(path: string): string[] {
  const rows = parse(readFileSync(path), { columns: true }) as Record<string, string>[];
  return rows.map((r) => r.llm_error ?? "");
}

/**
 * One row's prompt is refused with a 400 on every call: the run answers every other row, gives
 * that row the provider's message, exits 0 and says a row failed; a rerun does the same (it
 * never stops at that row), and once the provider takes the prompt, a rerun answers it.
 * The `streak` variant: every row after the first few is refused alike; the run stops early
 * saying so (no output, the answers so far cached), and a rerun once the refusal is gone
 * finishes from the cache.
 */
export const poisonedRow: Scenario = {
  name: "poisoned-row",
  about: "a 400 for one row's prompt (or for many rows in a row) in a sync run",
  variants: ["openai", "anthropic", "google", "openrouter", "streak"],
  async run(ctx, variant) {
    if (variant === "streak") return await streak(ctx.rng, ctx.open);
    const rng = ctx.rng;
    const rows = rng.int(5, 9);
    const poisoned = rng.int(0, rows - 1);
    const message = refusalMessage(rng);
    const t = await ctx.open({
      provider: variant as ChaosProvider,
      mode: "sync",
      prompts: prompts(rows, (i) => i === poisoned, "POISON"),
      jobLines: [`sync: { workers: ${rng.int(1, 4)} }`],
      faults: [{
        name: "poisoned-row",
        match: { method: "POST", path: GENERATE, promptContains: "POISON" },
        action: { kind: "status", status: 400, ...(message ? { message } : {}) },
      }],
    });
    const erred = new Set([poisoned]);
    for (const args of [["run", "job.yaml"], ["run", "job.yaml", "--force"]]) {
      const run = await t.loom(args);
      if (!expectExit(t, run, 0)) continue;
      t.expect(
        countsOf(run)?.failed === 1 && /1 row\(s\) failed/.test(run.stderr),
        `loom ${args.join(" ")} says one row failed: ${run.stdout.trim()} ${lastLine(run.stderr)}`,
      );
      if (!t.checkOutput(t.output, erred)) continue;
      const said = errorsIn(t.output)[poisoned];
      t.expect(
        message ? said.includes(message) : /400/.test(said),
        `row ${poisoned + 1}'s llm_error names the provider's refusal (${
          message ?? "400"
        }): ${said}`,
      );
    }
    // The provider takes the prompt now (it was reworded upstream, say): a rerun answers it.
    t.emu!.faults.clear();
    const fixed = await t.loom(["run", "job.yaml", "--force"]);
    if (expectExit(t, fixed, 0)) {
      t.checkOutput();
      const counts = countsOf(fixed);
      t.expect(
        counts?.ok === 1 && counts.cached === rows - 1,
        `the rerun asks only the refused row again: ${fixed.stdout.trim()}`,
      );
    }
  },
};

/** The streak variant of {@link poisonedRow}. */
async function streak(rng: Rng, open: Open): Promise<void> {
  const provider = rng.pick(["openai", "anthropic", "google", "openrouter"] as const);
  const good = rng.int(1, 5);
  const rows = good + 20 + rng.int(2, 10);
  // A refusal that names the job, not the row, as a model refusing a parameter does; its request
  // id differs call by call, as a provider's does.
  const message = rng.pick([
    "Unsupported value: 'temperature' does not support 0.3 with this model.",
    "Invalid request",
    undefined,
  ]);
  const t = await open({
    provider,
    mode: "sync",
    prompts: prompts(rows, (i) => i >= good, "REFUSED"),
    // One worker: the rows before the streak are answered before it starts, whatever the load.
    jobLines: ["sync: { workers: 1 }"],
    faults: [{
      name: "refused-streak",
      match: { method: "POST", path: GENERATE, promptContains: "REFUSED" },
      action: { kind: "status", status: 400, ...(message ? { message } : {}) },
    }],
  });
  const run = await t.loom(["run", "job.yaml"]);
  await expectStoppedThenResumed(
    t,
    run,
    /^loom: stopped: the provider refused \d+ rows in a row/m,
    good,
  );
}

/** A 429 with small, varied retry hints (seconds, or milliseconds as OpenAI and Anthropic send). */
function rateLimit(rng: Rng): FaultAction {
  return {
    kind: "status",
    status: 429,
    ...(rng.chance(0.5) ? { retryAfter: rng.int(0, 1) } : {}),
    ...(rng.chance(0.4) ? { retryAfterMs: rng.int(50, 600) } : {}),
  };
}

/** Retry budget in the trials whose storm must outlast it (`LOOM_RETRY_WAIT_SECONDS`). */
const SHORT_BUDGET = { LOOM_RETRY_WAIT_SECONDS: "1.5" };

/**
 * A 429 storm. Sync, per provider: a storm that ends within the retry budget loses no row.
 * `outlast`: a storm on every row after the first few that outlasts a short budget stops the
 * run, saying the answers so far are cached; the rerun after it finishes from the cache.
 * `batch`: 429s on batch creates or status calls, passing or outlasting the budget; a command
 * that gives up says the job is intact and to run it again, and later commands finish the job
 * with one create per shard.
 */
export const rateLimitStorm: Scenario = {
  name: "429-storm",
  about: "429 storms in sync runs and on batch calls, within and past the retry budget",
  variants: ["openai", "anthropic", "google", "outlast", "batch"],
  async run(ctx, variant) {
    const rng = ctx.rng;
    if (variant === "batch") return await batchStorm(rng, ctx.open);
    if (variant === "outlast") return await outlastingStorm(rng, ctx.open);
    const rows = rng.int(6, 10);
    // Within the budget: a handful of 429s among the first calls, so that no row meets more than
    // a few (each doubles its backoff) and the trial stays a few seconds long.
    const every = rng.int(1, 2);
    const t = await ctx.open({
      provider: variant as ChaosProvider,
      mode: "sync",
      prompts: prompts(rows, () => false, ""),
      jobLines: [`sync: { workers: ${rng.int(2, 4)}, cache: ${rng.chance(0.5)} }`],
      faults: [{
        name: "storm",
        match: { method: "POST", path: GENERATE, every, first: every * rng.int(3, 6) },
        action: rateLimit(rng),
      }],
    });
    const run = await t.loom(["run", "job.yaml"]);
    if (expectExit(t, run, 0)) {
      t.checkOutput();
      t.expect(countsOf(run)?.failed === 0, `no row failed: ${run.stdout.trim()}`);
    }
  },
};

/** The `outlast` variant of {@link rateLimitStorm}. */
async function outlastingStorm(rng: Rng, open: Open) {
  const good = rng.int(1, 4);
  const rows = good + rng.int(3, 6);
  const t = await open({
    provider: rng.pick(["openai", "anthropic", "google", "openrouter"] as const),
    mode: "sync",
    prompts: prompts(rows, (i) => i >= good, "STORM"),
    jobLines: ["sync: { workers: 1 }"],
    faults: [{
      name: "endless-storm",
      match: { method: "POST", path: GENERATE, promptContains: "STORM" },
      action: rateLimit(rng),
    }],
  });
  const run = await t.loom(["run", "job.yaml"], { env: SHORT_BUDGET });
  await expectStoppedThenResumed(
    t,
    run,
    /^loom: stopped: 3 rows in a row were still refused with 429/m,
    good,
  );
}

/** The `batch` variant of {@link rateLimitStorm}. */
async function batchStorm(rng: Rng, open: Open) {
  const provider = rng.pick(["openai", "anthropic", "google"] as const);
  const target = rng.pick(["create", "status"] as const);
  const outlasts = rng.chance(0.5);
  const t = await open({
    provider,
    mode: "batch",
    prompts: prompts(rng.int(3, 6), () => false, ""),
    shardSize: 2,
  });
  const path = target === "create" ? BATCH_CREATE[provider] : BATCH_STATUS[provider];
  t.emu!.faults.add({
    name: `${target}-storm`,
    match: {
      method: target === "create" ? "POST" : "GET",
      path,
      ...(outlasts ? {} : { first: rng.int(1, 3) }),
    },
    action: rateLimit(rng),
  });
  // `fetch --wait` gives up on status checks that fail 30 polls in a row, each after its own
  // retries: a tiny budget and short polls keep that to a few seconds.
  const env = !outlasts
    ? {}
    : target === "status"
    ? { LOOM_RETRY_WAIT_SECONDS: "0.3" }
    : SHORT_BUDGET;
  const run = await t.loom(["run", "job.yaml", "--wait", "--poll", "0.05"], { env });
  t.checkPayments();
  if (!outlasts) {
    if (expectExit(t, run, 0)) t.checkOutput();
  } else if (expectExit(t, run, 1)) {
    t.expect(
      /gave up/.test(run.stderr) && /job \S* ?is (intact|recorded)/i.test(run.stderr) &&
        /run the same (command|job) again|loom fetch --id \S+ resumes/.test(run.stderr),
      `the command that gave up says the job is intact and how to resume: ${lastLine(run.stderr)}`,
    );
    // Still stormy: a fetch gives up the same way and leaves the job as it was.
    const jobs = await t.jobs();
    if (jobs.length) {
      const fetch = await t.loom(["fetch", "--id", jobs[0].id], { env });
      t.expect(
        fetch.code === 1 || fetch.code === 0,
        `loom fetch during the storm exited ${fetch.code}: ${lastLine(fetch.stderr)}`,
      );
      t.checkPayments();
    }
  }
  t.emu!.faults.clear();
  // The storm is over: do what the command said, then finish as a user would.
  if (/run the same job again/.test(run.stderr)) {
    const rerun = await t.loom(["run", "job.yaml", "--wait", "--poll", "0.05"]);
    if (expectExit(t, rerun, 0)) t.checkOutput();
    t.checkPayments();
  }
  if (!existsSync(t.output) && await recover(t, run)) t.checkOutput();
  t.checkPayments();
  t.expect(t.creations() === t.shards, `${t.creations()} batches created for ${t.shards} shards`);
}

/**
 * `loom cache clear --yes` run a few times, at random moments, while a sync run with the cache
 * on is answering (the emulator's latency makes it last a couple of seconds): neither command
 * prints a stack trace, the run's output is complete, and a rerun afterwards is fine.
 */
export const cacheClear: Scenario = {
  name: "cache-clear",
  about: "loom cache clear --yes, repeatedly, during a sync run with the cache on",
  variants: ["openai", "anthropic"],
  async run(ctx, variant) {
    const rng = ctx.rng;
    const rows = rng.int(8, 14);
    const t = await ctx.open({
      provider: variant as ChaosProvider,
      mode: "sync",
      prompts: prompts(rows, () => false, ""),
      jobLines: [`sync: { workers: ${rng.int(1, 3)} }`],
      latencyMs: rng.int(150, 300),
    });
    // A first run fills the cache, so the clears during the second have entries to remove while
    // the run reads and writes them (half the trials start cold instead).
    if (rng.chance(0.5)) expectExit(t, await t.loom(["run", "job.yaml"]), 0);
    const args = existsSync(t.output) ? ["run", "job.yaml", "--force"] : ["run", "job.yaml"];
    let running = true;
    const run = t.loom(args).finally(() => (running = false));
    const clears: CommandResult[] = [];
    for (let i = rng.int(2, 4); i > 0 && running; i--) {
      await new Promise((resolve) => setTimeout(resolve, rng.int(0, 400)));
      clears.push(await t.loom(["cache", "clear", "--yes"]));
    }
    const done = await run;
    if (expectExit(t, done, 0)) t.checkOutput();
    for (const clear of clears) expectExit(t, clear, 0);
    const rerun = await t.loom(["run", "job.yaml", "--force"]);
    if (expectExit(t, rerun, 0)) t.checkOutput();
  },
};
