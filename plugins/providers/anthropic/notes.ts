/**
 * What an Anthropic job's user should know before it runs: schema constraints the API does not
 * enforce (schema.ts moves them into descriptions), a deprecated model (with its end-of-life
 * date) and `thinking.type=enabled` on a model that wants `adaptive`. The last two are the
 * warnings `@anthropic-ai/sdk`'s `messages.create` prints with `console.warn` on every call; Loom
 * sends through a path that does not print (mod.ts) and says them once, as the job's notes.
 *
 * The tables are the SDK's own (`internal/data/`), read at run time so they follow the installed
 * SDK. The package does not export that folder, so it is loaded by file path; should a later SDK
 * move it, there are simply no notes.
 * @module
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { GenerateParams, ParamsContext } from "../../../core/spec/provider.ts";
import { anthropicSchema } from "./schema.ts";

const require = createRequire(import.meta.url);

/** One export of a module under the SDK's `internal/data/`, or `fallback` if it is not there. */
function sdkData<T>(file: string, name: string, fallback: T): T {
  try {
    const root = dirname(require.resolve("@anthropic-ai/sdk"));
    const value = (require(join(root, "internal", "data", file)) as Record<string, unknown>)[name];
    return (value ?? fallback) as T;
  } catch {
    return fallback;
  }
}

let tables: { deprecated: Record<string, string>; thinkingAdaptive: readonly string[] } | undefined;

/** The SDK's model → end-of-life date table, and its models that want adaptive thinking. */
function sdkTables() {
  tables ??= {
    deprecated: sdkData<Record<string, string>>("deprecated-models.js", "DEPRECATED_MODELS", {}),
    thinkingAdaptive: sdkData<readonly string[]>(
      "models-to-warn-with-thinking-enabled.js",
      "MODELS_TO_WARN_WITH_THINKING_ENABLED",
      [],
    ),
  };
  return tables;
}

/** The job's notes, for `ProviderV1.jobNotes`: one sentence each. */
export function jobNotes(params: GenerateParams, context: ParamsContext): string[] {
  const { deprecated, thinkingAdaptive } = sdkTables();
  const model = context.model;
  const notes: string[] = [];
  if (Object.hasOwn(deprecated, model)) {
    notes.push(
      `model ${model} is deprecated and reaches end-of-life on ${deprecated[model]}; ` +
        "move to a newer model (https://docs.anthropic.com/en/docs/resources/model-deprecations)",
    );
  }
  if (
    thinkingAdaptive.includes(model) &&
    (params.thinking as { type?: unknown } | undefined)?.type === "enabled"
  ) {
    notes.push(
      `thinking.type=enabled is deprecated for ${model}; Anthropic recommends thinking: { type: adaptive }`,
    );
  }
  const moved = context.schema ? anthropicSchema(context.schema).moved : [];
  if (moved.length) {
    notes.push(
      `Anthropic structured outputs do not enforce the schema's ${
        moved.join(", ")
      }; they are sent in descriptions ` +
        "for the model to follow, and each answer is still checked against the job's schema",
    );
  }
  return notes;
}
