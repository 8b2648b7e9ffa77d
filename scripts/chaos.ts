/**
 * The chaos harness: tries Loom as a hostile user and a flaky network would (random SIGKILLs,
 * lost and slow batch creates, links and existing outputs, a poisoned row, a 429 storm, cache
 * clears during a run, read-only and full disks, keys with whitespace, the fetch flags) against
 * the loopback emulator, and reports every double payment, lost file or row, stack trace, stranded
 * job and leaked key. Exits 1 when it found any.
 *
 *   deno run -A scripts/chaos.ts                      every scenario, 3 trials each, a random seed
 *   deno run -A scripts/chaos.ts --trials 20 --seed 7 --scenario kill --scenario lost-create
 *   deno run -A scripts/chaos.ts --scenario kill --variant openai --variant echo
 *   deno run -A scripts/chaos.ts --state postgres --scenario kill --scenario concurrent
 *   node dist/scripts/chaos.js --json report.json     (after npm run build)
 *
 * A trial is repeatable from the seed the report prints beside it: `--replay kill/openai/123`
 * runs that trial alone, with the same choices (the moments of kills still race the machine).
 */
import { writeFileSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { formatReport, runChaos, runTrial, violationsOf } from "./chaos/scenario.ts";
import { SCENARIOS } from "./chaos/scenarios/mod.ts";
import { startPostgres } from "../core/test-support/postgres.ts";

const { values } = parseArgs({
  options: {
    trials: { type: "string", default: "3" },
    seed: { type: "string" },
    scenario: { type: "string", multiple: true, default: [] },
    variant: { type: "string", multiple: true, default: [] },
    json: { type: "string" },
    replay: { type: "string" },
    list: { type: "boolean" },
    state: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log("see the comment at the top of scripts/chaos.ts");
  process.exit(0);
}
if (values.list) {
  for (const s of SCENARIOS) {
    console.log(`${s.name.padEnd(14)} ${s.about} (${s.variants.join(", ")})`);
  }
  process.exit(0);
}
if (values.replay) {
  const [name, ...rest] = values.replay.split("/");
  const seed = Number(rest.pop());
  const scenario = SCENARIOS.find((s) => s.name === name);
  const variant = rest.join("/");
  if (!scenario || !scenario.variants.includes(variant) || !Number.isInteger(seed)) {
    console.error(
      `--replay ${values.replay}: use <scenario>/<variant>/<seed> as the report prints`,
    );
    process.exit(2);
  }
  const outcome = await runTrial(scenario, variant, seed);
  console.log(formatReport({ seed, trials: [outcome] }));
  for (const c of outcome.commands) console.log(`    ${c}`);
  process.exit(outcome.violations.length ? 1 : 0);
}
const unknown = values.scenario.filter((n) => !SCENARIOS.some((s) => s.name === n));
if (unknown.length) {
  console.error(
    `unknown scenario ${unknown.join(", ")}: use ${SCENARIOS.map((s) => s.name).join(", ")}`,
  );
  process.exit(2);
}
const scenarios = values.scenario.length
  ? SCENARIOS.filter((s) => values.scenario.includes(s.name))
  : SCENARIOS;
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const trials = Number(values.trials);
const picked = values.variant.length
  ? scenarios.map((s) => ({ ...s, variants: s.variants.filter((v) => values.variant.includes(v)) }))
  : scenarios;
if (values.state !== undefined && values.state !== "postgres") {
  console.error(`--state ${values.state}: only "postgres" (a fresh database a trial) is supported`);
  process.exit(2);
}
// `--state postgres`: a real PostgreSQL server for the run, a fresh database for each trial.
const postgres = values.state ? await startPostgres() : undefined;
const report = await runChaos(picked, {
  seed,
  trials,
  ...(postgres ? { state: () => postgres.createDatabase() } : {}),
  onTrial: (t) =>
    console.error(
      `${t.skipped ? "-" : t.violations.length ? "✗" : "✓"} ${t.scenario} ${t.variant} ` +
        `(seed ${t.seed}, ${(t.ms / 1000).toFixed(1)} s)${
          t.skipped ? `: skipped, ${t.skipped}` : ""
        }`,
    ),
});
await postgres?.stop();
console.log(formatReport(report));
if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2));
process.exitCode = violationsOf(report).length ? 1 : 0;
