/**
 * Commands at once: a submitted batch job is fetched, waited for, looked at and listed by several
 * commands started together (a user with two terminals, a cron job and a script). One merge, a
 * complete output, no stack trace; a command that finds the job busy or merged says so in a line.
 * @module
 */
import type { Scenario } from "../scenario.ts";
import { recover } from "../recover.ts";
import type { ChaosProvider } from "../trial.ts";

export const concurrentCommands: Scenario = {
  name: "concurrent",
  about: "fetch, fetch --wait, status and list of one batch job, all at once",
  variants: ["openai", "anthropic", "google"],
  async run(ctx, variant) {
    const t = await ctx.open({
      provider: variant as ChaosProvider,
      mode: "batch",
      latencyMs: ctx.rng.int(0, 60),
      schedule: { advance: "polls", polls: ctx.rng.int(1, 2) },
    });
    const submitted = await t.loom(["run", "job.yaml"]);
    if (!t.expect(submitted.code === 0, `loom run exited ${submitted.code}: ${submitted.stderr}`)) {
      return;
    }
    const [job] = await t.jobs();
    const choices = [
      ["fetch"],
      ["fetch", "--id", job.id],
      ["fetch", "--wait", "--poll", "0.2"],
      ["fetch", "--id", job.id, "--wait", "--poll", "0.2", "--json"],
      ["status", job.id],
      ["status", job.id, "--json"],
      ["list"],
    ];
    const commands = Array.from({ length: ctx.rng.int(3, 6) }, () => ctx.rng.pick(choices));
    const results = await Promise.all(
      commands.map((args) => t.loom(args, { killAfterMs: 60_000 })),
    );
    for (const r of results) {
      const benign = /being worked on by another Loom|already merged|is merged|no pending job/i
        .test(r.stderr);
      t.expect(
        r.code === 0 || benign,
        `loom ${r.args.join(" ")} exited ${r.code}: ${r.stderr.trim().slice(-500)}`,
      );
    }
    if (await recover(t)) t.checkOutput();
    t.checkPayments();
  },
};
