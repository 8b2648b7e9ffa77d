/**
 * The seed's fetch flags on real jobs: two pending batch jobs (one job file, two outputs), then
 * `fetch -i` (by id, a unique prefix or a provider batch id), `fetch -a`, `fetch --no-all`,
 * `fetch -k` (and a second fetch of the kept job), `fetch --force` over a file of the user's, and
 * `--input-changed` after the user edited the input. Each must do what `loom fetch --help` says
 * (the job it names merged, the others left pending, their outputs unwritten) and pay nothing:
 * no fetch creates a batch.
 * @module
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Rng } from "../rng.ts";
import type { Scenario } from "../scenario.ts";
import {
  type ChaosProvider,
  type CommandResult,
  firstLine,
  type ListedJob,
  type Trial,
} from "../trial.ts";

/** A job as `loom list --json` shows it, with its output and state. */
type Listed = ListedJob & { output: string; merged: unknown };

/** The two jobs' outputs: the job file's own, and a second one given with `-o`. */
const OUTPUTS = ["out.csv", "second.csv"] as const;

/** A trial with two jobs of one job file, and the batches its submissions paid for. */
class TwoJobs {
  paid = 0;
  readonly t: Trial;
  readonly rng: Rng;
  /** Whether the batches take a few polls to end (so a fetch that merges must wait). */
  readonly slow: boolean;

  constructor(t: Trial, rng: Rng, slow: boolean) {
    this.t = t;
    this.rng = rng;
    this.slow = slow;
  }

  path(output: string): string {
    return join(this.t.dir, output);
  }

  /** Submits the job into `output` (pending; nothing waits). */
  async submit(output: string): Promise<void> {
    const result = await this.t.loom(["run", "job.yaml", "-o", output]);
    this.paid += this.t.shards;
    this.t.expect(
      result.code === 0,
      `run -o ${output} exited ${result.code}: ${firstLine(result.stderr)}`,
    );
  }

  /** Jobs `loom list` shows, by output file name. */
  async jobs(): Promise<Map<string, Listed>> {
    const listed = (await this.t.jobs()) as Listed[];
    return new Map(listed.map((j) => [j.output.split("/").at(-1)!, j]));
  }

  /** A fetch meant to merge: it waits for the batches when they are slow. */
  merge(...args: string[]): Promise<CommandResult> {
    return this.fetch(...args, ...(this.slow ? ["--wait", "--poll", "0.2"] : []));
  }

  /** `loom fetch <args>`, checked to create no batch. */
  async fetch(...args: string[]): Promise<CommandResult> {
    const before = this.t.creations();
    const result = await this.t.loom(["fetch", ...args]);
    const after = this.t.creations();
    this.t.expect(after === before, `fetch ${args.join(" ")} created ${after - before} batch(es)`);
    return result;
  }

  ok(result: CommandResult): boolean {
    return this.t.expect(
      result.code === 0,
      `loom ${result.args.join(" ")} exited ${result.code}: ${firstLine(result.stderr)}`,
    );
  }

  /**
   * Checks which outputs a fetch wrote: `merged` have every row, the others none; the jobs
   * listed are the unmerged ones (and `kept` ones, marked merged).
   */
  async outcome(what: string, merged: readonly string[], kept: readonly string[] = []) {
    for (const output of OUTPUTS) {
      if (merged.includes(output)) this.t.checkOutput(this.path(output));
      else this.t.expect(!existsSync(this.path(output)), `${what} wrote ${output} too`);
    }
    const jobs = await this.jobs();
    for (const output of OUTPUTS) {
      const job = jobs.get(output);
      const pending = !merged.includes(output);
      if (pending) this.t.expect(!!job && !job.merged, `${what}: the job into ${output} is gone`);
      else if (kept.includes(output)) {
        this.t.expect(!!job?.merged, `${what}: the job into ${output} was not kept as merged`);
      } else this.t.expect(!job, `${what}: the job into ${output} is still listed`);
    }
  }
}

/** How a user names a job to `fetch -i`: its id, a unique prefix of it, or a batch id. */
function idOf(rng: Rng, job: Listed, other: Listed): string {
  const form = rng.pick(["id", "prefix", "batch"]);
  if (form === "batch") return rng.pick(job.shards).batch ?? job.id;
  if (form === "id") return job.id;
  let n = job.id.indexOf("-") + 2;
  while (other.id.startsWith(job.id.slice(0, n))) n++;
  return job.id.slice(0, n);
}

/** Two jobs pending; `-i` fetches one, `--no-all` the latest, `-a` (or nothing) the rest. */
async function select(w: TwoJobs): Promise<void> {
  const [first, second] = w.rng.chance(0.5) ? OUTPUTS : [OUTPUTS[1], OUTPUTS[0]];
  await w.submit(first);
  await w.submit(second);
  const jobs = await w.jobs();
  const named = w.rng.pick(OUTPUTS);
  const other = named === OUTPUTS[0] ? OUTPUTS[1] : OUTPUTS[0];
  const id = idOf(w.rng, jobs.get(named)!, jobs.get(other)!);
  const both = await w.fetch("-i", id, w.rng.pick(["-a", "--no-all"]));
  w.t.expect(both.code === 2, `fetch -i with --all/--no-all exited ${both.code}, not 2`);
  const unknown = await w.fetch("-i", "19990101-abcdef");
  w.t.expect(
    unknown.code === 2 && /^loom: .*19990101-abcdef/m.test(unknown.stderr),
    `fetch -i of no job exited ${unknown.code}: ${firstLine(unknown.stderr)}`,
  );
  if (w.slow) {
    // Not ended yet: a fetch without --wait reports and merges nothing.
    w.ok(await w.fetch("-i", id));
    await w.outcome(`fetch -i ${id} before the batches ended`, []);
  }
  if (!w.ok(await w.merge(w.rng.pick(["-i", "--id"]), id))) return;
  await w.outcome(`fetch -i ${id}`, [named]);
  // The user moves that output away and submits its job again: now it is the latest pending
  // job, and --no-all takes it alone.
  rmSync(w.path(named));
  await w.submit(named);
  if (!w.ok(await w.merge("--no-all"))) return;
  await w.outcome("fetch --no-all", [named]);
  // The rest: every pending job, or the one left, by its id.
  const ids = [...(await w.jobs()).values()].map((j) => j.id);
  const rest = w.rng.pick([["-a"], ["--all"], [], ["-i", ...ids]]);
  if (!w.ok(await w.merge(...rest))) return;
  await w.outcome(`fetch ${rest.join(" ")}`, OUTPUTS);
}

/** `-k` keeps the merged job's record; fetching it again says it is merged and changes nothing. */
async function keep(w: TwoJobs): Promise<void> {
  for (const output of OUTPUTS) await w.submit(output);
  const jobs = await w.jobs();
  const named = w.rng.pick(OUTPUTS);
  const other = named === OUTPUTS[0] ? OUTPUTS[1] : OUTPUTS[0];
  const id = jobs.get(named)!.id;
  if (!w.ok(await w.merge(w.rng.pick(["-k", "--keep"]), "-i", id))) return;
  await w.outcome(`fetch -k -i ${id}`, [named], [named]);
  w.t.protect(w.path(named));
  const again = await w.fetch("-i", id, ...(w.rng.chance(0.5) ? ["--force"] : []));
  w.ok(again);
  w.t.expect(
    /already merged/.test(again.stdout + again.stderr),
    `a second fetch of kept job ${id} does not say it is merged: ${firstLine(again.stdout)}`,
  );
  // A file of the user's where the other job merges: refused, then overwritten with --force.
  // --no-all takes the latest job not merged yet: the other, whatever the kept one's age.
  const mine = w.path(other);
  writeFileSync(mine, "mine\n");
  w.t.protect(mine);
  const refused = await w.merge(
    ...w.rng.pick([[], ["-a"], ["--no-all"], ["-i", jobs.get(other)!.id]]),
  );
  w.t.expect(
    refused.code === 2 && /exists; pass --force/.test(refused.stderr),
    `fetch over ${other} (the user's) exited ${refused.code}: ${firstLine(refused.stderr)}`,
  );
  w.t.release(mine);
  if (!w.ok(await w.merge("--force", ...w.rng.pick([[], ["--no-all"]])))) return;
  await w.outcome("fetch --force", OUTPUTS, [named]);
  // The kept record goes with forget; its output stays.
  w.ok(await w.t.loom(["forget", id]));
  await w.outcome(`forget ${id}`, OUTPUTS);
}

/** The input edited after submission: fetch refuses, naming --input-changed, until it is given. */
async function inputChanged(w: TwoJobs): Promise<void> {
  for (const output of OUTPUTS) await w.submit(output);
  const jobs = await w.jobs();
  // The user adds a column (the rows stay in place, so answers still match by position).
  w.t.release(w.t.input);
  const rows = readFileSync(w.t.input, "utf8").trimEnd().split("\n");
  writeFileSync(
    w.t.input,
    rows.map((r, i) => `${r},${i === 0 ? "note" : `n${i}`}`).join("\n") + "\n",
  );
  w.t.protect(w.t.input);
  // --force is about the output file only: it never merges over a changed input.
  // (The input is checked when the job is merged, so the fetch waits for the batches if slow.)
  const refused = await w.merge(...w.rng.pick([[], ["--force"]]));
  w.t.expect(
    refused.code === 2 && /changed/.test(refused.stderr) && /--input-changed/.test(refused.stderr),
    `fetch after the input changed exited ${refused.code}: ${firstLine(refused.stderr)}`,
  );
  await w.outcome("a fetch refused for a changed input", []);
  const named = w.rng.pick(OUTPUTS);
  if (!w.ok(await w.merge("--input-changed", "-i", jobs.get(named)!.id))) return;
  await w.outcome("fetch --input-changed -i", [named]);
  if (!w.ok(await w.merge("--input-changed"))) return;
  await w.outcome("fetch --input-changed", OUTPUTS);
}

const CASES: Record<string, (w: TwoJobs) => Promise<void>> = {
  select,
  keep,
  "input-changed": inputChanged,
};

export const fetchFlags: Scenario = {
  name: "fetch-flags",
  about: "fetch -i/-a/--no-all/-k/--force/--input-changed on two pending jobs; no fetch pays",
  variants: Object.keys(CASES),
  async run(ctx, variant) {
    const provider = ctx.rng.pick<ChaosProvider>(["openai", "anthropic", "google", "echo"]);
    // Batches that end at once, or after a poll or two (echo's batches always end at once).
    const slow = provider !== "echo" && ctx.rng.chance(0.5);
    const t = await ctx.open({
      provider,
      mode: "batch",
      prompts: ["name a colour", "count to three", "say hello in French"],
      shardSize: ctx.rng.int(1, 3),
      schedule: slow ? { advance: "polls", polls: ctx.rng.int(1, 2) } : { advance: "instant" },
    });
    const w = new TwoJobs(t, ctx.rng, slow);
    await CASES[variant](w);
    t.checkPayments(w.paid);
  },
};
