/**
 * The batch providers' facts the batch tests share: which emulator serves each, the variable its
 * key is read from, and the request that creates (and is billed as) one batch, for counting
 * creates in the emulator's log; and the job they run against it.
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type Emulator,
  type EmulatorOptions,
  realClock,
  startEmulator,
} from "../../emulator/mod.ts";

/** The emulator that serves each batch provider. */
export const EMULATED = {
  openai: "openai",
  anthropic: "anthropic",
  google: "gemini",
  openrouter: "openrouter",
} as const;

/** The environment variable each provider reads its key from. */
export const KEY_ENV = {
  openai: "OPENAI_API_KEY",
  anthropic: "ANTHROPIC_API_KEY",
  google: "GEMINI_API_KEY",
  openrouter: "OPENROUTER_API_KEY",
} as const;

/** The request that creates (and is billed as) one batch, as `METHOD path` in the emulator's log. */
export const CREATE = {
  openai: /^POST \/v1\/batches$/,
  anthropic: /^POST \/v1\/messages\/batches$/,
  google: /^POST \/v1beta\/models\/[^/]+:batchGenerateContent$/,
  openrouter: /^POST \/api\/v1\/batches$/,
} as const;

/** The path of the create request, for the emulator's fault rules (`match: { method: "POST", path }`). */
export const CREATE_PATH = {
  openai: /^\/v1\/batches$/,
  anthropic: /^\/v1\/messages\/batches$/,
  google: /:batchGenerateContent$/,
  openrouter: /^\/api\/v1\/batches$/,
} as const;

/** A batch provider the emulator serves. */
export type BatchProvider = keyof typeof EMULATED;

/** The model the batch tests ask each provider for (the emulator answers `[<model>] <prompt>`). */
export const BATCH_MODEL = {
  openai: "gpt-4o-mini",
  anthropic: "claude-sonnet-4-5",
  google: "gemini-2.5-flash",
  openrouter: "openai/gpt-4o-mini",
} as const;

/** Starts the emulator serving `provider` as batch tests use it: batches end at once, any model. */
export function startBatchEmulator(
  provider: BatchProvider,
  options: Partial<EmulatorOptions> = {},
): Promise<Emulator> {
  return startEmulator({
    provider: EMULATED[provider],
    schedule: { advance: "instant" },
    clock: realClock,
    models: "any",
    ...options,
  });
}

/** A batch job for {@link writeBatchJob}. */
export interface BatchJob {
  provider: BatchProvider;
  /** The emulator's base URL. */
  baseURL: string;
  /** One row each, ids 1, 2, …; answered by {@link BATCH_MODEL}. */
  prompts: readonly string[];
  /** Requests per batch (default: the provider's limit). */
  maxRequests?: number;
  /** More `provider_options` members, as YAML (`timeout_ms: 3000`). */
  providerOptions?: string[];
}

/** Writes `in.csv` (id, prompt) and a batch `job.yaml` writing `out.csv` into `dir`. */
export function writeBatchJob(dir: string, job: BatchJob): void {
  writeFileSync(
    join(dir, "in.csv"),
    `id,prompt\n${job.prompts.map((p, i) => `${i + 1},${p}`).join("\n")}\n`,
  );
  const options = [`base_url: "${job.baseURL}"`, ...(job.providerOptions ?? [])].join(", ");
  writeFileSync(
    join(dir, "job.yaml"),
    [
      "dataset: { path: in.csv }",
      `provider: ${job.provider}`,
      `provider_options: { ${options} }`,
      `model: ${BATCH_MODEL[job.provider]}`,
      "mode: batch",
      ...(job.maxRequests ? [`batch: { max_requests: ${job.maxRequests} }`] : []),
      "output: { path: out.csv }",
      "",
    ].join("\n"),
  );
}
