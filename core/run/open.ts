/**
 * Opening a job for work: its plugins, its answer schema, its provider (with the API key
 * resolved and the parameters checked), all before any row is read or sent. Shared by sync runs,
 * batch submissions and the batch commands (fetch, cancel, retry).
 * @module
 */
import process from "node:process";
import { type AnswerSchema, loadAnswerSchema } from "../data/answer-schema.ts";
import { LoomJobError, LoomUsageError } from "../base/errors.ts";
import type { RunEventHandler } from "../base/events.ts";
import type { LoadedJob } from "../job/load.ts";
import { readDotEnv, requireApiKey, resolveApiKey } from "../job/keys.ts";
import type { PluginContext } from "../plugins/plugin.ts";
import { Registry } from "../plugins/registry.ts";
import { loomHome } from "../base/runtime.ts";
import { collectSecrets, createRedactor, redactError, type Redactor } from "../base/secrets.ts";
import type { ProviderV1 } from "../spec/provider.ts";
import type { StorageV2 } from "../spec/storage.ts";
import { StateHandle } from "../state/open.ts";
import type { RetryPolicy } from "./retry.ts";

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
  /** Run even though the estimated cost exceeds the job's spend cap (`cost.max_usd`). */
  readonly overCap?: boolean;
  /**
   * The work sends nothing to the provider (`loom plan`, `--dry-run`): a missing API key is no
   * error. A key that is found is still handed to the provider.
   */
  readonly keyOptional?: boolean;
  /**
   * The state store to keep jobs and the cache in; default the one `LOOM_STATE` selects
   * (`core/state/open.ts`), opened when first needed and closed at the end.
   */
  readonly store?: StorageV2;
}

/** A job ready for work. */
export interface OpenedJob {
  readonly job: LoadedJob;
  readonly context: PluginContext;
  readonly registry: Registry;
  readonly provider: ProviderV1;
  readonly answerSchema?: AnswerSchema;
  /** The provider's notes on how the job will be sent ({@link ProviderV1.jobNotes}). */
  readonly notes: readonly string[];
  /** Scrubs the run's secrets from text Loom stores or shows (provider messages, say). */
  readonly redact: Redactor;
  /** The state store (jobs, results, the cache), opened on first use. */
  readonly state: StateHandle;
}

/**
 * The redactor of a run: the `--api-key` value, the key the run resolved (`sentKey`, from a
 * variable the job may name), and every secret-looking variable, `.env` included.
 */
function redactorFor(options: RunOptions, sentKey?: string): Redactor {
  const env = options.env ?? process.env;
  return createRedactor(
    collectSecrets(
      { ...readDotEnv(options.cwd ?? process.cwd()), ...env },
      options.apiKey,
      sentKey,
    ),
  );
}

/** Where the state store's one-time notes go: the run's events, when it has a listener. */
function noteTo(options: RunOptions): ((line: string) => void) | undefined {
  const { onEvent } = options;
  return onEvent ? (message) => onEvent({ type: "note", message }) : undefined;
}

/** Runs `work` with every secret scrubbed from what it throws. */
export async function withSecretsScrubbed<T>(
  options: RunOptions,
  work: (redact: Redactor) => Promise<T>,
): Promise<T> {
  // Keys may also come from .env: its secret-looking values are scrubbed like the environment's.
  const redact = redactorFor(options);
  try {
    return await work(redact);
  } catch (error) {
    throw redactError(error, redact);
  }
}

/** Loads the job's plugins (when there is a job) and those named in `LOOM_PLUGINS` (comma-separated). */
async function loadPlugins(
  job: LoadedJob | undefined,
  registry: Registry,
  options: RunOptions,
  env: PluginContext["env"],
) {
  for (const ref of job?.spec.plugins ?? []) await registry.load(ref, job!.dir);
  const fromEnv = (env.LOOM_PLUGINS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  for (const ref of fromEnv) await registry.load(ref, options.cwd ?? process.cwd());
}

/** Creates the job's provider; a problem is reported at the job key it comes from. */
async function createProvider(
  job: LoadedJob,
  registry: Registry,
  context: PluginContext,
  apiKey: string | undefined,
  cwd: string,
  keyOptional = false,
) {
  const { provider, provider_options } = job.spec;
  const at = (path: string[], error: unknown): never => {
    // Plugin-contract errors are the plugin's fault, not the job's: they pass through as they are.
    if (!(error instanceof LoomUsageError) || error.name !== "LoomUsageError") throw error;
    throw new LoomJobError([{
      where: job.where(path),
      path: path.join("."),
      message: error.message,
    }]);
  };
  const definition = await registry.definition("provider", provider).catch((error) =>
    at(["provider"], error)
  );
  const options: Record<string, unknown> = { ...(provider_options ?? {}) };
  if (definition.apiKey) {
    // Resolved here, before any work, so a missing key stops the run with a clear message.
    const lookup = {
      flag: apiKey,
      envVars: definition.apiKey.envVars(options),
      env: context.env,
      cwd,
    };
    const required = !keyOptional && (definition.apiKey.required?.(options) ?? true);
    const found = required ? requireApiKey(provider, lookup) : resolveApiKey(lookup);
    if (found) options.apiKey = found.key;
  } else if (apiKey !== undefined) options.apiKey = apiKey;
  const created = await registry.create("provider", provider, options, context)
    .catch((error) => at(provider_options ? ["provider_options"] : ["provider"], error));
  return {
    provider: created,
    sentKey: typeof options.apiKey === "string" ? options.apiKey : undefined,
  };
}

/**
 * Opens a job: plugins, answer schema, provider, parameter check. The caller disposes of the
 * provider when done.
 */
export async function openJob(job: LoadedJob, options: RunOptions): Promise<OpenedJob> {
  const env = options.env ?? process.env;
  const context: PluginContext = { env: { ...env }, home: loomHome(env) };
  const registry = options.registry ?? new Registry();
  await loadPlugins(job, registry, options, context.env);
  const { spec } = job;
  // Before the provider, so a bad schema fails before any connection is made.
  const answerSchema = await loadAnswerSchema(job);
  const { provider, sentKey }: { provider: ProviderV1; sentKey?: string } = await createProvider(
    job,
    registry,
    context,
    options.apiKey,
    options.cwd ?? process.cwd(),
    options.keyOptional,
  );
  // A parameter the provider refuses would fail every row: say so before any work.
  const paramsContext = {
    model: spec.model,
    structured: answerSchema !== undefined,
    ...(answerSchema ? { schema: answerSchema.schema } : {}),
  };
  const refused = provider.validateParams?.(spec.params ?? {}, paramsContext) ?? [];
  if (refused.length) {
    await provider.dispose?.();
    const path = (r: (typeof refused)[number]) => [...(r.path ?? ["params", r.param])];
    throw new LoomJobError(
      refused.map((r) => ({
        where: job.where(path(r)),
        path: path(r).join("."),
        message: r.message,
      })),
      `${spec.provider} does not accept this job as it is`,
    );
  }
  const redact = redactorFor(options, sentKey);
  const notes = (provider.jobNotes?.(spec.params ?? {}, paramsContext) ?? []).map((note) =>
    redact(note)
  );
  for (const message of notes) {
    options.onEvent?.({ type: "note", message: `${spec.provider}: ${message}` });
  }
  return {
    job,
    context,
    registry,
    provider,
    ...(answerSchema ? { answerSchema } : {}),
    notes,
    redact,
    state: new StateHandle(registry, context, options.store, noteTo(options)),
  };
}

/**
 * Opens a job, runs `work` with it and releases the provider, with every secret scrubbed from what
 * it throws: the frame of every command that works on a job.
 */
export function withOpenedJob<T>(
  job: LoadedJob,
  options: RunOptions,
  work: (opened: OpenedJob) => Promise<T>,
): Promise<T> {
  return withSecretsScrubbed(options, async () => {
    const opened = await openJob(job, options);
    try {
      return await work(opened);
    } catch (error) {
      // The outer frame knows no key the job resolved itself; this one does.
      throw redactError(error, opened.redact);
    } finally {
      await opened.provider.dispose?.();
      await opened.state.close();
    }
  });
}

/**
 * Runs `work` with the state store `options` select (plugins of `LOOM_PLUGINS` loaded, so a
 * third-party store can be chosen), secrets scrubbed from what it throws: the frame of the
 * commands that find a job before opening it. `work` gets options that carry the store, so the
 * job it opens uses the same one.
 */
export function withState<T>(
  options: RunOptions,
  work: (store: StorageV2, options: RunOptions) => Promise<T>,
): Promise<T> {
  return withSecretsScrubbed(options, async () => {
    const env = options.env ?? process.env;
    const context: PluginContext = { env: { ...env }, home: loomHome(env) };
    const registry = options.registry ?? new Registry();
    await loadPlugins(undefined, registry, options, context.env);
    const state = new StateHandle(registry, context, options.store, noteTo(options));
    try {
      const store = await state.get();
      return await work(store, { ...options, registry, store });
    } finally {
      await state.close();
    }
  });
}
