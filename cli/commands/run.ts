/**
 * `loom run [JOB.yaml]`: runs a job file, or a job given entirely by flags; flags override the
 * job file's fields.
 * @module
 */
import process from "node:process";
import type { Command } from "commander";
import { LoomUsageError } from "../../core/errors.ts";
import { type JobOverride, loadJob } from "../../core/job/load.ts";
import { exitCodeFor, runJob } from "../../core/run/job.ts";
import { displayPath } from "../../core/paths.ts";
import { isInteractive } from "../../core/runtime.ts";
import { askYesNo } from "../ask.ts";
import { createProgress, formatDuration, type ProgressStyle } from "../progress.ts";

/** Options commander parses for `run`. */
interface RunFlags {
  file?: string;
  provider?: string;
  model?: string;
  col?: string;
  output?: string;
  sync?: boolean;
  batch?: boolean;
  workers?: string;
  cache: boolean;
  force?: boolean;
  withMeta?: boolean;
  withUsage?: boolean;
  baseUrl?: string;
  schema?: string;
  rpm?: string;
  tpm?: string;
  apiKey?: string;
  json?: boolean;
  quiet?: boolean;
  wait?: boolean;
  poll?: string;
  resubmit?: boolean;
}

/** `--schema`: inline JSON when it looks like an object, else a file path. */
function schemaFlag(value: string): unknown {
  if (!value.trim().startsWith("{")) return value;
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new LoomUsageError(`--schema: not valid JSON (${(error as Error).message}); give a JSON object or a file path`);
  }
}

/** Turns the flags into job overrides (each remembers the flag it came from, for messages). */
export function overridesFrom(flags: RunFlags, cacheFromCli: boolean): JobOverride[] {
  if (flags.sync && flags.batch) throw new LoomUsageError("--sync and --batch contradict each other; give one");
  const list: JobOverride[] = [];
  const add = (path: string[], value: unknown, flag: string, clears?: string[][]) => {
    if (value !== undefined) list.push({ path, value, flag, ...(clears ? { clears } : {}) });
  };
  add(["dataset", "path"], flags.file, "--file");
  add(["provider"], flags.provider, "--provider");
  add(["model"], flags.model, "--model");
  add(["prompt", "column"], flags.col, "--col", [["prompt", "template"]]);
  add(["output", "path"], flags.output, "--output");
  if (flags.sync) add(["mode"], "sync", "--sync");
  if (flags.batch) add(["mode"], "batch", "--batch");
  if (flags.workers !== undefined) {
    const n = Number(flags.workers);
    add(["sync", "workers"], Number.isFinite(n) && flags.workers.trim() !== "" ? n : flags.workers, "--workers");
  }
  if (cacheFromCli && flags.cache === false) add(["sync", "cache"], false, "--no-cache");
  for (const [flag, key] of [["--rpm", "rpm"], ["--tpm", "tpm"]] as const) {
    const value = flags[key];
    if (value !== undefined) add(["sync", key], Number.isFinite(Number(value)) && value.trim() !== "" ? Number(value) : value, flag);
  }
  if (flags.withMeta) add(["output", "with_meta"], true, "--with-meta");
  if (flags.withUsage) add(["output", "with_usage"], true, "--with-usage");
  add(["provider_options", "base_url"], flags.baseUrl, "--base-url");
  add(["schema"], flags.schema === undefined ? undefined : schemaFlag(flags.schema), "--schema");
  return list;
}

/** Registers `run` on the program. */
export function registerRun(program: Command): void {
  program
    .command("run", { isDefault: true })
    .description("run a job file, or a job given by flags (flags override the job file)")
    .argument("[job]", "YAML job file")
    .option("-f, --file <path>", "input dataset (.json, .jsonl, .csv, optionally .gz)")
    .option("-p, --provider <name>", "provider: echo, or a plugin's")
    .option("-m, --model <id>", "model id")
    .option("-c, --col <column>", "column holding the prompt (default: prompt)")
    .option("-o, --output <path>", "output file (default: <name>_results_<provider>_<model>.<ext> beside the input)")
    .option("--sync", "call the provider live, row by row")
    .option("--batch", "use the provider's batch API (the default mode)")
    .option("-w, --workers <n>", "concurrent requests in sync mode (default 8)")
    .option("--no-cache", "neither read nor write the response cache")
    .option("--rpm <n>", "requests per minute never to exceed")
    .option("--tpm <n>", "tokens per minute never to exceed")
    .option("--force", "overwrite an existing output file")
    .option("--with-meta", "add llm_provider and llm_model columns")
    .option("--with-usage", "add llm_finish_reason, llm_input_tokens and llm_output_tokens columns")
    .option("--base-url <url>", "the provider's endpoint (openai-compatible servers, the emulator)")
    .option("--schema <file|json>", "JSON Schema the answer must match: a .json/.yaml file, or inline JSON")
    .option("--api-key <key>", "API key (default: the provider's environment variable)")
    .option("--wait", "batch mode: poll until the batches have ended, then merge")
    .option("--poll <seconds>", "seconds between polls with --wait (default 30)")
    .option("--resubmit", "batch mode: submit even though the same job is already pending (pays again)")
    .option("--json", "print progress events as JSON lines on stdout")
    .option("-q, --quiet", "print nothing but errors and the final summary")
    .addHelpText(
      "after",
      "\nExamples:\n  loom jobs/hello.yaml\n  loom run -f data.csv -p echo -m test --sync -c text\n  loom run jobs/summaries.yaml --sync --workers 16 -o out.csv",
    )
    .action(async (jobFile: string | undefined, flags: RunFlags, command: Command) => {
      const overrides = overridesFrom(flags, command.getOptionValueSource("cache") === "cli");
      if (!jobFile && !flags.file) {
        throw new LoomUsageError("give a job file (loom run JOB.yaml) or a dataset with --file; see loom run --help");
      }
      const job = await loadJob({ file: jobFile, overrides, cwd: process.cwd() });
      const interactive = isInteractive();
      const style: ProgressStyle = flags.json ? "json" : flags.quiet ? "none" : process.stderr.isTTY ? "bar" : "lines";
      const progress = createProgress(style);

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
        if (poll !== undefined && !(poll > 0)) throw new LoomUsageError("--poll takes a number of seconds greater than 0");
        const summary = await runJob(job, {
          force: flags.force,
          apiKey: flags.apiKey,
          wait: flags.wait,
          resubmit: flags.resubmit,
          ...(poll === undefined ? {} : { pollMs: poll * 1000 }),
          signal: controller.signal,
          onEvent: progress.onEvent,
          confirmOverwrite: interactive ? (path) => askYesNo(`${displayPath(path)} exists. Overwrite it?`) : undefined,
        });
        const parts = [`${summary.ok} answered`, `${summary.cached} from cache`, `${summary.errors} failed`];
        if (summary.job) {
          const { id, shards } = summary.job;
          if (!flags.json) {
            process.stdout.write(
              `submitted job ${id}: ${summary.rows} rows in ${shards} batch${shards === 1 ? "" : "es"}\n` +
                `fetch it with: loom fetch --id ${id}   (or wait for it: loom fetch --id ${id} --wait)\n`,
            );
          }
          return;
        }
        if (!flags.json) {
          process.stdout.write(
            `wrote ${displayPath(summary.output!)}: ${summary.rows} row${summary.rows === 1 ? "" : "s"} (${parts.join(", ")}) in ${formatDuration(summary.elapsedMs / 1000)}\n`,
          );
          if (summary.errors > 0) process.stderr.write(`loom: ${summary.errors} row(s) failed; their reasons are in the llm_error column\n`);
        }
        process.exitCode = exitCodeFor(summary);
      } finally {
        progress.stop();
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}
