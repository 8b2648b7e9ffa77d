/**
 * Lost and slow batch creates: the provider carries a create out but its answer comes after the
 * client's timeout, the connection is reset, or no answer ever comes; or it is merely slow. The
 * new batch is listed only after a random number of list calls (providers list new batches late).
 * The user then does what Loom says. A create is never repeated on Loom's own: creates counted
 * at the emulator equal the job's shards.
 * @module
 */
import type { FaultAction } from "../../../emulator/mod.ts";
import { CREATE_PATH } from "../../../core/test-support/batch-providers.ts";
import type { Scenario } from "../scenario.ts";
import { recover } from "../recover.ts";
import { type ChaosProvider, firstLine } from "../trial.ts";

/** The client's timeout in these trials; a `late` answer comes well after it. */
const TIMEOUT_MS = 2000;

type Fault = "late" | "reset" | "never" | "slow";

const VARIANTS = (["openai", "anthropic", "google"] as const).flatMap((p) =>
  (["late", "reset", "never", "slow"] as const).map((f) => `${p}/${f}`)
);

export const lostCreates: Scenario = {
  name: "lost-create",
  about: "a batch create carried out but answered late, reset, never, or slowly; listed late",
  variants: VARIANTS,
  async run(ctx, variant) {
    const [provider, fault] = variant.split("/") as [keyof typeof CREATE_PATH, Fault];
    const action: FaultAction = fault === "slow"
      ? { kind: "slow", delayMs: ctx.rng.int(200, TIMEOUT_MS / 2) }
      : {
        kind: "lost",
        answer: fault,
        delayMs: TIMEOUT_MS * 3,
        listedAfter: ctx.rng.int(0, 4),
      };
    const t = await ctx.open({
      provider: provider as ChaosProvider,
      mode: "batch",
      // Few shards: the slow answers and settle windows make each create cost seconds.
      prompts: ["name a colour", "count to three", "spell the word loom", "say hello in French"],
      shardSize: 2,
      providerOptions: [`timeout_ms: ${TIMEOUT_MS}`],
    });
    // Which create loses its answer: the first, the second, or both.
    const which = ctx.rng.pick([{ first: 1 }, { every: 2 }, { first: 2 }]);
    t.emu!.faults.add({
      name: `create-${fault}`,
      match: { method: "POST", path: CREATE_PATH[provider], ...which },
      action,
    });
    const run = await t.loom(["run", "job.yaml"]);
    t.checkPayments();
    t.expect(
      run.code === 0 || run.code === 2,
      `loom run exited ${run.code}: ${firstLine(run.stderr)}`,
    );
    if (run.code === 2) {
      t.expect(
        /loom adopt \S+ <batch-id>/.test(run.stderr) && /--resubmit/.test(run.stderr),
        `a stopped run says what to run: ${firstLine(run.stderr)}`,
      );
    }
    if (await recover(t, run)) t.checkOutput();
    t.checkPayments();
    t.expect(
      t.creations() === t.shards,
      `${t.creations()} batches created for ${t.shards} shards`,
    );
  },
};
