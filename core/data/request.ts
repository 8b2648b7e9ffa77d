/**
 * Turns a dataset row into the provider-neutral {@link GenerateRequest}. This is the one request
 * builder: sync calls, batch files and the cache key all start from what it returns, so every
 * mode sends the same thing.
 * @module
 */
import type { JobSpec } from "../job/schema.ts";
import { findColumnsInTemplate, renderTemplate } from "../job/template.ts";
import type { GenerateRequest } from "../spec/provider.ts";

/** The column a job reads its prompt from when it names neither a column nor a template. */
export const DEFAULT_PROMPT_COLUMN = "prompt";

/** How a job turns rows into prompts. */
export type PromptSpec = NonNullable<JobSpec["prompt"]>;

/** Every column a job's prompt and system prompt refer to, in order of appearance. */
export function promptColumns(prompt: PromptSpec | undefined): string[] {
  const columns = prompt?.template !== undefined
    ? findColumnsInTemplate(prompt.template)
    : [prompt?.column ?? DEFAULT_PROMPT_COLUMN];
  if (prompt?.system !== undefined) columns.push(...findColumnsInTemplate(prompt.system));
  return [...new Set(columns)];
}

/** The request for one row, or why the row cannot be sent. */
export type BuiltRequest = { request: GenerateRequest } | { error: string };

function text(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/**
 * Builds the request for a row. A row whose prompt is empty, or that lacks a column the prompt
 * needs, gets an error instead: it keeps its place in the output and is never sent.
 * `responseSchema` is the job's loaded answer schema, if it has one.
 */
export function buildRequest(
  job: Pick<JobSpec, "prompt" | "model" | "params">,
  fields: Readonly<Record<string, unknown>>,
  responseSchema?: GenerateRequest["responseSchema"],
): BuiltRequest {
  const prompt = job.prompt;
  const missing = promptColumns(prompt).filter((c) => !(c in fields));
  if (missing.length) {
    return { error: `row has no ${missing.map((c) => `"${c}"`).join(", ")} field` };
  }
  const content = prompt?.template !== undefined
    ? renderTemplate(prompt.template, fields)
    : text(fields[prompt?.column ?? DEFAULT_PROMPT_COLUMN]);
  if (content.trim() === "") return { error: "empty prompt: nothing was sent" };
  const system = prompt?.system === undefined ? undefined : renderTemplate(prompt.system, fields);
  return {
    request: {
      model: job.model,
      ...(system ? { system } : {}),
      messages: [{ role: "user", content }],
      params: { ...(job.params ?? {}) },
      ...(responseSchema ? { responseSchema } : {}),
    },
  };
}
