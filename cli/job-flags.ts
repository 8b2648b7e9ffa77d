/**
 * The flags that set job fields (`--file`, `--model`, `--workers`, …), shared by `run`, `plan`
 * and `tokens`: each becomes a job override that remembers its flag, for messages.
 * @module
 */
import { LoomUsageError } from "../core/base/errors.ts";
import type { JobOverride } from "../core/job/load.ts";

/** Options commander parses for `run`. */
export interface RunFlags {
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
  dryRun?: boolean;
  overCap?: boolean;
  countTokens?: boolean;
}

/** `--schema`: inline JSON when it looks like an object, else a file path. */
function schemaFlag(value: string): unknown {
  if (!value.trim().startsWith("{")) return value;
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new LoomUsageError(
      `--schema: not valid JSON (${(error as Error).message}); give a JSON object or a file path`,
    );
  }
}

/** Turns the flags into job overrides (each remembers the flag it came from, for messages). */
export function overridesFrom(flags: RunFlags, cacheFromCli: boolean): JobOverride[] {
  if (flags.sync && flags.batch) {
    throw new LoomUsageError("--sync and --batch contradict each other; give one");
  }
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
    add(
      ["sync", "workers"],
      Number.isFinite(n) && flags.workers.trim() !== "" ? n : flags.workers,
      "--workers",
    );
  }
  if (cacheFromCli && flags.cache === false) add(["sync", "cache"], false, "--no-cache");
  for (const [flag, key] of [["--rpm", "rpm"], ["--tpm", "tpm"]] as const) {
    const value = flags[key];
    if (value !== undefined) {
      add(
        ["sync", key],
        Number.isFinite(Number(value)) && value.trim() !== "" ? Number(value) : value,
        flag,
      );
    }
  }
  if (flags.withMeta) add(["output", "with_meta"], true, "--with-meta");
  if (flags.withUsage) add(["output", "with_usage"], true, "--with-usage");
  add(["provider_options", "base_url"], flags.baseUrl, "--base-url");
  add(["schema"], flags.schema === undefined ? undefined : schemaFlag(flags.schema), "--schema");
  return list;
}
