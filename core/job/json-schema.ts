/**
 * The editor JSON Schema of job files (`jobs/loom.schema.json`), generated from {@link JobSchema}
 * so editors (via `# yaml-language-server: $schema=...`) check and complete exactly what Loom
 * accepts. `scripts/gen-schema.ts` writes it; a test keeps the checked-in copy current.
 * @module
 */
import { toJsonSchema } from "@valibot/to-json-schema";
import { JobSchema, PromptSchema } from "./schema.ts";

/** The job file JSON Schema (draft-07): strict objects closed, descriptions kept. */
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
