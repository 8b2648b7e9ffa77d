/**
 * `loom run [JOB.yaml]`: runs a job file, or a job given entirely by flags; flags override the
 * job file's fields.
 * @module
 */
import process from "node:process";
import type { Command } from "commander";
import { BUILTIN_PLUGINS } from "../../plugins/_builtins.ts";
import { LoomUsageError } from "../../core/base/errors.ts";
import { loadJob } from "../../core/job/load.ts";
import { exitCodeFor, runJob } from "../../core/commands/run.ts";
import { displayPath } from "../../core/base/paths.ts";
import { isInteractive } from "../../core/base/runtime.ts";
import { askYesNo } from "../ask.ts";
import { runPlan } from "./estimate.ts";
import { usd } from "../../core/commands/estimate.ts";
import { overridesFrom, type RunFlags } from "../job-flags.ts";
import { createProgress, formatDuration, liveStyle, type ProgressStyle } from "../progress.ts";
import {
  checkStdoutMode,
  STDOUT,
  type StdoutOutput,
  stdoutOutput,
  stdoutRequest,
} from "../stdout-output.ts";

/** The built-in providers' names, for the help. */
const PROVIDERS = Object.keys(BUILTIN_PLUGINS.provider).sort();

/** Registers `run` on the program. */
export function registerRun(program: Command): void {
  program
    .command("run", { isDefault: true })
    .description("run a job file, or a job given by flags (flags override the job file)")
    .argument("[job]", "YAML job file")
    .option("-f, --file <path>", "input dataset (.json, .jsonl, .csv, optionally .gz)")
    .option("-p, --provider <name>", `provider: ${PROVIDERS.join(", ")}, or one a plugin adds`)
    .option("-m, --model <id>", "model id")
    .option("-c, --col <column>", "column holding the prompt (default: prompt)")
    .option(
      "-o, --output <path>",
      "output file, or - for standard output (default: <name>_results_<provider>_<model>.<ext> beside the input)",
    )
    .option("--sync", "call the provider live, row by row")
    .option("--batch", "use the provider's batch API (the default mode)")
    .option("-w, --workers <n>", "concurrent requests in sync mode (default 8)")
    .option("--no-cache", "neither read nor write the response cache")
    .option("--rpm <n>", "requests per minute never to exceed")
    .option("--tpm <n>", "tokens per minute never to exceed")
    .option("--force", "overwrite an existing output file")
    .option("--with-meta", "add llm_provider and llm_model columns")
    .option(
      "--with-usage",
      "add llm_finish_reason, llm_input_tokens, llm_output_tokens, llm_reasoning_tokens and llm_cost columns",
    )
    .option("--base-url <url>", "the provider's endpoint (openai-compatible servers, the emulator)")
    .option(
      "--schema <file|json>",
      "JSON Schema the answer must match: a .json/.yaml file, or inline JSON",
    )
    .option("--api-key <key>", "API key (default: the provider's environment variable)")
    .option("--wait", "batch mode: poll until the batches have ended, then merge")
    .option("--poll <seconds>", "seconds between polls with --wait (default 30)")
    .option(
      "--resubmit",
      "batch mode: submit even though the same job is already pending (pays again)",
    )
    .option("--dry-run", "show the plan and estimated cost (loom plan) instead of running")
    .option(
      "--count-tokens",
      "with --dry-run: count input tokens with the provider instead of estimating",
    )
    .option(
      "--over-cap",
      "run even though the estimated cost exceeds the job's spend cap (cost.max_usd)",
    )
    .option("--json", "print progress events as JSON lines on stdout")
    .option("-q, --quiet", "print nothing but errors and the final summary")
    .addHelpText(
      "after",
      `\nProviders: ${
        PROVIDERS.join(", ")
      } (echo runs offline; plugins add more, see LOOM_PLUGINS)\n` +
        "\nExamples:\n  loom jobs/hello.yaml\n  loom run -f data.csv -p echo -m test --sync -c text\n  loom run jobs/summaries.yaml --sync --workers 16 -o out.csv\n" +
        "  loom run -f data.csv -p echo -m test --sync -o - | head   the output on standard output",
    )
    .action(async (jobFile: string | undefined, flags: RunFlags, command: Command) => {
      if (flags.dryRun) return runPlan(jobFile, flags, command);
      const overrides = overridesFrom(flags, command.getOptionValueSource("cache") === "cli");
      if (!jobFile && !flags.file) {
        throw new LoomUsageError(
          "give a job file (loom run JOB.yaml) or a dataset with --file; see loom run --help",
        );
      }
      let job = await loadJob({ file: jobFile, overrides, cwd: process.cwd() });
      let stdoutFile: StdoutOutput | undefined;
      const toStdout = stdoutRequest(job);
      if (toStdout) {
        checkStdoutMode(job.spec.mode, toStdout);
        if (flags.json) {
          throw new LoomUsageError(
            `${toStdout} and --json both write to standard output; give one`,
          );
        }
        stdoutFile = await stdoutOutput(job.spec.dataset.path);
        job = {
          ...job,
          spec: { ...job.spec, output: { ...job.spec.output, path: stdoutFile.path } },
        };
      }
      const interactive = isInteractive();
      const style: ProgressStyle = flags.json ? "json" : flags.quiet ? "none" : liveStyle();
      const progress = createProgress(style);
      // The temporary file is no concern of the user's: the plan line says "-".
      const onEvent: typeof progress.onEvent = stdoutFile
        ? (event) => progress.onEvent(event.type === "plan" ? { ...event, output: STDOUT } : event)
        : progress.onEvent;

      const controller = new AbortController();
      let interrupts = 0;
      const onSignal = () => {
        // First Ctrl-C stops cleanly (answers so far stay cached); a second one quits at once.
        if (++interrupts > 1) process.exit(130);
        progress.stop();
        process.stderr.write("\nloom: interrupted; finishing up (Ctrl-C again to quit now)\n");
        controller.abort(new Error("interrupted"));
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        const poll = flags.poll === undefined ? undefined : Number(flags.poll);
        if (poll !== undefined && !(poll > 0)) {
          throw new LoomUsageError("--poll takes a number of seconds greater than 0");
        }
        const summary = await runJob(job, {
          force: flags.force,
          apiKey: flags.apiKey,
          wait: flags.wait,
          overCap: flags.overCap,
          resubmit: flags.resubmit,
          ...(poll === undefined ? {} : { pollMs: poll * 1000 }),
          signal: controller.signal,
          onEvent,
          confirmOverwrite: interactive
            ? (path) => askYesNo(`${displayPath(path)} exists. Overwrite it?`)
            : undefined,
        });
        const parts = [
          `${summary.ok} answered`,
          `${summary.cached} from cache`,
          `${summary.errors} failed`,
        ];
        if (summary.job) {
          const { id, shards } = summary.job;
          if (!flags.json) {
            process.stdout.write(
              `submitted job ${id}: ${summary.rows} rows in ${shards} batch${
                shards === 1 ? "" : "es"
              }\n` +
                `fetch it with: loom fetch --id ${id}   (or wait for it: loom fetch --id ${id} --wait)\n`,
            );
          }
          return;
        }
        if (stdoutFile) await stdoutFile.copy();
        if (!flags.json) {
          const line = `wrote ${
            stdoutFile ? "standard output" : displayPath(summary.output!)
          }: ${summary.rows} row${summary.rows === 1 ? "" : "s"} (${parts.join(", ")}) in ${
            formatDuration(summary.elapsedMs / 1000)
          }`;
          const cost = summary.cost === undefined
            ? ""
            : `cost reported by the provider: ${usd(summary.cost)}`;
          if (stdoutFile) process.stderr.write(`loom: ${line}\n${cost && `loom: ${cost}\n`}`);
          else process.stdout.write(`${line}\n${cost && `  ${cost}\n`}`);
          if (summary.errors > 0) {
            process.stderr.write(
              `loom: ${summary.errors} row(s) failed; their reasons are in the llm_error column\n`,
            );
          }
        }
        process.exitCode = exitCodeFor(summary);
      } finally {
        progress.stop();
        await stdoutFile?.dispose();
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}
