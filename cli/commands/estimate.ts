/**
 * `loom tokens` (count every prompt's input tokens with the provider) and `loom plan` (what a
 * job will send and cost, before any money is spent; also `loom run --dry-run`).
 * @module
 */
import process from "node:process";
import { Presets, SingleBar } from "cli-progress";
import type { Command } from "commander";
import { type JobEstimate, planJobCost, usd } from "../../core/commands/estimate.ts";
import { EXIT, LoomUsageError } from "../../core/base/errors.ts";
import { type JobOverride, loadJob } from "../../core/job/load.ts";
import { displayPath } from "../../core/base/paths.ts";
import type { Plan } from "../../core/data/plan.ts";
import {
  countJobTokens,
  type CountProgress,
  TokensUnavailableError,
} from "../../core/commands/tokens.ts";
import { formatDuration, liveStyle } from "../progress.ts";
import { overridesFrom, type RunFlags } from "../job-flags.ts";
import { checkStdoutMode, STDOUT, stdoutRequest } from "../stdout-output.ts";

const out = (line = "") => process.stdout.write(`${line}\n`);
const thousands = (n: number) => Math.round(n).toLocaleString("en-US");

/**
 * The count's progress: done/total, est_total, errors, elapsed, ETA (a bar on a terminal, lines
 * elsewhere). The count reads its input once, so the total is an estimate until the reading ends
 * (shown as `~total` in lines); the last report has the exact one.
 */
function countProgress(
  json: boolean,
): { onProgress: (p: CountProgress) => void; stop: () => void } {
  const started = Date.now();
  const fields = (p: CountProgress) => {
    const elapsed = (Date.now() - started) / 1000;
    const counted = p.done - p.errors;
    const estTotal = counted ? Math.round((p.tokens / counted) * p.total) : 0;
    const eta = p.done ? (elapsed / p.done) * (p.total - p.done) : Infinity;
    return { done: p.done, total: p.total, est_total: estTotal, errors: p.errors, elapsed, eta };
  };
  if (json) {
    let last = 0;
    return {
      onProgress: (p) => {
        if (Date.now() - last < 1000 && !(p.totalKnown && p.done === p.total)) return;
        last = Date.now();
        out(JSON.stringify({ type: "tokens", ...fields(p) }));
      },
      stop: () => {},
    };
  }
  if (liveStyle() === "bar") {
    const bar = new SingleBar({
      stream: process.stderr,
      format:
        " {bar} {value}/{total} | est_total {est} | errors {errors} | elapsed {elapsed} | ETA {eta}",
      hideCursor: true,
      fps: 8,
    }, Presets.shades_classic);
    let shown = false;
    return {
      onProgress: (p) => {
        const f = fields(p);
        const payload = {
          est: thousands(f.est_total),
          errors: f.errors,
          elapsed: formatDuration(f.elapsed),
          eta: formatDuration(f.eta),
        };
        if (!shown) bar.start(p.total, p.done, payload);
        else if (bar.getTotal() !== p.total) bar.setTotal(p.total);
        shown = true;
        bar.update(p.done, payload);
      },
      stop: () => bar.stop(),
    };
  }
  let last = Date.now();
  return {
    onProgress: (p) => {
      if (Date.now() - last < 10_000) return;
      last = Date.now();
      const f = fields(p);
      process.stderr.write(
        `loom: ${f.done}/${p.totalKnown ? "" : "~"}${f.total} prompts | est_total ${
          thousands(f.est_total)
        } | errors ${f.errors} | elapsed ${formatDuration(f.elapsed)} | ETA ${
          formatDuration(f.eta)
        }\n`,
      );
    },
    stop: () => {},
  };
}

/** The first few rows whose count failed, on stderr, and how many more there were. */
function printRowErrors(samples: readonly string[], errors: number): void {
  for (const sample of samples) process.stderr.write(`loom: ${sample}\n`);
  if (errors > samples.length) {
    process.stderr.write(`loom: … and ${errors - samples.length} more rows in error\n`);
  }
}

/** Loads the job from a file and/or flags, as `run` does. */
function jobFrom(jobFile: string | undefined, flags: RunFlags, command: Command) {
  if (!jobFile && !flags.file) {
    throw new LoomUsageError("give a job file or a dataset with --file; see --help");
  }
  const overrides: JobOverride[] = overridesFrom(
    flags,
    command.getOptionValueSource("cache") === "cli",
  );
  return loadJob({ file: jobFile, overrides, cwd: process.cwd() });
}

/** Prints a plan and its estimate. */
export function printEstimate(plan: Plan, e: JobEstimate): void {
  out(
    `plan: ${e.rows} rows from ${displayPath(plan.input)} → ${
      displayPath(plan.output)
    } (${e.provider} ${e.model}, ${e.mode} mode)`,
  );
  out(
    `  requests: ${thousands(e.requests)}${
      e.rows > e.requests
        ? ` (${e.rows - e.requests} row${
          e.rows - e.requests === 1 ? " has" : "s have"
        } no prompt and ${e.rows - e.requests === 1 ? "is" : "are"} not sent)`
        : ""
    }`,
  );
  if (e.shards) {
    out(`  batches: ${e.shards.length}`);
    for (const [i, s] of e.shards.entries()) {
      out(
        `    batch ${i + 1}: rows ${s.firstRow + 1}–${s.lastRow + 1}, ${thousands(s.requests)} ${
          s.requests === 1 ? "request" : "requests"
        }, ${thousands(s.bytes)} bytes`,
      );
    }
  }
  const how = e.inputSource === "counted"
    ? `counted by ${e.provider}${
      e.countErrors
        ? `; ${e.countErrors} ${
          e.countErrors === 1
            ? "row could not be counted and is"
            : "rows could not be counted and are"
        } estimated at 4 characters a token`
        : ""
    }`
    : "estimated at 4 characters a token; --count-tokens asks the provider";
  out(`  input tokens: ${thousands(e.inputTokens)} (${how})`);
  const per = e.outputSource === "max_tokens"
    ? "params.max_tokens"
    : e.outputSource === "provider default"
    ? `${e.provider}'s default max_tokens`
    : "assumed: the job sets no max_tokens";
  out(
    `  output tokens: at most ${thousands(e.outputTokens)} (${
      thousands(e.outputTokensPerRow)
    } a row, ${per})`,
  );
  if (!e.price || !e.cost) {
    out(
      `  cost: unknown (no price for ${e.provider} ${e.model} in Loom's table; give it in cost.prices)`,
    );
  } else {
    const p = e.price.price;
    out(`  prices (${e.price.from}): $${p.input} input, $${p.output} output per million tokens`);
    if (e.batchPrice) {
      const { input, output, given } = e.batchPrice;
      const basis = given.input && given.output
        ? "cost.prices batch_input and batch_output"
        : given.input || given.output
        ? `cost.prices ${given.input ? "batch_input" : "batch_output"}, the ${
          given.input ? "output" : "input"
        } at half the sync price`
        : "half the sync prices";
      out(`  batch prices: $${input} input, $${output} output per million tokens (${basis})`);
    }
    if (e.cost.batch) {
      out(
        `  cost in batch mode: up to ${usd(e.cost.batch.total)} (input ${
          usd(e.cost.batch.input)
        }, output up to ${usd(e.cost.batch.output)})`,
      );
    }
    out(
      `  cost in sync mode:  up to ${usd(e.cost.sync.total)} (input ${
        usd(e.cost.sync.input)
      }, output up to ${usd(e.cost.sync.output)})`,
    );
  }
  if (e.cap) {
    out(
      `  spend cap: ${usd(e.cap.maxUsd)} (cost.max_usd): ${
        e.cap.exceeded ? "EXCEEDED; a run refuses to start without --over-cap" : "within"
      }`,
    );
  }
  for (const note of e.notes ?? []) out(`  note: ${note}`);
}

/** Runs `loom plan` / `--dry-run`. */
export async function runPlan(
  jobFile: string | undefined,
  flags: RunFlags & { countTokens?: boolean },
  command: Command,
): Promise<void> {
  const loaded = await jobFrom(jobFile, flags, command);
  const toStdout = stdoutRequest(loaded);
  if (toStdout) checkStdoutMode(loaded.spec.mode, toStdout);
  // Planned with the default output path, shown as "-".
  const job = toStdout
    ? { ...loaded, spec: { ...loaded.spec, output: { ...loaded.spec.output, path: undefined } } }
    : loaded;
  const workers = flags.workers === undefined ? undefined : Number(flags.workers);
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1)) {
    throw new LoomUsageError("--workers takes a whole number of at least 1");
  }
  const progress = flags.countTokens ? countProgress(Boolean(flags.json)) : undefined;
  try {
    const { plan: planned, estimate } = await planJobCost(job, {
      apiKey: flags.apiKey,
      count: flags.countTokens,
      workers,
      onProgress: progress?.onProgress,
    });
    progress?.stop();
    printRowErrors(estimate.countSamples ?? [], estimate.countErrors ?? 0);
    const plan = toStdout ? { ...planned, output: STDOUT } : planned;
    if (flags.json) {
      out(JSON.stringify({ type: "plan", input: plan.input, output: plan.output, ...estimate }));
    } else printEstimate(plan, estimate);
  } finally {
    progress?.stop();
  }
}

/** Registers `tokens` and `plan`. */
export function registerEstimate(program: Command): void {
  program
    .command("tokens")
    .description("count the input tokens of every prompt with the provider (nothing is generated)")
    .argument("[job]", "YAML job file")
    .option("-f, --file <path>", "input dataset")
    .option("-p, --provider <name>", "provider")
    .option("-m, --model <id>", "model id")
    .option("-c, --col <column>", "column holding the prompt (default: prompt)")
    .option("-w, --workers <n>", "counting calls at once (default 8)")
    .option("--base-url <url>", "the provider's endpoint (openai-compatible servers, the emulator)")
    .option("--api-key <key>", "API key (default: the provider's environment variable)")
    .option("--json", "print progress and the result as JSON lines")
    .action(async (jobFile: string | undefined, flags: RunFlags, command: Command) => {
      const job = await jobFrom(jobFile, { ...flags, cache: true }, command);
      const workers = flags.workers === undefined ? undefined : Number(flags.workers);
      if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1)) {
        throw new LoomUsageError("--workers takes a whole number of at least 1");
      }
      const progress = countProgress(Boolean(flags.json));
      let result;
      try {
        result = await countJobTokens(job, {
          apiKey: flags.apiKey,
          workers,
          onProgress: progress.onProgress,
        });
      } catch (error) {
        progress.stop();
        if (!(error instanceof TokensUnavailableError)) throw error;
        process.stderr.write(`loom: ${error.message}\n`);
        process.exitCode = EXIT.usage;
        return;
      }
      progress.stop();
      printRowErrors(result.samples, result.errors);
      const line =
        `Total input tokens: ${thousands(result.total)} across ${
          thousands(result.prompts)
        } prompts ` +
        `(provider=${result.provider}, model=${result.model}, errors=${result.errors}${
          result.estimated
            ? `; ${result.estimated} ${
              result.estimated === 1 ? "prompt" : "prompts"
            } the provider did not count ${result.estimated === 1 ? "is" : "are"} estimated ` +
              `locally at ${thousands(result.estimatedTokens)} tokens`
            : ""
        })`;
      if (flags.json) {
        out(
          JSON.stringify({
            type: "total",
            tokens: result.total,
            prompts: result.prompts,
            provider: result.provider,
            model: result.model,
            errors: result.errors,
            estimated_prompts: result.estimated,
            estimated_tokens: result.estimatedTokens,
          }),
        );
      } else out(line);
      // Nothing the provider counted: the count failed, whatever was estimated.
      if (result.prompts === result.estimated && result.errors > 0) process.exitCode = EXIT.failed;
    });

  program
    .command("plan")
    .description(
      "show what a job would send and cost, without sending anything (no API key needed)",
    )
    .argument("[job]", "YAML job file")
    .option("-f, --file <path>", "input dataset")
    .option("-p, --provider <name>", "provider")
    .option("-m, --model <id>", "model id")
    .option("-c, --col <column>", "column holding the prompt (default: prompt)")
    .option("-o, --output <path>", "output file, or - for standard output")
    .option("--sync", "plan a sync run")
    .option("--batch", "plan a batch run")
    .option(
      "--count-tokens",
      "count input tokens with the provider's counting endpoint (free) instead of estimating",
    )
    .option("-w, --workers <n>", "counting calls at once with --count-tokens (default 8)")
    .option("--base-url <url>", "the provider's endpoint (openai-compatible servers, the emulator)")
    .option(
      "--api-key <key>",
      "API key (default: the provider's environment variable; needed only with --count-tokens)",
    )
    .option("--json", "print the plan as one JSON object")
    .action((
      jobFile: string | undefined,
      flags: RunFlags & { countTokens?: boolean },
      command: Command,
    ) => runPlan(jobFile, { ...flags, cache: true }, command));
}
