/**
 * Random SIGKILLs: a batch job is run, fetched and waited for by a user whose commands are killed
 * at random moments (while it boots, uploads, creates, polls, merges or cleans up), then finished
 * with the commands Loom tells them to run. Every row must come back, once per shard paid.
 * @module
 */
import { existsSync } from "node:fs";
import type { Rng } from "../rng.ts";
import type { Scenario } from "../scenario.ts";
import { recover } from "../recover.ts";
import type { ChaosProvider } from "../trial.ts";

/**
 * Loom's failpoints (core/base/failpoints.ts): the steps where a kill is most likely to hurt, with how
 * many times a 3-shard, 7-row job reaches each (a kill is drawn among the reachable ones).
 */
const SUBMIT_POINTS: ReadonlyArray<[string, number]> = [
  ["submit:planned", 1],
  ["submit:uploaded", 3],
  ["submit:created", 3],
  ["submit:recorded", 3],
];
const FETCH_POINTS: ReadonlyArray<[string, number]> = [
  ["fetch:saving", 7],
  ["fetch:saved", 3],
  ["fetch:merging", 7],
  ["fetch:merged", 1],
  ["fetch:cleanup", 1],
  ["fetch:removing", 1],
];

/** A failpoint the command can reach: submit steps for a run, fetch steps for a fetch or a wait. */
function failpointFor(rng: Rng, args: readonly string[]): string {
  const points = args[0] === "fetch"
    ? FETCH_POINTS
    : args.includes("--wait")
    ? [...SUBMIT_POINTS, ...FETCH_POINTS]
    : SUBMIT_POINTS;
  const [step, times] = rng.pick(points);
  return `${step}@${rng.int(1, times)}`;
}

/** Killed commands per trial, at most. */
const KILLS = 4;

export const randomKills: Scenario = {
  name: "kill",
  about: "batch run and fetch killed by SIGKILL at random moments, then finished by hand",
  variants: ["openai", "anthropic", "google", "echo"],
  async run(ctx, variant) {
    const t = await ctx.open({
      provider: variant as ChaosProvider,
      mode: "batch",
      // A little latency and batches that take a few polls: more moments to be killed in.
      latencyMs: ctx.rng.int(0, 80),
      schedule: { advance: "polls", polls: ctx.rng.int(1, 3) },
    });
    for (let k = 0; k < KILLS && !existsSync(t.output); k++) {
      const jobs = await t.jobs();
      // What a user would type next: the job again (or waiting for it), or a fetch.
      const args = jobs.length === 0
        ? ctx.rng.pick([["run", "job.yaml"], ["run", "job.yaml", "--wait", "--poll", "0.2"]])
        : ctx.rng.pick([
          ["run", "job.yaml"],
          ["fetch"],
          ["fetch", "--wait", "--poll", "0.2"],
          ["fetch", "--id", jobs[0].id],
        ]);
      // Half the kills land at a random moment (boot alone takes a few hundred milliseconds; the
      // range covers every step after it), half at a random one of Loom's own risky steps.
      const result = await t.loom(
        args,
        !ctx.deterministic && ctx.rng.chance(0.5)
          ? { killAfterMs: ctx.rng.int(100, 1500) }
          : { env: { LOOM_FAILPOINT: failpointFor(ctx.rng, args) } },
      );
      if (!result.killed && result.code !== 0) {
        // A rerun of a pending job is refused (never paid again), and a batch whose create was
        // cut off that Loom cannot tell by its label (Anthropic's) stops for the user to adopt;
        // anything else is a finding.
        const pending = args[0] === "run" && /already submitted as/.test(result.stderr);
        const inDoubt = result.code === 2 && /loom adopt \S+ <batch-id>/.test(result.stderr);
        t.expect(
          pending || inDoubt,
          `loom ${args.join(" ")} exited ${result.code}: ${result.stderr.trim()}`,
        );
      }
      t.checkPayments();
    }
    if (await recover(t)) t.checkOutput();
    t.checkPayments();
    t.expect(
      t.creations() === t.shards,
      `${t.creations()} batches created for ${t.shards} shards`,
    );
  },
};

/** Requests a sync run has in flight at most (the job's concurrency). */
const SYNC_WORKERS = 3;

export const syncKills: Scenario = {
  name: "kill-sync",
  about: "a sync run killed by SIGKILL again and again, then run to the end",
  variants: ["openai", "anthropic", "google"],
  async run(ctx, variant) {
    const prompts = Array.from({ length: 36 }, (_, i) => `question ${i + 1}: name a colour`);
    const t = await ctx.open({
      provider: variant as ChaosProvider,
      mode: "sync",
      prompts,
      latencyMs: ctx.rng.int(60, 150),
      jobLines: [`sync: { workers: ${SYNC_WORKERS} }`],
    });
    const generated = () => t.emu!.log.entries.filter((e) => e.method === "POST").length;
    let kills = 0;
    for (let k = 0; k < KILLS && !existsSync(t.output); k++) {
      // Killed once the provider has answered a random number more requests (an event, so the
      // same in a loaded test run), or, outside the test suite, at a random moment.
      const target = generated() + ctx.rng.int(1, 5);
      const result = await t.loom(
        ["run", "job.yaml"],
        !ctx.deterministic && ctx.rng.chance(0.5)
          ? { killAfterMs: ctx.rng.int(200, 2500) }
          : { killWhen: () => generated() >= target },
      );
      if (result.killed) kills++;
      else t.expect(result.code === 0, `loom run exited ${result.code}: ${result.stderr.trim()}`);
    }
    if (!existsSync(t.output)) {
      const last = await t.loom(["run", "job.yaml"]);
      t.expect(last.code === 0, `the last run exited ${last.code}: ${last.stderr.trim()}`);
    }
    t.checkOutput();
    // Answers saved before a kill are never paid for again: only requests in flight at each
    // kill may be sent twice.
    const limit = prompts.length + kills * SYNC_WORKERS;
    if (generated() > limit) {
      t.fail(
        "double-payment",
        `${generated()} requests for ${prompts.length} rows and ${kills} kills (at most ${limit})`,
      );
    }
  },
};
