/**
 * Runs a loaded job end to end: plugins → provider → plan → execute → merge → output. This is
 * what `loom run` calls; it prints nothing and reports through events.
 * @module
 */
import process from "node:process";
import { checkPlainAnswer, loadAnswerSchema } from "../answer-schema.ts";
import { ResponseCache } from "../cache.ts";
import { EXIT, LoomError, LoomInterruptedError, LoomJobError, LoomUsageError } from "../errors.ts";
import type { RunEventHandler, RunSummary } from "../events.ts";
import type { LoadedJob } from "../job/load.ts";
import { exists, writeFileAtomic } from "../output.ts";
import { ERROR_COLUMN, META_COLUMNS, openJobDataset, type Plan, planJob, RESPONSE_COLUMN, USAGE_COLUMNS } from "../plan.ts";
import type { PluginContext } from "../plugin.ts";
import { Registry } from "../registry.ts";
import { buildRequest } from "../request.ts";
import { readDotEnv, requireApiKey, resolveApiKey } from "../keys.ts";
import { displayPath } from "../paths.ts";
import { loomHome } from "../runtime.ts";
import { collectSecrets, createRedactor, type Redactor, redactError } from "../secrets.ts";
import type { AddedValue, OutputRow } from "../spec/format.ts";
import type { ProviderV1 } from "../spec/provider.ts";
import type { RetryPolicy } from "./retry.ts";
import { executeSync, type RowResult } from "./sync.ts";

/** Default number of concurrent requests in sync mode. */
export const DEFAULT_WORKERS = 8;

/** How to run a job (things that are not part of the job file). */
export interface RunOptions {
  /** Overwrite an existing output without asking. */
  readonly force?: boolean;
  /** API key from `--api-key`; handed to the provider, stored nowhere. */
  readonly apiKey?: string;
  /** Environment (default the process's). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Directory `LOOM_PLUGINS` paths are relative to (default the working directory). */
  readonly cwd?: string;
  /** Aborting interrupts the run; finished answers stay cached. */
  readonly signal?: AbortSignal;
  readonly onEvent?: RunEventHandler;
  /** Asked when the output exists and `force` is off; absent means refuse. */
  readonly confirmOverwrite?: (path: string) => Promise<boolean>;
  /** A registry to use (tests register plugins on it); default a fresh one. */
  readonly registry?: Registry;
  /** How transient provider errors are retried (default `DEFAULT_RETRY`). */
  readonly retry?: RetryPolicy;
}

/** Loads the job's plugins and those named in `LOOM_PLUGINS` (comma-separated). */
async function loadPlugins(job: LoadedJob, registry: Registry, options: RunOptions, env: PluginContext["env"]) {
  for (const ref of job.spec.plugins ?? []) await registry.load(ref, job.dir);
  const fromEnv = (env.LOOM_PLUGINS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  for (const ref of fromEnv) await registry.load(ref, options.cwd ?? process.cwd());
}

/**
 * The columns Loom adds to a row. A structured answer is an object in `llm_response` where the
 * format nests (JSON), else its fields fill their own columns and `llm_response` keeps the raw
 * text. An answer the schema check rejected keeps its raw text and usage too: it was paid for.
 */
function addedValues(plan: Plan, job: LoadedJob, result: RowResult): OutputRow["added"] {
  const answer = result.result;
  const value = result.outcome === "error" ? undefined : result.value;
  const added: Record<string, AddedValue> = {
    [RESPONSE_COLUMN]: value && plan.format.nested ? (value as AddedValue) : answer?.text ?? null,
    [ERROR_COLUMN]: result.outcome === "error" ? result.error : null,
  };
  for (const field of plan.fieldColumns) added[field] = (value?.[field] ?? null) as AddedValue;
  if (plan.added.includes(META_COLUMNS[0])) {
    added.llm_provider = job.spec.provider;
    added.llm_model = job.spec.model;
  }
  if (plan.added.includes(USAGE_COLUMNS[0])) {
    added.llm_finish_reason = answer?.finishReason ?? null;
    added.llm_input_tokens = answer?.usage?.inputTokens ?? null;
    added.llm_output_tokens = answer?.usage?.outputTokens ?? null;
  }
  return added;
}

/** Creates the job's provider; a problem is reported at the job key it comes from. */
async function createProvider(job: LoadedJob, registry: Registry, context: PluginContext, apiKey: string | undefined, cwd: string) {
  const { provider, provider_options } = job.spec;
  const at = (path: string[], error: unknown): never => {
    // Plugin-contract errors are the plugin's fault, not the job's: they pass through as they are.
    if (!(error instanceof LoomUsageError) || error.name !== "LoomUsageError") throw error;
    throw new LoomJobError([{ where: job.where(path), path: path.join("."), message: error.message }]);
  };
  const definition = await registry.definition("provider", provider).catch((error) => at(["provider"], error));
  const options: Record<string, unknown> = { ...(provider_options ?? {}) };
  if (definition.apiKey) {
    // Resolved here, before any work, so a missing key stops the run with a clear message.
    const lookup = { flag: apiKey, envVars: definition.apiKey.envVars(options), env: context.env, cwd };
    const required = definition.apiKey.required?.(options) ?? true;
    const found = required ? requireApiKey(provider, lookup) : resolveApiKey(lookup);
    if (found) options.apiKey = found.key;
  } else if (apiKey !== undefined) options.apiKey = apiKey;
  return registry.create("provider", provider, options, context)
    .catch((error) => at(provider_options ? ["provider_options"] : ["provider"], error));
}

/** Runs a job; resolves with its summary once the output file is in place. */
export async function runJob(job: LoadedJob, options: RunOptions = {}): Promise<RunSummary> {
  const env = options.env ?? process.env;
  // Keys may also come from .env: its secret-looking values are scrubbed like the environment's.
  const redact = createRedactor(collectSecrets({ ...readDotEnv(options.cwd ?? process.cwd()), ...env }, options.apiKey));
  try {
    return await run(job, options, env, redact);
  } catch (error) {
    throw redactError(error, redact);
  }
}

async function run(
  job: LoadedJob,
  options: RunOptions,
  env: Readonly<Record<string, string | undefined>>,
  redact: Redactor,
): Promise<RunSummary> {
  const context: PluginContext = { env: { ...env }, home: loomHome(env) };
  const registry = options.registry ?? new Registry();
  await loadPlugins(job, registry, options, context.env);

  const { spec } = job;
  const mode = spec.mode ?? "batch";
  // Before the provider, so a bad schema fails before any connection is made.
  const answerSchema = await loadAnswerSchema(job);
  const provider: ProviderV1 = await createProvider(job, registry, context, options.apiKey, options.cwd ?? process.cwd());
  const { signal } = options;
  try {
    // A parameter the provider refuses would fail every row: say so before any work.
    const refused = provider.validateParams?.(spec.params ?? {}, { model: spec.model, structured: answerSchema !== undefined }) ?? [];
    if (refused.length) {
      throw new LoomJobError(
        refused.map((r) => ({ where: job.where(["params", r.param]), path: `params.${r.param}`, message: r.message })),
        `${spec.provider} does not accept these parameters`,
      );
    }
    if (mode === "batch") {
      throw new LoomUsageError(
        provider.noBatchReason ??
          `provider "${spec.provider}" cannot run in batch mode yet; run it with --sync (or mode: sync in the job)`,
      );
    }
    const plan = await planJob(job, registry, context, { signal, answerFields: answerSchema?.fields }).catch((error) => {
      if (signal?.aborted) throw new LoomInterruptedError("interrupted while checking the dataset; nothing was sent");
      throw error;
    });
    if (!options.force && (await exists(plan.output))) {
      const shown = displayPath(plan.output);
      if (!options.confirmOverwrite) throw new LoomUsageError(`${shown} exists; pass --force to overwrite it`);
      if (!(await options.confirmOverwrite(plan.output))) {
        throw new LoomUsageError(`${shown} was left as it was (answer y, or pass --force, to overwrite it)`);
      }
    }
    if (signal?.aborted) throw new LoomInterruptedError("interrupted before any row was sent");
    options.onEvent?.({ type: "plan", rows: plan.rows, input: plan.input, output: plan.output, mode });
    const started = Date.now();

    const cacheOn = spec.sync?.cache ?? true;
    const storage = cacheOn ? await registry.create("storage", "fs", {}, context) : undefined;
    const counts = { ok: 0, cached: 0, errors: 0 };
    const onEvent: RunEventHandler = (event) => {
      if (event.type === "row") counts[event.outcome === "error" ? "errors" : event.outcome]++;
      options.onEvent?.(event);
    };

    const reader = await openJobDataset(job, plan.format);
    const results = executeSync(reader.rows, {
      provider,
      buildRequest: (row) => buildRequest(spec, row.fields, answerSchema?.schema),
      check: answerSchema?.check ?? checkPlainAnswer,
      cache: storage ? new ResponseCache(storage) : undefined,
      workers: spec.sync?.workers ?? DEFAULT_WORKERS,
      idColumn: spec.dataset.id ?? (plan.columns.includes("id") ? "id" : undefined),
      signal,
      onEvent,
      redact,
      retry: options.retry,
      limits: { rpm: spec.sync?.rpm, tpm: spec.sync?.tpm },
    });
    async function* merged(): AsyncGenerator<OutputRow> {
      let rows = 0;
      for await (const result of results) {
        rows++;
        yield { row: result.row, added: addedValues(plan, job, result) };
      }
      // Thrown before the output is renamed into place, so a changed input leaves no output.
      if (rows !== plan.rows) {
        throw new LoomError(`${displayPath(plan.input)} changed while Loom was running (checked ${plan.rows} rows, then read ${rows}); no output was written`);
      }
    }
    try {
      await writeFileAtomic(plan.output, plan.format.write(merged(), { layout: plan.layout, added: plan.added }));
    } catch (error) {
      if (!signal?.aborted) throw error;
      const done = counts.ok + counts.cached;
      throw new LoomInterruptedError(
        `interrupted after ${done} of ${plan.rows} rows; no output was written. ` +
          (cacheOn
            ? "Finished answers are cached: run the same command again to resume."
            : "The cache is off, so a rerun starts over."),
      );
    }
    const summary: RunSummary = { rows: plan.rows, ...counts, output: plan.output, elapsedMs: Date.now() - started };
    options.onEvent?.({ type: "done", summary });
    return summary;
  } finally {
    await provider.dispose?.();
  }
}

/** The exit code for a finished run: 1 when every row failed, else 0. */
export function exitCodeFor(summary: RunSummary): number {
  return summary.rows > 0 && summary.errors === summary.rows ? EXIT.failed : EXIT.ok;
}
