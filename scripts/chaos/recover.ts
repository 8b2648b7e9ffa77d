/**
 * Finishing a batch job the way a user would after something went wrong: run what Loom says to
 * run, nothing else. If Loom names a batch to adopt, adopt it (when the provider lists exactly
 * one that is not already the job's); if it says fetch, fetch; if no job is left and no output
 * exists, run the job again. A job these steps cannot finish is a stranded job.
 * @module
 */
import { existsSync } from "node:fs";
import type { CommandResult, Trial } from "./trial.ts";
import { firstLine } from "./trial.ts";

/** Steps a recovery may take before the job counts as stranded. */
const MAX_STEPS = 8;
/** A recovery command still running after this long is stuck. */
const HANG_MS = 60_000;

/**
 * Drives the trial's job to its output with plain commands (no kills, no faults added). Returns
 * false (and records `stranded-job`) when it cannot.
 */
export async function recover(t: Trial, last?: CommandResult): Promise<boolean> {
  let previous = last;
  for (let step = 0; step < MAX_STEPS; step++) {
    const jobs = await t.jobs();
    if (jobs.length === 0 && existsSync(t.output)) return true;
    const adopt = previous ? adoptionOf(previous, jobs) : undefined;
    let next: string[];
    if (adopt) next = ["adopt", ...adopt];
    else if (jobs.length === 0) next = ["run", "job.yaml"];
    else next = ["fetch", "--id", jobs[0].id, "--wait", "--poll", "0.2"];
    // A command that hangs strands the job as surely as one that fails.
    previous = await t.loom(next, { killAfterMs: HANG_MS });
    if (previous.killed) {
      t.fail("stranded-job", `loom ${next.join(" ")} still ran after ${HANG_MS} ms`);
    }
    if (previous.code !== 0 && previous.code !== 2) {
      t.fail(
        "unexpected",
        `recovery step loom ${next.join(" ")} exited ${previous.code}: ${
          firstLine(previous.stderr)
        }`,
      );
    }
  }
  const left = await t.jobs();
  t.fail(
    "stranded-job",
    `after ${MAX_STEPS} recovery steps: ${left.map((j) => `${j.id} ${j.status}`).join(", ")}; ` +
      `output ${existsSync(t.output) ? "written" : "missing"}; last: ${
        firstLine(previous?.stderr ?? "")
      }`,
  );
  return false;
}

/**
 * The `loom adopt <job> <batch>` a stopped command asks for, when the batch can be told: a
 * message naming the candidates, exactly one of which no shard of the job owns yet.
 */
export function adoptionOf(
  result: CommandResult,
  jobs: ReadonlyArray<{ id: string; shards: Array<{ batch: string | null }> }>,
): [string, string] | undefined {
  if (result.code !== 2) return undefined;
  const job = result.stderr.match(/loom adopt (\S+) <batch-id>/)?.[1];
  const listed = result.stderr.match(/has batches that could be it: ([^;]+);/)?.[1];
  if (!job || !listed) return undefined;
  const owned = new Set(jobs.find((j) => j.id === job)?.shards.map((s) => s.batch) ?? []);
  const free = listed.split(", ").map((s) => s.trim()).filter((id) => !owned.has(id));
  return free.length === 1 ? [job, free[0]] : undefined;
}
