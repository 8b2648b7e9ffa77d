/**
 * The editor JSON Schema of job files (`jobs/loom.schema.json`), generated from {@link JobSchema}
 * so editors (via `# yaml-language-server: $schema=...`) check and complete exactly what Loom
 * accepts. `scripts/gen-schema.ts` writes it; a test keeps the checked-in copy current.
 * @module
 */
import { toJsonSchema } from "@valibot/to-json-schema";
import { BUILTIN_PLUGINS } from "../../plugins/_builtins.ts";
import { DatasetSchema, JobSchema, PromptSchema } from "./schema.ts";

/**
 * Names an editor offers for `provider` and `dataset.format`: the built-in plugins', while any
 * other name still passes (a plugin's), as it does for Loom.
 */
const NAMED: ReadonlyMap<unknown, readonly string[]> = new Map<unknown, readonly string[]>([
  // Each key is the schema's last action (its description), which the converter hands to
  // overrideAction with the JSON Schema built so far.
  [JobSchema.entries.provider.pipe.at(-1), Object.keys(BUILTIN_PLUGINS.provider).sort()],
  [DatasetSchema.entries.format.wrapped.pipe.at(-1), Object.keys(BUILTIN_PLUGINS.format).sort()],
]);

/**
 * The job file JSON Schema (draft-07): strict objects closed, descriptions and defaults kept, the
 * built-in providers and formats listed.
 */
export function jobJsonSchema(): Record<string, unknown> {
  const { $schema, ...rest } = toJsonSchema(JobSchema, {
    target: "draft-07",
    // Anything new in the schema that cannot be expressed must be decided here, not dropped.
    errorMode: "throw",
    overrideAction({ valibotAction, jsonSchema }) {
      // The one v.check in the schema: prompt.column and prompt.template exclude each other.
      if (valibotAction === PromptSchema.pipe[1]) {
        return { ...jsonSchema, not: { required: ["column", "template"] } };
      }
      const names = NAMED.get(valibotAction);
      if (names) return { ...jsonSchema, anyOf: [{ enum: [...names] }, { type: "string" }] };
      return undefined;
    },
  });
  return {
    $schema,
    title: "Loom job file",
    description:
      "A Loom job: which dataset, how rows become prompts, which provider and model, where the answers go.",
    ...(withoutEmptyRequired(rest) as object),
  };
}

/** {@link jobJsonSchema} as the checked-in file holds it: 2-space JSON with a final newline. */
export function jobJsonSchemaText(): string {
  return `${JSON.stringify(jobJsonSchema(), null, 2)}\n`;
}

// The converter writes `required: []` on objects without required keys; valid, but noise.
function withoutEmptyRequired(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutEmptyRequired);
  if (typeof value !== "object" || value === null) return value;
  const entries = Object.entries(value)
    .filter(([k, v]) => !(k === "required" && Array.isArray(v) && v.length === 0))
    .map(([k, v]) => [k, withoutEmptyRequired(v)]);
  return Object.fromEntries(entries);
}
