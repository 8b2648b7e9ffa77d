/**
 * Read-only and full disks under the output folder and under `LOOM_HOME`, for sync runs, batch
 * runs and `loom fetch`. Root ignores permission bits, so a read-only folder is a read-only
 * mount, and a full disk a small tmpfs filled with filler files. Expected: a one-line `loom:`
 * error naming the path, no batch paid when the output cannot be written, no half-written
 * output, the job intact; and once the disk is writable or freed, the command Loom suggests
 * finishes the job.
 * @module
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fill, Mounts, unfill } from "../mounts.ts";
import type { ChaosContext, Scenario } from "../scenario.ts";
import { recover } from "../recover.ts";
import type { Rng } from "../rng.ts";
import type { ChaosProvider, CommandResult, Trial } from "../trial.ts";
import { GENERATE, lastLine, prompts } from "./sync.ts";

/** Records `unexpected` unless the command failed with one `loom:` line naming `path`. */
function expectFault(t: Trial, result: CommandResult, path: string, what: string): boolean {
  const said = lastLine(result.stderr);
  return t.expect(
    result.code === 1 && said.startsWith("loom: ") && said.includes(path),
    `${what}: loom ${
      result.args.join(" ")
    } should fail (exit 1) with one loom: line naming ${path}; ` +
      `exited ${result.code}: ${result.stderr.trim().split("\n").slice(-3).join(" | ")}`,
  );
}

/** Records `unexpected` unless the command exited 0. */
function expectDone(t: Trial, result: CommandResult): boolean {
  return t.expect(
    result.code === 0,
    `loom ${result.args.join(" ")} exited ${result.code}: ${lastLine(result.stderr)}`,
  );
}

/** The calls that answer a row (sync) the emulator saw. */
function generateCalls(t: Trial): number {
  return t.emu ? t.emu.log.count(GENERATE) : 0;
}

/** A provider for a trial: the batch providers through the emulator, or echo (files only). */
function providerFor(rng: Rng): ChaosProvider {
  return rng.pick(["openai", "anthropic", "google", "echo"]);
}

/** Records `lost-file` if Loom left anything but the filler in `dir` (a temporary file, say). */
function expectOnlyFiller(t: Trial, dir: string): void {
  const left = readdirSync(dir).filter((f) => !f.startsWith("filler-"));
  if (left.length) t.fail("lost-file", `left in ${dir} after a failed write: ${left.join(", ")}`);
}

type Variant =
  | "ro-output/sync"
  | "ro-output/batch"
  | "ro-home/sync"
  | "ro-home/batch"
  | "full-output/sync"
  | "full-output/fetch"
  | "full-home";

/** Read-only and full disks (see the module comment); each variant stages one of them. */
export const disks: Scenario = {
  name: "disks",
  about: "read-only and full disks under the output and LOOM_HOME, for sync, batch and fetch",
  variants: [
    "ro-output/sync",
    "ro-output/batch",
    "ro-home/sync",
    "ro-home/batch",
    "full-output/sync",
    "full-output/fetch",
    "full-home",
  ],
  async run(ctx, variant) {
    const mounts = new Mounts();
    try {
      await STAGES[variant as Variant](ctx, mounts);
    } finally {
      mounts.unmountAll();
    }
  },
};

const STAGES: Record<Variant, (ctx: ChaosContext, mounts: Mounts) => Promise<void>> = {
  "ro-output/sync": (ctx, mounts) => readOnlyOutput(ctx, mounts, "sync"),
  "ro-output/batch": (ctx, mounts) => readOnlyOutput(ctx, mounts, "batch"),
  "ro-home/sync": readOnlyHomeSync,
  "ro-home/batch": readOnlyHomeBatch,
  "full-output/sync": fullOutputSync,
  "full-output/fetch": fullOutputFetch,
  "full-home": fullHome,
};

/**
 * The output folder is a read-only mount: the run fails before any call (no row, no batch paid)
 * naming the folder; once it is writable, the same run finishes.
 */
async function readOnlyOutput(ctx: ChaosContext, mounts: Mounts, mode: "sync" | "batch") {
  const rng = ctx.rng;
  const t = await ctx.open({
    provider: providerFor(rng),
    mode,
    output: "results/out.csv",
    prompts: prompts(rng.int(3, 7), () => false, ""),
    shardSize: 2,
  });
  const folder = join(t.dir, "results");
  if (!mounts.tmpfs(folder, 64, ["ro"])) ctx.skip("cannot mount tmpfs");
  const args = rng.pick([["run", "job.yaml"], ["run", "job.yaml", "--wait", "--poll", "0.2"]]);
  const refused = await t.loom(args);
  expectFault(t, refused, "results", "a read-only output folder");
  t.expect(
    t.creations() === 0,
    `${t.creations()} batches paid for an output that cannot be written`,
  );
  t.expect(
    generateCalls(t) === 0,
    `${generateCalls(t)} rows asked for an output that cannot be written`,
  );
  expectOnlyFiller(t, folder);
  mounts.remount(folder, "rw");
  if (mode === "sync") {
    if (expectDone(t, await t.loom(args))) t.checkOutput();
  } else if (await recover(t)) {
    t.checkOutput();
    t.expect(t.creations() === t.shards, `${t.creations()} batches created for ${t.shards} shards`);
  }
}

/**
 * `LOOM_HOME` is read-only for a sync run (its cache, maybe filled by an earlier run): the run
 * answers every row without the cache, warning once, or fails with one line naming the folder;
 * once it is writable, a rerun is fine.
 */
async function readOnlyHomeSync(ctx: ChaosContext, mounts: Mounts) {
  const rng = ctx.rng;
  const t = await ctx.open({
    provider: providerFor(rng),
    mode: "sync",
    prompts: prompts(rng.int(3, 7), () => false, ""),
  });
  if (rng.chance(0.5)) expectDone(t, await t.loom(["run", "job.yaml"]));
  if (!mounts.bind(t.home) || !mounts.remount(t.home, "ro")) ctx.skip("cannot mount read-only");
  const args = existsSync(t.output) ? ["run", "job.yaml", "--force"] : ["run", "job.yaml"];
  const run = await t.loom(args);
  if (run.code === 0) {
    t.checkOutput();
    t.expect(
      /cache/.test(run.stderr) || /from cache/.test(run.stdout),
      `a run that cannot write its cache says so: ${run.stderr.trim()}`,
    );
  } else expectFault(t, run, t.home, "a read-only LOOM_HOME");
  mounts.remount(t.home, "rw");
  if (expectDone(t, await t.loom(["run", "job.yaml", "--force"]))) t.checkOutput();
}

/**
 * `LOOM_HOME` is read-only before a batch run (nothing may be paid: the job could not be
 * recorded) or between the run and its fetch (the fetch fails naming the folder, the job intact);
 * once it is writable, the commands Loom suggests finish the job with one create per shard.
 */
async function readOnlyHomeBatch(ctx: ChaosContext, mounts: Mounts) {
  const rng = ctx.rng;
  const t = await ctx.open({
    provider: providerFor(rng),
    mode: "batch",
    prompts: prompts(rng.int(3, 6), () => false, ""),
    shardSize: 2,
  });
  const beforeRun = rng.chance(0.5);
  let last: CommandResult | undefined;
  if (!beforeRun) expectDone(t, await t.loom(["run", "job.yaml"]));
  if (!mounts.bind(t.home) || !mounts.remount(t.home, "ro")) ctx.skip("cannot mount read-only");
  if (beforeRun) {
    last = await t.loom(["run", "job.yaml"]);
    expectFault(t, last, t.home, "a read-only LOOM_HOME before a batch run");
    t.expect(
      t.creations() === 0,
      `${t.creations()} batches paid for a job that cannot be recorded`,
    );
  } else {
    last = await t.loom(rng.pick([["fetch"], ["fetch", "--wait", "--poll", "0.2"]]));
    expectFault(t, last, t.home, "a read-only LOOM_HOME at fetch");
    t.expect(!existsSync(t.output), "a fetch that cannot record its results writes no output");
  }
  mounts.remount(t.home, "rw");
  if (await recover(t, last)) t.checkOutput();
  t.checkPayments();
  t.expect(t.creations() === t.shards, `${t.creations()} batches created for ${t.shards} shards`);
}

/** Prompts long enough that a few rows' answers fill more than a page. */
function longPrompts(rng: Rng): string[] {
  const words = "the quick brown fox jumps over a lazy dog near the river bank at dusk".split(" ");
  // 16+ rows of 60 words: the output (each prompt twice, as itself and in its answer) passes
  // 12 KB, more than the up to 2 pages a full disk has left.
  return prompts(rng.int(16, 24), () => false, "").map((p) =>
    `${p}: ${Array.from({ length: 60 }, () => rng.pick(words)).join(" ")}`
  );
}

/**
 * The output folder's disk is full (or has a page or two left): the sync run's write fails with
 * one line naming the output, no half-written file is left, the answers are cached; once the
 * disk is freed, a rerun writes the output from the cache.
 */
async function fullOutputSync(ctx: ChaosContext, mounts: Mounts) {
  const rng = ctx.rng;
  const t = await ctx.open({
    provider: providerFor(rng),
    mode: "sync",
    output: "results/out.csv",
    prompts: longPrompts(rng),
  });
  const folder = join(t.dir, "results");
  if (!mounts.tmpfs(folder, 16)) ctx.skip("cannot mount tmpfs");
  fill(folder, rng.int(0, 2));
  const run = await t.loom(["run", "job.yaml"]);
  // An output written "successfully" onto a full disk is checked too: a truncated one loses rows.
  if (!expectFault(t, run, "results/out.csv", "a full disk under the output")) t.checkOutput();
  expectOnlyFiller(t, folder);
  unfill(folder);
  const rerun = await t.loom(["run", "job.yaml"]);
  if (expectDone(t, rerun)) {
    t.checkOutput();
    t.expect(
      rerun.stdout.includes(`(0 answered, ${t.prompts.length} from cache`),
      `the rerun writes the answers paid for from the cache: ${rerun.stdout.trim()}`,
    );
  }
}

/**
 * A batch job whose output folder's disk is full when its results are merged (by `run --wait` or
 * `loom fetch`): the merge fails with one line naming the output, nothing half-written, the job
 * intact; once the disk is freed, `loom fetch` finishes it with no batch paid twice.
 */
async function fullOutputFetch(ctx: ChaosContext, mounts: Mounts) {
  const rng = ctx.rng;
  const t = await ctx.open({
    provider: providerFor(rng),
    mode: "batch",
    output: "results/out.csv",
    prompts: longPrompts(rng),
    shardSize: rng.int(4, 8),
  });
  const folder = join(t.dir, "results");
  if (!mounts.tmpfs(folder, 16)) ctx.skip("cannot mount tmpfs");
  fill(folder, rng.int(0, 2));
  let merge: CommandResult;
  if (rng.chance(0.5)) merge = await t.loom(["run", "job.yaml", "--wait", "--poll", "0.2"]);
  else {
    expectDone(t, await t.loom(["run", "job.yaml"]));
    merge = await t.loom(rng.pick([["fetch"], ["fetch", "--wait", "--poll", "0.2"]]));
  }
  if (!expectFault(t, merge, "results/out.csv", "a full disk under the output at merge")) {
    t.checkOutput();
  }
  expectOnlyFiller(t, folder);
  const jobs = await t.jobs();
  t.expect(jobs.length === 1, `the job is kept for a later fetch: ${JSON.stringify(jobs)}`);
  unfill(folder);
  if (await recover(t, merge)) t.checkOutput();
  t.checkPayments();
  t.expect(t.creations() === t.shards, `${t.creations()} batches created for ${t.shards} shards`);
}

/**
 * `LOOM_HOME` sits on a disk with a few pages left (none, or room for the first writes only): a
 * sync run answers every row (a cache that cannot be written is only a warning) or fails with
 * one line; a batch run records what it pays for, or fails before paying. Once the disk is
 * freed, the commands Loom suggests finish the job, one create per shard.
 */
async function fullHome(ctx: ChaosContext, mounts: Mounts) {
  const rng = ctx.rng;
  const mode = rng.pick(["sync", "batch"] as const);
  const t = await ctx.open({
    provider: providerFor(rng),
    mode,
    prompts: prompts(rng.int(4, 8), () => false, ""),
    shardSize: 2,
  });
  if (!mounts.tmpfs(t.home, 32)) ctx.skip("cannot mount tmpfs");
  fill(t.home, rng.int(0, 16));
  const args = rng.pick([["run", "job.yaml"], ["run", "job.yaml", "--wait", "--poll", "0.2"]]);
  const run = await t.loom(args);
  if (run.code !== 0) expectFault(t, run, t.home, "a full LOOM_HOME");
  else if (mode === "sync") t.checkOutput();
  t.checkPayments();
  unfill(t.home);
  if (mode === "sync") {
    if (!existsSync(t.output) && expectDone(t, await t.loom(["run", "job.yaml"]))) t.checkOutput();
    return;
  }
  if (await recover(t, run)) t.checkOutput();
  t.checkPayments();
  t.expect(t.creations() === t.shards, `${t.creations()} batches created for ${t.shards} shards`);
}
