/**
 * Chaos scenarios and the runner that repeats them: each scenario is tried `trials` times per
 * variant (a provider, say), each trial from its own seed, and every broken invariant is gathered
 * into one {@link ChaosReport}. A trial that cannot run on this machine (no tmpfs to mount, say)
 * is reported as skipped with its reason, never as passed.
 * @module
 */
import { type Rng, seededRng } from "./rng.ts";
import { closeTrial, openTrial, type Trial, type TrialSetup, type Violation } from "./trial.ts";

/** What a scenario's trial gets from the runner. */
export interface ChaosContext {
  /** This trial's random choices (repeatable from the seed in the report). */
  readonly rng: Rng;
  /**
   * True in the test suite: choices that race the machine's speed (a kill after N milliseconds)
   * are replaced by exact ones (a failpoint), so a trial's outcome never depends on the load.
   */
  readonly deterministic: boolean;
  /** Opens a trial workspace; the runner checks and closes it when the trial ends. */
  open(setup: TrialSetup): Promise<Trial>;
  /** Ends the trial as skipped (this machine cannot stage it). */
  skip(reason: string): never;
}

/** One kind of hostile situation, tried against the real CLI. */
export interface Scenario {
  /** Short name, for `--scenario` and the report. */
  readonly name: string;
  /** What it does to Loom, in a sentence. */
  readonly about: string;
  /** Variants every round runs (providers, flags); one trial each. */
  readonly variants: readonly string[];
  /** One trial of one variant. Records violations on the trials it opens. */
  run(ctx: ChaosContext, variant: string): Promise<void>;
}

/** Thrown by {@link ChaosContext.skip}. */
class SkipTrial extends Error {}

/** One trial's outcome. */
export interface TrialOutcome {
  scenario: string;
  variant: string;
  seed: number;
  skipped?: string;
  violations: Violation[];
  /** Batch creates the emulator saw, and the shards paid for (batch trials only). */
  creates: number;
  shards: number;
  /** Commands that died by SIGKILL. */
  kills: number;
  /** The commands run, for a failed trial: `loom …` and how each ended. */
  commands: string[];
  ms: number;
}

/** Everything a chaos run found. */
export interface ChaosReport {
  seed: number;
  trials: TrialOutcome[];
}

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  seed: number;
  /** Trials per scenario and variant. */
  trials: number;
  /** Called after each trial (progress). */
  onTrial?: (outcome: TrialOutcome) => void;
  /** See {@link ChaosContext.deterministic}. */
  deterministic?: boolean;
  /** A fresh `LOOM_STATE` for each trial (a new PostgreSQL database); default the SQLite file. */
  state?: () => Promise<string>;
}

/** A trial's seed: the run's seed mixed with where the trial stands, so each is repeatable alone. */
export function trialSeed(seed: number, scenario: string, variant: string, index: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const ch of `${scenario}/${variant}/${index}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}

/** Runs one trial of one scenario's variant. */
export async function runTrial(
  scenario: Scenario,
  variant: string,
  seed: number,
  deterministic = false,
  state?: () => Promise<string>,
): Promise<TrialOutcome> {
  const started = Date.now();
  const opened: Trial[] = [];
  const outcome: TrialOutcome = {
    scenario: scenario.name,
    variant,
    seed,
    violations: [],
    creates: 0,
    shards: 0,
    kills: 0,
    commands: [],
    ms: 0,
  };
  const rng = seededRng(seed);
  const ctx: ChaosContext = {
    rng,
    deterministic,
    async open(setup) {
      const trial = await openTrial(setup, rng, state ? await state() : undefined);
      opened.push(trial);
      return trial;
    },
    skip(reason) {
      throw new SkipTrial(reason);
    },
  };
  try {
    await scenario.run(ctx, variant);
  } catch (e) {
    if (e instanceof SkipTrial) outcome.skipped = e.message;
    else {
      outcome.violations.push({
        kind: "unexpected",
        detail: `the trial itself failed: ${(e as Error).stack ?? e}`,
      });
    }
  }
  for (const trial of opened) {
    if (trial.setup.mode === "batch") {
      outcome.creates += trial.creations();
      outcome.shards += trial.paidFor;
    }
    try {
      await closeTrial(trial);
    } catch (e) {
      trial.fail("unexpected", `closing the trial failed: ${(e as Error).message}`);
    }
    outcome.violations.push(...trial.violations);
    outcome.kills += trial.commands.filter((c) => c.killed).length;
    outcome.commands.push(
      ...trial.commands.map((c) =>
        `loom ${c.args.join(" ")} → ${c.killed ? "killed" : `exit ${c.code ?? c.signal}`}`
      ),
    );
  }
  outcome.ms = Date.now() - started;
  return outcome;
}

/** Runs every scenario's variants `trials` times. */
export async function runChaos(
  scenarios: readonly Scenario[],
  options: ChaosOptions,
): Promise<ChaosReport> {
  const report: ChaosReport = { seed: options.seed, trials: [] };
  for (const scenario of scenarios) {
    for (let i = 0; i < options.trials; i++) {
      for (const variant of scenario.variants) {
        const seed = trialSeed(options.seed, scenario.name, variant, i);
        const outcome = await runTrial(
          scenario,
          variant,
          seed,
          options.deterministic,
          options.state,
        );
        report.trials.push(outcome);
        options.onTrial?.(outcome);
      }
    }
  }
  return report;
}

/** The violations of a report, all trials together. */
export function violationsOf(report: ChaosReport): Violation[] {
  return report.trials.flatMap((t) => t.violations);
}

/** The report as a table (one line per scenario and variant), then every violation with its seed. */
export function formatReport(report: ChaosReport): string {
  const groups = new Map<string, TrialOutcome[]>();
  for (const t of report.trials) {
    const key = `${t.scenario} ${t.variant}`;
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  const lines = [
    `chaos run, seed ${report.seed}`,
    "scenario variant                     trials  clean  skipped  kills  violations  creates/shards",
  ];
  for (const [key, ts] of groups) {
    const run = ts.filter((t) => !t.skipped);
    const clean = run.filter((t) => t.violations.length === 0).length;
    const creates = ts.reduce((n, t) => n + t.creates, 0);
    const shards = ts.reduce((n, t) => n + t.shards, 0);
    lines.push(
      [
        key.padEnd(36),
        String(ts.length).padStart(6),
        String(clean).padStart(6),
        String(ts.length - run.length).padStart(8),
        String(ts.reduce((n, t) => n + t.kills, 0)).padStart(6),
        String(run.reduce((n, t) => n + t.violations.length, 0)).padStart(11),
        (shards ? `${creates}/${shards}` : "-").padStart(15),
      ].join(" "),
    );
  }
  const kinds = new Map<string, number>();
  for (const v of violationsOf(report)) kinds.set(v.kind, (kinds.get(v.kind) ?? 0) + 1);
  const trials = report.trials.length;
  const skipped = report.trials.filter((t) => t.skipped).length;
  lines.push(
    "",
    `${trials} trials, ${skipped} skipped; violations: ${
      kinds.size ? [...kinds].map(([k, n]) => `${n} ${k}`).join(", ") : "none"
    }`,
  );
  for (const t of report.trials) {
    if (t.skipped) lines.push(`skipped ${t.scenario} ${t.variant}: ${t.skipped}`);
    for (const v of t.violations) {
      lines.push(`✗ ${t.scenario}/${t.variant}/${t.seed} ${v.kind}: ${v.detail}`);
    }
    if (t.violations.length) lines.push(...t.commands.map((c) => `    ${c}`));
  }
  return lines.join("\n");
}
